"""The notebook catalog: listing 200 notebooks with their titles and typed parameters.

Usage::

    python bench/catalog.py [--notebooks 200] [--params 8] [--reps 5]

``--notebooks`` notebooks of ``--params`` typed parameters each (with help comments), a title
cell and a few code cells are written to a temporary folder. Then :meth:`Catalog.list` (what
``GET /opsjobs/api/v1/notebooks``, ``opsjobs notebooks`` and the dashboard's Run notebook panel
call) is timed:

* **first**: a fresh :class:`~opsjobs.notebooks.Inspector` (empty cache) — every notebook read
  and its parameters cell inspected with papermill's translator; papermill already imported;
* **cached**: ``--reps`` more listings with the same inspector (the cache is keyed by path,
  mtime and size, so this is a ``stat`` per notebook);
* **one changed**: one notebook rewritten (new mtime), then a listing: only it is read again;
* **submit check**: ``check_parameters`` of one submit against a cached notebook.

Target: under 0.1 s per notebook after the first read. Nothing is written into the repo.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

from opsjobs.notebooks import Catalog, Inspector, check_parameters  # noqa: E402

TARGET_PER_NOTEBOOK = 0.1
_DEFAULTS = ("3", "0.5", "True", '"web"', "[1, 2]", '{"a": 1}', "None", "24 * 7")


def make_notebook(path: Path, index: int, params: int) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    lines = [
        f"p{i} = {_DEFAULTS[i % len(_DEFAULTS)]}    # help text of parameter {i}"
        for i in range(params)
    ]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Check number {index}\n\nWhat it does."),
        cell,
        *(nbformat.v4.new_code_cell(f"x{i} = p0 * {i}\nprint(x{i})") for i in range(6)),
    ]
    nbformat.write(nb, str(path))


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", type=int, default=200)
    parser.add_argument("--params", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    import papermill.translators  # noqa: F401 - imported before timing: a one-off cost

    with tempfile.TemporaryDirectory(prefix="opsjobs-catalog-") as tmp:
        folder = Path(tmp)
        for i in range(args.notebooks):
            make_notebook(folder / f"check_{i:04d}.ipynb", i, args.params)
        inspector = Inspector()
        catalog = Catalog(folder, inspector)
        found: list = []
        first = timed(lambda: found.extend(catalog.list()))
        assert len(found) == args.notebooks
        assert all(len(n.parameters) == args.params for n in found)
        cached = [timed(catalog.list) for _ in range(args.reps)]
        changed = folder / "check_0000.ipynb"
        make_notebook(changed, 0, args.params + 1)
        st = changed.stat()
        os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        one_changed = timed(catalog.list)
        assert len(catalog.info("check_0000.ipynb").parameters) == args.params + 1
        info = catalog.info("check_0001.ipynb")
        given = {f"p{i}": "1" if i % 8 in (0, 1) else None for i in range(args.params)}
        checks = [timed(lambda: check_parameters(info, given)) for _ in range(1000)]

    n = args.notebooks
    best_cached = min(cached)
    print(f"# notebook catalog: {n} notebooks x {args.params} parameters")
    print(f"# Python {platform.python_version()}, {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"first listing (empty cache):   {first:.3f} s  = {1000 * first / n:.2f} ms/notebook")
    print(
        f"cached listing (best of {args.reps}):   {best_cached:.4f} s  = "
        f"{1000 * best_cached / n:.3f} ms/notebook (median {statistics.median(cached):.4f} s)"
    )
    print(f"one notebook changed:          {one_changed:.4f} s")
    print(f"check_parameters of a submit:  {1e6 * statistics.median(checks):.1f} µs (median)")
    verdict = "met" if best_cached / n < TARGET_PER_NOTEBOOK else "NOT met"
    print(f"target < {TARGET_PER_NOTEBOOK} s per notebook after the first read: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
