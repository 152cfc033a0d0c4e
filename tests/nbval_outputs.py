"""The notebooks' saved outputs: made against the sample store, checked by ``pytest --nbval``.

Regenerate them (after changing a notebook, the sample or the frames) with::

    python tests/nbval_outputs.py

It builds the sample store (:mod:`opsjobs.demo`) in a temporary folder and executes every
notebook of ``notebooks/`` in place against it. ``tests/test_notebooks_nbval.py`` runs
``pytest --nbval`` with the same environment and :data:`SANITIZE`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: nbval's sanitize file: paths, ids, times and host figures (see its comments).
SANITIZE = ROOT / "notebooks" / "nbval-sanitize.cfg"


def sample_env(folder: Path) -> dict[str, str]:
    """The environment of a notebook run on the sample store built in ``folder`` (built once)."""
    sys.path.insert(0, str(ROOT))
    from opsjobs.demo import build
    from opsjobs.store import open_store

    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    db = data / "opsjobs.db"
    if not db.exists():
        store = open_store(f"sqlite://{db}")
        try:
            build(store)
        finally:
            store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
    env.update(
        OPSJOBS_DATA=str(data),
        OPSJOBS_STORE=f"sqlite://{db}",
        OPSJOBS_RUNTIME_DIR=str(folder / "run"),
        OPSJOBS_USER="analyst",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    return env


#: Notebook metadata key recording the versions the saved outputs were made with.
STAMP = "opsjobs_outputs"


def _versions() -> dict[str, str]:
    """pandas' and matplotlib's major.minor: what shapes a printed frame and a chart's text."""
    import matplotlib
    import pandas

    return {
        name: ".".join(module.__version__.split(".")[:2])
        for name, module in (("pandas", pandas), ("matplotlib", matplotlib))
    }


def strict_here(path: Path) -> bool:
    """Were ``path``'s outputs made with this interpreter's pandas and matplotlib? Elsewhere (the
    core tests on Python 3.10 get pandas 2) frames print differently: compare with nbval-lax."""
    import json

    stamp = json.loads(path.read_text("utf-8"))["metadata"].get(STAMP, {})
    return bool(stamp) and stamp == _versions()


def nbval_command(*paths: Path, lax: bool = False) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax" if lax else "--nbval",
        "--nbval-sanitize-with",
        str(SANITIZE),
        "-q",
        "-p",
        "no:cacheprovider",
        *(str(p) for p in paths),
    ]


def regenerate(paths: list[Path], env: dict[str, str]) -> None:
    """Execute ``paths`` in place (no timing metadata, so a re-run changes only outputs)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--inplace",
            "--ExecutePreprocessor.record_timing=False",
            "--ExecutePreprocessor.timeout=300",
            *(str(p) for p in paths),
        ],
        env=env,
        cwd=ROOT,
        check=True,
    )
    import nbformat

    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nb.metadata[STAMP] = _versions()
        nbformat.write(nb, path)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="opsjobs-sample-") as folder:
        regenerate(NOTEBOOKS, sample_env(Path(folder)))
    print(f"regenerated {len(NOTEBOOKS)} notebook(s) against the sample store")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
