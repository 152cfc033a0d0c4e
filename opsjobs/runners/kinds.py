"""Kinds: how a job spec becomes work.

A kind validates its payload at submit time and runs it inside a process (the worker's own for
``inline``/``thread``, a child for ``process``), or names a program to exec for ``process`` mode.
Kinds are found through the ``opsjobs.kinds`` entry-point group, loaded on first use, so a new
kind (the papermill ``notebook`` kind, a user's own) drops in without touching the worker.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar

from opsjobs.context import JobContext
from opsjobs.errors import ConfigError, RunnerError, ValidationError
from opsjobs.model import MAX_PAYLOAD_BYTES, Mode, json_size_checked

__all__ = ["ArgvKind", "CallKind", "CommandKind", "Kind", "KindRegistry", "default_registry"]

_TARGET_RE = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_CALL_KEYS = frozenset({"target", "kwargs"})
ALL_MODES = frozenset(Mode)

#: A payload check: the normalised payload, or :class:`ValidationError`.
Validator = Callable[[Mapping[str, Any]], dict[str, Any]]


class Kind:
    """Base of every kind. Subclasses set ``name`` and override ``validate`` and ``run``."""

    name: ClassVar[str] = ""
    modes: ClassVar[frozenset[Mode]] = ALL_MODES

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Check and normalise a payload; raise :class:`ValidationError` with a clear message."""
        raise NotImplementedError

    def batch_validator(self) -> Validator:
        """A check for the payloads of one batch of jobs (``Client.build_specs``): it accepts
        exactly what :meth:`validate` accepts and returns the same payload, but may remember
        checks of values that repeat across the batch (a target, a notebook file) and may leave
        the JSON check of the whole payload to its caller, which makes it for every job. It
        may refuse with a shorter message: the caller then runs :meth:`validate` for the
        exact one. Default: :meth:`validate` itself."""
        return self.validate

    def run(self, payload: Mapping[str, Any], ctx: JobContext) -> Any:
        """Do the work in the current process; the return value becomes the result."""
        raise NotImplementedError

    def program(self, payload: Mapping[str, Any]) -> list[str] | None:
        """For ``process`` mode: a program to exec instead of running :meth:`run` in a child."""
        return None

    def describe(self, payload: Mapping[str, Any]) -> str:
        """One line shown as the job's command (the seed's ``Command`` field)."""
        return str(dict(payload))

    def check_mode(self, mode: Mode) -> None:
        if mode not in self.modes:
            allowed = ", ".join(sorted(m.value for m in self.modes))
            raise ValidationError(
                f"kind {self.name!r} runs only in {allowed} mode, not {mode.value}"
            )


