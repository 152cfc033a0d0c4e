"""The reference backend: the whole store contract in plain Python (``memory://``), one module
per domain like the SQL backends (:mod:`.store` jobs, workers and metrics; :mod:`.alerts`,
:mod:`.auth`, :mod:`.schedules`)."""

from opsjobs.store.memory.store import MemoryStore

__all__ = ["MemoryStore"]
