"""The ``Db`` port: all that the SQL domains (:mod:`opsjobs.store.sql`) need from a dialect.

A domain (alerts, auth, schedules) is written once against this port and runs on every SQL
backend. A dialect (:mod:`opsjobs.store.sqlite`, :mod:`opsjobs.store.postgres`) provides one
``Db``: how a transaction opens and is retried, which driver error means "duplicate" or "refers
to a missing row", how idle workers are woken, and the text of each named statement (in
``sql/<dialect>/*.sql``). No driver is imported here or anywhere under ``store/sql/``.

Rows are read by column name (``row["id"]``): every named statement names its columns.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["Cursor", "Db", "Params", "Tx", "conflict_message", "missing_message"]

T = TypeVar("T")
#: The parameters of a named statement, bound by name.
Params = Mapping[str, Any]


class Cursor(Protocol):
    """What running a statement answers (a DB-API cursor)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> Sequence[Any]: ...


class Tx(abc.ABC):
    """One open transaction of a unit of work (see :meth:`Db.transaction`)."""

    @abc.abstractmethod
    def run(self, name: str, params: Params | None = None) -> Cursor:
        """Run the named statement ``name`` with ``params``."""

    @abc.abstractmethod
    def run_many(self, name: str, rows: Iterable[Params]) -> None:
        """Run the named statement ``name`` once for each of ``rows``."""

    @abc.abstractmethod
    def wake(self) -> None:
        """Wake idle workers and schedulers once this transaction commits (not before, and not
        at all if it rolls back)."""


class Db(abc.ABC):
    """A SQL dialect as the domains see it."""

    @abc.abstractmethod
    def transaction(
        self,
        what: str,
        work: Callable[[Tx], T],
        *,
        conflict: str | None = None,
        missing: str | None = None,
    ) -> T:
        """Run ``work`` in one transaction and return its answer.

        The dialect may run ``work`` again (on a new connection) when the first run was lost
        before it committed, so ``work`` must do nothing but statements. A unique constraint
        that refuses the work raises :class:`~opsjobs.errors.Conflict` (message ``conflict``,
        default "``what``: already exists"), a foreign key :class:`~opsjobs.errors.NotFound`
        (message ``missing``); any other driver error :class:`~opsjobs.errors.StoreError`
        naming ``what``.
        """

    @abc.abstractmethod
    def read(self, what: str, name: str, params: Params | None = None) -> Sequence[Any]:
        """The rows of the named statement ``name`` (outside any write transaction)."""

    @abc.abstractmethod
    def array(self, values: Sequence[str]) -> Any:
        """``values`` as ONE bound parameter of a named statement (a list, a JSON text …)."""


def conflict_message(what: str, conflict: str | None) -> str:
    """The message of a :class:`~opsjobs.errors.Conflict` raised by :meth:`Db.transaction`."""
    return conflict or f"{what}: already exists"


def missing_message(what: str, missing: str | None) -> str:
    """The message of a :class:`~opsjobs.errors.NotFound` raised by :meth:`Db.transaction`."""
    return missing or f"{what}: a row it refers to does not exist"
