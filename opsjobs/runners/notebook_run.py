"""One execution of a ``notebook`` job: papermill with a kernel that knows its job.

How the pieces fit:

* **Kernel environment.** papermill starts the kernel through our kernel-manager class, which
  launches it with the worker's environment plus ``OPSJOBS_JOB_ID`` and ``OPSJOBS_JOB_DIR``
  (a ``kernel`` folder inside the job's scratch folder) and ``OPSJOBS_DATA``/``OPSJOBS_STORE``
  of the worker's settings. So ``opsjobs.context()`` in a cell is a file-backed context, and
  ``opsjobs.connect()`` in a cell opens the worker's store.
* **Metrics and result.** What the kernel records lands in that folder; after every cell (and
  at the end) it is handed on through the job's own context — the worker's store in ``thread``
  mode, the child's files in ``process`` mode — so notebooks need no special path in the worker.
* **Stopping.** A watcher thread kills the kernel's process tree as soon as the job's context is
  cancelled (``thread`` mode timeout or cancel); in ``process`` mode the worker kills the child
  and its whole tree, kernel included.
* **Outputs.** papermill saves ``<data>/outputs/<job id>.ipynb`` after every cell, so a failed or
  killed run keeps its partial notebook; at the end we add provenance to its metadata and render
  the HTML beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from opsjobs.config import Settings
from opsjobs.context import ENV_JOB_DIR, ENV_JOB_ID, METRICS_FILE, RESULT_FILE, JobContext
from opsjobs.errors import ConfigError, NotebookExecutionError, RunnerError
from opsjobs.model import Metric
from opsjobs.runners import guard
from opsjobs.runners.process import kill_tree

__all__ = ["NotebookRun"]

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_INJECTED_TAG = "injected-parameters"


#: First imports of papermill/nbconvert from several job threads at once can see half-loaded
#: lazy modules (pygments' lexers were caught doing so); they are done under this lock.
_IMPORTS = threading.Lock()


def _papermill() -> Any:
    try:
        with _IMPORTS:
            import papermill
            from pygments.lexers import PythonLexer  # noqa: F401  (lazily loaded by pygments)
    except ImportError as exc:
        raise ConfigError(
            "notebook jobs need papermill and nbconvert: pip install 'opsjobs[notebook]'"
        ) from exc
    return papermill


def _first_line(source: str, width: int = 60) -> str:
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


#: How often a notebook job starts its kernel when it dies before answering (see
#: NotebookRun._start_again), and jupyter_client's words for that.
KERNEL_STARTS = 3
_DIED_UNANSWERED = "Kernel died before replying to kernel_info"

T = TypeVar("T")


def _in_fresh_loop(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``func`` in a fresh :mod:`contextvars` context and close the event loops it left
    there. nbclient runs its coroutines on a loop that jupyter_core keeps in a context variable
    of the calling thread; in a worker's pool thread that loop would otherwise outlive the job
    and leak its sockets when the thread ends."""
    context = contextvars.Context()
    try:
        return context.run(func, *args, **kwargs)
    finally:
        for value in context.values():
            if isinstance(value, asyncio.AbstractEventLoop) and not value.is_running():
                value.close()
        asyncio.set_event_loop(None)


