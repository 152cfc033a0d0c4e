"""``inline`` and ``thread`` modes: run a kind in the worker's own process."""

from __future__ import annotations

from typing import Any

from opsjobs.context import JobContext, bind_context
from opsjobs.model import Job, JobState
from opsjobs.runners.capture import OutputSink, ThreadRouter
from opsjobs.runners.kinds import Kind
from opsjobs.runners.outcome import describe_exception, format_traceback, result_json
from opsjobs.store import Finish

__all__ = ["run_in_process"]


def run_in_process(
    kind: Kind, job: Job, ctx: JobContext, sink: OutputSink, router: ThreadRouter
) -> Finish:
    """Run ``job`` on the current thread with its output routed to ``sink``.

    Exceptions become a ``failed`` outcome with the traceback in the output; ``sys.exit(0)``
    counts as success, any other exit code as failure.
    """
    value: Any = None
    restore = router.route(sink)  # try/finally, not context managers: this is the hot path
    previous = bind_context(ctx)
    try:
        try:
            value = kind.run(job.spec.payload, ctx)
        except SystemExit as exc:
            code = exc.code
            if code in (None, 0):
                return Finish(
                    JobState.SUCCEEDED,
                    output=_text(sink),
                    exit_code=0,
                    result_json=ctx.result_json,
                )
            exit_code = code if isinstance(code, int) else 1
            if not isinstance(code, int):
                sink.write(f"{code}\n")
            return Finish(
                JobState.FAILED,
                output=_text(sink),
                exit_code=exit_code,
                error=f"SystemExit: exit code {exit_code}",
            )
        except Exception as exc:
            sink.write(format_traceback(exc))
            return Finish(JobState.FAILED, output=_text(sink), error=describe_exception(exc))
    finally:
        bind_context(previous)
        router.route(restore)
        sink.close()
    result = ctx.result_json if ctx.result_json is not None else result_json(value)
    if sink.empty:
        return Finish(JobState.SUCCEEDED, result_json=result)
    return Finish(JobState.SUCCEEDED, output=_text(sink), result_json=result)


def _text(sink: OutputSink) -> str:
    if sink.empty:
        return ""
    sink.flush()
    return sink.text()