def _only_keys(payload: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    extra = set(payload) - allowed
    if extra:
        raise ValidationError(f"unknown field(s) for kind {kind!r}: {', '.join(sorted(extra))}")


class CallKind(Kind):
    """``{"target": "pkg.mod:func", "kwargs": {...}}`` — call a function with JSON kwargs."""

    name = "call"

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        _only_keys(payload, {"target", "kwargs"}, self.name)
        target = payload.get("target")
        if not isinstance(target, str) or not _TARGET_RE.match(target):
            raise ValidationError(
                f"call target must look like 'package.module:function', got {str(target)[:80]!r}"
            )
        kwargs = payload.get("kwargs") or {}
        if not isinstance(kwargs, Mapping):
            raise ValidationError("kwargs must be a JSON object")
        json_size_checked(dict(kwargs), "kwargs")
        return {"target": target, "kwargs": dict(kwargs)}

    def batch_validator(self) -> Validator:
        targets: set[str] = set()  # the targets this batch has seen well-formed

        def validate(payload: Mapping[str, Any]) -> dict[str, Any]:
            if not payload.keys() <= _CALL_KEYS:
                raise ValidationError("unknown field(s)")
            target = payload.get("target")
            if target.__class__ is not str or target not in targets:
                if not isinstance(target, str) or not _TARGET_RE.match(target):
                    raise ValidationError("call target")
                targets.add(target)
            kwargs = payload.get("kwargs") or {}
            if kwargs.__class__ is not dict and not isinstance(kwargs, Mapping):
                raise ValidationError("kwargs must be a JSON object")
            # the kwargs' JSON is checked with the whole payload's by the caller
            return {"target": target, "kwargs": dict(kwargs)}

        return validate

    def __init__(self) -> None:
        # target -> callable: a worker imports a job's module once, as any worker process does
        # (new code needs a worker restart either way).
        self._resolved: dict[str, Any] = {}

    def run(self, payload: Mapping[str, Any], ctx: JobContext) -> Any:
        target = payload["target"]
        func = self._resolved.get(target)
        if func is None:
            func = self._resolved[target] = resolve_target(target)
        return func(**payload.get("kwargs", {}))

    def describe(self, payload: Mapping[str, Any]) -> str:
        kwargs = ", ".join(f"{k}={v!r}" for k, v in payload.get("kwargs", {}).items())
        return f"{payload.get('target')}({kwargs})"


def resolve_target(target: str) -> Any:
    """Import ``pkg.mod:func`` and return the attribute, with a clear error when it is missing."""
    module_name, _, attr_path = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise RunnerError(f"cannot import module {module_name!r} for {target}: {exc}") from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise RunnerError(
                f"callable not found: {target} ({module_name} has no {attr_path!r})"
            ) from None
    if not callable(obj):
        raise RunnerError(f"{target} is not callable")
    return obj


class CommandKind(Kind):
    """``{"source": "..."}`` — Python source, the seed's ``command``."""

    name = "command"

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        _only_keys(payload, {"source"}, self.name)
        source = payload.get("source")
        if not isinstance(source, str) or not source.strip():
            raise ValidationError("command must be non-empty Python source")
        if len(source.encode("utf-8")) > MAX_PAYLOAD_BYTES:
            raise ValidationError(f"command is larger than {MAX_PAYLOAD_BYTES} bytes")
        try:
            compile(source, "<command>", "exec")
        except SyntaxError as exc:
            raise ValidationError(
                f"command has a syntax error at line {exc.lineno}: {exc.msg}"
            ) from None
        except ValueError as exc:  # e.g. null bytes
            raise ValidationError(f"command cannot be compiled: {exc}") from None
        return {"source": source}

    def batch_validator(self) -> Validator:
        sources: set[str] = set()  # sources this batch has compiled (a fan-out repeats one)

        def validate(payload: Mapping[str, Any]) -> dict[str, Any]:
            source = payload.get("source")
            if source.__class__ is not str or source not in sources or len(payload) != 1:
                result = self.validate(payload)
                sources.add(result["source"])
                return result
            return {"source": source}

        return validate

    def run(self, payload: Mapping[str, Any], ctx: JobContext) -> Any:
        code = compile(payload["source"], f"<command {ctx.job_id[:8]}>", "exec")
        namespace: dict[str, Any] = {
            "__name__": "__opsjobs_command__",
            "__builtins__": __builtins__,
        }
        exec(code, namespace)
        return None

    def describe(self, payload: Mapping[str, Any]) -> str:
        return str(payload.get("source", ""))


class ArgvKind(Kind):
    """``{"argv": ["program", "arg", ...]}`` — run a program; ``process`` mode only."""

    name = "argv"
    modes = frozenset({Mode.PROCESS})

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        _only_keys(payload, {"argv"}, self.name)
        argv = payload.get("argv")
        if (
            not isinstance(argv, Sequence)
            or isinstance(argv, str)
            or not argv
            or not all(isinstance(a, str) for a in argv)
        ):
            raise ValidationError("argv must be a non-empty list of strings")
        if any("\x00" in a for a in argv):
            raise ValidationError("argv must not contain NUL characters")
        return {"argv": list(argv)}

    def run(self, payload: Mapping[str, Any], ctx: JobContext) -> Any:
        raise RunnerError("kind 'argv' runs only in process mode")

    def program(self, payload: Mapping[str, Any]) -> list[str] | None:
        return list(payload["argv"])

    def describe(self, payload: Mapping[str, Any]) -> str:
        import shlex

        return shlex.join(payload.get("argv", []))


class KindRegistry:
    """Kinds by name."""

    def __init__(self, kinds: Sequence[Kind] = ()) -> None:
        self._kinds: dict[str, Kind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: Kind) -> None:
        if not kind.name:
            raise ConfigError(f"kind {type(kind).__name__} has no name")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> Kind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise ValidationError(f"unknown kind {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        return sorted(self._kinds)

    def validate(self, kind: str, payload: Mapping[str, Any], mode: Mode) -> dict[str, Any]:
        """Validate a payload for ``kind`` in ``mode``; returns the normalised payload."""
        found = self.get(kind)
        found.check_mode(mode)
        if not isinstance(payload, Mapping):
            raise ValidationError("payload must be a JSON object")
        return found.validate(payload)

    def batch_validator(self, kind: str, mode: Mode) -> Validator:
        """The check of ``kind`` in ``mode`` for one batch (see :meth:`Kind.batch_validator`):
        the kind and the mode are checked here, once."""
        found = self.get(kind)
        found.check_mode(mode)
        check = found.batch_validator()

        def validate(payload: Mapping[str, Any]) -> dict[str, Any]:
            if payload.__class__ is not dict and not isinstance(payload, Mapping):
                raise ValidationError("payload must be a JSON object")
            return check(payload)

        return validate


@cache
def default_registry() -> KindRegistry:
    """The built-in kinds plus every kind installed under the ``opsjobs.kinds`` entry points."""
    registry = KindRegistry([CallKind(), CommandKind(), ArgvKind()])
    for ep in entry_points(group="opsjobs.kinds"):
        if ep.name in registry.names():
            continue
        try:
            registry.register(ep.load()())
        except Exception as exc:
            raise ConfigError(f"cannot load opsjobs kind {ep.name!r}: {exc}") from exc
    return registry
