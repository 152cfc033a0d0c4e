"""``python -m pytest --nbval notebooks/``: compare the notebooks' saved outputs with a fresh
run on the sample store. Unless ``OPSJOBS_STORE`` names a store, the sample store
(``opsjobs demo-data``) is built in a temporary folder for the run; the sanitize file beside
this one is used unless ``--nbval-sanitize-with`` names another."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pytest_configure(config):  # no pytest import: notebooks/ needs only the 'all' extra
    option = config.option
    if hasattr(option, "nbval_sanitize_with") and option.nbval_sanitize_with is None:
        option.nbval_sanitize_with = str(HERE / "nbval-sanitize.cfg")
    if os.environ.get("OPSJOBS_STORE"):
        return
    from opsjobs.demo import build
    from opsjobs.store import open_store

    folder = Path(tempfile.mkdtemp(prefix="opsjobs-sample-"))
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    data = folder / "data"
    data.mkdir()
    store = open_store(f"sqlite://{data / 'opsjobs.db'}")
    try:
        build(store)
    finally:
        store.close()
    os.environ.update(
        OPSJOBS_STORE=f"sqlite://{data / 'opsjobs.db'}",
        OPSJOBS_DATA=str(data),
        OPSJOBS_RUNTIME_DIR=str(folder / "run"),
    )
