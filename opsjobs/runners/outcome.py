"""Turning what happened in a run into the :class:`~opsjobs.store.Finish` the store records."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any

from opsjobs.model import MAX_PAYLOAD_BYTES, JobState
from opsjobs.store import Finish

__all__ = ["describe_exception", "failure", "format_traceback", "result_json"]


def describe_exception(exc: BaseException) -> str:
    """``Type: message`` — one line for the job's error field."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def result_json(value: Any) -> str | None:
    """JSON text of a return value; values JSON cannot hold are stored as their ``str()``."""
    if value is None:
        return None
    text = json.dumps(value, default=str)
    if len(text) > MAX_PAYLOAD_BYTES:
        return json.dumps({"truncated": True, "bytes": len(text)})
    return text


def failure(exc: BaseException, output: str, exit_code: int | None = None) -> Finish:
    return Finish(
        JobState.FAILED, output=output, error=describe_exception(exc), exit_code=exit_code
    )


_RUNNERS = str(Path(__file__).resolve().parent)


def format_traceback(exc: BaseException) -> str:
    """The traceback of a job's exception without the runner's own frames on top, so the
    output starts at the job's code."""
    tb = exc.__traceback__
    while (
        tb is not None
        and tb.tb_next is not None
        and tb.tb_frame.f_code.co_filename.startswith(_RUNNERS)
    ):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))
