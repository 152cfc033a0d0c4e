"""The worker: claims jobs, runs them in their mode, renews leases, enforces timeouts and
cancels, and recovers jobs whose worker died.

Threads of one worker:

* the **main loop** (the thread that calls :meth:`Worker.run`) claims jobs and runs ``inline``
  ones itself — the seed's MainLoop;
* a **job pool** of ``threads`` threads runs ``thread`` jobs and watches ``process`` children;
  a pool thread whose job ended records the ends that wait and claims the next job itself
  when no other thread is doing so (one "step" at a time, under ``_step_lock``; on
  PostgreSQL a second one may be out beside it, under ``_lane2``);
* the **bell** thread sleeps on the store's waiter and wakes the main loop the moment a job is
  submitted (a slow poll is only the fallback);
* the **supervisor** renews leases (heartbeat), stops cancelled and timed-out jobs, and re-queues
  or marks ``lost`` the jobs of dead workers.
"""

from __future__ import annotations

import _thread
import collections
import contextlib
import functools
import logging
import math
import os
import resource
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from subprocess import Popen

from opsjobs.alerts.evaluator import AlertEvaluator
from opsjobs.alerts.notifier import Notifier
from opsjobs.config import Settings
from opsjobs.context import JobContext
from opsjobs.errors import OpsJobsError
from opsjobs.model import Job, JobState, Metric, Mode, WorkerInfo, iso, validate_queue
from opsjobs.retry import next_attempt_at
from opsjobs.runners import process as proc_runner
from opsjobs.runners import reaper
from opsjobs.runners.capture import OutputSink, ThreadRouter, read_capped
from opsjobs.runners.inproc import run_in_process
from opsjobs.runners.kinds import Kind, KindRegistry, default_registry
from opsjobs.runners.outcome import describe_exception
from opsjobs.runners.threads import JobThreads
from opsjobs.store import End, Finish, Store, Waiter

__all__ = ["Worker", "WorkerHandle", "embed"]

log = logging.getLogger("opsjobs.worker")

#: A pool job that ran shorter than this (s), or than a step, is followed by one claim for its
#: own thread only: see :meth:`Worker._step`.
_SHORT_JOB = 0.0001
#: Seconds a job still running after the stop's grace has to end once it is told (a child by
#: SIGTERM) before child trees are killed and it is marked failed: a notebook kills its
#: kernel, saves the partial notebook and names the cell.
_STOP_GRACE = 5.0
_STOPPED = "the worker stopped before the job finished"
#: How long (s) the main loop trusts a pool thread that runs short jobs back to back to take
#: the next queued job, before it fills the other free slots itself.
_CHAIN_TRUST = 0.002
#: Seconds past a waiting job's due time the main loop wakes, so that its claim finds it due.
_DUE_SLACK = 0.005
#: A step (one store round trip) that takes longer than this (s, moving average) costs more
#: than handing jobs to other pool threads: every step then claims for all free slots, each
#: job started at once on its own thread (a round trip to PostgreSQL: ~0.5-3 ms; a SQLite step:
#: ~0.05-0.1 ms, where one thread running short jobs back to back stays best).
_DEAR_STEP = 0.0005
#: On a store whose steps are batched (or dear), how long (s) the ends of pool jobs that ended
#: wait for more before a step records them, from the oldest: the step's own cost, within
#: these bounds. They go out at once when enough wait (``Worker._gather_min``) or no other
#: pool job is still running.
_GATHER_WAIT = (0.0005, 0.005)


