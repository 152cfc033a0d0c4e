"""The README's "Exploring results" examples, run as written in a fresh folder: the bash block
(build the sample store, read it) and the Python block (the four frames)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT

SECTION = "### Exploring results: sample store, pandas frames, JupyterLab"

pytestmark = pytest.mark.timeout(240)


def _blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index(SECTION)
    end = text.index("\n## ", start)
    return re.findall(rf"```{lang}\n(.*?)```", text[start:end], flags=re.S)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def test_the_bash_and_python_blocks_run_as_written(tmp_path: Path) -> None:
    bash = [b for b in _blocks("bash") if "demo-data" in b]
    assert len(bash) == 1
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", bash[0]],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "334 jobs" in done.stdout and "Total: 334" in done.stdout
    (python,) = _blocks("python")
    ran = subprocess.run(
        [sys.executable, "-c", python],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr
    for shown in ("2026-11-07", "w-web-1b", "timed_out", "rss_mb{worker=w-web-1b}"):
        assert shown in ran.stdout


@pytest.mark.slow
def test_the_nbval_command_compares_the_saved_outputs() -> None:
    from nbval_outputs import strict_here

    made_elsewhere = [nb.name for nb in (ROOT / "notebooks").glob("*.ipynb") if not strict_here(nb)]
    if made_elsewhere:  # 3.10's pandas prints frames otherwise (test_notebooks_nbval is lax there)
        pytest.skip(f"saved outputs made with other pandas/matplotlib versions: {made_elsewhere}")
    (block,) = [b for b in _blocks("bash") if "--nbval" in b]
    check = block.splitlines()[0].split("#")[0].strip()
    assert check == "python -m pytest --nbval notebooks/"
    done = subprocess.run(
        [sys.executable, *check.split()[1:], "-p", "no:cacheprovider", "-q"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
