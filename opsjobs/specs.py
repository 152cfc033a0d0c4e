"""Validated job specs for a batch of jobs (``Client.build_specs``, REST ``/jobs:batch``,
``opsjobs submit --from-file``).

A batch accepts exactly what :meth:`opsjobs.client.Client.build_spec` accepts, one job at a
time, and makes the same specs; it is faster because it checks each value that repeats across
its jobs once: the fields jobs share (mode, queue, owner, priority, timeout, retry policy …,
checked by ``build_spec`` itself on the first job that gives them), the kind and mode, a
call's target, a notebook's file and its parameters cell, a command's source. What differs per
job (the name, the kwargs, a notebook's parameter values, a command's source) is checked per
job, and the payload serialised once, for its JSON check and for the row (the text is kept on
the spec). A job the fast path refuses is built again by ``build_spec``, so a refusal has the
very message a single submit gives.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from opsjobs.errors import ValidationError
from opsjobs.model import JobSpec, Mode, json_size_checked, validate_kind, validate_name
from opsjobs.runners.kinds import KindRegistry, Validator

__all__ = ["BUILD_ARGS", "JOB_ARGS", "SpecBatch", "kind_payload", "paused_gc"]

#: The fields a spec takes from the arguments every job of a batch may share.
_SHARED = (
    "mode",
    "queue",
    "description",
    "owner",
    "priority",
    "timeout",
    "retries",
    "schedule_id",
    "retry_delay",
    "retry_backoff",
    "retry_max",
    "retry_on",
)
_SHARED_SET = frozenset(_SHARED)
#: The fields of a spec but its name, kind and payload (rerun_of: None).
_SPEC_SHARED = (*_SHARED, "rerun_of")
#: The keyword arguments of ``Client.build_spec`` (besides the name).
BUILD_ARGS = frozenset(_SHARED) | {
    "command",
    "call",
    "kwargs",
    "argv",
    "kind",
    "payload",
    "notebook",
    "parameters",
    "kernel",
    "allow_unknown",
}
#: A job of a batch: the arguments of ``Client.build_spec`` with the name.
JOB_ARGS = BUILD_ARGS | {"name"}


def kind_payload(
    command: str | None,
    call: str | None,
    kwargs: Mapping[str, Any] | None,
    argv: Sequence[str] | None,
    kind: str | None,
    payload: Mapping[str, Any] | None,
    notebook: str | os.PathLike[str] | None,
    parameters: Mapping[str, Any] | None,
    kernel: str | None,
    allow_unknown: bool,
) -> tuple[str, Mapping[str, Any]]:
    """The kind and raw payload that ``build_spec``'s arguments name (not yet checked)."""
    given = [x is not None for x in (command, call, argv, kind, notebook)]
    if sum(given) != 1:
        raise ValidationError("give exactly one of command, call, argv, notebook or kind")
    if kwargs is not None and call is None:
        raise ValidationError("kwargs go with call")
    if (parameters is not None or kernel is not None or allow_unknown) and notebook is None:
        raise ValidationError("parameters, kernel and allow_unknown go with notebook")
    if notebook is not None:
        kind = "notebook"
        payload = {"path": os.fspath(notebook), "parameters": parameters, "kernel": kernel}
        if allow_unknown:
            payload["allow_unknown"] = True
    if command is not None:
        kind, payload = "command", {"source": command}
    elif call is not None:
        kind, payload = "call", {"target": call, "kwargs": dict(kwargs or {})}
    elif argv is not None:
        if isinstance(argv, str):
            raise ValidationError("argv must be a list of strings, not one string")
        kind, payload = "argv", {"argv": list(argv)}
    assert kind is not None
    return kind, payload or {}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a batch's objects are made: they all stay alive, and
    each collection the allocations trigger would walk them again (a full collection walks the
    whole heap). Memory is still freed by reference counting; the collector resumes after."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _shared_key(job: Mapping[str, Any]) -> tuple[Any, ...]:
    """The shared fields ``job`` gives, in its order, with their values' types."""
    return tuple(
        (f, v.__class__, v if v.__class__ is not list else _key(v))
        for f, v in job.items()
        if f in _SHARED_SET
    )


def _key(value: Any) -> Any:
    """A memo key equal only for values of the same types (``1``, ``1.0`` and ``True`` are
    equal in Python, and are checked differently); unhashable values raise TypeError."""
    if type(value) in (list, tuple):
        return tuple((type(v), v) for v in value)
    return (type(value), value)


class SpecBatch:
    """Builds the specs of one batch (see the module's docstring).

    Parameters
    ----------
    build_spec
        The one-job builder (``Client.build_spec``): it builds the first job of each set of
        shared values (which it thereby checks) and any job the fast path refuses.
    kinds
        The kinds' registry (their :meth:`~opsjobs.runners.kinds.Kind.batch_validator`).
    """

    def __init__(self, build_spec: Callable[..., JobSpec], kinds: KindRegistry) -> None:
        self._build_spec = build_spec
        self._kinds = kinds
        self._shared: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._validators: dict[tuple[str, Mode], Validator] = {}

    def build(self, name: str, **fields: Any) -> JobSpec:
        """What ``build_spec(name, **fields)`` returns, or the error it raises."""
        fields["name"] = name
        return self.build_job(fields)

    def build_job(self, job: Mapping[str, Any]) -> JobSpec:
        """What ``build_spec(**job)`` returns (``job`` holds the name too), or the error it
        raises."""
        try:
            key = _shared_key(job)
            shared = self._shared.get(key)
        except TypeError:  # an unhashable value: no remembering
            key, shared = None, None
        if shared is not None and job.keys() <= JOB_ARGS:
            try:
                return self._fast(job, shared)
            except Exception:  # the one-job builder below gives the exact error
                pass
        spec = self._build_spec(**job)
        if key is not None:  # the first job with these shared values: build_spec checked them
            self._shared[key] = {f: getattr(spec, f) for f in _SPEC_SHARED}
        return spec

    def _fast(self, fields: Mapping[str, Any], shared: dict[str, Any]) -> JobSpec:
        get = fields.get
        kind, payload = kind_payload(
            get("command"),
            get("call"),
            get("kwargs"),
            get("argv"),
            get("kind"),
            get("payload"),
            get("notebook"),
            get("parameters"),
            get("kernel"),
            get("allow_unknown", False),
        )
        validate = self._validators.get((kind, shared["mode"]))
        if validate is None:
            validate = self._kinds.batch_validator(validate_kind(kind), shared["mode"])
            self._validators[(kind, shared["mode"])] = validate
        clean = validate(payload)
        text = json_size_checked(clean, "payload")
        return JobSpec.checked(validate_name(fields["name"]), kind, clean, text, shared)
