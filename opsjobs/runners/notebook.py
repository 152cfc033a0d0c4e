"""The ``notebook`` kind: run a Jupyter notebook with papermill.

Payload::

    {"path": "/abs/path/report.ipynb",       # resolved at submit time
     "parameters": {"days": 7, "host": "a"},  # injected after the cell tagged "parameters"
     "kernel": "python3" | None,              # None: the notebook's own kernelspec
     "cwd": "/abs/folder" | None,             # None: the notebook's folder
     "allow_unknown": true}                   # only when given: pass undeclared parameters

Parameters are checked at submit against the notebook's ``parameters`` cell (see
:func:`opsjobs.notebooks.check_parameters`): an undeclared name is refused unless
``allow_unknown``, values are coerced to the declared types.

The executed notebook is kept as ``<data>/outputs/<job id>.ipynb`` (also when a cell fails) with
an HTML rendering beside it; the job's output shows per-cell progress, the cells' own prints and a
summary. The kernel is a child process that knows it runs a job, so ``opsjobs.context()`` works
in its cells. Modes: ``thread`` (papermill in a worker thread) and ``process`` (papermill in a
child); in both, timeout and cancel kill the kernel with all its children. Execution details
live in :mod:`opsjobs.runners.notebook_run`.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opsjobs.context import JobContext
from opsjobs.errors import ValidationError
from opsjobs.model import Mode, json_size_checked
from opsjobs.notebooks import Inspector, NotebookInfo, check_parameters
from opsjobs.runners.kinds import Kind, Validator

__all__ = ["NotebookKind", "parse_parameter_value", "parse_parameters_text"]

_KERNEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_NOTEBOOK_BYTES = 64 << 20
_NOTEBOOK_KEYS = frozenset({"path", "parameters", "kernel", "cwd", "allow_unknown"})


def parse_parameter_value(text: str) -> Any:
    """Type a ``-p NAME VALUE`` value the way papermill's CLI does: ``True``/``False``,
    ``None``, an int, a float, else the string itself."""
    if text == "True":
        return True
    if text == "False":
        return False
    if text == "None":
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_parameters_text(text: str) -> dict[str, Any]:
    """Parameters given as one YAML or JSON mapping (papermill's ``-y``)."""
    try:
        import yaml

        value = yaml.safe_load(text)
    except ImportError:  # pragma: no cover - PyYAML comes with papermill
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"parameters are not valid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"parameters are not valid YAML: {exc}") from None
    if not isinstance(value, dict):
        raise ValidationError("parameters must be a mapping, like '{days: 7, host: web1}'")
    return value


def _check_notebook_file(raw: object) -> Path:
    if not isinstance(raw, str | Path) or not str(raw).strip():
        raise ValidationError("notebook path must be a non-empty string")
    text = str(raw)
    if "\x00" in text:
        raise ValidationError("notebook path must not contain NUL characters")
    path = Path(text).expanduser()
    if path.suffix != ".ipynb":
        raise ValidationError(f"not a notebook (expected a .ipynb file): {text}")
    try:
        path = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise ValidationError(f"notebook not found: {text}") from None
    if not path.is_file():
        raise ValidationError(f"notebook is not a regular file: {text}")
    try:
        size = path.stat().st_size
        if size > _MAX_NOTEBOOK_BYTES:
            raise ValidationError(f"notebook is larger than {_MAX_NOTEBOOK_BYTES} bytes: {text}")
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationError(f"cannot read notebook {text}: {exc.strerror or exc}") from None
    except ValueError:
        raise ValidationError(f"not a notebook (not JSON): {text}") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("cells"), list)
        or not isinstance(data.get("nbformat"), int)
        or data["nbformat"] < 4
    ):
        raise ValidationError(f"not a notebook (no nbformat 4 cells): {text}")
    return path


def _check_parameters(raw: object) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError("notebook parameters must be a JSON object")
    for name in raw:
        # papermill writes "name = value" into the notebook: a name must be an identifier.
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise ValidationError(f"notebook parameter name must be a Python identifier: {name!r}")
    params = dict(raw)
    json_size_checked(params, "notebook parameters")
    return params


