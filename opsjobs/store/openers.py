"""The built-in store backends, one opener per URL scheme.

An opener takes the URL and the keyword arguments of :func:`opsjobs.store.open_store` (``settings``
only when its caller gave it) and returns
an open, migrated :class:`~opsjobs.store.Store`. Each is also declared in the ``opsjobs.stores``
entry-point group, where another package may add a scheme of its own.
"""

from __future__ import annotations

from pathlib import Path

from opsjobs.config import Settings
from opsjobs.errors import ConfigError
from opsjobs.store.base import Store

__all__ = ["open_memory", "open_postgres", "open_sqlite", "sqlite_path"]


def open_memory(
    url: str,
    *,
    runtime_dir: str | None = None,
    data_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Store:
    """``memory://``: the in-process reference backend."""
    from opsjobs.store.memory import MemoryStore

    if url != "memory://":
        raise ConfigError(f"unknown store URL {url!r} (the in-process store is memory://)")
    return MemoryStore()


def open_postgres(
    url: str,
    *,
    runtime_dir: str | None = None,
    data_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Store:
    """``postgresql://…`` (or ``postgres://``): PostgreSQL, with the ``postgres`` extra; its
    pool sized by ``settings`` (``pg_pool_size``, ``pg_pool_idle``; the defaults without it)."""
    try:
        from opsjobs.store.postgres import PostgresStore
    except ImportError as exc:
        raise ConfigError(
            "PostgreSQL support needs the 'postgres' extra: "
            f"pip install 'opsjobs[postgres]' ({exc})"
        ) from exc
    pool = settings or Settings()
    return PostgresStore(
        url, max_size=pool.pg_pool_size, max_idle=pool.pg_pool_idle, host=pool.host
    )


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite URL (``sqlite:///abs.db``, ``sqlite:rel.db``, or a bare path ending
    in ``.db``, ``.sqlite`` or ``.sqlite3``), or None."""
    if url.startswith("sqlite://"):
        return url[len("sqlite://") :]
    if url.startswith("sqlite:"):
        return url[len("sqlite:") :]
    if url.endswith((".db", ".sqlite", ".sqlite3")) and "://" not in url:
        return url
    return None


def open_sqlite(
    url: str,
    *,
    runtime_dir: str | None = None,
    data_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Store:
    """A SQLite file. Its folder must exist, except the data folder ``data_dir`` (default: the
    default data folder ``./data``), which is created with its parents when the file lies
    directly in it: a typo in a path never creates a chain of folders."""
    from opsjobs.store.sqlite import SQLiteStore

    path = sqlite_path(url)
    if not path:
        raise ConfigError(f"not a SQLite store URL: {url!r}")
    file = Path(path).expanduser().resolve()
    data = Settings.data_dir if data_dir is None else Path(data_dir)
    if file.parent == data.expanduser().resolve():
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the data folder {file.parent}: {exc}") from exc
    return SQLiteStore(file, runtime_dir=runtime_dir)
