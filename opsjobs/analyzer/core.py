"""``analyze()``: one bounded pass over the live heap of this process."""

from __future__ import annotations

import ctypes
import gc
import platform
from datetime import datetime
from typing import Any

from opsjobs.analyzer.gcstats import GcPauseRecorder, gc_stats
from opsjobs.analyzer.globals import GlobalRow, largest_globals, module_namespaces
from opsjobs.analyzer.heap import Census, run_census, type_name
from opsjobs.analyzer.holders import find_global_holders, find_holders
from opsjobs.analyzer.model import ContainerRow, Coverage, HeapSummary, Report
from opsjobs.analyzer.process import process_memory
from opsjobs.analyzer.recommend import CENSUS_STOPPED
from opsjobs.analyzer.strings import StringCounter
from opsjobs.analyzer.walk import Deadline, prompt_switches
from opsjobs.errors import ValidationError

__all__ = ["analyze"]

#: Types kept in the report (beyond ``top_count``) so that diffs see more than the top.
TYPE_ROWS = 300


def _containers(census: Census, holders: dict[int, list[str]]) -> list[ContainerRow]:
    rows = []
    for size, oid, obj in sorted(census.containers, key=lambda e: e[0], reverse=True):
        rows.append(ContainerRow(type_name(type(obj)), len(obj), size, holders.get(oid, [])))  # type: ignore[arg-type]
    return rows


def analyze(
    deep: bool = False,
    top_count: int = 20,
    time_budget: float = 10.0,
    *,
    pause_recorder: GcPauseRecorder | None = None,
    max_walk_objects: int = 2_000_000,
) -> Report:
    """Analyse the memory of the calling process, live, within a time budget.

    The heap is walked once in chunks (other threads keep running between chunks); the
    analysis never runs the garbage collector, never calls ``repr()`` on heap objects and
    keeps no reference to them in the report.

    Parameters
    ----------
    deep
        Also count duplicated strings (slower, uses memory proportional to distinct strings).
    top_count
        Rows kept in each "largest" table.
    time_budget
        Seconds the heap walk may take; phases left over are listed in ``coverage.skipped``.
    pause_recorder
        An installed :class:`GcPauseRecorder` whose pauses are summarised in the report.
    max_walk_objects
        Upper bound of objects one global's deep-size walk may visit.

    Returns
    -------
    Report
        Process figures, GC statistics, heap census, largest globals and containers,
        duplicate strings (deep mode) and coverage.
    """
    if top_count < 1:
        raise ValidationError("top_count must be at least 1")
    if not time_budget > 0:
        raise ValidationError("time_budget must be a positive number of seconds")
    with prompt_switches():  # the service's own threads wait ~1 ms for the GIL, not 5
        return _analyze(deep, top_count, time_budget, pause_recorder, max_walk_objects)


def _analyze(
    deep: bool,
    top_count: int,
    time_budget: float,
    pause_recorder: GcPauseRecorder | None,
    max_walk_objects: int,
) -> Report:
    started = datetime.now().astimezone()
    process = process_memory()
    gcs = gc_stats(pause_recorder)
    deadline = Deadline(time_budget)
    strings = StringCounter() if deep else None
    skipped: list[str] = []

    objs = gc.get_objects()
    # resident bytes / 16 (the smallest object) bound the objects a process holds; a census
    # that counts twice that (swapped-out pages aside) is going round something it cannot
    # see, and must stop rather than grow without bound
    census = run_census(objs, deadline, top_count, strings, max(process.rss // 8, 2_000_000))
    namespaces = module_namespaces()
    modules = {id(ns): name for name, ns in namespaces.items()}
    del objs  # drop our extra reference to every object before refcount-based walks
    targets = [obj for _, _, obj in census.containers]
    if deadline.hit:
        skipped.append("holders")
        holders: dict[int, list[str]] = {}
    else:
        own = {id(targets), id(census.containers), id(census.totals), id(namespaces)}
        own.update(map(id, census.containers))
        if deep:
            holders = find_holders(targets, modules, own)
        else:  # no long GIL hold in the default (scheduled) analysis
            holders = find_global_holders(targets, namespaces)
    del targets, modules
    containers = _containers(census, holders)
    census.containers = []
    # the string table references every distinct heap string: dropped before the globals are
    # sized, whose walk would take each of them for shared (and not scale sampled ones up)
    string_stats = strings.result(top_count) if strings is not None else None
    del strings
    if deadline.hit:
        skipped.append("globals")
        globals_rows: list[GlobalRow] = []
    else:
        globals_rows, complete = largest_globals(namespaces, deadline, top_count, max_walk_objects)
        if not complete:
            skipped.append("globals (partial)")
    del namespaces
    if census.overrun:
        skipped.insert(0, f"{CENSUS_STOPPED}: it counted more objects than the process holds")
    walked = census.tracked_walked
    coverage = Coverage(
        tracked_total=census.tracked_total,
        tracked_walked=walked,
        untracked_found=census.untracked_found,
        fraction=round(walked / census.tracked_total, 4) if census.tracked_total else 1.0,
        budget_s=time_budget,
        elapsed_s=round(deadline.elapsed(), 3),
        cut_short=deadline.hit or census.overrun,
        skipped=skipped,
    )
    heap = HeapSummary(
        objects=walked + census.untracked_found,
        bytes=census.total_bytes,
        types=census.type_rows(max(TYPE_ROWS, top_count)),
    )
    census.totals.clear()
    report = Report(
        pid=process.pid,
        analysed_at=started.isoformat(timespec="seconds"),
        python=platform.python_version(),
        deep=deep,
        top_count=top_count,
        process=process,
        gc=gcs,
        heap=heap,
        globals=globals_rows,
        containers=containers,
        strings=string_stats,
        coverage=coverage,
    )
    del census
    release_free_memory()
    return report


def release_free_memory() -> None:
    """Hand memory freed by the analysis back to the OS (glibc ``malloc_trim``).

    glibc raises its mmap threshold after a large block is freed, so the next big tables of an
    analysis come from the heap and stay mapped after they are freed; trimming returns them, so
    an analysis leaves no RSS behind. A no-op where glibc is absent.
    """
    global _TRIM
    if _TRIM is None:
        try:
            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM: Any = None
