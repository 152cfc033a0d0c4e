"""The schedules contract, on every backend (the ``store`` fixture): CRUD, exactly-once firing,
the instance limit, run-now, pause/resume, misfire policies through the scheduler with an
injected clock, and retention's store queries."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from harness import settings_for

from opsjobs.client import Client
from opsjobs.errors import Conflict, NotFound
from opsjobs.model import JobState
from opsjobs.schedule_api import Schedules
from opsjobs.scheduler import Scheduler
from opsjobs.schedules import FireOutcome, plan_fires
from opsjobs.store import Finish, Store

T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class ClockClient(Client):
    """A client whose schedules API takes "now" from the test's clock."""

    clock: Clock

    @property
    def schedules(self) -> Schedules:
        return Schedules(self, clock=self.clock)


@pytest.fixture
def client(store: Store, tmp_path: Path, clock: Clock) -> Client:
    c = ClockClient(store, settings_for(tmp_path))
    c.clock = clock
    return c


def add(client: Client, name: str = "s", **kw: object) -> object:
    options: dict[str, object] = {"every": 10, "command": "pass", "max_instances": 100}
    options.update(kw)
    return client.schedules.add(name, **options)


def test_add_get_list_and_unique_name(client: Client, store: Store) -> None:
    s = client.schedules.add(
        "nightly", cron="0 2 * * *", tz="Europe/Berlin", call="tests.jobfuncs:add",
        kwargs={"a": 1, "b": 2}, queue="ops", misfire="skip", grace="5m",
    )  # fmt: skip
    assert s.id and s.enabled and s.next_fire_at is not None and s.next_fire_at > T0
    got = store.get_schedule("nightly")
    assert got == store.get_schedule(s.id) == s
    assert got.spec.payload == {"target": "tests.jobfuncs:add", "kwargs": {"a": 1, "b": 2}}
    assert got.spec.queue == "ops" and got.grace_seconds == 300 and got.tz == "Europe/Berlin"
    add(client, "another")
    assert [x.name for x in store.list_schedules()] == ["another", "nightly"]
    with pytest.raises(Conflict):
        add(client, "nightly")
    with pytest.raises(NotFound):
        store.get_schedule("nope")


def test_names_are_unique_per_owner(client: Client, store: Store) -> None:
    a = add(client, "check", owner="a@example.org")
    b = add(client, "check", owner="b@example.org")
    assert a.id != b.id  # type: ignore[attr-defined]
    with pytest.raises(Conflict, match="exists already"):
        add(client, "check", owner="a@example.org")
    assert store.get_schedule("check", owner="a@example.org").id == a.id  # type: ignore[attr-defined]
    assert store.get_schedule("check", owner="b@example.org").id == b.id  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        store.get_schedule("check", owner="c@example.org")
    with pytest.raises(Conflict, match="2 schedules are named 'check'"):
        store.get_schedule("check")  # ambiguous without an owner: ask for the id
    assert store.get_schedule(b.id).id == b.id  # type: ignore[attr-defined]
    renamed = client.schedules.build("check", every=10, command="pass", owner="b@example.org")
    c = add(client, "other", owner="b@example.org")
    with pytest.raises(Conflict):  # renaming onto one's own name clashes
        client.schedules.update(c.id, renamed)  # type: ignore[attr-defined]
    store.remove_schedule(a.id)  # type: ignore[attr-defined]
    assert store.get_schedule("check").id == b.id  # type: ignore[attr-defined]


def test_fire_is_exactly_once_for_a_stale_reader(client: Client, store: Store) -> None:
    add(client)
    due = store.due_schedules(T0 + 10)
    assert len(due) == 1 and store.due_schedules(T0 + 9.9) == []
    s = due[0]
    plan = plan_fires(s, T0 + 10)
    assert plan is not None
    first = store.fire_schedule(s, plan, now=T0 + 10, fired_by="a")
    again = store.fire_schedule(s, plan, now=T0 + 10, fired_by="b")  # same stale read
    assert first is not None and again is None
    assert len(first.jobs) == 1
    job = store.get(first.jobs[0].id)
    assert job.spec.schedule_id == s.id and job.state is JobState.QUEUED
    now = store.get_schedule(s.id)
    assert now.next_fire_at == T0 + 20 and now.last_fire_at == T0 + 10
    assert now.last_job_id == job.id and now.last_job_state is JobState.QUEUED
    assert [(f.fire_at, f.outcome, f.fired_by) for f in store.schedule_fires(s.id)] == [
        (T0 + 10, FireOutcome.FIRED, "a")
    ]
    assert store.next_due_at() == T0 + 20


