"""PostgreSQL for tests: every store gets a fresh schema of its own in database ``test``.

Isolation
---------
A schema per test, not a database per test: ``CREATE SCHEMA`` costs a millisecond where
``CREATE DATABASE`` (even from a template) costs a checkpoint, and the store's migrations are
cheap. The store's URL carries ``options=-csearch_path=<schema>``, so every table, index and the
``opsjobs_schema_version`` table land in that schema, and the migration advisory lock is keyed by
it. NOTIFY is per database, not per schema, so the store derives its channel from
``current_schema()`` (``opsjobs_jobs_<schema>``): two tests' stores never wake each other.
The schema is dropped (``CASCADE``) when the store made by :func:`schema_store` is closed, or when
:func:`isolated_schema` exits.

Availability
------------
When the server is unreachable the tests are skipped with the reason; with ``CI=true`` in the
environment they fail instead, so CI never silently passes without PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

#: The server the tests use (trust auth). Override with TEST_POSTGRES_URL.
BASE_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
WHERE = f"{urlsplit(BASE_URL).hostname}:{urlsplit(BASE_URL).port or 5432}"


@functools.cache
def _unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); checked once per session."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401 - the store needs it too
    except ImportError as exc:
        return f"the 'postgres' extra is not installed ({exc})"
    try:
        with psycopg.connect(BASE_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def require_postgres() -> None:
    """Skip the calling test when PostgreSQL is unreachable (fail instead when ``CI=true``)."""
    reason = _unreachable()
    if reason is None:
        return
    message = f"PostgreSQL not reachable at {WHERE}: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _admin() -> Any:
    import psycopg

    return psycopg.connect(BASE_URL, connect_timeout=3, autocommit=True)


def create_schema() -> str:
    """A new, empty schema with a unique name."""
    from psycopg import sql

    name = f"opsjobs_t_{uuid.uuid4().hex[:16]}"
    with _admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


def drop_schema(name: str) -> None:
    from psycopg import sql

    with _admin() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def schema_url(schema: str) -> str:
    """``BASE_URL`` with a search_path that selects ``schema`` (an ``options`` parameter)."""
    sep = "&" if "?" in BASE_URL else "?"
    return f"{BASE_URL}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


@contextlib.contextmanager
def isolated_schema() -> Iterator[str]:
    """A URL selecting a fresh schema, dropped on exit (skips when PostgreSQL is absent)."""
    require_postgres()
    schema = create_schema()
    try:
        yield schema_url(schema)
    finally:
        drop_schema(schema)


def schema_store(**kwargs: Any) -> Any:
    """A :class:`~opsjobs.store.postgres.PostgresStore` on a fresh schema, dropped on close."""
    require_postgres()
    from opsjobs.store.postgres import PostgresStore

    class SchemaStore(PostgresStore):
        def close(self) -> None:
            super().close()
            if not getattr(self, "_dropped", False):
                self._dropped = True
                drop_schema(self.schema)

    schema = create_schema()
    try:
        return SchemaStore(schema_url(schema), **kwargs)
    except BaseException:
        drop_schema(schema)
        raise
