"""The store contract: one suite, run against every backend (the ``store`` fixture)."""

from __future__ import annotations

import json
import threading

import pytest

from opsjobs.errors import Conflict, JobNotFound, ValidationError
from opsjobs.model import JobSpec, JobState, Metric, Mode, ResultQuery, WorkerInfo
from opsjobs.store import End, Finish, Store

T0 = 1_800_000_000.0


def spec(name: str = "job", **kw: object) -> JobSpec:
    base: dict[str, object] = {"kind": "command", "payload": {"source": "pass"}}
    base.update(kw)
    return JobSpec(name=name, **base).validated()  # type: ignore[arg-type]


def run_to(store: Store, job_id: str, state: JobState, at: float, runtime: float = 1.0) -> None:
    job = store.claim("w1", "h1", ["default"], now=at, lease=30)
    assert job is not None and job.id == job_id
    ok = store.finish(job.id, "w1", job.attempt, Finish(state, output="out"), now=at + runtime)
    assert ok


def test_submit_get_roundtrip(store: Store) -> None:
    s = spec("hello", description="d", owner="ann", priority=3, timeout=5, retries=2)
    job = store.submit(s, now=T0)
    got = store.get(job.id)
    assert got.spec == s
    assert got.state is JobState.QUEUED
    assert got.submitted_at == T0
    assert got.attempt == 0


def test_get_unknown_raises(store: Store) -> None:
    with pytest.raises(JobNotFound):
        store.get("00000000-0000-0000-0000-000000000000")


def test_claim_order_priority_then_fifo_and_queues(store: Store) -> None:
    a = store.submit(spec("a"), now=T0)
    b = store.submit(spec("b", priority=5), now=T0 + 1)
    c = store.submit(spec("c"), now=T0 + 2)
    other = store.submit(spec("x", queue="other"), now=T0 - 10)
    order = []
    while (job := store.claim("w1", "h1", ["default"], now=T0 + 5, lease=30)) is not None:
        order.append(job.id)
        assert job.state is JobState.RUNNING and job.worker_id == "w1" and job.attempt == 1
        assert job.lease_until == T0 + 35
    assert order == [b.id, a.id, c.id]
    assert store.get(other.id).state is JobState.QUEUED
    got = store.claim("w1", "h1", ["default", "other"], now=T0 + 6, lease=30)
    assert got is not None and got.id == other.id


def test_claim_is_exclusive_across_threads(store: Store) -> None:
    ids = {store.submit(spec(f"j{i}"), now=T0 + i).id for i in range(200)}
    claimed: list[str] = []
    lock = threading.Lock()

    def drain(worker: str) -> None:
        while (job := store.claim(worker, "h", ["default"], now=T0 + 500, lease=30)) is not None:
            with lock:
                claimed.append(job.id)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(ids)


