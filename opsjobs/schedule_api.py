"""The schedules part of the Python API: ``client.schedules.add(...)``, ``.list()``, ``.pause()``…

It mirrors ``opsjobs schedule …``. Job fields are validated by
:meth:`opsjobs.client.Client.build_spec`, so a schedule accepts exactly what ``submit`` accepts,
for every kind (``call``, ``command``, ``argv``, ``notebook``, or ``kind`` + ``payload``).
"""

from __future__ import annotations

import builtins
import dataclasses
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opsjobs.auth.model import SYSTEM_OWNER
from opsjobs.config import Settings
from opsjobs.errors import NotFound, PermissionDenied, ValidationError
from opsjobs.model import Job, JobSpec, Mode, parse_duration
from opsjobs.schedules import Misfire, Schedule, ScheduleFire, TriggerKind, next_fire
from opsjobs.store import Store

__all__ = ["Schedules", "SpecBuilder"]


class SpecBuilder(Protocol):
    """What :class:`Schedules` needs of its :class:`~opsjobs.client.Client`."""

    @property
    def store(self) -> Store: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def build_spec(self) -> Callable[..., JobSpec]: ...

    def with_parameters(
        self,
        spec: JobSpec,
        parameters: Mapping[str, Any] | None,
        *,
        allow_unknown: bool = False,
        mode: str | Mode | None = None,
        replace: bool = False,
    ) -> JobSpec: ...


