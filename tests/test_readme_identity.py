"""The README's "Who you are: `opsjobs login`" block, run as written in a fresh folder: a key,
``opsjobs login``, ``whoami``, a submit owned by the key's user, ``logout``, and ``whoami`` back
on the OS user (a local store's fallback)."""

from __future__ import annotations

import contextlib
import getpass
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT

SECTION = "### Who you are: `opsjobs login`"

pytestmark = pytest.mark.timeout(180)


def test_the_login_block_runs_as_written(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index(SECTION)
    end = text.index("\n### ", start + len(SECTION))
    (block,) = re.findall(r"```bash\n(.*?)```", text[start:end], flags=re.S)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSJOBS_")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["OPSJOBS_RUNTIME_DIR"] = str(tmp_path / "run")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split("user:   ")[1:3]
    assert first.startswith("ada@example.org") and "opsjobs login" in first
    assert second.startswith(getpass.getuser()) and "the OS user, as a fallback" in second
    assert "signed in as ada@example.org" in done.stderr and "signed out" in done.stderr
    assert not (tmp_path / "config" / "opsjobs" / "login.json").exists()
    assert not (tmp_path / "ada.key").exists()
    # closing(): sqlite3's own context manager commits but never closes (3.13 warns)
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "opsjobs.db")) as db:
        assert db.execute("SELECT owner FROM jobs WHERE name = 'hello'").fetchall() == [
            ("ada@example.org",)
        ]
