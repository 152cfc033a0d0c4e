"""Benchmark: opsjobs.analyzer.analyze() against pympler on a family of ~1 M-object heaps.

The shapes are ``items`` (125,000 ``Item`` instances, the original bench heap) and those of
``bench/heap_shapes.py``. Each measurement runs in its own child process (same synthetic
heap) so one tool's leftovers cannot pollute the other's figures:

* ``ours``    wall and CPU time of the default ``analyze()``, peak extra memory (VmHWM after
  resetting it), RSS kept afterwards;
* ``pympler`` the same for ``muppy.get_objects()`` + ``summary.summarize()``;
* ``ticker``  a 1 ms ticker thread runs during ``analyze()`` and, in the same child, during a
  plain Python loop of the same length; the ratio of their p99 gaps shows GIL hold times;
* ``sizes``   per-type counts and bytes of the ``items`` heap's types as ours and pympler
  report them, beside the truth: ``sys.getsizeof`` summed over every object reachable from
  the gc-tracked ones (each object once). The table says which tool is right where they
  disagree.

Usage: ``PYTHONPATH=. python bench/analyzer.py [--shape NAME ...] [--repeat 2]`` (Linux;
pympler needed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any

import heap_shapes

MiB = 1024 * 1024


class Item:
    def __init__(self, i: int) -> None:
        self.name = "".join(["item-", str(i)])
        self.value = i * 1000
        self.tags = [i * 3, i * 5]
        self.meta = {"k": i * 7}


def build(items: int) -> list[Item]:
    return [Item(i) for i in range(items)]


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def _measure(run: Any) -> dict[str, float]:
    gc.disable()  # neither tool collects (pympler does once, inside run)
    rss0 = _status("VmRSS")
    _reset_peak()
    c0 = time.process_time()
    t0 = time.perf_counter()
    result = run()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = _status("VmHWM")
    del result
    time.sleep(0.05)
    rss1 = _status("VmRSS")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_extra_mib": (peak - rss0) / MiB,
        "rss_kept_mib": (rss1 - rss0) / MiB,
    }


def _ticks(run: Any) -> tuple[list[float], float]:
    """Gaps (s) a 1 ms ticker thread saw while ``run()`` ran on this thread, and run's wall."""
    gaps: list[float] = []
    stop = threading.Event()

    def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=tick)
    thread.start()
    time.sleep(0.05)
    gaps.clear()
    t0 = time.perf_counter()
    run()
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    return gaps, wall


def _plain_loop(seconds: float) -> None:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1


def _p99(gaps: list[float]) -> float:
    gaps = sorted(gaps)
    return gaps[int(0.99 * (len(gaps) - 1))] * 1000


def _build(shape: str, items: int, scale: float) -> None:
    global HEAP
    if shape == "items":
        HEAP = build(items)
    else:
        heap_shapes.build(shape, scale)


def child(kind: str, items: int, shape: str = "items", scale: float = 1.0) -> dict[str, Any]:
    _build(shape, items, scale)
    from opsjobs.analyzer import analyze

    analyze(top_count=1, time_budget=0.001)  # import and first-use costs out of the figures
    info: dict[str, Any] = {"tracked": len(gc.get_objects())}
    if kind == "ours":
        info.update(_measure(lambda: analyze()))
        report = analyze()
        info["objects"] = report.heap.objects
        info["coverage"] = report.coverage.fraction
        info["elapsed_s"] = report.coverage.elapsed_s
        info["cut_short"] = report.coverage.cut_short
        tight = analyze(time_budget=TIGHT_BUDGET)
        info["tight_s"] = tight.coverage.elapsed_s
        info["tight_cut"] = tight.coverage.cut_short
    elif kind == "ours-deep":
        info.update(_measure(lambda: analyze(deep=True, time_budget=60)))
    elif kind == "pympler":
        from pympler import muppy, summary

        def run() -> object:
            objs = muppy.get_objects()
            rows = summary.summarize(objs)
            info["objects"] = len(objs)
            del objs
            return rows

        info.update(_measure(run))
    elif kind == "ticker":
        # the same ticker beside analyze() and beside a plain Python loop of the same length,
        # alternated three times; the gaps of each side are pooled
        ours: list[float] = []
        plain: list[float] = []
        walls = []
        for _ in range(3):
            gaps, wall = _ticks(analyze)
            ours += gaps
            walls.append(wall)
            plain += _ticks(lambda w=wall: _plain_loop(max(w, 0.2)))[0]  # type: ignore[misc]
        info["wall_s"] = min(walls)
        info["ticks"] = len(ours)
        info["gap_p99_ms"] = _p99(ours)
        info["gap_max_ms"] = max(ours) * 1000
        info["plain_p99_ms"] = _p99(plain)
        info["plain_max_ms"] = max(plain) * 1000
    elif kind == "sizes":
        info["sizes"] = sizes()
    return info