def test_concurrent_fires_from_threads_fire_each_time_once(client: Client, store: Store) -> None:
    add(client, every=1)
    barrier = threading.Barrier(4)
    fired: list[float] = []
    lock = threading.Lock()

    def scheduler(name: str) -> None:
        barrier.wait()
        for step in range(1, 31):
            now = T0 + step
            for s in store.due_schedules(now):
                plan = plan_fires(s, now)
                if plan is None:
                    continue
                result = store.fire_schedule(s, plan, now=now, fired_by=name)
                if result is not None:
                    with lock:
                        fired.extend(f.fire_at for f in result.fires)

    threads = [threading.Thread(target=scheduler, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(fired) == [T0 + k for k in range(1, 31)]
    jobs = [j for j in store.results(_all()) if j.spec.schedule_id]
    assert len(jobs) == 30


def _all() -> object:
    from opsjobs.model import ResultQuery

    return ResultQuery(limit=1000).validated()


def test_instance_limit_skips_fires_and_run_now(client: Client, store: Store) -> None:
    s = add(client, max_instances=1)
    sched = Scheduler(store, client.settings, clock=lambda: T0 + 10)
    sched.tick(T0 + 10)
    sched.tick(T0 + 20)
    fires = store.schedule_fires(s.id)  # type: ignore[attr-defined]
    assert [f.outcome for f in fires] == [FireOutcome.SKIPPED, FireOutcome.FIRED]
    assert "max_instances (1)" in fires[0].reason and fires[0].job_id is None
    with pytest.raises(Conflict, match="max_instances"):
        client.schedules.run_now("s")
    # once the running instance finishes, the next fire runs again
    job = store.claim("w", "h", ["default"], now=T0 + 21, lease=30)
    assert job is not None
    store.finish(job.id, "w", job.attempt, Finish(JobState.SUCCEEDED), now=T0 + 22)
    assert len(sched.tick(T0 + 30)[0].jobs) == 1


def test_run_now_records_a_fire_and_keeps_the_timetable(
    client: Client, store: Store, clock: Clock
) -> None:
    s = add(client)
    clock.now = T0 + 3
    job = client.schedules.run_now("s")
    assert store.get(job.id).spec.schedule_id == s.id  # type: ignore[attr-defined]
    fires = client.schedules.fires("s")
    assert [(f.fire_at, f.outcome, f.reason) for f in fires] == [
        (T0 + 3, FireOutcome.FIRED, "run now")
    ]
    got = client.schedules.get("s")
    assert got.next_fire_at == T0 + 10 and got.last_job_id == job.id


def test_pause_and_resume(client: Client, store: Store, clock: Clock) -> None:
    add(client)
    paused = client.schedules.pause("s")
    assert not paused.enabled and paused.next_fire_at is None
    assert store.due_schedules(T0 + 100) == [] and store.next_due_at() is None
    sched = Scheduler(store, client.settings, clock=clock)
    assert sched.tick(T0 + 100) == []
    job = client.schedules.run_now("s")  # allowed while paused
    assert job.spec.schedule_id
    clock.now = T0 + 105
    resumed = client.schedules.resume("s")
    # no catching up on what was paused: the next grid time after now
    assert resumed.enabled and resumed.next_fire_at == T0 + 110
    fired = sched.tick(T0 + 110)
    assert [f.fire_at for f in fired[0].fires] == [T0 + 110]


def test_pause_between_read_and_fire_wins(client: Client, store: Store) -> None:
    add(client)
    s = store.due_schedules(T0 + 10)[0]
    client.schedules.pause("s")
    plan = plan_fires(s, T0 + 10)
    assert plan is not None
    assert store.fire_schedule(s, plan, now=T0 + 10, fired_by="late") is None
    assert store.schedule_fires(s.id) == []


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("coalesce", ["coalesced"] * 4 + ["fired"]),
        ("skip", ["skipped"] * 5),
        ("catchup", ["skipped", "skipped", "fired", "fired", "fired"]),
    ],
)
def test_misfire_policies_after_downtime(
    client: Client, store: Store, policy: str, expected: list[str]
) -> None:
    s = add(client, misfire=policy, grace=5, catchup_cap=3)
    # the scheduler was down from T0 until T0 + 57: fire times T0+10 … T0+50 were missed
    results = Scheduler(store, client.settings).tick(T0 + 57)
    fires = sorted(store.schedule_fires(s.id), key=lambda f: f.fire_at)  # type: ignore[attr-defined]
    assert [f.fire_at for f in fires] == [T0 + 10 * k for k in range(1, 6)]
    assert [f.outcome.value for f in fires] == expected
    assert len(results[0].jobs) == expected.count("fired")
    assert all(f.reason for f in fires if f.outcome is not FireOutcome.FIRED)
    assert store.get_schedule("s").next_fire_at == T0 + 60


def test_update_and_remove(client: Client, store: Store, clock: Clock) -> None:
    s = add(client)
    Scheduler(store, client.settings).tick(T0 + 10)
    clock.now = T0 + 12
    new = client.schedules.build("s", cron="*/5 * * * *", command="print(2)")
    got = client.schedules.update("s", new)
    assert got.id == s.id and got.cron == "*/5 * * * *"  # type: ignore[attr-defined]
    assert got.spec.payload == {"source": "print(2)"} and got.last_fire_at == T0 + 10
    assert got.next_fire_at is not None and got.next_fire_at % 300 == 0
    client.schedules.remove("s")
    with pytest.raises(NotFound):
        client.schedules.get("s")
    assert store.schedule_fires(s.id) == []  # type: ignore[attr-defined]


def _finished(store: Store, name: str, at: float) -> str:
    from opsjobs.model import JobSpec

    job = store.submit(JobSpec(name, "command", {"source": "pass"}).validated(), now=at)
    claimed = store.claim("w", "h", ["default"], now=at, lease=30)
    assert claimed is not None and claimed.id == job.id
    store.finish(job.id, "w", 1, Finish(JobState.SUCCEEDED), now=at)
    return job.id


def test_purge_keeping_the_last_per_name(store: Store) -> None:
    old_a = [_finished(store, "a", T0 + i) for i in range(5)]
    old_b = [_finished(store, "b", T0 + 10 + i) for i in range(2)]
    new_a = _finished(store, "a", T0 + 1000)
    gone = store.purge_keeping(T0 + 500, keep_last=3)
    # a keeps its 3 latest (new_a and the 2 latest old ones); b (2 jobs) keeps both
    assert sorted(gone) == sorted(old_a[:3])
    assert store.existing_job_ids([*old_a, *old_b, new_a, "x"]) == {*old_a[3:], *old_b, new_a}
