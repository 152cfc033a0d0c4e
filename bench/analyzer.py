"""Benchmark: opsjobs.analyzer.analyze() against pympler on a ~1 M-object heap.

Each measurement runs in its own child process (same synthetic heap) so one tool's
leftovers cannot pollute the other's figures:

* ``ours``    wall time, peak extra memory (VmHWM after resetting it), RSS kept afterwards;
* ``pympler`` the same for ``muppy.get_objects()`` + ``summary.summarize()``;
* ``ticker``  a 1 ms ticker thread runs during ``analyze()``; its gaps show GIL hold times;
* ``sizes``   per-type counts and bytes of the heap's types as ours and pympler report them,
  beside the truth: ``sys.getsizeof`` summed over every object reachable from the gc-tracked
  ones (each object once). The table says which tool is right where they disagree.

Usage: ``PYTHONPATH=. python bench/analyzer.py [--items 125000]`` (Linux; pympler needed).
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


def child(kind: str, items: int) -> dict[str, Any]:
    global HEAP
    HEAP = build(items)
    from opsjobs.analyzer import analyze

    analyze(top_count=1, time_budget=0.001)  # import and first-use costs out of the figures
    info: dict[str, Any] = {"tracked": len(gc.get_objects())}
    if kind == "ours":
        info.update(_measure(lambda: analyze(time_budget=60)))
        report = analyze(time_budget=60)
        info["objects"] = report.heap.objects
        info["coverage"] = report.coverage.fraction
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
        analyze(time_budget=60)
        info["wall_s"] = time.perf_counter() - t0
        stop.set()
        thread.join()
        gaps.sort()
        info["ticks"] = len(gaps)
        info["gap_p99_ms"] = gaps[int(0.99 * (len(gaps) - 1))] * 1000
        info["gap_max_ms"] = gaps[-1] * 1000
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
        todo.extend(gc.get_referents(obj))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--items", type=int, default=125_000, help="Item instances (~8 objects each)"
    )
    parser.add_argument("--child", choices=["ours", "ours-deep", "pympler", "ticker", "sizes"])
    parser.add_argument(
        "--repeat", type=int, default=3, help="children per measurement; the best one is shown"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.items)))
        return
    res: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeat):
        for kind in ("ours", "pympler", "ticker", "ours-deep"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", kind, "--items", str(args.items)],
                capture_output=True,
                text=True,
                check=True,
            )
            got = json.loads(out.stdout.strip().splitlines()[-1])
            best = res.get(kind)
            if best is None or got["wall_s"] < best["wall_s"]:
                res[kind] = got
    sized = subprocess.run(
        [sys.executable, __file__, "--child", "sizes", "--items", str(args.items)],
        capture_output=True,
        text=True,
        check=True,
    )
    load = os.getloadavg()
    ours, pym, tick, deep = res["ours"], res["pympler"], res["ticker"], res["ours-deep"]
    print(f"Python {platform.python_version()}")
    print(
        f"best of {args.repeat} runs each; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"heap: {ours['objects']:,} objects walked by ours ({ours['tracked']:,} gc-tracked), "
        f"{pym['objects']:,} listed by pympler"
    )
    print(f"{'':24}{'ours':>10}{'pympler':>10}{'ratio':>8}{'target':>12}")
    print(
        f"{'wall time (s)':24}{ours['wall_s']:10.3f}{pym['wall_s']:10.3f}"
        f"{pym['wall_s'] / ours['wall_s']:7.1f}x{'>= 8x':>12}"
    )
    print(
        f"{'CPU time (s)':24}{ours['cpu_s']:10.3f}{pym['cpu_s']:10.3f}"
        f"{pym['cpu_s'] / ours['cpu_s']:7.1f}x"
    )
    print(
        f"{'peak extra (MiB)':24}{ours['peak_extra_mib']:10.1f}{pym['peak_extra_mib']:10.1f}"
        f"{'':8}{'<= 25':>12}"
    )
    print(
        f"{'RSS kept (MiB)':24}{ours['rss_kept_mib']:10.1f}{pym['rss_kept_mib']:10.1f}"
        f"{'':8}{'<= 2':>12}"
    )
    print(
        f"ticker during analyze: {tick['ticks']} ticks, gap p99 {tick['gap_p99_ms']:.2f} ms "
        f"(target <= 10), max {tick['gap_max_ms']:.2f} ms; analyze took {tick['wall_s']:.3f} s"
    )
    print(
        f"deep mode: {deep['wall_s']:.3f} s, peak extra {deep['peak_extra_mib']:.1f} MiB, "
        f"RSS kept {deep['rss_kept_mib']:.1f} MiB"
    )
    print_sizes(json.loads(sized.stdout.strip().splitlines()[-1])["sizes"])


if __name__ == "__main__":
    main()
