"""Job stores: one interface (:class:`Store`), several backends chosen by URL.

``memory://`` — in-process; ``sqlite:///abs/path.db``, ``sqlite:relative.db`` or a bare path
ending in ``.db`` — embedded SQLite; ``postgresql://…`` — PostgreSQL (extra ``postgres``). Another
package may add a scheme through the ``opsjobs.stores`` entry-point group (see
:mod:`opsjobs.store.openers`).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

from opsjobs.config import Settings
from opsjobs.errors import ConfigError
from opsjobs.store.base import End, Finish, Recovered, Store, Waiter
from opsjobs.store.openers import open_memory, open_postgres, open_sqlite, sqlite_path

__all__ = ["End", "Finish", "Recovered", "Store", "Waiter", "open_store"]

Opener = Callable[..., Store]

#: The built-in schemes (also declared as ``opsjobs.stores`` entry points); they need no
#: installed metadata, so a source checkout opens them too.
_BUILT_IN: dict[str, Opener] = {
    "memory": open_memory,
    "sqlite": open_sqlite,
    "postgresql": open_postgres,
    "postgres": open_postgres,
}


def open_store(
    url: str,
    *,
    runtime_dir: str | None = None,
    data_dir: str | Path | None = None,
    settings: Settings | None = None,
) -> Store:
    """Open (and migrate) the store named by ``url``.

    ``settings`` gives the PostgreSQL pool's size and idle time (``pg_pool_size``,
    ``pg_pool_idle``; their defaults without it); it is passed on to the opener only when given,
    so an installed opener that does not take it still opens stores for callers without it.

    A SQLite file's folder must exist, except the data folder ``data_dir`` (default: the
    default data folder ``./data``), which is created with its parents when the file lies
    directly in it: a typo in a path never creates a chain of folders. A PostgreSQL URL must
    name its database.
    """
    url = (url or "").strip()
    if url in ("memory:", "memory"):
        url = "memory://"
    scheme = "sqlite" if sqlite_path(url) else url.split(":", 1)[0].lower() if ":" in url else ""
    opener = _BUILT_IN.get(scheme) or _installed(scheme)
    if opener is None:
        raise ConfigError(
            f"unknown store URL {url!r} (use sqlite:///path/to/file.db, postgresql://... or "
            "memory://)"
        )
    if settings is None:
        return opener(url, runtime_dir=runtime_dir, data_dir=data_dir)
    return opener(url, runtime_dir=runtime_dir, data_dir=data_dir, settings=settings)


def _installed(scheme: str) -> Opener | None:
    """The opener another package declares for ``scheme`` (loaded only when asked for)."""
    if not scheme:
        return None
    for ep in entry_points(group="opsjobs.stores", name=scheme):
        try:
            opener: Opener = ep.load()
        except Exception as exc:
            raise ConfigError(f"cannot load the opsjobs store {scheme!r}: {exc}") from exc
        return opener
    return None
