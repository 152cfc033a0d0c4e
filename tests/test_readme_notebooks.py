"""The README's examples of the notebook features, run as written: the CLI block and the REST
block of "Notebooks: the catalog and typed parameters", through bash, against a real server.

Each block runs as one ``set -euo pipefail`` script, so its variables carry from line to line.
A command followed by a ``# opsjobs: error: …`` line must fail with that message (exit 2). The
only thing added to the REST block is a wait for the job to finish before its notebook is
downloaded (the README's reader would do that by hand)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROOT
from server_harness import ServerThread

SECTION = "### Notebooks: the catalog and typed parameters"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def blocks() -> list[str]:
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index(SECTION)
    end = text.index("\n### ", start + len(SECTION))
    found = re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)
    assert len(found) == 2, "the section's CLI and REST blocks"
    return found


def script(block: str, wait_before_download: str = "") -> str:
    """The block as a bash script: continuation lines joined, expected errors checked."""
    lines = block.replace("\\\n", " ").splitlines()
    out = ["set -euo pipefail"]
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        follow = lines[i + 1] if i + 1 < len(lines) else ""
        if follow.startswith("# opsjobs: error: "):
            expected = follow[2:].split("...")[0].strip()
            out.append(f"if out=$({line} 2>&1); then echo 'expected a failure'; exit 90; fi")
            out.append(f'grep -qF {shlex_quote(expected)} <<<"$out" || {{ echo "$out"; exit 91; }}')
            continue
        if "/files/notebook.ipynb" in line and wait_before_download:
            out.append(wait_before_download)
        out.append(line)
    return "\n".join(out) + "\n"


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("readme-notebooks"), memory_analysis=None)
    shutil.copy(ROOT / "notebooks" / "health_check.ipynb", s.root / "health_check.ipynb")
    s.start()
    yield s
    s.stop()


def run(server: ServerThread, text: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPSJOBS_STORE": server.store_url,
        "OPSJOBS_DATA": str(server.data),
        "OPSJOBS_USER": "readme@example.org",
        "KEY": server.key("readme@example.org", "debug"),
    }
    (cwd / "notebooks").mkdir(exist_ok=True)
    shutil.copy(ROOT / "notebooks" / "health_check.ipynb", cwd / "notebooks" / "health_check.ipynb")
    return subprocess.run(
        ["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True, timeout=240
    )


def test_the_cli_examples_run_as_written(server: ServerThread, tmp_path: Path) -> None:
    done = run(server, script(blocks()[0]), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "health_check.ipynb  opsjobs health check" in done.stdout
    assert "max_disk_pct: float = 90.0" in done.stdout
    assert '{"max_disk_pct": 80.0}' in done.stdout  # schedule params


def test_the_rest_examples_run_as_written(server: ServerThread, tmp_path: Path) -> None:
    wait = (
        'python3 -c "import opsjobs, sys; c = opsjobs.connect(); '
        'print(c.wait(sys.argv[1], timeout=180).state, file=sys.stderr)" $ID'
    )
    rest = blocks()[1].replace("http://localhost:8866", server.base)
    done = run(server, script(rest, wait), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"notebooks": [{"path": "health_check.ipynb"' in done.stdout
    assert '"rerun_of": ' in done.stdout and '"runs": [' in done.stdout
    downloaded = list(tmp_path.glob("health-*-notebook.ipynb"))
    assert len(downloaded) == 1, sorted(p.name for p in tmp_path.iterdir())
    import nbformat

    nb = nbformat.read(str(downloaded[0]), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.papermill.parameters == {"max_disk_pct": 99.0}