class NotebookRun:
    """Execute one notebook job; :meth:`execute` returns a summary or raises."""

    def __init__(self, payload: Mapping[str, Any], ctx: JobContext) -> None:
        self.ctx = ctx
        self.source = Path(payload["path"])
        self.parameters: dict[str, Any] = dict(payload.get("parameters") or {})
        self.kernel_name: str | None = payload.get("kernel")
        self.cwd = str(payload.get("cwd") or self.source.parent)
        # In a process-mode child there is no worker settings object: the worker exported its
        # data folder and store to the child's environment, which is this edge's input.
        self.settings = ctx.settings or Settings.from_env()
        data = self.settings.data_dir.resolve()
        self.output = data / "outputs" / f"{ctx.job_id}.ipynb"
        self.html = self.output.with_suffix(".html")
        self.job_dir = data / "jobs" / ctx.job_id
        self.kernel_dir = self.job_dir / "kernel"
        self.out = sys.stdout  # the job's output: the log file, or this thread's sink
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._kernel_pid: int | None = None
        self._killed = False
        self._metrics_offset = 0
        self._code_cells: list[int] = []
        self._injected_at: int | None = None
        self._current: tuple[int, str] | None = None  # (index, first line) of the running cell
        self._exporter: Any = None

    # -- the run --------------------------------------------------------------------------
    def execute(self) -> dict[str, Any]:
        pm = _papermill()
        from jupyter_client.kernelspec import NoSuchKernel
        from nbclient.exceptions import DeadKernelError

        if not self.source.is_file():
            raise RunnerError(f"notebook not found: {self.source}")
        if self.ctx.cancelled:
            raise RunnerError("cancelled before the notebook started")
        kernel = self.kernel_name or self._notebook_kernel() or "python3"
        self._prepare(kernel)
        self._say(f"notebook {self.source} (kernel {kernel})")
        if self.parameters:
            self._say(f"parameters: {json.dumps(self.parameters, default=str)}")
        watcher = threading.Thread(target=self._watch, name="opsjobs-nb-watch", daemon=True)
        watcher.start()
        on_main = threading.current_thread() is threading.main_thread()
        previous: Any = None
        if on_main:  # a process-mode child: its worker stops it with SIGTERM
            previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        started = time.monotonic()
        started_at = datetime.now(timezone.utc).isoformat()
        failure: BaseException | None = None
        try:
            for starts in range(1, KERNEL_STARTS + 1):
                try:
                    _in_fresh_loop(
                        pm.execute_notebook,
                        str(self.source),
                        str(self.output),
                        parameters=self.parameters,
                        kernel_name=kernel,
                        progress_bar=False,
                        request_save_on_cell_execute=True,
                        stdout_file=self.out,
                        stderr_file=self.out,
                        kernel_manager_class=self._manager_class(),
                        # Every reply and output is in before the kernel goes; killing its
                        # process group also takes down what the cells left running, and
                        # saves the graceful wait.
                        shutdown_kernel="immediate",
                        on_notebook_start=self._on_notebook_start,
                        on_cell_start=self._on_cell_start,
                        on_cell_executed=self._on_cell_executed,
                    )
                except RuntimeError as exc:
                    if not self._start_again(exc, starts):
                        raise
                    continue
                break
        except pm.PapermillExecutionError as exc:
            failure = self._cell_failure(exc)
        except DeadKernelError as exc:
            failure = self._dead_kernel(exc)
        except NoSuchKernel:
            failure = RunnerError(
                f"no Jupyter kernel named {kernel!r} on this host "
                "(python -m ipykernel install --sys-prefix installs 'python3')"
            )
        except Exception as exc:
            failure = RunnerError(f"papermill failed: {type(exc).__name__}: {exc}")
        finally:
            self._done.set()
            if on_main:
                signal.signal(signal.SIGTERM, previous)
            watcher.join(timeout=5)
            self._relay()
            with contextlib.suppress(OSError):
                shutil.rmtree(self.kernel_dir)
            self._drop_empty_job_dir()
        if failure is None and (self._killed or self.ctx.cancelled):
            # stopped, though papermill returned: never a success
            failure = RunnerError(f"stopped {self._where()}")
        seconds = time.monotonic() - started
        summary = self._finish_outputs(kernel, started_at, seconds, failure)
        if failure is not None:
            raise failure
        return summary

    def _start_again(self, exc: RuntimeError, starts: int) -> bool:
        """Whether to start the kernel again after ``exc``: it died before it answered (no cell
        ran), as a kernel does when another process took a port jupyter_client picked for it
        between picking and binding ("Address already in use"); a few times, never once
        stopped."""
        if str(exc) != _DIED_UNANSWERED or self._current is not None or starts >= KERNEL_STARTS:
            return False
        with self._lock:
            if self._killed or self.ctx.cancelled:
                return False
            self._kernel_pid = None
        again = f"{starts + 1} of {KERNEL_STARTS}"
        self._say(f"the kernel died before it answered; starting it again ({again})")
        return True

    def _prepare(self, kernel: str) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.kernel_dir.mkdir(parents=True, exist_ok=True)
        meta = {
            "job_id": self.ctx.job_id,
            "kind": "notebook",
            "worker_id": self.ctx.worker_id,
            "host": self.ctx.host,
            "kernel": kernel,
        }
        (self.kernel_dir / "job.json").write_text(json.dumps(meta), "utf-8")
        # The kernel inherits the worker's environment like every child the worker starts.
        env = dict(os.environ)
        env[ENV_JOB_ID] = self.ctx.job_id
        env[ENV_JOB_DIR] = str(self.kernel_dir)
        env["OPSJOBS_DATA"] = str(self.settings.data_dir.resolve())
        env["OPSJOBS_STORE"] = self.settings.store_url
        if self.settings.runtime_dir:
            env["OPSJOBS_RUNTIME_DIR"] = self.settings.runtime_dir
        self.kernel_env = env

    def _notebook_kernel(self) -> str | None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            data = json.loads(self.source.read_bytes())
            name = data.get("metadata", {}).get("kernelspec", {}).get("name")
            return name if isinstance(name, str) and name else None
        return None

    def _drop_empty_job_dir(self) -> None:
        # In thread mode the job folder is ours; in process mode the child's runner removes it.
        with contextlib.suppress(OSError):
            self.job_dir.rmdir()

    # -- the kernel -----------------------------------------------------------------------
    def _manager_class(self) -> type:
        from jupyter_client.manager import AsyncKernelManager

        run = self

        class JobKernelManager(AsyncKernelManager):
            """Starts the kernel with the job's environment and folder; reports its pid."""

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                # CurveZMQ between us and the kernel where both support it (jupyter_client 8.7+).
                with contextlib.suppress(Exception):
                    self.transport_encryption = "auto"

            def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
                # the kernel leads its own group through the guard: it dies with the thread
                # that starts it (this job's), and what its cells started dies with it
                return guard.command(super().format_kernel_cmd(extra_arguments))

            async def start_kernel(self, **kwargs: Any) -> None:  # type: ignore[override]
                kwargs["env"] = dict(run.kernel_env)
                kwargs["cwd"] = run.cwd
                await super().start_kernel(**kwargs)
                run._kernel_started(self)

        return JobKernelManager

    def _kernel_started(self, km: Any) -> None:
        provisioner = getattr(km, "provisioner", None)
        pid = getattr(provisioner, "pid", None) or getattr(
            getattr(provisioner, "process", None), "pid", None
        )
        with self._lock:
            self._kernel_pid = pid if isinstance(pid, int) else None
            killed = self._killed
        if killed and self._kernel_pid is not None:  # cancelled while the kernel was starting
            kill_tree(self._kernel_pid, grace=1.0)
            return
        # The kernel process boots on another core now: load nbconvert's exporter meanwhile, on
        # this thread (importing it from a second thread races with papermill's own imports).
        self._warm_exporter()

    def _watch(self) -> None:
        while not self._done.wait(0.1):
            if self.ctx.cancelled:
                with self._lock:
                    self._killed = True
                    pid = self._kernel_pid
                if pid is not None:
                    kill_tree(pid, grace=1.0)
                return

    # -- papermill/nbclient hooks (run on this job's thread) ------------------------------
    def _on_notebook_start(self, notebook: Any, **_: Any) -> None:
        cells = notebook.cells
        self._code_cells = [
            i for i, c in enumerate(cells) if c.cell_type == "code" and c.source.strip()
        ]
        self._injected_at = next(
            (i for i, c in enumerate(cells) if _INJECTED_TAG in c.metadata.get("tags", [])), None
        )

    def _on_cell_start(self, cell: Any, cell_index: int, **_: Any) -> None:
        if cell_index not in self._code_cells:
            return
        self._current = (cell_index, _first_line(cell.source))
        # One numbering everywhere (progress, errors, stops): the cell's index in the submitted
        # notebook, from 0; the count after it is the progress over the code cells.
        progress = f"({self._code_cells.index(cell_index) + 1}/{len(self._code_cells)})"
        if cell_index == self._injected_at:
            self._say(f"[injected parameters {progress}]")
        else:
            index = self._source_index(cell_index)
            self._say(f"[cell {index} {progress}] {_first_line(cell.source)}")

    def _on_cell_executed(self, **_: Any) -> None:
        self._relay_metrics()

    def _say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    # -- handing the kernel's metrics and result on ---------------------------------------
    def _relay_metrics(self) -> None:
        try:
            with open(self.kernel_dir / METRICS_FILE, "rb") as fh:
                fh.seek(self._metrics_offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n") + 1  # only complete lines; a partial one waits for next time
        self._metrics_offset += end
        for line in chunk[:end].splitlines():
            try:
                d = json.loads(line)
                metric = Metric(
                    d["name"],
                    d["value"],
                    d.get("labels", {}),
                    d["at"],
                    job_id=self.ctx.job_id,
                    worker_id=self.ctx.worker_id,
                    host=self.ctx.host,
                ).validated()
                # keeps the time the kernel recorded it (record_metric would re-stamp it)
                self.ctx._emit_metric(metric)
            except Exception as exc:
                self._say(f"warning: a metric from the kernel was dropped: {exc}")

    def _relay(self) -> None:
        self._relay_metrics()
        with contextlib.suppress(FileNotFoundError):
            text = (self.kernel_dir / RESULT_FILE).read_text("utf-8")
            try:
                self.ctx.set_result(json.loads(text))
            except Exception as exc:
                self._say(f"warning: the notebook's result was dropped: {exc}")

    # -- failures -------------------------------------------------------------------------
    def _source_index(self, index: int) -> int:
        """Index of an executed-notebook cell in the submitted notebook (papermill inserts the
        injected-parameters cell)."""
        if self._injected_at is not None and self._injected_at < index:
            return index - 1
        return index

    def _cell_failure(self, exc: Any) -> NotebookExecutionError:
        index = self._source_index(exc.cell_index)
        where = f"cell {index}"  # as the progress line named it (not In [n]: a third numbering)
        if exc.cell_index == self._injected_at:
            where = "the injected parameters cell"
        lines = [_ANSI_RE.sub("", t) for t in (exc.traceback or [])]
        if lines:
            self._say("\n".join(lines))
        evalue = str(exc.evalue or "").strip()
        return NotebookExecutionError(
            f"{where} raised {exc.ename}" + (f": {evalue}" if evalue else "")
        )

    def _where(self) -> str:
        """The cell that runs now, as errors name it: ``cell 3 (import time)``."""
        if self._current is None:
            return "before the first cell"
        index, line = self._current
        if index == self._injected_at:
            return "in the injected parameters cell"
        return f"in cell {self._source_index(index)} ({line})"

    def _dead_kernel(self, exc: BaseException) -> RunnerError:
        with self._lock:
            killed = self._killed
        if killed:
            return RunnerError(f"stopped {self._where()}: the kernel and its children were killed")
        return NotebookExecutionError(f"the kernel died {self._where()}: {exc}")

    def _on_sigterm(self, *_: object) -> None:
        """SIGTERM in a ``process``-mode child (its worker is stopping): stop like a cancel,
        so the run ends failed, naming its cell, with its partial notebook and summary."""
        self.ctx.cancel()

    # -- outputs --------------------------------------------------------------------------
    def _finish_outputs(
        self, kernel: str, started_at: str, seconds: float, failure: BaseException | None
    ) -> dict[str, Any]:
        """Provenance into the output notebook, the HTML beside it, the summary lines."""
        import nbformat

        ran = total = 0
        exit_note = ""
        html_ok = False
        if self.output.is_file():
            nb = nbformat.read(str(self.output), as_version=4)
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                total += 1
                ran += cell.get("execution_count") is not None
                for out in cell.get("outputs", []):
                    if out.get("output_type") == "error" and out.get("ename") == "SystemExit":
                        code = out.get("evalue") or ""
                        exit_note = f"; stopped by sys.exit({code}) in cell {self._source_index(i)}"
            from opsjobs import __version__

            nb.metadata["opsjobs"] = {
                "version": __version__,
                "job_id": self.ctx.job_id,
                "worker_id": self.ctx.worker_id,
                "host": self.ctx.host,
                "input_path": str(self.source),
                "parameters": self.parameters,
                "kernel": kernel,
                "cwd": self.cwd,
                "started_at": started_at,
                "seconds": round(seconds, 3),
                "error": str(failure) if failure is not None else None,
            }
            nbformat.write(nb, str(self.output))
            html_ok = self._render_html(nb)
        if failure is None:
            head = f"--- {ran} of {total} code cells run in {seconds:.2f} s{exit_note}"
        else:
            head = f"--- failed after {ran} of {total} code cells, {seconds:.2f} s: {failure}"
        if self.output.is_file():
            head += f"\noutput notebook: {self.output}" + (
                f"\nhtml: {self.html}" if html_ok else ""
            )
        self._say(head)
        return {
            "notebook": str(self.source),
            "output": str(self.output),
            "html": str(self.html) if html_ok else None,
            "cells_run": ran,
            "cells": total,
            "seconds": round(seconds, 3),
        }

    def _warm_exporter(self) -> None:
        with contextlib.suppress(Exception), _IMPORTS:  # _render_html reports what goes wrong
            import nbformat
            from nbconvert import HTMLExporter

            exporter = HTMLExporter()
            exporter.from_notebook_node(nbformat.v4.new_notebook())
            self._exporter = exporter

    def _render_html(self, nb: Any) -> bool:
        try:
            exporter = self._exporter
            if exporter is None:
                from nbconvert import HTMLExporter

                exporter = HTMLExporter()
            body, _ = exporter.from_notebook_node(nb)
            tmp = self.html.with_suffix(".html.tmp")
            tmp.write_text(body, "utf-8")
            os.replace(tmp, self.html)
            return True
        except Exception as exc:  # the notebook is kept; a missing rendering is not a failure
            self._say(f"warning: no HTML rendering: {type(exc).__name__}: {exc}")
            return False
