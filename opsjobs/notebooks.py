"""The notebook catalog and the typed parameters of a notebook.

A notebook's cell tagged ``parameters`` is its contract: :class:`Inspector` reads it with
``papermill.inspect_notebook`` (name, default, help comment; the type is the annotation's, else
the default literal's: ``int``, ``float``, ``bool``, ``str``, ``list``, ``dict``, or ``any`` for a
``None`` default or an expression), caching each notebook by path, modification time and size.
:func:`check_parameters` checks what a caller sends against it at submit time.

:class:`Catalog` is the notebooks folder users of the REST API, the dashboard and schedules may
run from (``OPSJOBS_NOTEBOOKS``): they name a notebook by its path relative to that folder, and a
name that leaves the folder (``../``, an absolute path, a symlink pointing out) is refused.
"""

from __future__ import annotations

import ast
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from opsjobs.errors import ConfigError, ValidationError

__all__ = [
    "PARAMETER_TYPES",
    "Catalog",
    "Inspector",
    "NotebookInfo",
    "Parameter",
    "check_parameters",
]

#: Types a parameter can be declared with; ``any`` accepts every JSON value.
PARAMETER_TYPES = ("int", "float", "bool", "str", "list", "dict", "any")
_TYPE_OF = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}
_ANNOTATIONS = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "list": "list",
    "dict": "dict",
}
_MAX_NAME = 255
_CACHE_SIZE = 4096


@dataclass(frozen=True)
class Parameter:
    """One parameter declared in a notebook's ``parameters`` cell."""

    name: str
    type: str
    #: The default as a Python value (None when it is ``None`` or not a literal).
    default: Any
    #: The default as written in the cell.
    default_text: str
    help: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "default_text": self.default_text,
            "help": self.help,
        }


@dataclass(frozen=True)
class NotebookInfo:
    """What the catalog says about one notebook."""

    path: str
    title: str
    parameters: tuple[Parameter, ...]
    #: False when no cell is tagged ``parameters`` (such a notebook accepts no parameters).
    has_parameters_cell: bool

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "title": self.title,
            "has_parameters_cell": self.has_parameters_cell,
            "parameters": [p.to_dict() for p in self.parameters],
        }


def _literal(text: str) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False, None


def _parameter(raw: Mapping[str, Any]) -> Parameter:
    text = str(raw.get("default", ""))
    known, value = _literal(text)
    annotated = _ANNOTATIONS.get(str(raw.get("inferred_type_name", "")).strip())
    if annotated is not None:
        kind = annotated
    elif known and type(value) in _TYPE_OF:
        kind = _TYPE_OF[type(value)]
    else:
        kind = "any"
    if not known or not _json_safe(value):
        value = None
    return Parameter(str(raw["name"]), kind, value, text, str(raw.get("help") or ""))


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _title(cells: list[Any], fallback: str) -> str:
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                return line.strip().lstrip("#").strip()[:200] or fallback
    return fallback


