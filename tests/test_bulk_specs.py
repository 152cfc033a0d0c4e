"""A batch's fast spec building (``Client.build_specs``, issue 17's bulk submit) accepts and
makes exactly what ``Client.build_spec`` does one job at a time, refuses with the same message
(naming the job's index), and a batch stores the very rows one by one stores (but ids and
times), for every kind, on every store."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import make_store

from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.errors import ValidationError
from opsjobs.model import Mode, ResultQuery
from opsjobs.store import Store
from opsjobs.store.sql.rows import new_job_ids
from opsjobs.store.sqlite import SQLiteStore

NOTEBOOKS = Path(__file__).parent / "notebooks"
Job = dict[str, Any]


@pytest.fixture
def notebook(tmp_path: Path) -> str:
    """typed_parameters.ipynb: count = 0, ratio = 0.0, enabled = False, label, nothing, items."""
    path = tmp_path / "typed.ipynb"
    shutil.copy(NOTEBOOKS / "typed_parameters.ipynb", path)
    return str(path)


def client_on(store: Store, tmp_path: Path) -> Client:
    return Client(store, Settings(data_dir=tmp_path / "data", user="ann"))


def every_kind(notebook: str) -> list[Job]:
    """Jobs of every kind, with the retry policy, priority, timeout, queue ... set, given in
    the types a caller may use (ints for floats, durations as text, modes by seed name)."""
    policy = {"retries": 3, "priority": 7, "timeout": 90, "queue": "fleet", "retry_on": "failed"}
    policy |= {"retry_delay": "15s", "retry_backoff": 3, "retry_max": 1200.0}
    jobs: list[Job] = []
    for i in range(3):
        jobs += [
            {"name": f"cmd-{i}", "command": f"print({i})", "description": "a check", **policy},
            {"name": f" call-{i} ", "call": "jobfuncs:add", "kwargs": {"a": i, "b": [1, "x"]}},
            {"name": f"argv-{i}", "argv": ["echo", str(i)], "mode": "BackgroundJob", **policy},
            {
                "name": f"nb-{i}",
                "notebook": notebook,
                "parameters": {"count": str(i), "ratio": i, "label": f"h{i}", "items": [i]},
                "kernel": "python3",
                "mode": Mode.PROCESS,
                **policy,
            },
            {
                "name": f"nb-open-{i}",
                "notebook": notebook,
                "parameters": {"count": i, "extra": {"k": i}},
                "allow_unknown": True,
                "priority": -2,
                "retry_on": ["timed_out", "failed"],
            },
            {"name": f"own-{i}", "kind": "command", "payload": {"source": "pass"}, "owner": "bo"},
        ]
    return jobs


def one_by_one(client: Client, jobs: list[Job]) -> None:
    for job in jobs:
        args = dict(job)
        client.submit(args.pop("name"), **args)


def _sqlite_rows(store: SQLiteStore) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(store.path)) as conn:
        cursor = conn.execute("SELECT * FROM jobs ORDER BY name")
        names = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    keep = [k for k, n in enumerate(names) if n not in ("id", "submitted_at")]
    return [tuple(row[k] for k in keep) for row in rows]


def _stored(store: Store) -> list[Any]:
    if isinstance(store, SQLiteStore):
        return _sqlite_rows(store)
    jobs = store.results(ResultQuery(sort="name", limit=1000).validated())
    return [{k: v for k, v in j.to_dict().items() if k not in ("id", "submitted_at")} for j in jobs]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_a_batch_stores_the_rows_one_by_one_stores(
    backend: str, tmp_path: Path, notebook: str
) -> None:
    jobs = every_kind(notebook)
    stored = []
    for way in ("single", "batch"):
        folder = tmp_path / way
        folder.mkdir()
        client = client_on(make_store(backend, folder), folder)
        try:
            if way == "single":
                one_by_one(client, jobs)
            else:
                client.submit_many(client.build_specs(jobs))
            stored.append(_stored(client.store))
        finally:
            client.close()
    assert len(stored[0]) == len(jobs)
    assert stored[1] == stored[0]


def test_build_specs_makes_what_build_spec_makes(tmp_path: Path, notebook: str) -> None:
    client = client_on(make_store("memory", tmp_path), tmp_path)
    jobs = every_kind(notebook) * 2  # repeated values: the batch's remembered checks are used
    singles = []
    for job in jobs:
        args = dict(job)
        singles.append(client.build_spec(args.pop("name"), **args))
    batch = client.build_specs(jobs)
    assert batch == singles
    assert [s.payload_json() for s in batch] == [s.payload_json() for s in singles]


def _valid(notebook: str) -> list[Job]:
    return [
        {"name": "a", "command": "print(1)", "priority": 1, "timeout": 5},
        {"name": "b", "call": "jobfuncs:add", "kwargs": {"a": 1}, "retries": 2},
        {"name": "c", "notebook": notebook, "parameters": {"count": 1}},
        {"name": "d", "argv": ["echo"], "mode": "process"},
    ]


#: Odd jobs, most refused by build_spec; each follows valid jobs sharing all but one value with
#: it, so a check the batch remembered must not let it through, nor refuse what it accepts.
ODD: list[Job] = [
    {"name": "x", "command": "print(1)", "priority": True, "timeout": 5},
    {"name": "x", "command": "print(1)", "priority": 1.0, "timeout": 5},
    {"name": "x", "command": "print(1)", "priority": 1, "timeout": float("nan")},
    {"name": "x", "command": "print(1)", "priority": 1, "timeout": "5"},
    {"name": "x", "command": "print(1", "priority": 1, "timeout": 5},
    {"name": "x", "command": "return 1", "priority": 1, "timeout": 5},
    {"name": "", "command": "print(1)", "priority": 1, "timeout": 5},
    {"name": "x\x01", "command": "print(1)"},
    {"name": "x", "kind": "command", "payload": {"source": "print(1)", "more": 1}},
    {"name": "x", "call": "jobfuncs:add", "kwargs": {"a": {1, 2}}, "retries": 2},
    {"name": "x", "call": "jobfuncs:add", "kwargs": {"a": float("inf")}, "retries": 2},
    {"name": "x", "call": "jobfuncs:add", "kwargs": {"a": "x" * (1 << 20)}, "retries": 2},
    {"name": "x", "call": "jobfuncs:add", "kwargs": {"a": 1}, "retries": 2, "queue": "1e5"},
    {"name": "x", "call": "jobfuncs:add", "kwargs": {"a": 1}, "retries": [2]},
    {"name": "x", "kind": "call", "payload": {"target": "jobfuncs:add", "other": 1}},
    {"name": "x", "kind": "call", "payload": {"target": "jobfuncs:add\n"}, "mode": "inline"},
    {"name": "x", "call": "no-module", "kwargs": {"a": 1}, "retries": 2},
    {"name": "x", "notebook": "{nb}", "parameters": {"count": "many"}},
    {"name": "x", "notebook": "{nb}", "parameters": {"undeclared": 1}},
    {"name": "x", "notebook": "{nb}", "parameters": {"not an identifier": 1}},
    {"name": "x", "notebook": "{nb}", "parameters": {"count": 1}, "kernel": "bad kernel"},
    {"name": "x", "notebook": "{nb}", "parameters": {"count": 1}, "mode": "inline"},
    {"name": "x", "notebook": "{nb}", "parameters": {"count": 1}, "allow_unknown": 1},
    {"name": "x", "notebook": "{nb}", "parameters": {"count": " 1" + " " * (1 << 20)}},
    {"name": "x", "notebook": "{nb}missing", "parameters": {"count": 1}},
    {"name": "x", "argv": ["echo", 1], "mode": "process"},
    {"name": "x", "argv": ["echo"], "mode": "thread"},
    {"name": "x", "argv": "echo", "mode": "process"},
    {"name": "x", "command": "print(1)", "retry_on": ["lost"]},
    {"name": "x", "command": "print(1)", "retry_delay": "soon"},
    {"name": "x", "command": "print(1)", "kwargs": {}},
    {"name": "x", "command": "print(1)", "call": "jobfuncs:add"},
    {"name": "x", "command": "print(1)", "wrong": 1},
    {"name": 5, "command": "print(1)"},
    {"name": "x", "command": "print(1)", "priority": 1, "timeout": 5.0},  # accepted: 5 → 5.0
    {"name": "x", "kind": "call", "payload": {"target": "jobfuncs:add"}},  # no kwargs: {}
]


@pytest.mark.parametrize("bad", ODD, ids=range(len(ODD)))
def test_build_specs_refuses_what_build_spec_refuses_with_its_message(
    tmp_path: Path, notebook: str, bad: Job
) -> None:
    """... and accepts what it accepts, as it makes it."""
    client = client_on(make_store("memory", tmp_path), tmp_path)
    bad = {k: v.replace("{nb}", notebook) if isinstance(v, str) else v for k, v in bad.items()}
    valid = _valid(notebook)
    args = dict(bad)
    name = args.pop("name")
    try:
        single = client.build_spec(name, **args)
    except ValidationError as exc:
        expected = f"job {len(valid)}: {exc}"
    except TypeError:  # an argument build_spec does not take
        expected = f"job {len(valid)}: unknown field(s): wrong"
    else:
        assert client.build_specs([*valid, bad, *valid])[len(valid)] == single
        return
    if not isinstance(name, str):
        expected = f"job {len(valid)}: name is required and must be a string"
    with pytest.raises(ValidationError) as refused:
        client.build_specs([*valid, bad, *valid])
    assert str(refused.value) == expected


def test_new_job_ids_are_random_uuid4_text() -> None:
    import uuid

    ids = new_job_ids(5000)
    assert len(set(ids)) == 5000
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    # every hex digit of the random part varies (not a constant pattern)
    assert {t[0] for t in ids} == set("0123456789abcdef")
    assert {t[19] for t in ids} == set("89ab")