def test_finish_only_from_owner_and_attempt(store: Store) -> None:
    job = store.submit(spec(), now=T0)
    claimed = store.claim("w1", "h1", ["default"], now=T0 + 1, lease=30)
    assert claimed is not None
    outcome = Finish(JobState.SUCCEEDED, output="hi", result_json='{"a": 1}', exit_code=0)
    assert not store.finish(job.id, "w2", 1, outcome, now=T0 + 2)
    assert not store.finish(job.id, "w1", 2, outcome, now=T0 + 2)
    assert store.finish(job.id, "w1", 1, outcome, now=T0 + 3)
    assert not store.finish(job.id, "w1", 1, outcome, now=T0 + 4)  # only once
    done = store.get(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.output == "hi" and done.result == {"a": 1} and done.exit_code == 0
    assert done.runtime == pytest.approx(2.0)
    assert done.finished_at == T0 + 3


@pytest.mark.parametrize(
    "result", ["released", "", 7, 2.5, True, None, [1, "a"], {"a": {"b": [None]}}]
)
def test_every_json_result_reads_back(store: Store, result: object) -> None:
    # A job may return any JSON value; a plain string once left its row unreadable on
    # PostgreSQL (jsonb arrived decoded, then was parsed again as JSON text).
    job = store.submit(spec(), now=T0)
    assert store.claim("w1", "h1", ["default"], now=T0 + 1, lease=30) is not None
    outcome = Finish(JobState.SUCCEEDED, result_json=json.dumps(result))
    assert store.finish(job.id, "w1", 1, outcome, now=T0 + 2)
    assert store.get(job.id).result == result
    assert [j.result for j in store.results(ResultQuery().validated())] == [result]


def test_cancel_queued_and_running(store: Store) -> None:
    queued = store.submit(spec("q"), now=T0)
    got = store.request_cancel(queued.id, now=T0 + 1)
    assert got.state is JobState.CANCELLED
    assert store.claim("w1", "h", ["default"], now=T0 + 2, lease=30) is None

    thread_job = store.submit(spec("t", mode=Mode.THREAD), now=T0 + 3)
    store.claim("w1", "h", ["default"], now=T0 + 4, lease=30)
    got = store.request_cancel(thread_job.id, now=T0 + 5)
    assert got.state is JobState.CANCELLED and got.cancel_requested
    assert store.heartbeat("w1", [thread_job.id], now=T0 + 6, lease=30) == [thread_job.id]

    proc = store.submit(spec("p", mode=Mode.PROCESS), now=T0 + 7)
    claimed = store.claim("w1", "h", ["default"], now=T0 + 8, lease=30)
    assert claimed is not None
    got = store.request_cancel(proc.id, now=T0 + 9)
    assert got.state is JobState.RUNNING and got.cancel_requested
    assert store.heartbeat("w1", [proc.id], now=T0 + 10, lease=30) == [proc.id]
    assert store.finish(proc.id, "w1", 1, Finish(JobState.CANCELLED), now=T0 + 11)
    assert store.get(proc.id).state is JobState.CANCELLED


def test_cancel_finished_is_a_no_op(store: Store) -> None:
    job = store.submit(spec(), now=T0)
    run_to(store, job.id, JobState.SUCCEEDED, T0 + 1)
    assert store.request_cancel(job.id, now=T0 + 5).state is JobState.SUCCEEDED


def test_delete_refuses_active_jobs(store: Store) -> None:
    job = store.submit(spec(), now=T0)
    with pytest.raises(Conflict):
        store.delete(job.id)
    run_to(store, job.id, JobState.FAILED, T0 + 1)
    store.delete(job.id)
    with pytest.raises(JobNotFound):
        store.get(job.id)
    with pytest.raises(JobNotFound):
        store.delete(job.id)


def test_heartbeat_renews_leases_and_recovery(store: Store) -> None:
    store.register_worker(WorkerInfo("w1", "h", 1, ["default"], 4, T0, T0, 10))
    once = store.submit(spec("once"), now=T0)
    twice = store.submit(spec("twice", retries=1), now=T0 + 0.5)
    a = store.claim("w1", "h", ["default"], now=T0 + 1, lease=10)
    b = store.claim("w1", "h", ["default"], now=T0 + 1, lease=10)
    assert a is not None and b is not None
    assert store.heartbeat("w1", [a.id, b.id], now=T0 + 8, lease=10) == []
    assert store.recover_expired(now=T0 + 15) == []  # renewed to T0 + 18
    recovered = {r.job_id: r for r in store.recover_expired(now=T0 + 19)}
    assert set(recovered) == {once.id, twice.id}
    assert not recovered[once.id].requeued and recovered[twice.id].requeued
    lost = store.get(once.id)
    assert (
        lost.state is JobState.LOST
        and lost.finished_at == T0 + 19
        and "lease" in (lost.error or "")
    )
    again = store.get(twice.id)
    assert again.state is JobState.QUEUED and again.worker_id is None
    # The old owner's late completion is refused; the new attempt owns the job.
    assert not store.finish(twice.id, "w1", 1, Finish(JobState.SUCCEEDED), now=T0 + 20)
    c = store.claim("w2", "h", ["default"], now=T0 + 21, lease=10)
    assert c is not None and c.id == twice.id and c.attempt == 2
    assert store.heartbeat("w1", [twice.id], now=T0 + 22, lease=10) == [twice.id]
    assert store.finish(twice.id, "w2", 2, Finish(JobState.SUCCEEDED), now=T0 + 23)


def test_workers_registry(store: Store) -> None:
    store.register_worker(WorkerInfo("w1", "h1", 11, ["default", "worker:w1"], 4, T0, T0, 10))
    store.register_worker(WorkerInfo("w2", "h2", 12, ["q"], 2, T0 + 1, T0 + 1, 10))
    store.heartbeat("w1", ["x"], now=T0 + 30, lease=10)
    store.stop_worker("w2", now=T0 + 31)
    workers = {w.id: w for w in store.workers()}
    assert workers["w1"].queues == ["default", "worker:w1"] and workers["w1"].pid == 11
    assert workers["w1"].heartbeat_at == T0 + 30 and workers["w1"].busy == 1
    assert workers["w1"].alive(T0 + 35) and not workers["w1"].alive(T0 + 45)
    assert workers["w2"].stopped_at == T0 + 31 and not workers["w2"].alive(T0 + 31)


def _fill(store: Store) -> dict[str, str]:
    ids = {}
    for i, (name, owner, state, runtime) in enumerate(
        [
            ("backup", "ann", JobState.SUCCEEDED, 4.0),
            ("backup", "bob", JobState.FAILED, 1.0),
            ("memory-analysis", "ann", JobState.SUCCEEDED, 2.0),
            ("cleanup_100%", "ann", JobState.TIMED_OUT, 9.0),
        ]
    ):
        job = store.submit(spec(name, owner=owner), now=T0 + i * 10)
        run_to(store, job.id, state, T0 + i * 10 + 1, runtime)
        ids[f"{name}/{owner}"] = job.id
    ids["queued"] = store.submit(spec("pending", owner="ann"), now=T0 + 100).id
    return ids


def test_results_filter_sort_page(store: Store) -> None:
    ids = _fill(store)
    ann = ResultQuery(owner="ann").validated()
    assert store.count(ann) == 4
    newest_first = [j.id for j in store.results(ann)]
    assert newest_first[0] == ids["queued"]
    by_runtime = store.results(ResultQuery(owner="ann", sort="-runtime").validated())
    assert [j.runtime for j in by_runtime] == [9.0, 4.0, 2.0, None]  # not-run last
    asc = store.results(ResultQuery(sort="runtime").validated())
    assert [j.runtime for j in asc][:4] == [1.0, 2.0, 4.0, 9.0]
    page = store.results(ResultQuery(sort="runtime", limit=2, offset=1).validated())
    assert [j.runtime for j in page] == [2.0, 4.0]
    names = store.results(ResultQuery(name="BACK").validated())
    assert {j.name for j in names} == {"backup"}
    literal = store.results(ResultQuery(name="100%").validated())
    assert [j.name for j in literal] == ["cleanup_100%"]
    assert store.results(ResultQuery(name="k_p").validated()) == []  # _ is no wildcard
    failed = ResultQuery(states=(JobState.FAILED, JobState.TIMED_OUT)).validated()
    assert {j.id for j in store.results(failed)} == {ids["backup/bob"], ids["cleanup_100%/ann"]}
    by_name = store.results(ResultQuery(sort="name").validated())
    assert [j.name for j in by_name][:2] == ["backup", "backup"]


def test_results_of_any_of_several_owners(store: Store) -> None:
    """A user's own jobs and the system owner's (issue 18): one filter of several owners."""
    ids = _fill(store)
    system = store.submit(spec("memory-analysis", owner="system"), now=T0 + 200).id
    both = ResultQuery(owner=("bob", "system"), sort="submitted_at").validated()
    assert [j.id for j in store.results(both)] == [ids["backup/bob"], system]
    assert store.count(both) == 2
    assert (store.stats(both).total, store.stats(both).failed) == (2, 1)
    one = ResultQuery(owner=("bob", "bob")).validated()
    assert one.owner == "bob" and store.count(one) == 1


def test_stats_in_store(store: Store) -> None:
    _fill(store)
    everyone = store.stats(ResultQuery().validated())
    assert (everyone.total, everyone.succeeded, everyone.failed, everyone.queued) == (5, 2, 2, 1)
    assert everyone.avg_runtime == pytest.approx(4.0)
    ann = store.stats(ResultQuery(owner="ann").validated())
    assert (ann.total, ann.succeeded, ann.failed) == (4, 2, 1)
    assert ann.avg_runtime == pytest.approx(5.0)
    nobody = store.stats(ResultQuery(owner="zed").validated())
    assert nobody.total == 0 and nobody.avg_runtime is None


def test_results_count_and_stats_by_submitted_time(store: Store) -> None:
    """``since`` (inclusive) and ``until`` (exclusive) bound the submitted time of every
    listing, the stat cards' query included."""
    _fill(store)
    every = store.results(ResultQuery(sort="submitted_at", limit=100).validated())
    times = [j.submitted_at for j in every]
    middle = times[2]
    later = ResultQuery(since=middle).validated()
    assert [j.submitted_at for j in store.results(later)][::-1] == times[2:]
    assert store.count(later) == len(times) - 2 == store.stats(later).total
    earlier = ResultQuery(until=middle, sort="submitted_at").validated()
    assert [j.submitted_at for j in store.results(earlier)] == times[:2]
    both = ResultQuery(since=times[1], until=times[3], owner="ann").validated()
    expected = [j for j in every[1:3] if j.owner == "ann"]
    assert store.count(both) == len(expected) == store.stats(both).total
    with pytest.raises(ValidationError):
        ResultQuery(since=float("nan")).validated()


@pytest.mark.parametrize("sort", ["-submitted_at", "runtime", "-runtime", "name", "-started_at"])
def test_results_read_from_the_end_are_the_exact_reverse(store: Store, sort: str) -> None:
    """``reverse``: the same order from its other end, NULLs (the queued job) included, so
    the dashboard reads a page near the end from there."""
    _fill(store)
    forward = [j.id for j in store.results(ResultQuery(sort=sort).validated())]
    backward = [j.id for j in store.results(ResultQuery(sort=sort, reverse=True).validated())]
    assert backward == forward[::-1]
    last_two = ResultQuery(sort=sort, reverse=True, limit=2).validated()
    assert [j.id for j in store.results(last_two)][::-1] == forward[-2:]


@pytest.mark.parametrize("sort", ["-submitted_at", "submitted_at", "runtime", "-name", "state"])
def test_ties_are_read_in_one_order_from_both_ends(store: Store, sort: str) -> None:
    """A batch shares its submitted time, and runtimes and names repeat: the order still is one
    order (ties broken by the job), so the last page read from the end is the last page."""
    jobs = store.submit_many([spec(f"tie-{i % 3}") for i in range(12)], now=T0)
    for job in jobs[:8]:
        run_to(store, job.id, JobState.SUCCEEDED, T0 + 1, 2.0)
    forward = [j.id for j in store.results(ResultQuery(sort=sort).validated())]
    assert sorted(forward) == sorted(j.id for j in jobs)
    backward = [j.id for j in store.results(ResultQuery(sort=sort, reverse=True).validated())]
    assert backward == forward[::-1]
    for offset in (0, 5, 10):
        page = ResultQuery(sort=sort, reverse=True, limit=3, offset=offset).validated()
        end = len(forward) - offset
        assert [j.id for j in store.results(page)][::-1] == forward[max(end - 3, 0) : end]


def test_purge_only_old_finished(store: Store) -> None:
    ids = _fill(store)
    removed = store.purge(T0 + 25)
    assert sorted(removed) == sorted(
        [ids["backup/ann"], ids["backup/bob"], ids["memory-analysis/ann"]]
    )
    left = {j.id for j in store.results(ResultQuery().validated())}
    assert left == {ids["cleanup_100%/ann"], ids["queued"]}


def test_metrics_roundtrip(store: Store) -> None:
    pts = [
        Metric("rss_mb", 100.0 + i, {"host": "h1"}, T0 + i, job_id="j", worker_id="w", host="h1")
        for i in range(5)
    ]
    store.record_metrics([*pts, Metric("other", 1.0, {}, T0)])
    got = store.metrics("rss_mb")
    assert [m.value for m in got] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert got[0].labels == {"host": "h1"} and got[0].job_id == "j" and got[0].host == "h1"
    assert [m.value for m in store.metrics("rss_mb", since=T0 + 3)] == [103.0, 104.0]
    assert [m.value for m in store.metrics("rss_mb", limit=2)] == [103.0, 104.0]


def test_purge_metrics_keeps_recent_points_and_those_of_kept_jobs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # batches of 3 points (the SQL backends delete in batches, each its own transaction)
    monkeypatch.setattr("opsjobs.store.sqlite.PURGE_BATCH", 3)
    monkeypatch.setattr("opsjobs.store.postgres.PURGE_BATCH", 3)
    gone = store.submit(spec("gone"), now=T0)
    run_to(store, gone.id, JobState.SUCCEEDED, at=T0)
    kept = store.submit(spec("kept"), now=T0)
    store.delete(gone.id)

    def pts(job_id: str | None, at: float, n: int) -> list[Metric]:
        return [Metric("m", float(i), {}, at, job_id=job_id) for i in range(n)]

    store.record_metrics(
        [
            *pts(None, T0, 7),  # old, no job: go
            *pts(gone.id, T0, 4),  # old, its job is gone: go
            *pts(kept.id, T0, 2),  # old, its job is kept: stay
            *pts(None, T0 + 100, 5),  # recent: stay
        ]
    )
    assert store.purge_metrics(T0 + 50) == 11
    left = store.metrics("m")
    assert sorted((m.job_id or "-", m.at) for m in left) == sorted(
        [(kept.id, T0)] * 2 + [("-", T0 + 100)] * 5
    )
    assert store.purge_metrics(T0 + 50) == 0


def test_waiter_is_woken_by_submit(store: Store) -> None:
    waiter = store.waiter("w-wake")
    try:
        assert not waiter.wait(0.01)
        timer = threading.Timer(0.05, lambda: store.submit(spec(), now=T0))
        timer.start()
        assert waiter.wait(5.0)
        timer.join()
    finally:
        waiter.close()


def test_finish_and_claim_ends_one_and_takes_the_next(store: Store) -> None:
    a = store.submit(spec("a"), now=T0)
    b = store.submit(spec("b"), now=T0 + 1)
    first = store.claim("w1", "h", ["default"], now=T0 + 2, lease=30)
    assert first is not None and first.id == a.id
    ok, nxt = store.finish_and_claim(
        a.id,
        "w1",
        1,
        Finish(JobState.SUCCEEDED, output="x"),
        now=T0 + 3,
        host="h",
        queues=["default"],
        lease=30,
    )
    assert ok and nxt is not None and nxt.id == b.id and nxt.state is JobState.RUNNING
    assert store.get(a.id).state is JobState.SUCCEEDED
    refused, none_left = store.finish_and_claim(
        a.id, "w1", 1, Finish(JobState.FAILED), now=T0 + 4, host="h", queues=["default"], lease=30
    )
    assert not refused and none_left is None
    assert store.get(a.id).state is JobState.SUCCEEDED


def test_finish_and_claim_many_records_every_end_and_claims_in_order(store: Store) -> None:
    jobs = [store.submit(spec(f"j{i}"), now=T0 + i) for i in range(3)]
    urgent = store.submit(spec("urgent", priority=9), now=T0 + 10)
    mine = store.submit(spec("mine", queue="worker:w1"), now=T0 - 5)
    queues = ["default", "worker:w1"]
    none, first = store.finish_and_claim_many(
        [], worker_id="w1", host="h", queues=queues, now=T0 + 20, lease=30, want=2
    )
    assert none == [] and [j.id for j in first] == [urgent.id, mine.id]
    assert all(j.state is JobState.RUNNING and j.attempt == 1 for j in first)
    ends = [
        End(urgent.id, 1, Finish(JobState.SUCCEEDED, output="u"), T0 + 21),
        End(mine.id, 2, Finish(JobState.FAILED), T0 + 22),  # not its attempt: refused
    ]
    accepted, more = store.finish_and_claim_many(
        ends, worker_id="w1", host="h", queues=queues, now=T0 + 23, lease=30, want=5
    )
    assert accepted == [True, False]
    assert [j.id for j in more] == [j.id for j in jobs]  # oldest first; fewer than wanted
    assert all(store.get(j.id).state is JobState.RUNNING for j in more)
    done = store.get(urgent.id)
    assert done.state is JobState.SUCCEEDED and done.output == "u"
    assert done.finished_at == T0 + 21 and done.runtime == 1.0  # the end's own time
    assert store.get(mine.id).state is JobState.RUNNING
    ends = [End(j.id, 1, Finish(JobState.SUCCEEDED), T0 + 30) for j in more]
    accepted, nothing = store.finish_and_claim_many(
        ends, worker_id="w1", host="h", queues=queues, now=T0 + 31, lease=30, want=0
    )
    assert accepted == [True] * 3 and nothing == []
    assert store.count(ResultQuery(states=(JobState.SUCCEEDED,))) == 4


def test_batched_ends_keep_peak_rss(store: Store) -> None:
    jobs = [store.submit(spec(f"b{i}"), now=T0 + i) for i in range(2)]
    claimed = [store.claim("w1", "h1", ["default"], now=T0 + 5, lease=30) for _ in jobs]
    assert all(c is not None for c in claimed)
    ends = [
        End(c.id, c.attempt, Finish(JobState.SUCCEEDED, peak_rss=(i + 1) << 20), T0 + 6)
        for i, c in enumerate(claimed)
        if c is not None
    ]
    accepted, _ = store.finish_and_claim_many(
        ends, worker_id="w1", host="h1", queues=["default"], now=T0 + 6, lease=30, want=0
    )
    assert len(accepted) == 2
    assert sorted(store.get(j.id).peak_rss or 0 for j in jobs) == [1 << 20, 2 << 20]


def test_rerun_of_peak_rss_and_the_exact_name_filter(store: Store) -> None:
    first = store.submit(spec("health"), now=T0)
    again = store.submit(spec("health", rerun_of=first.id), now=T0 + 1)
    store.submit(spec("health-extra"), now=T0 + 2)
    assert store.get(again.id).spec.rerun_of == first.id
    assert store.get(first.id).spec.rerun_of is None
    job = store.claim("w1", "h1", ["default"], now=T0 + 3, lease=30)
    assert job is not None and job.id == first.id
    end = Finish(JobState.SUCCEEDED, peak_rss=123 << 20)
    assert store.finish(job.id, "w1", job.attempt, end, now=T0 + 4)
    assert store.get(first.id).peak_rss == 123 << 20
    assert store.get(again.id).peak_rss is None
    exact = store.results(ResultQuery(exact_name="health").validated())
    assert sorted(j.id for j in exact) == sorted([first.id, again.id])
    assert store.count(ResultQuery(exact_name="health").validated()) == 2
    assert store.count(ResultQuery(name="health").validated()) == 3
    assert store.stats(ResultQuery(exact_name="health").validated()).total == 2


def test_submit_many_keeps_every_field_including_rerun_of(store: Store) -> None:
    first = store.submit(spec("health"), now=T0)
    specs = [
        spec("again", rerun_of=first.id, description="d", owner="ann", priority=2, timeout=5),
        spec("plain", queue="other", retries=1, mode=Mode.PROCESS),
    ]
    jobs = store.submit_many(specs, now=T0 + 1)
    assert [j.spec for j in jobs] == specs
    for job, s in zip(jobs, specs, strict=True):
        got = store.get(job.id)
        assert got.spec == s and got.state is JobState.QUEUED and got.submitted_at == T0 + 1
    assert store.get(jobs[0].id).spec.rerun_of == first.id


def test_submit_many_wakes_an_idle_worker(store: Store) -> None:
    waiter = store.waiter("w-wake-many")
    try:
        assert not waiter.wait(0.01)
        timer = threading.Timer(0.05, lambda: store.submit_many([spec(), spec()], now=T0))
        timer.start()
        assert waiter.wait(5.0)
        timer.join()
    finally:
        waiter.close()