class Inspector:
    """Reads notebooks' titles and parameters, cached by path, mtime and size (thread-safe)."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._cache: dict[tuple[str, int, int], NotebookInfo] = {}
        self._lock = threading.Lock()

    def inspect(self, path: Path, *, label: str | None = None) -> NotebookInfo:
        """The notebook at ``path`` (an existing file); ``label`` is the path shown for it."""
        shown = label if label is not None else str(path)
        try:
            st = path.stat()
        except OSError as exc:
            raise ValidationError(f"cannot read notebook {shown}: {exc.strerror or exc}") from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            found = self._cache.get(key)
        if found is None:
            found = self._read(path, shown)
            with self._lock:
                if len(self._cache) >= self._size:
                    self._cache.clear()
                self._cache[key] = found
        return found if found.path == shown else _relabel(found, shown)

    @staticmethod
    def _read(path: Path, shown: str) -> NotebookInfo:
        try:
            data = json.loads(path.read_bytes())
        except OSError as exc:
            raise ValidationError(f"cannot read notebook {shown}: {exc.strerror or exc}") from None
        except ValueError:
            raise ValidationError(f"not a notebook (not JSON): {shown}") from None
        cells = data.get("cells") if isinstance(data, dict) else None
        if not isinstance(cells, list):
            raise ValidationError(f"not a notebook (no cells): {shown}")
        tagged = [
            c
            for c in cells
            if isinstance(c, dict)
            and c.get("cell_type") == "code"
            and "parameters" in ((c.get("metadata") or {}).get("tags") or [])
        ]
        params: tuple[Parameter, ...] = ()
        if tagged:
            params = tuple(_parameter(raw) for raw in _declared(data, tagged[0], shown))
        return NotebookInfo(shown, _title(cells, path.stem), params, bool(tagged))


def _declared(data: dict[str, Any], cell: dict[str, Any], shown: str) -> list[dict[str, Any]]:
    """The parameters of ``cell`` as ``papermill.inspect_notebook`` reads them (its translator
    for the notebook's kernel and language; without its log line and second file read)."""
    try:
        import nbformat
        from papermill.translators import papermill_translators
    except ImportError as exc:  # pragma: no cover - papermill is in the notebook extra
        raise ConfigError(
            "reading a notebook's parameters needs papermill: pip install 'opsjobs[notebook]'"
        ) from exc
    meta = _mapping(data.get("metadata"))
    spec, info = _mapping(meta.get("kernelspec")), _mapping(meta.get("language_info"))
    kernel = str(spec.get("name") or "python3")
    language = str(spec.get("language") or info.get("name") or "python")
    try:
        translator = papermill_translators.find_translator(kernel, language)
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        found = translator.inspect(nbformat.from_dict({**cell, "source": text}))
    except Exception as exc:  # papermill raises several kinds on an unknown language or bad cell
        raise ValidationError(f"cannot read the parameters of {shown}: {exc}") from None
    return [p._asdict() for p in found]


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _relabel(info: NotebookInfo, path: str) -> NotebookInfo:
    return NotebookInfo(path, info.title, info.parameters, info.has_parameters_cell)


def _coerce(p: Parameter, value: Any) -> Any:
    """``value`` as parameter ``p`` takes it, or ValueError. Text is read as papermill's CLI
    would type it (``-p count 5``, ``-p ratio 0.5``, ``-p on True``, JSON for list/dict)."""
    kind = p.type
    if kind == "any" or value is None:  # None: "no value", as a None default would be
        return value
    if isinstance(value, str) and kind != "str":
        text = value.strip()
        if kind == "bool":
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError
        if kind in ("int", "float"):
            return _coerce(p, int(text) if kind == "int" else float(text))
        try:
            value = json.loads(text)
        except ValueError:
            ok, value = _literal(text)
            if not ok:
                raise ValueError from None
        return _coerce(p, value)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int" and number and (isinstance(value, int) or float(value).is_integer()):
        return int(value)
    if kind == "float" and number:
        return float(value)
    if kind == "str" and (isinstance(value, str) or number):
        return str(value)  # -p label 85 from the command line means the text "85"
    if kind == "list" and isinstance(value, list | tuple):
        return list(value)
    if kind == "dict" and isinstance(value, Mapping):
        return dict(value)
    raise ValueError


def check_parameters(
    info: NotebookInfo, given: Mapping[str, Any] | None, *, allow_unknown: bool = False
) -> dict[str, Any]:
    """``given`` checked against the notebook's declared parameters and coerced to their types.

    A name the notebook does not declare is refused (the message lists the declared ones)
    unless ``allow_unknown``; a value of the wrong type is refused naming the type expected.
    """
    declared = {p.name: p for p in info.parameters}
    out: dict[str, Any] = {}
    for name, value in (given or {}).items():
        p = declared.get(name)
        if p is None:
            if allow_unknown:
                out[name] = value
                continue
            if not declared:
                what = "declares no parameters (no cell tagged 'parameters')"
                if info.has_parameters_cell:
                    what = "declares no parameters"
            else:
                what = "declares only " + ", ".join(declared)
            raise ValidationError(
                f"unknown parameter {name!r}: notebook {info.path} {what} "
                "(allow_unknown / --allow-unknown passes it anyway)"
            )
        try:
            out[name] = _coerce(p, value)
        except (ValueError, TypeError, OverflowError):
            raise ValidationError(
                f"parameter {name!r} of {info.path} is a {p.type} "
                f"(default {p.default_text[:80]}), not {json.dumps(value, default=str)[:80]}"
            ) from None
    return out


class Catalog:
    """The notebooks folder users may run from the REST API, the dashboard and schedules.

    Parameters
    ----------
    root
        The folder (``OPSJOBS_NOTEBOOKS``); notebooks are named by their path inside it.
    inspector
        Reads and caches parameters (one per process is enough).
    """

    def __init__(self, root: Path, inspector: Inspector | None = None) -> None:
        self.root = Path(root).resolve()
        self.inspector = inspector or Inspector()

    def resolve(self, name: object) -> Path:
        """The file of the catalog notebook ``name``; ValidationError when ``name`` is not a
        relative path to a ``.ipynb`` file inside the folder (after following symlinks)."""
        shown = str(name)[:80]
        if not isinstance(name, str) or not name.strip() or len(name) > _MAX_NAME:
            raise ValidationError("notebook must be a path relative to the catalog folder")
        if "\x00" in name or "\\" in name:
            raise ValidationError(f"invalid notebook path {shown!r}")
        rel = PurePosixPath(name)
        if rel.is_absolute() or name.startswith("~"):
            raise ValidationError(
                f"notebook {shown!r}: give a path relative to the catalog, not an absolute one"
            )
        if ".." in rel.parts:
            raise ValidationError(f"notebook {shown!r} leaves the catalog folder ('..')")
        if len(rel.parts) != 1:
            raise ValidationError(
                f"notebook {shown!r}: the catalog holds the notebooks directly in its folder"
            )
        if rel.suffix != ".ipynb":
            raise ValidationError(f"notebook {shown!r} is not a .ipynb file")
        try:
            path = (self.root / rel).resolve(strict=True)
        except (OSError, RuntimeError):
            raise ValidationError(f"no notebook {shown!r} in the catalog") from None
        if path.parent != self.root:
            raise ValidationError(f"notebook {shown!r} leads out of the catalog folder (a symlink)")
        if not path.is_file():
            raise ValidationError(f"no notebook {shown!r} in the catalog")
        return path

    def names(self) -> list[str]:
        """Names of the catalog's notebooks: the ``.ipynb`` files directly in its folder (hidden
        ones and symlinks that lead out left out)."""
        if not self.root.is_dir():
            return []
        out = []
        for path in sorted(self.root.glob("*.ipynb")):
            try:
                if not path.name.startswith(".") and path.resolve().parent == self.root:
                    out.append(path.name)
            except OSError:
                continue
        return out

    def info(self, name: str) -> NotebookInfo:
        """Title and parameters of the catalog notebook ``name``."""
        return self.inspector.inspect(self.resolve(name), label=name)

    def list(self) -> list[NotebookInfo]:
        """Every notebook of the catalog; one that cannot be read is listed without
        parameters and with the reason as its title."""
        out = []
        for name in self.names():
            try:
                out.append(self.info(name))
            except ValidationError as exc:
                out.append(NotebookInfo(name, f"unreadable: {exc}"[:200], (), False))
        return out
