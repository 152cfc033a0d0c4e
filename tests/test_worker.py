"""The worker on a real SQLite file: every mode and kind, failures, timeouts, cancels, output."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness import TESTS, client_for, settings_for, wait_for

import opsjobs
from opsjobs import JobSpec, JobState, Mode
from opsjobs.client import Client
from opsjobs.errors import Conflict, ValidationError


@pytest.fixture
def env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Client, opsjobs.WorkerHandle]]:
    # children of process-mode jobs must import tests/jobfuncs.py
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    settings = settings_for(tmp_path, output_cap=64 * 1024, poll_interval=60.0)
    client = client_for(settings)
    handle = opsjobs.embed(store=client.store, settings=settings, threads=3)
    yield client, handle
    handle.stop(timeout=120)  # a loaded machine: never close the store under a running worker
    client.close()


def run(client: Client, wait: float = 60, **kw: object) -> opsjobs.Job:
    job = client.submit(kw.pop("name", "t"), **kw)  # type: ignore[arg-type]
    return client.wait(job.id, timeout=wait)


ALL_MODES = ["inline", "thread", "process"]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_call_returns_result_and_output(env, mode: str) -> None:
    client, _ = env
    job = run(client, call="jobfuncs:add", kwargs={"a": 2, "b": 3}, mode=mode)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result["sum"] == 5
    assert job.output == "adding 2 and 3\n"
    in_worker = job.result["pid"] == os.getpid()
    assert in_worker is (mode != "process")
    assert job.runtime is not None and job.runtime >= 0
    assert client.log_path(job.id).read_text() == "adding 2 and 3\n"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_command_runs_python_source(env, mode: str) -> None:
    client, _ = env
    source = (
        "import opsjobs\nprint('hi from', opsjobs.context().job_id)\n"
        "opsjobs.context().set_result([1, 2])"
    )
    job = run(client, command=source, mode=mode)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.output == f"hi from {job.id}\n"
    assert job.result == [1, 2]


@pytest.mark.parametrize("mode", ALL_MODES)
def test_metrics_and_set_result_from_any_mode(env, mode: str) -> None:
    client, handle = env
    job = run(client, call="jobfuncs:measured", kwargs={"value": 4.5}, mode=mode)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result == {"job": job.id, "value": 4.5}
    points = client.store.metrics("test_value", job_id=job.id)
    assert [(p.value, dict(p.labels)) for p in points] == [(4.5, {"source": "jobfuncs"})]
    assert points[0].worker_id == handle.id and points[0].host == handle.worker.host


def test_argv_runs_a_program_in_process_mode(env) -> None:
    client, _ = env
    job = run(client, argv=["sh", "-c", "echo out; echo err >&2; exit 0"], mode="process")
    assert job.state is JobState.SUCCEEDED and job.exit_code == 0
    assert sorted(job.output.split()) == ["err", "out"]
    failed = run(client, argv=["sh", "-c", "echo nope; exit 3"], mode="BackgroundJob")
    assert failed.state is JobState.FAILED and failed.exit_code == 3
    assert failed.error == "exit code 3" and failed.output == "nope\n"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_exception_fails_the_job_with_traceback(env, mode: str) -> None:
    client, _ = env
    job = run(client, call="jobfuncs:boom", kwargs={"message": "disk on fire"}, mode=mode)
    assert job.state is JobState.FAILED
    assert job.error == "RuntimeError: disk on fire"
    assert "about to fail" in job.output and "Traceback" in job.output


@pytest.mark.parametrize("mode", ALL_MODES)
def test_nonzero_exit_fails_and_zero_exit_succeeds(env, mode: str) -> None:
    client, _ = env
    job = run(client, command="import sys; print('bye'); sys.exit(3)", mode=mode)
    assert job.state is JobState.FAILED and job.exit_code == 3
    assert job.output == "bye\n"
    ok = run(client, command="import sys; sys.exit(0)", mode=mode)
    assert ok.state is JobState.SUCCEEDED and ok.exit_code == 0


@pytest.mark.parametrize("mode", ALL_MODES)
def test_syntax_error_that_bypassed_validation_fails_the_job(env, mode: str) -> None:
    client, _ = env
    spec = JobSpec(name="raw", kind="command", payload={"source": "print("}, mode=Mode(mode))
    job = client.store.submit(spec.validated(), now=time.time())
    done = client.wait(job.id, timeout=30)
    assert done.state is JobState.FAILED
    assert done.error is not None and done.error.startswith("SyntaxError")


@pytest.mark.parametrize("mode", ALL_MODES)
def test_missing_callable_fails_clearly(env, mode: str) -> None:
    client, _ = env
    job = run(client, call="jobfuncs:no_such_function", mode=mode)
    assert job.state is JobState.FAILED
    assert "callable not found: jobfuncs:no_such_function" in (job.error or "")
    job = run(client, call="no_such_module_x:f", mode=mode)
    assert job.state is JobState.FAILED and "cannot import module 'no_such_module_x'" in (
        job.error or ""
    )


def test_thread_mode_output_is_the_jobs_alone(env, capsys: pytest.CaptureFixture[str]) -> None:
    client, _ = env
    stop = threading.Event()

    def chatter() -> None:
        while not stop.is_set():
            print("NOISE from another thread")
            time.sleep(0.001)

    noisy = threading.Thread(target=chatter)
    noisy.start()
    try:
        source = "import time\nfor i in range(50):\n    print('line', i)\n    time.sleep(0.002)"
        job = run(client, command=source, mode="thread")
    finally:
        stop.set()
        noisy.join()
    assert job.output == "".join(f"line {i}\n" for i in range(50))
    assert "NOISE" in capsys.readouterr().out  # the other thread's prints went where they belong


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_huge_output_is_capped_and_memory_stays_bounded(env, mode: str) -> None:
    client, _ = env
    rss_before = psutil.Process().memory_info().rss
    job = run(client, call="jobfuncs:spew", kwargs={"megabytes": 50}, mode=mode, wait=120)
    grown = psutil.Process().memory_info().rss - rss_before
    assert job.state is JobState.SUCCEEDED, job.error
    cap = client.settings.output_cap
    assert len(job.output) <= cap + 200
    assert "characters omitted" in job.output
    assert job.output.startswith("x" * 100) and job.output.endswith("x\n")
    assert client.log_path(job.id).stat().st_size == 50 * 1024 * 1024
    assert grown < 30 * 1024 * 1024, f"worker grew by {grown / 2**20:.1f} MiB"


@pytest.mark.parametrize("mode", ["inline", "thread"])
def test_cooperative_timeout_is_marked_at_the_deadline(env, mode: str) -> None:
    client, _ = env
    job = run(
        client, call="jobfuncs:cooperative_sleep", kwargs={"seconds": 30}, mode=mode, timeout=0.3
    )
    assert job.state is JobState.TIMED_OUT
    assert job.error == "timed out after 0.3 s"
    assert job.runtime is not None and 0.3 <= job.runtime < 5


def _tree_from(path: Path) -> list[psutil.Process]:
    child, grandchild = (int(p) for p in path.read_text().split())
    return [psutil.Process(child), psutil.Process(grandchild)]


def _gone(procs: list[psutil.Process]) -> bool:
    return all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in procs)


def test_process_timeout_kills_the_whole_tree(env, tmp_path: Path) -> None:
    client, _ = env
    pids = tmp_path / "pids"
    job = client.submit(
        "tree", call="jobfuncs:pid_tree", kwargs={"path": str(pids)}, mode="process", timeout=3
    )
    procs = wait_for(lambda: pids.exists() and _tree_from(pids), what="child pids")
    done = client.wait(job.id, timeout=30)
    assert done.state is JobState.TIMED_OUT and "process tree killed" in (done.error or "")
    wait_for(lambda: _gone(procs), timeout=10, what="child and grandchild to exit")


def test_cancel_queued_running_thread_and_process(env, tmp_path: Path) -> None:
    client, _ = env
    # running thread job: marked at once, told through ctx.cancelled
    job = client.submit("coop", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 60})
    wait_for(lambda: client.get(job.id).state is JobState.RUNNING, what="thread job to start")
    assert client.cancel(job.id).state is JobState.CANCELLED
    # running process job: the worker kills the tree and marks it
    pids = tmp_path / "pids"
    proc_job = client.submit(
        "tree", call="jobfuncs:pid_tree", kwargs={"path": str(pids)}, mode="process"
    )
    procs = wait_for(lambda: pids.exists() and _tree_from(pids), what="child pids")
    assert client.cancel(proc_job.id).cancel_requested
    done = client.wait(proc_job.id, timeout=30)
    assert done.state is JobState.CANCELLED
    wait_for(lambda: _gone(procs), timeout=10, what="process tree to exit")
    # queued job on a queue nobody serves
    queued = client.submit("later", command="print(1)", queue="nobody")
    assert client.cancel(queued.id).state is JobState.CANCELLED


def test_private_queue_targets_this_worker(env) -> None:
    client, handle = env
    job = run(client, command="print('me')", queue=handle.queue)
    assert job.state is JobState.SUCCEEDED and job.worker_id == handle.id


def test_delete_refuses_running_job_and_removes_files(env) -> None:
    client, _ = env
    job = client.submit("coop", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 60})
    wait_for(lambda: client.get(job.id).state is JobState.RUNNING, what="job to start")
    with pytest.raises(Conflict, match="cancel it before deleting it"):
        client.delete(job.id)
    assert client.get(job.id).state is JobState.RUNNING  # nothing changed
    client.cancel(job.id)
    client.delete(job.id)
    assert not client.log_path(job.id).exists()


def test_purge_removes_old_results_and_logs(env) -> None:
    client, _ = env
    old = run(client, command="print('old')")
    assert client.log_path(old.id).exists()
    assert client.purge(3600) == 0
    assert client.purge(0) == 1
    assert not client.log_path(old.id).exists()
    assert client.results() == []


def test_idle_worker_is_woken_without_polling(env) -> None:
    client, _ = env  # poll interval is 60 s: only the doorbell can start this job quickly
    time.sleep(0.2)  # let the worker go idle on its waiter (not a synchronisation point)
    job = run(client, command="pass", wait=10)
    assert job.state is JobState.SUCCEEDED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": "pass", "mode": "fast"}, "unknown mode 'fast'"),
        ({"argv": ["ls"], "mode": "thread"}, "runs only in process mode"),
        ({"call": "not a target"}, "package.module:function"),
        ({"call": "os:getcwd", "kwargs": {"x": {1, 2}}}, "not JSON-serialisable"),
        ({"command": "def (:"}, "syntax error at line 1"),
        ({"command": "pass", "timeout": -1}, "timeout must be between"),
        ({"command": "pass", "queue": "bad queue!"}, "invalid queue"),
        ({"command": "pass", "name": ""}, "name is required"),
        ({"kind": "teleport", "payload": {}}, "unknown kind 'teleport'"),
    ],
)
def test_bad_input_is_refused_and_nothing_is_stored(env, kwargs: dict, message: str) -> None:
    client, _ = env
    kwargs.setdefault("name", "x")
    with pytest.raises(ValidationError, match=message):
        client.submit(**kwargs)
    assert client.results() == []


@pytest.mark.parametrize("bad", ["nope", "../../etc/passwd", "1234", "", "x" * 100])
def test_malformed_ids_are_refused_before_lookup(env, bad: str) -> None:
    client, _ = env
    for action in (client.get, client.cancel, client.delete, client.log_path):
        with pytest.raises(ValidationError, match="malformed job id"):
            action(bad)


def test_seed_mode_names_are_aliases(env) -> None:
    client, _ = env
    for alias, mode in (
        ("MainLoop", "inline"),
        ("runspace", "thread"),
        ("BACKGROUNDJOB", "process"),
    ):
        job = client.submit("alias", command="pass", mode=alias)
        assert job.mode.value == mode
        assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED


def test_a_bad_job_claimed_in_a_finishing_transaction_frees_its_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # threads=1: the unknown-kind job is claimed together with the end of the first job and
    # inherits its slot; if that slot leaked, the third job would never run.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    settings = settings_for(tmp_path, poll_interval=60.0)
    client = client_for(settings)
    first = client.submit("first", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 0.3})
    bad = client.store.submit(
        JobSpec(name="bad", kind="teleport", payload={}, mode=Mode.THREAD), now=time.time()
    )
    third = client.submit("third", command="pass")
    with opsjobs.embed(store=client.store, settings=settings, threads=1):
        assert client.wait(first.id, timeout=30).state is JobState.SUCCEEDED
        failed = client.wait(bad.id, timeout=30)
        assert failed.state is JobState.FAILED and "unknown kind" in (failed.error or "")
        assert client.wait(third.id, timeout=30).state is JobState.SUCCEEDED
    client.close()


def test_thread_jobs_end_and_follow_while_an_inline_job_runs(env) -> None:
    # The main loop runs inline jobs itself; thread jobs that end meanwhile are recorded, and
    # their successors claimed, by the job threads (the poll interval is 60 s: no polling).
    client, _ = env
    first = client.submit("t1", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 0.5})
    wait_for(lambda: client.get(first.id).state is JobState.RUNNING, what="t1 running")
    long = client.submit(
        "long", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 60}, mode="inline"
    )
    wait_for(lambda: client.get(long.id).state is JobState.RUNNING, what="inline running")
    second = client.submit("t2", call="jobfuncs:add", kwargs={"a": 1, "b": 2})
    for job in (first, second):
        done = client.wait(job.id, timeout=20)
        assert done.state is JobState.SUCCEEDED, done.error
    assert client.get(long.id).state is JobState.RUNNING
    client.cancel(long.id)
    assert client.wait(long.id, timeout=20).state is JobState.CANCELLED


@pytest.mark.parametrize("short_first", [0, 300], ids=["idle", "after-short-jobs"])
def test_long_thread_jobs_fill_every_pool_slot(tmp_path: Path, short_first: int) -> None:
    # Short jobs run back to back on one pool thread (the others would only queue for the
    # step lock); jobs that take longer must still spread over all the threads, also when a
    # run of short jobs came first. Each group of 4 succeeds only if its 4 jobs run at once.
    settings = settings_for(tmp_path, poll_interval=60.0)
    client = client_for(settings)
    shorts = [client.submit(f"s{n}", command="pass") for n in range(short_first)]
    groups = [
        [
            client.submit(
                f"g{g}.{n}",
                call="jobfuncs:rendezvous",
                kwargs={"folder": str(tmp_path / f"group{g}"), "parties": 4, "seconds": 20},
            )
            for n in range(4)
        ]
        for g in range(2)
    ]
    with opsjobs.embed(store=client.store, settings=settings, threads=4):
        for job in shorts:
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
        for group in groups:
            for job in group:
                done = client.wait(job.id, timeout=30)
                assert done.state is JobState.SUCCEEDED, done.error
                assert done.result == 4
    client.close()


def test_free_slots_are_filled_when_a_pool_threads_step_lands_just_before_the_loops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CI run: "only 1 of 4 jobs ran at once" (the test above, after short jobs). The main loop
    # saw the pool thread quiet and took the step lock just as that thread let it go after its
    # last step (a short job's, before it claimed itself a long one), which had set the chain
    # time anew: the loop's step then left the free slots to that thread and the loop slept its
    # whole poll. Played here by setting the chain time anew at the loop's first step with a
    # pool job running, as that thread's step would have.
    from opsjobs import worker as worker_module

    step = worker_module.Worker._step
    played = threading.Event()

    def step_after_a_pool_step(self: worker_module.Worker, **kw: object) -> object:
        on_loop = threading.get_ident() == self._loop_thread
        if on_loop and not kw.get("here") and self._busy and not played.is_set():
            played.set()
            self._chain_until = time.perf_counter() + worker_module._CHAIN_TRUST
        return step(self, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_module.Worker, "_step", step_after_a_pool_step)
    settings = settings_for(tmp_path, poll_interval=60.0)
    client = client_for(settings)
    pair = [
        client.submit(
            f"r{n}",
            call="jobfuncs:rendezvous",
            kwargs={"folder": str(tmp_path / "pair"), "parties": 2, "seconds": 15},
        )
        for n in range(2)
    ]
    with opsjobs.embed(store=client.store, settings=settings, threads=2):
        for job in pair:
            done = client.wait(job.id, timeout=30)
            assert done.state is JobState.SUCCEEDED, done.error
    assert played.is_set()
    client.close()


def test_a_job_row_that_cannot_be_read_does_not_stop_the_worker(tmp_path: Path) -> None:
    import sqlite3

    settings = settings_for(tmp_path, poll_interval=60.0)
    client = client_for(settings)
    bad = client.submit("bad", command="pass", mode="thread")
    good = client.submit("good", command="pass", mode="thread")
    raw = sqlite3.connect(settings.data_dir / "opsjobs.db")
    raw.execute("UPDATE jobs SET mode = 'gpu' WHERE id = ?", (bad.id,))
    raw.commit()
    with opsjobs.embed(store=client.store, settings=settings, threads=2):
        assert client.wait(good.id, timeout=30).state is JobState.SUCCEEDED
        later = client.submit("later", command="pass", mode="inline")
        assert client.wait(later.id, timeout=30).state is JobState.SUCCEEDED
    state, error = raw.execute("SELECT state, error FROM jobs WHERE id = ?", (bad.id,)).fetchone()
    assert state == "failed" and "cannot be read" in error, error
    raw.close()
    client.close()


def test_a_thread_job_claims_no_run_of_inline_jobs_ahead(tmp_path: Path) -> None:
    # A pool thread that ends its job claims the next one itself; an inline job it claims goes
    # to the main loop (one claimed ahead of the one running, as a finishing thread always
    # did), and it must not go on claiming the inline jobs behind it: they would all show as
    # running while one runs.
    settings = settings_for(tmp_path, poll_interval=60.0)
    client = client_for(settings)
    lead = client.submit("lead", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 0.3})
    inline = [
        client.submit(
            f"i{n}", call="jobfuncs:cooperative_sleep", kwargs={"seconds": 1.5}, mode="inline"
        )
        for n in range(3)
    ]
    with opsjobs.embed(store=client.store, settings=settings, threads=2):
        # lead ends while the main loop runs i0: its pool thread records it and claims
        assert client.wait(lead.id, timeout=30).state is JobState.SUCCEEDED
        states = [client.get(j.id).state for j in inline]
        assert states[0] is JobState.RUNNING and states[2] is JobState.QUEUED, states
        for job in inline:
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
    client.close()