def _peak_self() -> int:
    """Peak resident memory of this process so far, bytes (Linux counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _retry_note(job: Job, outcome: Finish, run_after: float) -> str:
    """The error a job shows while it waits for its next attempt."""
    what = f"attempt {job.attempt} {outcome.state.value}"
    if outcome.error:
        what += f": {outcome.error.splitlines()[0][:300]}"
    total = job.spec.retries + 1
    return f"{what}; attempt {job.attempt + 1} of {total} at {iso(run_after)}"


class _Running:
    """A job this worker runs (a plain class with slots: one is made per job)."""

    __slots__ = (
        "ctx",
        "deadline",
        "end",
        "job",
        "kind",
        "lock",
        "proc",
        "settled",
        "sink",
        "stop_state",
    )

    def __init__(self, job: Job, ctx: JobContext, kind: Kind, deadline: float | None) -> None:
        self.job = job
        self.ctx = ctx
        self.kind = kind
        self.deadline = deadline
        self.sink: OutputSink | None = None
        self.proc: Popen[bytes] | None = None
        #: Set by the supervisor when it stops the job (timed_out / cancelled / lost).
        self.stop_state: JobState | None = None
        #: True once the end is decided: recorded by the supervisor, or queued for the next step.
        self.settled = False
        #: The end waiting in ``Worker._ended`` for the next step to record.
        self.end: End | None = None
        self.lock = threading.Lock()


class Worker:
    """A worker on ``store`` listening on ``queues`` plus its private queue ``worker:<id>``.

    Parameters
    ----------
    store
        Where jobs come from.
    settings
        Data folder, output cap, lease and poll interval.
    queues
        Named queues to serve (default ``["default"]``).
    threads
        How many ``thread`` and ``process`` jobs may run at once.
    inline_executor
        Runs an ``inline`` job's work (a no-argument callable) and returns when it is done. By
        default the main loop calls it itself; ``opsjobs serve`` passes one that runs it on the
        server's event loop (the seed's MainLoop).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        queues: Sequence[str] = ("default",),
        threads: int = 4,
        kinds: KindRegistry | None = None,
        inline_executor: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        if not 1 <= threads <= 256:
            raise OpsJobsError("threads must be between 1 and 256")
        self.store = store
        self.settings = settings
        self.id = str(uuid.uuid4())
        self.host = settings.host or socket.gethostname()
        self.pid = os.getpid()
        self.queues = [validate_queue(q) for q in dict.fromkeys(queues or ["default"])]
        self.queues.append(f"worker:{self.id}")
        self.threads = threads
        self.kinds = kinds or default_registry()
        self.lease = settings.lease_seconds
        self._pool = JobThreads(threads, f"opsjobs-{self.id[:8]}")
        self._busy = 0  # thread + process jobs in the pool
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._tick = threading.Event()  # wakes the supervisor (new deadline, cancel, stop)
        self._beat_soon = False
        self._stopping = threading.Event()
        self._router: ThreadRouter | None = None
        self._inline_executor = inline_executor
        self._inline_stopper: threading.Timer | None = None
        #: Jobs that ended on their own, waiting for the next step to record them: one thread
        #: at a time records ends and claims, so a backlog goes into one transaction.
        self._ended: collections.deque[_Running] = collections.deque()
        #: Held by whoever records ends and claims: the main loop, or a pool thread whose job
        #: just ended (it then runs the next pool job it claimed itself).
        self._step_lock = threading.Lock()
        #: Inline jobs claimed by a pool thread, for the main loop.
        self._handoff: collections.deque[Job] = collections.deque()
        self._loop_thread = 0  # ident of the thread running the main loop
        self._step_holder = 0  # the main loop's ident while it holds _step_lock
        #: A second step lock, on a store whose steps may overlap (``step_lanes``: PostgreSQL,
        #: each step on its own connection): while one step is out at the server, a pool thread
        #: whose job ended may record the ends that wait and claim on its own, so the jobs of
        #: one step run while the next step's round trip is out. Only pool threads take it,
        #: never blocking, and only when round trips dominate: see :meth:`_lane`.
        self._lane2 = threading.Lock() if store.step_lanes >= 2 else None
        #: Ends that wait before a second step goes out (fewer: they wait for the first): half
        #: the slots, so that two steps of half the slots each take turns.
        self._lane_min = max(1, threads // 2)
        #: On a batched store, the ends a step waits for (see :meth:`_gathering`): all the slots
        #: of a small pool, whose steps then each carry a full batch (10 slots on PostgreSQL:
        #: ~11-12k no-op jobs/s against ~9k when each end went out at once, half the CPU per
        #: job), and half of a large one (two steps of half the slots each take turns, one's
        #: jobs running while the other is at the server). bench/README.md, issue 21.
        self._gather_min = min(threads, max(threads // 2, 16))
        self._batch_steps = store.batch_steps
        #: The main loop waits out the gathering of ends (pool threads need not wake it).
        self._gather_armed = False
        #: Under _lock: slots the steps in flight claim for, and pool slots whose ends they
        #: record (still in _busy until recorded); the last ``now`` a step gave the store (each
        #: step's is distinct: a retry after a lost reply adopts the jobs started at its now).
        self._claiming = 0
        self._freeing = 0
        self._last_now = 0.0
        #: How long a step's store call takes (a moving average, seconds).
        self._step_cost = 0.0
        #: Until then (perf_counter) a pool thread runs short jobs back to back, and the main
        #: loop leaves the other free slots empty: see :meth:`_step`.
        self._chain_until = 0.0
        self._inline_seen = False  # the last step that claimed jobs claimed an inline one
        self._logs_dir = str(settings.logs_dir)
        self._output_cap = settings.output_cap
        #: The next time a waiting job (a retry) of our queues is due, and whether to ask the
        #: store again: see :meth:`_until_due`.
        self._due: float | None = None
        self._looked_at = 0.0  # when the last step began (time.time())
        self._recheck_due = True
        #: Judges alert rules on recorded metrics, on its own thread (started by the first).
        self.alerts = AlertEvaluator(store, settings)
        #: Sends the notifications of the job ends this worker records, on its own thread.
        self.notices = Notifier(store, settings)

    # -- lifetime -------------------------------------------------------------------------
    def run(self) -> None:
        """Serve jobs on the calling thread until :meth:`stop` (or KeyboardInterrupt)."""
        now = time.time()
        self.store.register_worker(
            WorkerInfo(
                self.id, self.host, self.pid, self.queues, self.threads, now, now, self.lease
            )
        )
        self._router = ThreadRouter.acquire()
        restore_sigint = self._handle_sigint()
        # what this process starts is marked as ours; what dead workers left is killed
        reaper.mark_owner()
        reaper.reap_orphans()
        waiter = self.store.waiter(self.id)  # listening before the first claim: no ring is missed
        # The bell owns the waiter and closes it when it sees the stop; it is not joined, since
        # it may sit in a wait for up to one poll interval.
        threading.Thread(
            target=self._bell, args=(waiter,), name="opsjobs-bell", daemon=True
        ).start()
        supervisor = threading.Thread(
            target=self._supervise, name="opsjobs-supervisor", daemon=True
        )
        supervisor.start()
        log.debug("worker %s on %s serving %s", self.id, self.host, ", ".join(self.queues))
        try:
            self._loop()
        finally:
            self._stopping.set()
            self._wake.set()
            self._tick.set()
            if self._inline_stopper is not None:
                self._inline_stopper.cancel()
            self._shutdown(grace=self.lease / 3)
            supervisor.join(timeout=5)
            self.alerts.close(grace=2.0)
            self.notices.close(grace=5.0)
            ThreadRouter.release()
            if restore_sigint is not None:
                signal.signal(signal.SIGINT, restore_sigint)
            self.store.stop_worker(self.id, now=time.time())

    @staticmethod
    def _handle_sigint() -> int | None:
        """On the main thread, make sure SIGINT raises KeyboardInterrupt; the handler it
        replaced (to put back), or None. The stop of an inline job is a simulated SIGINT
        (:meth:`_interrupt_inline`), which does nothing while SIGINT is ignored, as it is in
        a worker a shell started as ``opsjobs worker &``: its inline job ran to its end."""
        if threading.current_thread() is not threading.main_thread():
            return None
        current = signal.getsignal(signal.SIGINT)
        if callable(current) or current is None:
            return None
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return current

    def stop(self) -> None:
        """Ask the worker to stop; running jobs get a grace period, then are marked failed."""
        self._stopping.set()
        self._wake.set()
        self._tick.set()
        if (
            self._inline_executor is None
            and self._loop_thread == threading.main_thread().ident
            and self._inline_stopper is None
        ):
            # An inline job holds the main loop, so the shutdown cannot begin before it ends:
            # after the grace it is interrupted like Ctrl-C (recorded failed, with its output).
            self._inline_stopper = threading.Timer(self.lease / 3, self._interrupt_inline)
            self._inline_stopper.daemon = True
            self._inline_stopper.start()

    def _interrupt_inline(self) -> None:
        with self._lock:
            busy = any(
                r.job.spec.mode is Mode.INLINE and not r.settled for r in self._running.values()
            )
        if busy:
            _thread.interrupt_main()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._running)

    def _loop(self) -> None:
        self._loop_thread = threading.get_ident()
        wake = self._wake
        lock = self._step_lock
        while not self._stopping.is_set():
            # While a pool thread runs short jobs back to back it claims as it goes: a step
            # here would only make it miss the step lock and stop. This loop steps for its own
            # ends (inline jobs), when no pool job runs, and once that thread has gone quiet
            # for _CHAIN_TRUST (a long job): then the free slots are filled.
            gather = self._gathering()
            if gather > 0 and not self._handoff:
                # the end that completes the batch is recorded by its own pool thread
                self._gather_armed = True
                wake.wait(gather)
                wake.clear()
                self._gather_armed = False
                continue
            mine = bool(self._ended) or self._busy == 0
            worked = skipped = False
            if mine or time.perf_counter() >= self._chain_until:
                if lock.acquire(blocking=mine):
                    self._step_holder = self._loop_thread
                    try:
                        worked, _, _ = self._step()
                    finally:
                        self._step_holder = 0
                        lock.release()
                else:
                    skipped = True  # a pool thread is stepping (and claiming)
            else:
                skipped = True
            # inline jobs run outside the lock, so pool threads go on recording their ends
            while self._handoff and not self._stopping.is_set():
                worked = True
                self._dispatch(self._handoff.popleft())
            # An end queued while this loop held the lock is taken by the next step. The event
            # is cleared after waking, not before each step: what set it is seen by the next
            # step, and a busy loop does not pay for the clear.
            if not worked and not self._ended:
                timeout = self.settings.poll_interval
                chaining = skipped or time.perf_counter() < self._chain_until
                if chaining and self._busy < self.threads:
                    # look again once the pool thread could have gone quiet, in case the free
                    # slots are wanted then (a step that found the queue empty waits for a ring).
                    # Also when this loop's own step left the slots to that thread: its last
                    # step can land between this loop's look at the chain time and its step,
                    # and that thread may be in a long job by now (it slept its whole poll).
                    left = self._chain_until - time.perf_counter()
                    timeout = min(timeout, left if left > 0 else _CHAIN_TRUST)
                else:
                    timeout = self._until_due(timeout)
                wake.wait(timeout)
                wake.clear()

    def _dear(self) -> bool:
        """Do round trips dominate the steps? Then every step claims for all free slots."""
        return self._batch_steps or self._step_cost >= _DEAR_STEP

    def _gathering(self) -> float:
        """Seconds the ends that wait should wait for more before a step records them (0:
        step now). Only where steps are dear and no inline job comes; not once enough ends
        wait (``_gather_min``), no other pool job is still running or being claimed by a step
        in flight, or the oldest end has waited a step's cost (within ``_GATHER_WAIT``)."""
        if self._inline_seen or not self._dear():
            return 0.0
        ended = self._ended
        n = len(ended)
        if n == 0 or n >= self._gather_min or self._stopping.is_set():
            return 0.0
        if self._busy - self._freeing + self._claiming - n <= 0:
            return 0.0  # every pool job has ended, and no step in flight claims more
        try:
            oldest = ended[0].end.at  # type: ignore[union-attr]  # set before it was queued
        except IndexError:  # a step took them meanwhile
            return 0.0
        low, high = _GATHER_WAIT
        left = oldest + min(max(self._step_cost, low), high) - time.time()
        return min(left, high) if left > 0 else 0.0  # (a clock set back waits no longer)

    def _until_due(self, timeout: float) -> float:
        """``timeout``, shortened to wake when the next waiting job (a retry) of this worker's
        queues is due. The store is asked again after a ring (a retry queued anywhere rings)
        or once the time it gave has passed."""
        now = time.time()
        if self._due is not None and self._looked_at < self._due <= now:
            # Due since the last step began: that step's claim may have looked just before the
            # due time, and the store, asked now, would name only later times, not this job
            # (a lost wake-up: it waited out the whole poll; tests/test_due_wakeup.py). Step
            # once more first; the store is asked after that step.
            self._recheck_due = True
            return min(timeout, _DUE_SLACK)
        if self._recheck_due or (self._due is not None and self._due <= now):
            self._recheck_due = False
            try:
                self._due = self.store.next_due(self.queues, now=now)
            except OpsJobsError as exc:
                log.warning("could not read the next due time: %s", exc)
                self._due, self._recheck_due = None, True
                return min(timeout, 1.0)
        if self._due is None:
            return timeout
        return min(timeout, max(self._due - now, 0.0) + _DUE_SLACK)

    def _step(
        self, *, claim: bool = True, here: bool = False, ran: float = 0.0
    ) -> tuple[bool, _Running | None, bool]:
        """Record the ends that are waiting and claim jobs for the free slots, in one store
        transaction; then dispatch what was claimed. Returns whether anything was done; with
        ``here`` (a pool thread stepping) also the pool job that thread runs next itself, and
        whether the one it claimed for itself could not run (marked failed at dispatch).

        The claim replaces as many pool jobs as just ended (at least one): a run of inline jobs,
        which need the main loop, is claimed one at a time. Jobs shorter than a step
        (``_SHORT_JOB``, or the step's own cost) run back to back on one pool thread, which
        claims only its own next job; the main loop then leaves the other free slots empty
        until that thread has not stepped for ``_CHAIN_TRUST`` (it is in a longer job). Any
        more threads would only take turns at the step lock and the GIL: with no-op jobs,
        four threads drained 14-16k jobs/s that way against 20k/s for one."""
        self._looked_at = time.time()
        ended = self._ended
        recs: list[_Running] = []
        ends: list[End] = []
        pool_ends = 0
        while ended:  # the holders of _step_lock and _lane2 take from it
            try:
                rec = ended.popleft()
            except IndexError:  # the other step took the last one
                break
            recs.append(rec)
            ends.append(rec.end)  # type: ignore[arg-type]  # set before it was queued
            if rec.job.spec.mode is not Mode.INLINE:
                pool_ends += 1
        with self._lock:
            # the slots of pool jobs running or being started, less those another step in
            # flight records the ends of, plus those it claims for
            taken = self._busy - self._freeing + self._claiming
            free = self.threads - taken + pool_ends
            short = False
            if not claim:
                want = 0
            else:
                want = pool_ends if pool_ends > 1 else 1
                if here:
                    # A pool thread whose job was short claims only its own next job: more
                    # threads would only queue for the step lock and the GIL.
                    short = ran <= _SHORT_JOB or ran <= self._step_cost
                    if short:
                        want = 1
                elif (
                    taken > pool_ends
                    and len(recs) == pool_ends
                    and time.perf_counter() < self._chain_until
                ):
                    want = 0  # a pool thread runs short jobs back to back: it takes the next
            if claim and self._dear() and not self._inline_seen:
                # Round trips dominate: a step (a pool thread's, or the main loop's for ends
                # that waited out the gathering) fills every free slot at once. The slots'
                # threads end their jobs while one of them waits for the store, and the next
                # step records all those ends and claims as many, so steps grow into batches;
                # each pool job starts at once on its thread (the main loop claiming one at a
                # time split a 100-slot worker's batches). Not while inline jobs come (the last
                # step claimed one): those wait for the main loop, claimed but not started.
                want, short = free, False
            if want > free:
                want = free
            if want < 0:
                want = 0
            if not recs and want <= 0:
                return False, None, False
            self._freeing += pool_ends
            self._claiming += want
            now = time.time()
            if now <= self._last_now:
                now = math.nextafter(self._last_now, math.inf)
            self._last_now = now
        t0 = time.perf_counter()
        try:
            accepted, jobs = self.store.finish_and_claim_many(
                ends,
                worker_id=self.id,
                host=self.host,
                queues=self.queues,
                now=now,
                lease=self.lease,
                want=want,
            )
        except OpsJobsError as exc:
            log.warning("could not record ends or claim, retrying: %s", exc)
            for rec, end in zip(recs, ends, strict=True):  # one at a time, until it answers
                self._finish(rec.job, end.outcome, at=end.at)
            accepted, jobs = [True] * len(recs), []
        except BaseException:
            with self._lock:
                self._freeing -= pool_ends
                self._claiming -= want
            raise
        t1 = time.perf_counter()
        self._step_cost += (t1 - t0 - self._step_cost) * 0.1
        if here:
            self._chain_until = t1 + _CHAIN_TRUST if short else 0.0
        if recs:
            observe = self.notices.observe  # only queued: notifications never hold up a step
            if False in accepted:
                for rec, ok in zip(recs, accepted, strict=True):
                    if ok:
                        observe(rec.job.id, rec.job.attempt)
                    else:
                        self._refused(rec.job)
            else:
                for rec in recs:
                    observe(rec.job.id, rec.job.attempt)
        # The pool jobs claimed take their slots now (from the claim's count, in one go).
        pool_jobs = 0
        for job in jobs:
            if job.spec.mode is not Mode.INLINE:
                pool_jobs += 1
        running = self._running
        with self._lock:
            for rec in recs:
                running.pop(rec.job.id, None)
            self._busy += pool_jobs - pool_ends
            self._freeing -= pool_ends
            self._claiming -= want
        inline = unrun = False
        mine: _Running | None = None
        for job in jobs:  # pool jobs start now; inline ones go to the main loop
            if job.spec.mode is Mode.INLINE:
                self._handoff.append(job)
                inline = True
            elif here and mine is None:
                mine = self._dispatch(job, here=True, counted=True)
                unrun = mine is None
            else:
                self._dispatch(job, counted=True)
                if not here:
                    # a new pool thread gets the time to show whether it runs short jobs
                    # back to back, before the main loop claims for the next free slot
                    self._chain_until = time.perf_counter() + _CHAIN_TRUST
        if jobs:
            self._inline_seen = inline
        if inline and threading.get_ident() != self._loop_thread:
            self._wake.set()
        return bool(recs or jobs), mine, unrun

    def _flush_ends(self) -> None:
        """Record the ends that wait, claiming nothing (the worker is stopping), once no step
        is out (each records what it took)."""
        with self._step_lock, self._lane2 or contextlib.nullcontext():
            self._step(claim=False)  # (nothing is claimed, so nothing is kept "here")

    def _work(self, rec: _Running) -> None:
        """A pool thread's run: the job, then the next pool jobs its own step claims, as long
        as there are some (no hand-off between threads per job)."""
        while True:
            target = self._run_in_process if rec.job.spec.mode is Mode.THREAD else self._run_child
            t0 = time.perf_counter()
            try:
                self._guarded(target, rec)
            except BaseException:
                self._wake.set()  # the main loop records the end
                raise
            nxt = self._step_here(time.perf_counter() - t0)
            if nxt is None:
                return
            rec = nxt

    def _step_here(self, ran: float) -> _Running | None:
        """After a pool job ended (``ran`` seconds): unless another pool thread holds the step
        lock, record the ends that wait (this one's among them) and claim on this thread;
        returns the pool job to run next here. If that thread holds the lock, it sees this end
        once it lets go, and this thread stops: one thread runs the short jobs."""
        if self._stopping.is_set():
            self._wake.set()
            return None
        mine = None
        while mine is None and (lane := self._lane()) is not None:
            try:
                _, mine, again = self._step(here=True, ran=ran)
            finally:
                lane.release()
            if not (again or self._ended):
                break
            # step again: ends came in meanwhile, or the job it claimed for itself could not
            # run (marked failed at dispatch) and its slot is free
        # The end of a thread that found the lock taken was queued before it tried, so the
        # holder sees it here, after releasing: it steps again, or leaves it to the main loop
        # (already awake for it when it waits out the gathering of ends).
        if self._ended and not self._gather_armed:
            self._wake.set()
        return mine

    def _lane(self) -> threading.Lock | None:
        """The step lock a pool thread whose job ended steps under, acquired; None: it leaves
        its end to the stepper. The main loop's steps are short and leave this thread's claim
        to it: wait for them. Another pool thread's step means two threads run short jobs:
        this one stops — as it does while the ends wait for more (:meth:`_gathering`) — unless
        round trips dominate and the store lets a second step overlap
        (``_lane2``) and the ends of half the slots wait: then it goes out beside that step,
        claiming for the slots whose ends it records and any free slot the other step does not
        claim for (both count under ``_lock``: together they never claim more than the
        free slots)."""
        lock = self._step_lock
        if self._gathering() > 0:
            return None  # its end waits for more: the main loop or a later end records it
        if lock.acquire(blocking=False):
            return lock
        second = self._lane2
        if (
            second is not None
            and self._dear()
            and not self._inline_seen
            and len(self._ended) >= self._lane_min
            and second.acquire(blocking=False)
        ):
            return second
        if self._step_holder != 0 and lock.acquire():
            return lock
        return None

    def _bell(self, waiter: Waiter) -> None:
        try:
            self._ring_loop(waiter)
        finally:
            waiter.close()

    def _ring_loop(self, waiter: Waiter) -> None:
        while not self._stopping.is_set():
            try:
                woken = waiter.wait(self.settings.poll_interval)
            except (OpsJobsError, OSError) as exc:
                log.warning("wake-up channel failed: %s", exc)
                woken = self._stopping.wait(1.0) or True
            self._recheck_due = True  # a ring may be a retry queued; a timeout, a fallback
            if woken:
                self._wake.set()
                if self.busy:
                    self._beat_soon = True  # the ring may be a cancel of one of our jobs
                    self._tick.set()

    # -- dispatch -------------------------------------------------------------------------
    def _dispatch(self, job: Job, *, here: bool = False, counted: bool = False) -> _Running | None:
        """Start ``job``: inline on this thread, thread/process on the pool; with ``here`` a
        pool job is made ready and returned for the calling pool thread to run. ``counted``:
        the step that claimed it already counted its slot in ``_busy``."""
        mode = job.spec.mode
        try:
            kind = self.kinds.get(job.spec.kind)
            if mode not in kind.modes:
                kind.check_mode(mode)  # raises, with the message
        except OpsJobsError as exc:
            self._finish(job, Finish(JobState.FAILED, error=str(exc)))
            if counted and mode is not Mode.INLINE:
                with self._lock:
                    self._busy -= 1
            return None
        timeout = job.spec.timeout
        ctx = JobContext(
            job.id,
            worker_id=self.id,
            host=self.host,
            emit_metric=self._emit_metric,
            store=self.store,
            settings=self.settings,
        )
        rec = _Running(job, ctx, kind, time.time() + timeout if timeout else None)
        with self._lock:
            self._running[job.id] = rec
            if mode is not Mode.INLINE and not counted:
                self._busy += 1
        if rec.deadline is not None:
            self._tick.set()  # the supervisor learns the new deadline
        if mode is Mode.INLINE:
            if self._inline_executor is not None:
                self._inline_executor(functools.partial(self._guarded, self._run_in_process, rec))
            else:
                self._guarded(self._run_in_process, rec)
        elif here:
            return rec
        else:
            self._pool.submit(self._work, rec)
        return None

    def _guarded(self, target: Callable[[_Running], None], rec: _Running) -> None:
        try:
            target(rec)
        except Exception as exc:  # a bug of ours must not leave the job running
            log.exception("job %s crashed the runner", rec.job.id)
            self._settle(
                rec, Finish(JobState.FAILED, error=f"runner error: {describe_exception(exc)}")
            )
        except BaseException:  # Ctrl-C during an inline job: record it, then stop the worker
            self._settle(
                rec,
                Finish(
                    JobState.FAILED,
                    output=self._output_of(rec),
                    error="interrupted: the worker was stopped",
                ),
                record=True,
            )
            raise
        finally:
            if rec.end is None:
                self._release(rec)

    def _release(self, rec: _Running) -> None:
        """Forget a job whose end was recorded elsewhere (the supervisor's timeout, a cancel):
        its slot is free again. Queued ends are released by the step that records them."""
        with self._lock:
            # a retried job's next attempt may already run here under the same id: keep it
            if self._running.get(rec.job.id) is rec:
                del self._running[rec.job.id]
            if rec.job.mode is not Mode.INLINE:
                self._busy -= 1
        if threading.get_ident() != self._loop_thread:
            self._wake.set()  # the main loop may be asleep; on its own thread it is not

    def _log_path(self, job: Job) -> Path:
        return Path(self._logs_dir, f"{job.id}.log")

    def _run_in_process(self, rec: _Running) -> None:
        assert self._router is not None
        job = rec.job
        log_path = f"{self._logs_dir}{os.sep}{job.id}.log"  # no pathlib on the hot path
        if job.attempt > 1:
            Path(log_path).unlink(missing_ok=True)  # an earlier attempt's log is not this one's
        rec.sink = OutputSink(log_path, self._output_cap)
        outcome = run_in_process(rec.kind, job, rec.ctx, rec.sink, self._router)
        # the peak of the process that ran it (shared with the other jobs it ran); built
        # directly: NamedTuple._replace cost twice as much on this hot path
        o = outcome
        self._settle(rec, Finish(o[0], o[1], o[2], o[3], o[4], _peak_self()))

    def _run_child(self, rec: _Running) -> None:
        job = rec.job
        kind = rec.kind
        job_dir = self.settings.jobs_dir / job.id
        log_path = self._log_path(job)
        try:
            with rec.lock:
                if rec.stop_state is None:
                    rec.proc = proc_runner.spawn(
                        kind, job, job_dir, log_path, self.id, self.host, self.settings
                    )
        except OSError as exc:
            self._settle(rec, Finish(JobState.FAILED, error=f"cannot start: {exc}"))
            return
        if rec.proc is None:
            return
        returncode, peak = proc_runner.wait_peak(rec.proc)
        outcome, metrics, problem = proc_runner.collect(
            job, returncode, job_dir, log_path, self.settings.output_cap
        )
        outcome = outcome._replace(peak_rss=peak)
        for m in metrics:
            self._emit_metric(
                Metric(
                    m.name,
                    m.value,
                    m.labels,
                    m.at,
                    job_id=job.id,
                    worker_id=self.id,
                    host=self.host,
                )
            )
        if problem:
            log.warning("job %s: %s", job.id, problem)
        if rec.stop_state is JobState.FAILED:  # the worker's shutdown stopped it
            detail = outcome.error or f"exit code {returncode}"
            outcome = Finish(
                JobState.FAILED,
                output=outcome.output,
                error=f"{_STOPPED} ({detail})",
                exit_code=returncode,
                result_json=outcome.result_json,
                peak_rss=peak,
            )
        elif rec.stop_state is not None:
            reason = "timed out" if rec.stop_state is JobState.TIMED_OUT else "cancelled"
            outcome = Finish(
                rec.stop_state,
                output=outcome.output,
                error=f"{reason}; process tree killed",
                exit_code=returncode,
                result_json=outcome.result_json,
                peak_rss=peak,
            )
        self._settle(rec, outcome)

    def _emit_metric(self, metric: Metric) -> None:
        self.store.record_metrics([metric])
        self.alerts.observe(metric)  # only queued: alerts never hold up the job

    def _settle(self, rec: _Running, outcome: Finish, *, record: bool = False) -> None:
        """Decide the end of a job once. A job ending on its own queues its end; the next step
        (its pool thread's own, or the main loop's) records it with the next claim and any
        other ends waiting, in one store transaction. ``record`` (the supervisor's timeouts,
        shutdown) writes it now, and so does a job thread once the worker is stopping."""
        on_loop = threading.get_ident() == self._loop_thread
        direct = record or (not on_loop and self._stopping.is_set())
        retry_at = None
        # the retry policy; a job the worker's own stop ended is not retried here
        if (
            outcome[0] is not JobState.SUCCEEDED
            and rec.job.spec.retries
            and not self._stopping.is_set()
        ):
            retry_at = next_attempt_at(rec.job, outcome[0], now=time.time())
        with rec.lock:
            if rec.settled:
                return
            rec.settled = True
            if not direct and retry_at is None:
                rec.end = End(rec.job.id, rec.job.attempt, outcome, time.time())
                self._ended.append(rec)
        if retry_at is not None:
            self._finish(rec.job, outcome, run_after=retry_at)
        elif direct:
            self._finish(rec.job, outcome)
        elif not on_loop and rec.job.spec.mode is Mode.INLINE:
            self._wake.set()  # run by the inline executor: the main loop records it
        # else: the main loop records it next, or the pool thread's own step (_work)

    def _finish(
        self,
        job: Job,
        outcome: Finish,
        *,
        at: float | None = None,
        run_after: float | None = None,
    ) -> None:
        """Record the end of ``job`` (with ``run_after``: the end of its attempt, and the job
        queued again for then); while the store is unreachable (a lost connection, a
        database restart) retry with a growing pause until it answers or the worker stops —
        an end never recorded would leave the job running until its lease lapsed."""
        now, pause = (time.time() if at is None else at), 0.05
        while True:
            try:
                if run_after is None:
                    accepted = self.store.finish(job.id, self.id, job.attempt, outcome, now=now)
                else:
                    accepted = self.store.requeue_after(
                        job.id,
                        self.id,
                        job.attempt,
                        outcome,
                        now=now,
                        run_after=run_after,
                        note=_retry_note(job, outcome, run_after),
                    )
                break
            except OpsJobsError as exc:
                if self._stopping.is_set():
                    log.error("could not record the end of job %s: %s", job.id, exc)
                    return
                log.warning("could not record the end of job %s, retrying: %s", job.id, exc)
            self._stopping.wait(pause)
            pause = min(pause * 2, 2.0)
        if accepted:
            self.notices.observe(job.id, job.attempt)
            if run_after is not None:
                # this worker queued the retry: it asks for the next due time itself rather
                # than wait for its own notification to come back (once on PostgreSQL a retry
                # waited out the whole 60 s poll; the lost wake-up was not pinned down)
                self._recheck_due = True
                self._wake.set()
        else:
            self._refused(job)

    def _drain(self, seconds: float, *, children: bool = False) -> None:
        """Record ends as they come, for up to ``seconds``, until no child's end is left
        unrecorded and (unless ``children``: only those) no job is left undecided."""
        deadline = time.time() + seconds
        while time.time() < deadline:
            with self._lock:
                waiting = any(
                    r.proc is not None or not (children or r.settled)
                    for r in self._running.values()
                )
            if not waiting:
                break
            self._wake.wait(0.05)
            self._wake.clear()
            self._flush_ends()

    def _output_of(self, rec: _Running) -> str:
        """What a job printed so far: its sink's capped text, or a child's log file."""
        if rec.sink is not None:
            return rec.sink.text()
        return read_capped(self._log_path(rec.job), self._output_cap)

    @staticmethod
    def _refused(job: Job) -> None:
        log.info("job %s attempt %s ended after it was taken from this worker", job.id, job.attempt)

    # -- supervision ----------------------------------------------------------------------
    def _supervise(self) -> None:
        interval = self.lease / 3
        next_beat = last_beat = 0.0
        next_reap = time.time() + self.lease
        while not self._stopping.is_set():
            self._tick.clear()
            now = time.time()
            if now >= next_beat or (self._beat_soon and now - last_beat >= 0.1):
                self._beat_soon = False
                self._beat(now)
                last_beat, next_beat = now, now + interval
                if now >= next_reap:  # a worker on this host may have died meanwhile
                    next_reap = now + self.lease
                    reaper.reap_orphans()
            now = time.time()
            self._enforce_deadlines(now)
            wait = next_beat - now
            if self._beat_soon:  # asked for a beat but the last one was too recent
                wait = min(wait, last_beat + 0.1 - now)
            with self._lock:
                deadlines = [
                    r.deadline for r in self._running.values() if r.deadline and not r.settled
                ]
            if deadlines:
                wait = min(wait, min(deadlines) - now)
            self._tick.wait(max(wait, 0.01))

    def _beat(self, now: float) -> None:
        with self._lock:
            held = [job_id for job_id, r in self._running.items() if not r.settled]
        try:
            stop = self.store.heartbeat(self.id, held, now=now, lease=self.lease)
            recovered = self.store.recover_expired(now=now)
        except OpsJobsError as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        for r in recovered:
            if not r.requeued:
                self.notices.observe(r.job_id)  # marked lost: its last attempt
            log.warning(
                "job %s of worker %s lost its lease: %s",
                r.job_id,
                r.worker_id,
                "re-queued" if r.requeued else "marked lost",
            )
        for job_id in stop:
            self._stop_job(job_id)

    def _stop_job(self, job_id: str) -> None:
        with self._lock:
            rec = self._running.get(job_id)
        if rec is None:
            return
        try:
            current = self.store.get(job_id)
        except OpsJobsError:
            current = None
        rec.ctx.cancel()
        if (
            current is not None
            and current.state is JobState.RUNNING
            and current.worker_id == self.id
        ):
            state = JobState.CANCELLED  # a process job whose cancel was requested
        else:
            state = current.state if current is not None else JobState.CANCELLED
            rec.settled = True  # the store already has its final (or re-queued) state
        self._kill(rec, state)

    def _enforce_deadlines(self, now: float) -> None:
        with self._lock:
            due = [
                r
                for r in self._running.values()
                if r.deadline and r.deadline <= now and not r.settled
            ]
        for rec in due:
            rec.ctx.cancel()
            if rec.proc is not None or rec.job.mode is Mode.PROCESS:
                self._kill(rec, JobState.TIMED_OUT)
            else:
                # inline/thread code cannot be killed: it is told (ctx.cancelled) and the job
                # is marked at the deadline; its late completion is then refused by the store.
                output = rec.sink.text() if rec.sink is not None else ""
                self._settle(
                    rec,
                    Finish(
                        JobState.TIMED_OUT,
                        output=output,
                        error=f"timed out after {rec.job.spec.timeout:g} s",
                    ),
                    record=True,
                )

    def _kill(self, rec: _Running, state: JobState) -> None:
        with rec.lock:
            if rec.stop_state is None:
                rec.stop_state = state
            proc = rec.proc
        if proc is not None and proc.poll() is None:
            threading.Thread(target=proc_runner.kill_tree, args=(proc.pid,), daemon=True).start()

    def _shutdown(self, grace: float) -> None:
        """Record the ends that are waiting, tell cooperative jobs to stop, give every job
        ``grace`` seconds; then send each child left SIGTERM (it says where it stopped), after
        ``_STOP_GRACE`` kill the child trees, and record every job still without an end as
        ``failed`` with the output it printed. Nothing stays ``running``; a job the shutdown
        stopped is never a success, whatever its child's exit status."""
        self._flush_ends()
        with self._lock:
            for rec in self._running.values():
                if rec.proc is None:
                    rec.ctx.cancel()
        self._drain(grace)
        with self._lock:
            left = [r for r in self._running.values() if not r.settled]
        for rec in left:
            rec.ctx.cancel()
            with rec.lock:
                if rec.stop_state is None:
                    rec.stop_state = JobState.FAILED  # _run_child records the shutdown
                proc = rec.proc
            if proc is not None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signal.SIGTERM)  # the child alone, not yet its tree
        self._drain(_STOP_GRACE)  # a notebook's thread, too, is ending its kernel by now
        for rec in left:
            if rec.proc is not None and rec.proc.poll() is None:
                proc_runner.kill_tree(rec.proc.pid)
        self._drain(_STOP_GRACE, children=True)  # pool threads record their ends and output
        for rec in left:
            if rec.settled:
                continue  # recorded, or its end waits in the queue flushed below
            self._settle(
                rec,
                Finish(JobState.FAILED, output=self._output_of(rec), error=_STOPPED),
                record=True,
            )
        self._flush_ends()
        while self._handoff:  # claimed for the main loop, never started
            self._finish(
                self._handoff.popleft(),
                Finish(JobState.FAILED, error="the worker stopped before it started the job"),
            )
        self._pool.shutdown()


class WorkerHandle:
    """A worker running on a background thread of this process (see :func:`embed`)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._thread = threading.Thread(target=worker.run, name="opsjobs-worker", daemon=True)
        self._thread.start()

    @property
    def id(self) -> str:
        return self.worker.id

    @property
    def queue(self) -> str:
        """The private queue that targets this process exactly."""
        return f"worker:{self.worker.id}"

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the worker and wait for its thread."""
        self.worker.stop()
        self._thread.join(timeout)

    def __enter__(self) -> WorkerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def embed(
    queues: Sequence[str] = ("default",),
    threads: int = 4,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    memory_analysis: float | str | None = None,
    name: str | None = None,
) -> WorkerHandle:
    """Start a worker thread inside this program; returns a handle with ``stop()``.

    The worker also listens on ``worker:<id>`` so a job can target this very process — this is
    how the live memory analyzer looks inside a running service. With ``memory_analysis``
    (an interval such as ``"30m"``) it creates or re-aims the schedule
    ``memory-analysis@<host>:<name or queues>`` that analyses this process (see
    :mod:`opsjobs.analyzer.schedule`).
    """
    settings = settings or Settings.from_env()
    own_store = store is None
    if store is None:
        from opsjobs.store import open_store

        store = open_store(settings.store_url, runtime_dir=settings.runtime_dir, settings=settings)
    try:
        worker = Worker(store, settings, queues=queues, threads=threads)
        if memory_analysis is not None:
            from opsjobs.analyzer.schedule import opt_in
            from opsjobs.client import Client

            key = name if name is not None else worker.queues
            opt_in(
                Client(store, settings), worker.id, host=worker.host, key=key, every=memory_analysis
            )
    except BaseException:
        if own_store:
            store.close()
        raise
    return WorkerHandle(worker)
