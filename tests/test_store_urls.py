"""Store URLs that would do harm quietly are refused: a SQLite file in a folder that does not
exist (only the data folder is created), a PostgreSQL URL without a database, and a server that
cannot be reached gives one line, not a page of pool warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import run_cli, settings_for
from pg import require_postgres

from opsjobs.errors import ConfigError, StoreError
from opsjobs.store import open_store


def test_a_sqlite_file_in_a_missing_folder_is_an_error_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite://{missing / 'x.db'}")
    assert not (tmp_path / "nonexistent").exists()
    settings = settings_for(tmp_path)
    done = run_cli(settings, "--store", f"sqlite://{missing / 'x.db'}", "results")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not exist" in done.stderr, done.stderr
    assert not (tmp_path / "nonexistent").exists()


def test_the_data_folder_is_created_for_the_default_store(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, store_url="")
    assert not settings.data_dir.exists()
    done = run_cli(settings, "results", OPSJOBS_STORE="")
    assert done.returncode == 0, done.stderr
    assert (settings.data_dir / "opsjobs.db").is_file()
    # and a store file right in the data folder, however named
    other = settings_for(tmp_path / "second")
    store = open_store(f"sqlite://{other.data_dir / 'jobs.db'}", data_dir=other.data_dir)
    store.close()
    assert (other.data_dir / "jobs.db").is_file()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://",
        "postgres://",
        "postgresql://postgres@127.0.0.1:5432",
        "postgresql://postgres@127.0.0.1:5432/",
    ],
)
def test_a_postgresql_url_without_a_database_is_an_error(url: str) -> None:
    with pytest.raises(ConfigError, match="database"):
        open_store(url)


@pytest.mark.postgres
def test_no_schema_lands_in_a_database_nobody_named(tmp_path: Path) -> None:
    require_postgres()
    done = run_cli(settings_for(tmp_path), "--store", "postgresql://postgres@127.0.0.1/", "results")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "database" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2",
        "postgresql://postgres@no-such-host.invalid/test?connect_timeout=2",
    ],
)
def test_an_unreachable_postgresql_prints_one_line(tmp_path: Path, url: str) -> None:
    pytest.importorskip("psycopg_pool")
    done = run_cli(settings_for(tmp_path), "--store", url, "results")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("opsjobs: error: cannot connect to PostgreSQL"), done.stderr
