"""SQL text of the stores: one folder per dialect with ``queries.sql`` (named blocks) and
``migrations/NNNN_*.sql`` (applied in order on open)."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["load_migrations", "load_queries"]

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)
#: A line that is only a comment: it stays in the file, not in the statement sent.
_COMMENT_LINE = re.compile(r"^[ \t]*--.*(?:\n|$)", re.M)


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """The named statements of ``dialect``: blocks introduced by ``-- name: NAME`` in every
    ``*.sql`` file of its folder (``queries.sql`` for jobs, one file per further domain, such
    as ``schedules.sql``). A name defined twice is an error.

    Lines that are only a comment are left out: the PostgreSQL driver parses the placeholders
    of a statement longer than 4 KiB anew on every call (its cache takes shorter ones only),
    and the worker's ``finish_and_claim_many`` with its comments was longer."""
    folder = resources.files(__package__).joinpath(dialect)
    queries: dict[str, str] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".sql"):
            continue
        parts = _NAME.split(entry.read_text("utf-8"))
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice in {dialect}/")
            queries[name] = _COMMENT_LINE.sub("", body).strip().rstrip(";").strip()
    return queries


def load_migrations(dialect: str) -> list[tuple[int, str, str]]:
    """``(version, file name, sql)`` of every migration of ``dialect``, in order."""
    folder = resources.files(__package__).joinpath(dialect, "migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d{4})_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found)
