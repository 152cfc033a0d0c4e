"""``opsjobs demo-data``: the sample store is small, varied and the same on every build."""

from __future__ import annotations

from pathlib import Path

from harness import run_cli, settings_for

from opsjobs.demo import BASE_TIME, content
from opsjobs.model import ResultQuery
from opsjobs.store import open_store


def _content(path: Path) -> dict[str, object]:
    store = open_store(f"sqlite://{path}")
    try:
        return content(store)
    finally:
        store.close()


def test_two_builds_hold_the_same_content(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first, second = tmp_path / "a" / "one.db", tmp_path / "b.db"
    for target in (first, second):
        done = run_cli(settings, "demo-data", str(target))
        assert done.returncode == 0, done.stderr
        assert "jobs" in done.stdout
    one, two = _content(first), _content(second)
    assert one == two
    jobs = one["jobs"]
    assert isinstance(jobs, list) and 200 <= len(jobs) <= 600
    assert {j["state"] for j in jobs} >= {"succeeded", "failed", "timed_out", "cancelled"}
    assert len({j["name"] for j in jobs}) >= 4 and len({j["host"] for j in jobs}) >= 3
    metrics = one["metrics"]
    assert isinstance(metrics, list)
    rss = [m for m in metrics if m[0] == "rss_mb"]
    assert len({m[5] for m in rss}) >= 4  # per worker
    week = max(m[3] for m in rss) - min(m[3] for m in rss)
    assert 6.5 * 86400 < week <= 7 * 86400
    assert min(m[3] for m in rss) >= BASE_TIME  # fixed base time, not the clock
    assert one["events"] and one["alerts"]


def test_a_folder_gets_opsjobs_db_and_the_default_is_the_data_folder(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    folder = tmp_path / "sample"
    folder.mkdir()
    assert run_cli(settings, "demo-data", str(folder)).returncode == 0
    assert (folder / "opsjobs.db").is_file()
    assert run_cli(settings, "demo-data").returncode == 0
    store = open_store(settings.store_url)
    try:
        assert store.count(ResultQuery().validated()) > 200
    finally:
        store.close()


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    target = tmp_path / "s.db"
    assert run_cli(settings, "demo-data", str(target)).returncode == 0
    before = _content(target)
    again = run_cli(settings, "demo-data", str(target))
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0 and "--force" in again.stderr
    assert _content(target) == before
    forced = run_cli(settings, "demo-data", "--force", str(target))
    assert forced.returncode == 0, forced.stderr
    assert _content(target) == before
