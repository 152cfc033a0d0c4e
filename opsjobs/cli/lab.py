"""``opsjobs lab``: JupyterLab on the notebook catalog (placeholder, filled below)."""

from __future__ import annotations

from typing import Any

__all__ = ["register"]


def register(sub: Any) -> None:
    return None
