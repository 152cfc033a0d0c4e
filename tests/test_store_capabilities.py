"""What a store says of itself, instead of callers sniffing its class or URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import STORE_BACKENDS, make_store

from opsjobs.errors import ConfigError

LOCAL = {"memory": True, "sqlite": True, "postgres": False}


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_local_is_true_for_a_store_on_this_host_only(backend: str, tmp_path: Path) -> None:
    store = make_store(backend, tmp_path)
    try:
        assert store.local is LOCAL[backend]
        store.serialize_writes()  # every store takes the server's hint
        assert store.workers() == []
    finally:
        store.close()


def test_another_package_adds_a_store_scheme_through_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import opsjobs.store
    from opsjobs.store.memory import MemoryStore

    opened: list[str] = []

    class EntryPoint:
        name = "fake"

        def load(self) -> object:
            def opener(url: str, **kw: object) -> MemoryStore:
                opened.append(url)
                return MemoryStore()

            return opener

    def entry_points(*, group: str, name: str) -> list[EntryPoint]:
        assert group == "opsjobs.stores"
        return [EntryPoint()] if name == "fake" else []

    monkeypatch.setattr(opsjobs.store, "entry_points", entry_points)
    store = opsjobs.store.open_store("fake://somewhere")
    store.close()
    assert opened == ["fake://somewhere"]
    with pytest.raises(ConfigError, match="unknown store URL"):
        opsjobs.store.open_store("other://somewhere")
