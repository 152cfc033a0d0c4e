"""``opsjobs alerts list`` and ``opsjobs alerts rules add|list|remove`` as real processes."""

from __future__ import annotations

import json
from pathlib import Path

from harness import client_for, run_cli, settings_for

from opsjobs.alerts import AlertEvaluator, WebhookSender
from opsjobs.model import Metric


def test_init_creates_the_default_rules_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    first = run_cli(settings, "init")
    assert first.returncode == 0, first.stderr
    assert "alert rule memory-above-1gb created: rss_mb > 1024 for 2 points" in first.stdout
    again = run_cli(settings, "init")
    assert "alert rule gc-gen2-rate exists" in again.stdout
    listed = run_cli(settings, "alerts", "rules", "list", "--json")
    names = [r["name"] for r in json.loads(listed.stdout)]
    assert names == ["gc-gen2-rate", "memory-above-1gb", "memory-leak-suspected"]


def test_rules_add_list_remove_and_bad_input(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    added = run_cli(
        settings,
        *("alerts", "rules", "add", "--name", "gc-web1", "--metric", "gc_gen2_collections"),
        *("--rate-above", "2", "--window", "1h", "--label", "host=web1", "--for", "10m"),
        *("--severity", "critical", "--json"),
    )
    assert added.returncode == 0, added.stderr
    rule = json.loads(added.stdout)
    assert rule["condition"] == "rate_above" and rule["window_seconds"] == 3600
    assert rule["labels"] == {"host": "web1"} and rule["for_seconds"] == 600
    table = run_cli(settings, "alerts", "rules", "list").stdout
    assert "gc-web1" in table and "critical" in table
    for bad in (
        ["--name", "gc-web1", "--metric", "x", "--above", "1"],  # taken
        ["--name", "b", "--metric", "x", "--above", "1", "--label", "nolabel"],
        ["--name", "b", "--metric", "bad name", "--above", "1"],
        ["--name", "b", "--metric", "x", "--above", "1", "--for-points", "0"],
        ["--name", "b", "--metric", "x", "--above", "1", "--window", "soon"],
    ):
        done = run_cli(settings, "alerts", "rules", "add", *bad)
        assert done.returncode == 2, (bad, done.stdout)
        assert done.stderr.startswith("opsjobs: error: ") and done.stderr.count("\n") == 1
    names = [
        r["name"] for r in json.loads(run_cli(settings, "alerts", "rules", "list", "--json").stdout)
    ]
    assert names == ["gc-web1"]  # nothing half-written
    assert run_cli(settings, "alerts", "rules", "remove", "gc-web1").returncode == 0
    gone = run_cli(settings, "alerts", "rules", "remove", "gc-web1")
    assert gone.returncode == 2 and "no alert rule" in gone.stderr


def test_alerts_list_shows_open_then_resolved(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    run_cli(
        settings, "alerts", "rules", "add", "--name", "big", "--metric", "rss_mb", "--above", "1024"
    )
    with client_for(settings) as client:
        ev = AlertEvaluator(client.store, sender=WebhookSender([]))
        point = Metric("rss_mb", 2048.0, {"pid": "42"}, 1_700_000_000.0, host="web1")
        client.store.record_metrics([point])
        assert ev.evaluate([point])
        shown = run_cli(settings, "alerts", "list")
        assert "big" in shown.stdout and "host=web1, pid=42" in shown.stdout
        assert "2048" in shown.stdout and "open" in shown.stdout
        point = Metric("rss_mb", 10.0, {"pid": "42"}, 1_700_000_060.0, host="web1")
        client.store.record_metrics([point])
        assert ev.evaluate([point])
    assert run_cli(settings, "alerts", "list").stdout.strip() == "no open alerts"
    every = json.loads(run_cli(settings, "alerts", "list", "--all", "--json").stdout)
    assert [a["state"] for a in every] == ["resolved"] and every[0]["labels"]["host"] == "web1"