class Schedules:
    """Schedules on the store of ``client`` (``client.schedules``)."""

    def __init__(self, client: SpecBuilder, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock

    @property
    def _store(self) -> Store:
        return self._client.store

    def build(
        self,
        name: str,
        *,
        every: float | str | None = None,
        cron: str | None = None,
        tz: str | None = None,
        command: str | None = None,
        call: str | None = None,
        kwargs: Mapping[str, Any] | None = None,
        argv: Sequence[str] | None = None,
        kind: str | None = None,
        payload: Mapping[str, Any] | None = None,
        notebook: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        kernel: str | None = None,
        allow_unknown: bool = False,
        job_name: str | None = None,
        mode: str | Mode = Mode.THREAD,
        queue: str = "default",
        description: str = "",
        timeout: float | None = None,
        retries: int = 0,
        retry_delay: float | str = 10.0,
        retry_backoff: float = 2.0,
        retry_max: float | str = 600.0,
        retry_on: Sequence[str] | str = ("failed", "timed_out"),
        priority: int = 0,
        owner: str | None = None,
        misfire: str | Misfire = Misfire.COALESCE,
        grace: float | str = 60.0,
        catchup_cap: int = 10,
        max_instances: int = 1,
        enabled: bool = True,
    ) -> Schedule:
        """A validated :class:`Schedule` (not stored). Give exactly one of ``every`` (seconds
        or a duration such as ``"30m"``) and ``cron`` (with ``tz``, default UTC). A notebook's
        parameters are checked against the notebook now, at definition time."""

        if (every is None) == (cron is None):
            raise ValidationError("give exactly one of every (an interval) or cron")
        if every is not None and tz is not None:
            raise ValidationError("tz applies to cron schedules only; an interval is absolute")
        seconds = parse_duration(every) if isinstance(every, str) else every
        spec = self._client.build_spec(
            job_name or name,
            command=command,
            call=call,
            kwargs=kwargs,
            argv=argv,
            kind=kind,
            payload=payload,
            notebook=notebook,
            parameters=parameters,
            kernel=kernel,
            allow_unknown=allow_unknown,
            mode=mode,
            queue=queue,
            description=description,
            timeout=timeout,
            retries=retries,
            retry_delay=retry_delay,
            retry_backoff=retry_backoff,
            retry_max=retry_max,
            retry_on=retry_on,
            priority=priority,
            owner=owner,
        )
        return Schedule(
            name=name,
            spec=spec,
            trigger=TriggerKind.INTERVAL if every is not None else TriggerKind.CRON,
            every_seconds=seconds,
            cron=cron,
            tz=tz or "UTC",
            enabled=enabled,
            misfire=Misfire.parse(misfire),
            grace_seconds=parse_duration(grace) if isinstance(grace, str) else grace,
            catchup_cap=catchup_cap,
            max_instances=max_instances,
        ).validated()

    def add(self, name: str, **options: Any) -> Schedule:
        """Create a schedule (arguments as :meth:`build`); :class:`~opsjobs.errors.Conflict`
        when the name is taken. The first fire is the first trigger time after now."""
        return self.add_schedule(self.build(name, **options))

    def add_schedule(self, schedule: Schedule) -> Schedule:
        """Store a schedule made by :meth:`build`."""
        now = self._clock()
        schedule = dataclasses.replace(
            schedule.validated(), id=str(uuid.uuid4()), created_at=now, updated_at=now
        )
        if schedule.enabled:
            schedule = dataclasses.replace(schedule, next_fire_at=next_fire(schedule, now))
        return self._store.add_schedule(schedule, now=now)

    def get(self, name_or_id: str, *, owner: str | None = None) -> Schedule:
        """The schedule with this id, else with this name (``owner``'s, when given: names are
        unique per owner); :class:`~opsjobs.errors.NotFound` otherwise,
        :class:`~opsjobs.errors.Conflict` when owners share the name and none was given.

        A client scoped to one owner (``settings.scope_owner``: a signed-in user without an
        admin role) finds that owner's schedules and the ``system`` owner's only."""
        scope = self._client.settings.scope_owner
        if not scope:
            return self._store.get_schedule(name_or_id, owner=owner)
        for candidate in (owner,) if owner is not None else (scope, SYSTEM_OWNER):
            if candidate not in (scope, SYSTEM_OWNER):
                break
            try:
                found = self._store.get_schedule(name_or_id, owner=candidate)
            except NotFound:
                continue
            if found.spec.owner == candidate:  # not another owner's found by its id
                return found
        raise NotFound(f"no schedule named {name_or_id!r}")

    def _own(self, name_or_id: str) -> Schedule:
        """The schedule, if this client may change it (a scoped client: its owner's only)."""
        schedule = self.get(name_or_id)
        scope = self._client.settings.scope_owner
        if scope and schedule.spec.owner != scope:
            raise PermissionDenied(
                f"schedule {schedule.name!r} belongs to the server (system): "
                "only an admin may change it"
            )
        return schedule

    def visible(self, name_or_id: str, *, owner: str, sees_all: bool = False) -> Schedule:
        """``owner``'s schedule of this id or name — :class:`~opsjobs.errors.NotFound` for
        another's. With ``sees_all`` (admins): their own of that name first, else anyone's."""
        try:
            schedule = self.get(name_or_id, owner=owner)
        except NotFound:
            if not sees_all:
                raise
            schedule = self.get(name_or_id)
        if not (sees_all or schedule.spec.owner == owner):
            raise NotFound(f"no schedule named {name_or_id!r}")
        return schedule

    def list(self) -> list[Schedule]:
        """Every schedule (a scoped client: its owner's and the ``system`` ones), by name."""
        found = self._store.list_schedules()
        scope = self._client.settings.scope_owner
        if not scope:
            return found
        return [s for s in found if s.spec.owner in (scope, SYSTEM_OWNER)]

    def fires(self, name_or_id: str, *, limit: int = 20) -> builtins.list[ScheduleFire]:
        """Recorded fire times, newest first — including skipped and coalesced ones."""
        return self._store.schedule_fires(self.get(name_or_id).id, limit=limit)

    def pause(self, name_or_id: str) -> Schedule:
        """Stop firing; fire times while paused are not run later."""
        schedule = self._own(name_or_id)
        paused = dataclasses.replace(schedule, enabled=False, next_fire_at=None)
        return self._store.update_schedule(paused, now=self._clock())

    def resume(self, name_or_id: str) -> Schedule:
        """Fire again from the next trigger time after now."""
        schedule = self._own(name_or_id)
        if schedule.enabled:
            return schedule
        now = self._clock()
        resumed = dataclasses.replace(schedule, enabled=True)
        resumed = dataclasses.replace(resumed, next_fire_at=next_fire(resumed, now))
        return self._store.update_schedule(resumed, now=now)

    def update(self, name_or_id: str, schedule: Schedule) -> Schedule:
        """Replace the definition of a schedule with ``schedule`` (from :meth:`build`); the
        next fire is recomputed from now, history and enabled state are kept."""
        current = self._own(name_or_id)
        now = self._clock()
        new = dataclasses.replace(
            schedule.validated(),
            id=current.id,
            enabled=current.enabled,
            created_at=current.created_at,
        )
        new = dataclasses.replace(new, next_fire_at=next_fire(new, now) if new.enabled else None)
        return self._store.update_schedule(new, now=now)

    def remove(self, name_or_id: str) -> None:
        """Delete a schedule and its fire records; jobs it queued stay."""
        self._store.remove_schedule(self._own(name_or_id).id)

    def set_parameters(
        self,
        name_or_id: str,
        parameters: Mapping[str, Any],
        *,
        allow_unknown: bool = False,
        replace: bool = False,
    ) -> Schedule:
        """Change the parameters of a notebook schedule's job: merged over the current ones
        (``replace``: instead of them), checked against the notebook now."""
        current = self._own(name_or_id)
        spec = self._client.with_parameters(
            current.spec, parameters, allow_unknown=allow_unknown, replace=replace
        )
        return self.update(current.id, dataclasses.replace(current, spec=spec))

    def run_now(
        self,
        name_or_id: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        allow_unknown: bool = False,
    ) -> Job:
        """Queue one run at once (recorded as a fire), whether paused or not; the instance
        limit applies (:class:`~opsjobs.errors.Conflict`). ``parameters`` override the
        notebook schedule's own for this run only (checked against the notebook)."""
        schedule = self._own(name_or_id)
        if parameters is not None or allow_unknown:
            spec = self._client.with_parameters(
                schedule.spec, parameters, allow_unknown=allow_unknown
            )
            schedule = dataclasses.replace(schedule, spec=spec)
        fired_by = f"run-now:{self._client.settings.user}"
        return self._store.run_schedule_now(schedule, now=self._clock(), fired_by=fired_by)