def _check_cwd(raw: object) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str | Path) or not str(raw).strip() or "\x00" in str(raw):
        raise ValidationError("cwd must be a folder path")
    path = Path(str(raw)).expanduser().resolve()
    if not path.is_dir():
        raise ValidationError(f"cwd is not a folder: {raw}")
    return str(path)


class NotebookKind(Kind):
    """``{"path": ..., "parameters": {...}, "kernel": ..., "cwd": ...}`` — a papermill run."""

    name = "notebook"
    modes = frozenset({Mode.THREAD, Mode.PROCESS})

    def __init__(self, inspector: Inspector | None = None) -> None:
        self.inspector = inspector or Inspector()

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        extra = set(payload) - {"path", "parameters", "kernel", "cwd", "allow_unknown"}
        if extra:
            raise ValidationError(
                f"unknown field(s) for kind 'notebook': {', '.join(sorted(extra))}"
            )
        path = _check_notebook_file(payload.get("path"))
        kernel = payload.get("kernel")
        if kernel is not None and (not isinstance(kernel, str) or not _KERNEL_RE.match(kernel)):
            raise ValidationError(f"invalid kernel name {str(kernel)[:80]!r}")
        allow_unknown = payload.get("allow_unknown", False)
        if not isinstance(allow_unknown, bool):
            raise ValidationError("allow_unknown must be true or false")
        params = _check_parameters(payload.get("parameters"))
        info = self.inspector.inspect(path, label=path.name)
        clean: dict[str, Any] = {
            "path": str(path),
            "parameters": check_parameters(info, params, allow_unknown=allow_unknown),
            "kernel": kernel,
            "cwd": _check_cwd(payload.get("cwd")),
        }
        if allow_unknown:
            clean["allow_unknown"] = True
        return clean

    def batch_validator(self) -> Validator:
        # per batch, each notebook file is read and its parameters cell inspected once (the
        # batch is checked as of one moment); each job's parameters are checked against it
        files: dict[tuple[Any, ...], tuple[str, NotebookInfo, Any, str | None]] = {}
        names: set[str] = set()  # parameter names found to be identifiers

        def validate(payload: Mapping[str, Any]) -> dict[str, Any]:
            if not payload.keys() <= _NOTEBOOK_KEYS:
                raise ValidationError("unknown field(s) for kind 'notebook'")
            raw, kernel, cwd = payload.get("path"), payload.get("kernel"), payload.get("cwd")
            allow_unknown = payload.get("allow_unknown", False)
            key: tuple[Any, ...] = (type(raw), raw, type(kernel), kernel, type(cwd), cwd)
            key += (type(allow_unknown), allow_unknown)
            found = files.get(key)
            if found is None:
                once = self.validate({k: v for k, v in payload.items() if k != "parameters"})
                path = Path(once["path"])
                info = self.inspector.inspect(path, label=path.name)
                found = files[key] = (once["path"], info, once["kernel"], once["cwd"])
            params = payload.get("parameters")
            if params is None:
                params = {}
            elif not isinstance(params, Mapping):
                raise ValidationError("notebook parameters must be a JSON object")
            elif not params.keys() <= names:
                _check_parameters(params)
                names.update(params)
            coerced = check_parameters(found[1], params, allow_unknown=allow_unknown)
            if any(coerced[k] is not v for k, v in params.items()):
                # the given values' JSON, as _check_parameters checks it (unless they are the
                # coerced ones, whose JSON the caller checks with the payload's)
                json_size_checked(dict(params), "notebook parameters")
            clean: dict[str, Any] = {
                "path": found[0],
                "parameters": coerced,
                "kernel": found[2],
                "cwd": found[3],
            }
            if allow_unknown:
                clean["allow_unknown"] = True
            return clean

        return validate

    def run(self, payload: Mapping[str, Any], ctx: JobContext) -> Any:
        from opsjobs.runners.notebook_run import NotebookRun

        return NotebookRun(payload, ctx).execute()

    def describe(self, payload: Mapping[str, Any]) -> str:
        params = " ".join(
            f"-p {k} {json.dumps(v)}" for k, v in (payload.get("parameters") or {}).items()
        )
        kernel = f" --kernel {payload['kernel']}" if payload.get("kernel") else ""
        return f"papermill {payload.get('path')}{kernel} {params}".rstrip()
