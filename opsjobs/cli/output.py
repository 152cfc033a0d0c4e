"""Formatting shared by the sub-commands: tables, times, JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from opsjobs.client import Client, connect
from opsjobs.config import Settings

__all__ = ["client_for", "fmt_runtime", "fmt_time", "print_json", "table"]


def client_for(settings: Settings) -> Client:
    return connect(settings=settings)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def fmt_runtime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.3f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))
