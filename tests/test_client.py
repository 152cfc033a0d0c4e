"""The Python API and settings: connect, results_frame, durations, opsjobs.toml."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import settings_for

import opsjobs
from opsjobs import ConfigError, JobState, Settings, ValidationError
from opsjobs.client import parse_duration


def test_connect_uses_env_store_and_results_frame(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPSJOBS_STORE", f"sqlite://{tmp_path / 'x.db'}")
    with opsjobs.connect() as client:
        assert client.store.url == f"sqlite://{tmp_path / 'x.db'}"
        with opsjobs.embed(store=client.store, settings=client.settings) as handle:
            ids = [client.submit(f"j{i}", command=f"print({i})").id for i in range(3)]
            done = [client.wait(i, timeout=30) for i in ids]
            assert handle.worker.busy == 0
        assert {j.state for j in done} == {JobState.SUCCEEDED}
        frame = client.results_frame(sort="name")
    assert list(frame["name"]) == ["j0", "j1", "j2"]
    assert {"id", "state", "runtime", "started_at", "output"} <= set(frame.columns)
    assert str(frame["started_at"].dtype).startswith("datetime64")
    assert list(frame["output"]) == ["0\n", "1\n", "2\n"]


def test_memory_store_runs_jobs_in_process(tmp_path: Path) -> None:
    client = opsjobs.connect("memory://", settings=settings_for(tmp_path))
    with opsjobs.embed(store=client.store, settings=client.settings):
        job = client.wait(client.submit("m", call="operator:add", kwargs={}).id, timeout=30)
    assert job.state is JobState.FAILED and "TypeError" in (job.error or "")


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("12h", 43200), ("7d", 604800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5m", "1x", "nan"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_duration(text)


def test_settings_from_toml_then_env(tmp_path: Path) -> None:
    toml = tmp_path / "opsjobs.toml"
    toml.write_text("[opsjobs]\nlease_seconds = 12\noutput_cap = 4096\n")
    s = Settings.from_env({"OPSJOBS_LEASE": "20", "OPSJOBS_DATA": str(tmp_path)}, toml_path=toml)
    assert (s.lease_seconds, s.output_cap, s.data_dir) == (20.0, 4096, tmp_path)
    assert s.store_url == f"sqlite://{tmp_path.resolve() / 'opsjobs.db'}"
    toml.write_text("[opsjobs]\ncolour = 'red'\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, toml_path=toml)
    with pytest.raises(ConfigError, match="invalid value"):
        Settings.from_env({"OPSJOBS_LEASE": "long"}, toml_path=tmp_path / "none.toml")
