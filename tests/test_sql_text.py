"""The statements the stores send: what ``load_queries`` keeps of the ``.sql`` files."""

from __future__ import annotations

import pytest

from opsjobs.store.sql import load_queries

psycopg_queries = pytest.importorskip("psycopg._queries")


@pytest.mark.parametrize("dialect", ["postgres", "sqlite"])
def test_comment_lines_stay_in_the_files_and_out_of_the_statements(dialect: str) -> None:
    for name, sql in load_queries(dialect).items():
        lines = sql.splitlines()
        assert lines, name
        assert not [ln for ln in lines if ln.lstrip().startswith("--")], name


def test_every_postgres_statement_fits_psycopgs_parse_cache() -> None:
    """psycopg converts a statement's ``%(name)s`` placeholders anew on every call when its
    text is longer than MAX_CACHED_STATEMENT_LENGTH bytes (no cache): the worker's
    finish_and_claim_many, sent with its comments, was, and paid that parse on every step."""
    limit = psycopg_queries.MAX_CACHED_STATEMENT_LENGTH
    assert limit >= 1024
    long = {
        n: len(q.encode()) for n, q in load_queries("postgres").items() if len(q.encode()) > limit
    }
    assert long == {}