SIZE_TYPES = ("Item", "str", "int", "list", "dict")


CODE_PARTS = (
    "co_consts",
    "co_names",
    "co_varnames",
    "co_freevars",
    "co_cellvars",
    "co_filename",
    "co_name",
    "co_qualname",
    "co_code",
    "co_linetable",
    "co_exceptiontable",
    "co_lnotab",
)


def _truth() -> dict[str, list[int]]:
    """type name → [count, bytes]: sys.getsizeof over everything reachable, each object once."""
    seen: set[int] = set()
    out: dict[str, list[int]] = {}
    todo = list(gc.get_objects())
    seen.update((id(seen), id(out), id(todo)))  # the walk's own state is not the heap
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        row = out.setdefault(type(obj).__name__, [0, 0])
        row[0] += 1
        row[1] += sys.getsizeof(obj)
        if not isinstance(obj, types.ModuleType):  # its namespace is a tracked dict anyway;
            todo.extend(gc.get_referents(obj))  # 3.12.0-3.12.5 hand out freed objects (gh-122695)
        if isinstance(obj, types.CodeType):  # gc does not traverse code objects
            todo.extend(getattr(obj, a) for a in CODE_PARTS if hasattr(obj, a))
    return out


def sizes() -> dict[str, dict[str, list[int]]]:
    """Truth first, then each tool, keeping only the picked rows: what one measurement leaves
    alive (a report, pympler's rows) is not counted by the next."""
    from pympler import muppy, summary

    from opsjobs.analyzer import analyze

    def pick(table: dict[str, list[int]]) -> dict[str, list[int]]:
        return {t: table.get(t, [0, 0]) for t in SIZE_TYPES}

    truth = pick(_truth())
    gc.collect()
    rows = analyze(time_budget=60).heap.types
    ours = pick({r.type.rsplit(".", 1)[-1]: [r.count, r.bytes] for r in rows})
    del rows
    gc.collect()
    table = summary.summarize(muppy.get_objects())
    pym = pick({str(n).rsplit(".", 1)[-1].strip("<>' "): [c, s] for n, c, s in table})
    return {"ours": ours, "pympler": pym, "truth": truth}


def print_sizes(table: dict[str, dict[str, list[int]]]) -> None:
    print("sizes of the heap's types (count / MiB); truth: sys.getsizeof over all reachable")
    print(f"{'type':8}{'ours':>22}{'pympler':>22}{'truth':>22}  closer to truth")
    for t in SIZE_TYPES:
        cells = [table[k][t] for k in ("ours", "pympler", "truth")]
        text = "".join(f"{c:>12,}{b / MiB:>8.2f} MiB"[-22:].rjust(22) for c, b in cells)
        err = [abs(cells[i][1] - cells[2][1]) for i in (0, 1)]
        verdict = "same" if err[0] == err[1] else ("ours" if err[0] < err[1] else "pympler")
        print(f"{t:8}{text}  {verdict}")


HEAP: list[Item] = []


KINDS = ("ours", "pympler", "ticker")
#: A budget every shape's analysis overruns: how far past it does the analysis stop?
TIGHT_BUDGET = 0.1


