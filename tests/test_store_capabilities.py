"""What a store says of itself, instead of callers sniffing its class or URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import STORE_BACKENDS, make_store

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
