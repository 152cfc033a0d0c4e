"""Job stores: one interface (:class:`Store`), several backends chosen by URL.

``memory://`` — in-process; ``sqlite:///abs/path.db``, ``sqlite:relative.db`` or a bare path
ending in ``.db`` — embedded SQLite; ``postgresql://…`` — PostgreSQL (extra ``postgres``).
"""

from __future__ import annotations

from pathlib import Path

from ..config import Settings
from ..errors import ConfigError
from .base import End, Finish, Recovered, Store, Waiter

__all__ = ["End", "Finish", "Recovered", "Store", "Waiter", "open_store"]


def open_store(
    url: str, *, runtime_dir: str | None = None, data_dir: str | Path | None = None
) -> Store:
    """Open (and migrate) the store named by ``url``.

    A SQLite file's folder must exist, except the data folder ``data_dir`` (default: the
    default data folder ``./data``), which is created with its parents when the file lies
    directly in it: a typo in a path never creates a chain of folders. A PostgreSQL URL must
    name its database.
    """
    url = (url or "").strip()
    if url in ("memory://", "memory:", "memory"):
        from .memory import MemoryStore

        return MemoryStore()
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL support needs the 'postgres' extra: "
                f"pip install 'opsjobs[postgres]' ({exc})"
            ) from exc
        return PostgresStore(url)
    path: str | None = None
    if url.startswith("sqlite://"):
        path = url[len("sqlite://") :]
    elif url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
    elif url.endswith((".db", ".sqlite", ".sqlite3")) and "://" not in url:
        path = url
    if path:
        from .sqlite import SQLiteStore

        file = Path(path).expanduser().resolve()
        data = Settings.data_dir if data_dir is None else Path(data_dir)
        if file.parent == data.expanduser().resolve():
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the data folder {file.parent}: {exc}") from exc
        return SQLiteStore(file, runtime_dir=runtime_dir)
    raise ConfigError(
        f"unknown store URL {url!r} (use sqlite:///path/to/file.db, postgresql://... or memory://)"
    )