def _run_child(kind: str, shape: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", kind, "--items", str(args.items)]
    cmd += ["--shape", shape, "--scale", str(args.scale)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure_shape(shape: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Best (by wall time) of ``--repeat`` children of each kind, run side by side."""
    res: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeat):
        for kind in KINDS + (("ours-deep",) if args.deep else ()):
            got = _run_child(kind, shape, args)
            best = res.get(kind)
            if best is None or got["wall_s"] < best["wall_s"]:
                res[kind] = got
    return res


def _met(ok: bool) -> str:
    return "" if ok else " !"


def print_row(shape: str, res: dict[str, dict[str, Any]]) -> None:
    ours, pym, tick = res["ours"], res["pympler"], res["ticker"]
    wall_x = pym["wall_s"] / ours["wall_s"]
    cpu_x = pym["cpu_s"] / ours["cpu_s"]
    # pympler lists the tracked objects and one level of their referents only (and neither a
    # str-keyed dict's keys): per object counted, the comparison is of equal work
    per_obj_x = cpu_x * ours["objects"] / pym["objects"]
    tick_x = tick["gap_p99_ms"] / tick["plain_p99_ms"]
    cells = [
        f"{shape:16}",
        f"{ours['objects'] / 1e6:6.2f}M",
        f"{pym['objects'] / 1e6:6.2f}M",
        f"{ours['wall_s']:7.3f}",
        f"{pym['wall_s']:7.3f}",
        f"{wall_x:6.1f}x{_met(wall_x >= 8):2}",
        f"{cpu_x:6.1f}x{_met(cpu_x >= 8):2}",
        f"{per_obj_x:6.1f}x",
        f"{ours['peak_extra_mib']:6.1f}{_met(ours['peak_extra_mib'] <= 25):2}",
        f"{ours['rss_kept_mib']:6.1f}{_met(ours['rss_kept_mib'] <= 2):2}",
        f"{tick['gap_p99_ms']:6.1f}/{tick['plain_p99_ms']:4.1f}",
        f"{tick_x:5.2f}x{_met(tick_x <= 2):2}",
        f"{ours['elapsed_s']:6.2f}{'' if not ours['cut_short'] else ' cut'}",
        f"{ours['tight_s']:6.3f}{' cut' if ours['tight_cut'] else ''}",
    ]
    if "ours-deep" in res:
        deep = res["ours-deep"]
        cells.append(f"  deep {deep['wall_s']:.3f} s {deep['peak_extra_mib']:.1f} MiB")
    print(" ".join(cells), flush=True)


HEADER = (
    f"{'shape':16} {'objects':>7} {'pym obj':>7} {'ours s':>7} {'pympl s':>7} {'wall':>9} "
    f"{'CPU':>9} {'CPU/obj':>7} "
    f"{'peakMiB':>8} {'keptMiB':>8} {'p99 ms ours/plain':>11} {'ticker':>8} {'10 s':>6} "
    f"{'0.1 s':>8}"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--items", type=int, default=125_000, help="Item instances (~8 objects each)"
    )
    parser.add_argument("--child", choices=["ours", "ours-deep", "pympler", "ticker", "sizes"])
    parser.add_argument(
        "--shape",
        action="append",
        choices=["items", *heap_shapes.SHAPES],
        help="heap shape(s) to measure (default: all); repeat the option for several",
    )
    parser.add_argument("--scale", type=float, default=1.0, help="size of the shapes (1 = ~1 M)")
    parser.add_argument(
        "--repeat", type=int, default=2, help="children per measurement; the best one is shown"
    )
    parser.add_argument("--deep", action="store_true", help="also measure deep mode")
    parser.add_argument("--no-sizes", action="store_true", help="skip the per-type sizes table")
    args = parser.parse_args()
    if args.child:
        shape = (args.shape or ["items"])[0]
        print(json.dumps(child(args.child, args.items, shape, args.scale)))
        return
    shapes = args.shape or ["items", *heap_shapes.SHAPES]
    load0 = os.getloadavg()
    print(f"Python {platform.python_version()}; best of {args.repeat} runs per cell")
    print("goals: wall and CPU >= 8x pympler, peak extra <= 25 MiB, RSS kept <= 2 MiB,")
    print("ticker p99 <= 2x the same ticker beside a plain loop; ! marks a missed goal;")
    print("10 s / 0.1 s: seconds analyze() took with time_budget 10 s (the default) and 0.1 s;")
    print("'cut' when the budget cut it short (the report then says so); pym obj: objects")
    print("pympler counted; CPU/obj: the CPU ratio per object counted by each tool")
    print(HEADER)
    for shape in shapes:
        print_row(shape, measure_shape(shape, args))
    load1 = os.getloadavg()
    print(
        f"load average before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
        f"after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}"
    )
    if not args.no_sizes:
        print_sizes(_run_child("sizes", "items", args)["sizes"])


if __name__ == "__main__":
    main()
