"""Every notebook in ``notebooks/`` is committed with the outputs it shows on the sample store
(``opsjobs demo-data``), and ``pytest --nbval`` (not lax) compares a fresh run with them,
through ``notebooks/nbval-sanitize.cfg`` (paths, ids, times and host figures). A notebook
added there is picked up without touching this file; regenerate outputs with
``python tests/nbval_outputs.py``. (The scenario fixtures in ``tests/notebooks/`` fail on
purpose and are not run here.)"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import ROOT
from nbval_outputs import NOTEBOOKS, nbval_command, sample_env, strict_here

from opsjobs.model import ResultQuery
from opsjobs.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return sample_env(tmp_path_factory.mktemp("sample"))


def _nbval(
    env: dict[str, str], *paths: Path, lax: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        nbval_command(*paths, lax=lax),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_outputs_match_a_fresh_run(sample: dict[str, str], notebook: Path) -> None:
    # strict --nbval where the outputs were made (pandas/matplotlib of the main interpreter);
    # with another pandas (Python 3.10's core run) frames print differently: the cells must
    # still run without error
    done = _nbval(sample, notebook, lax=not strict_here(notebook))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "skipped" not in done.stdout, done.stdout[-2000:]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_carry_small_saved_outputs(notebook: Path) -> None:
    nb = json.loads(notebook.read_text("utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any(c["outputs"] for c in code), f"{notebook.name} has no saved outputs"
    assert all(c["execution_count"] for c in code), "run every cell (tests/nbval_outputs.py)"
    assert not any(o["output_type"] == "error" for c in code for o in c["outputs"])
    pngs = [
        base64.b64decode(o["data"]["image/png"])
        for c in code
        for o in c["outputs"]
        if "image/png" in o.get("data", {})
    ]
    assert all(len(png) < 60_000 for png in pngs)
    assert notebook.stat().st_size < 200_000
    assert nb["metadata"].get("opsjobs_outputs"), "regenerate with python tests/nbval_outputs.py"


def test_explore_results_draws_its_charts_with_titles_and_units() -> None:
    nb = json.loads((ROOT / "notebooks" / "explore_results.ipynb").read_text("utf-8"))
    figures = [
        o["data"]
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c["outputs"]
        if "image/png" in o.get("data", {})
    ]
    assert len(figures) == 3  # failure rate, runtime percentiles, memory per worker
    # nbval compares the text form of a chart (its size), not its pixels
    assert all("<Figure size" in "".join(f["text/plain"]) for f in figures)
    sources = "".join("".join(c["source"]) for c in nb["cells"])
    for title in ("Failure rate per job name", "Runtime percentiles", "Resident memory per"):
        assert title in sources
    for unit in ('"failed runs (%)"', '"runtime (s, log scale)"', "(MiB)"):
        assert unit in sources


def test_nbval_fails_when_the_printed_numbers_change(
    sample: dict[str, str], tmp_path: Path
) -> None:
    """The same notebook on a copy of the sample store with a few jobs deleted: nbval finds
    the counts it shows changed."""
    notebook = ROOT / "notebooks" / "explore_results.ipynb"
    if not strict_here(notebook):
        pytest.skip("outputs made with another pandas/matplotlib (see nbval_outputs.strict_here)")
    source = Path(sample["OPSJOBS_STORE"].removeprefix("sqlite://"))
    copy = tmp_path / "data" / "opsjobs.db"
    copy.parent.mkdir()
    shutil.copy(source, copy)
    store = open_store(f"sqlite://{copy}")
    try:
        query = ResultQuery(exact_name="import-orders", states=("failed",), limit=3)
        gone = store.results(query.validated())
        assert len(gone) == 3
        for job in gone:
            store.delete(job.id)
    finally:
        store.close()
    env = {**sample, "OPSJOBS_STORE": f"sqlite://{copy}", "OPSJOBS_DATA": str(copy.parent)}
    done = _nbval(env, notebook)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "331 jobs" in done.stdout and "334 jobs" in done.stdout, done.stdout[-3000:]
    assert "failed" in done.stdout
