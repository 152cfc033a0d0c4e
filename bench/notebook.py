"""Notebook jobs: submit -> finished through opsjobs vs the bare papermill CLI, side by side.

Usage::

    python bench/notebook.py [--reps 9] [--cells 1]

One notebook of ``--cells`` trivial code cells (default one: ``x = 1``) is run ``--reps`` times
by each contender, interleaved (papermill, opsjobs thread, opsjobs process, papermill, ...) so
background load hits all of them alike; one untimed warm-up run each comes first.

* **papermill CLI**: ``papermill in.ipynb out.ipynb --no-progress-bar -k python3``, timed from
  starting the command to its exit.
* **opsjobs thread / process**: ``opsjobs submit``-equivalent ``Client.submit`` of a ``notebook``
  job to a standalone ``opsjobs worker`` process (SQLite store, doorbell wake-up), timed from
  just before the submit to the job's ``finished_at`` as the store records it (same host clock).
  This includes what papermill does not do: the job's output, the provenance metadata and the
  HTML rendering of the executed notebook.

Everything lives in a temporary folder removed at the end; nothing is written into the repo.
"""

from __future__ import annotations

import sys

sys.dont_write_bytecode = True

import argparse  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402

import opsjobs  # noqa: E402
from opsjobs import JobState, Settings  # noqa: E402
from opsjobs.client import Client  # noqa: E402

TARGET_OVERHEAD = 0.10


def make_notebook(path: Path, cells: int) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(f"x{i} = {i}") for i in range(cells)]
    nbformat.write(nb, str(path))


def run_papermill(src: Path, out: Path) -> float:
    start = time.time()
    done = subprocess.run(
        ["papermill", str(src), str(out), "--no-progress-bar", "-k", "python3"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.time() - start
    if done.returncode != 0:
        raise SystemExit(f"papermill failed: {done.stderr[-2000:]}")
    return elapsed


def run_opsjobs(client: Client, src: Path, mode: str) -> float:
    start = time.time()
    job = client.submit("bench-notebook", kind="notebook", payload={"path": str(src)}, mode=mode)
    done = client.wait(job.id, timeout=300, interval=0.02)
    if done.state is not JobState.SUCCEEDED or done.finished_at is None:
        raise SystemExit(f"opsjobs {mode} job {done.state.value}: {done.error}\n{done.output}")
    return done.finished_at - start


def start_worker(settings: Settings, client: Client) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        OPSJOBS_DATA=str(settings.data_dir),
        OPSJOBS_STORE=settings.store_url,
        OPSJOBS_RUNTIME_DIR=str(settings.runtime_dir),
        PYTHONDONTWRITEBYTECODE="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsjobs", "worker", "--threads", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=settings.data_dir.parent,
    )
    deadline = time.time() + 30
    while not any(w.pid == proc.pid and w.alive(time.time()) for w in client.store.workers()):
        if time.time() > deadline or proc.poll() is not None:
            raise SystemExit("the opsjobs worker did not start")
        time.sleep(0.05)
    return proc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--cells", type=int, default=1)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="opsjobs-bench-nb-"))
    worker = None
    try:
        src = folder / "bench.ipynb"
        make_notebook(src, args.cells)
        settings = Settings(
            data_dir=folder / "data",
            store_url=f"sqlite://{folder / 'data' / 'opsjobs.db'}",
            runtime_dir=str(folder / "run"),
        )
        client = opsjobs.connect(settings=settings)
        worker = start_worker(settings, client)
        contenders = {
            "papermill CLI": lambda: run_papermill(src, folder / "pm-out.ipynb"),
            "opsjobs thread": lambda: run_opsjobs(client, src, "thread"),
            "opsjobs process": lambda: run_opsjobs(client, src, "process"),
        }
        times: dict[str, list[float]] = {name: [] for name in contenders}
        for fn in contenders.values():  # warm-up
            fn()
        for rep in range(args.reps):
            for name, fn in contenders.items():
                times[name].append(fn())
            print(f"rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{n} {t[-1]:.3f} s" for n, t in times.items()
            ), file=sys.stderr)  # fmt: skip
        client.close()
        report(times, args)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    base = statistics.median(times["papermill CLI"])
    print(
        f"\n{args.cells}-cell notebook, {args.reps} repetitions (medians); machine: "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}, papermill {_version('papermill')}\n"
    )
    print("| contender | median | min | max | overhead vs papermill CLI | target ≤ 10 % |")
    print("|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        overhead = (median - base) / base
        met = "-" if name == "papermill CLI" else ("yes" if overhead <= TARGET_OVERHEAD else "no")
        print(
            f"| {name} | {median:.3f} s | {min(values):.3f} s | {max(values):.3f} s | "
            f"{'-' if name == 'papermill CLI' else f'{overhead:+.1%}'} | {met} |"
        )


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    main()
