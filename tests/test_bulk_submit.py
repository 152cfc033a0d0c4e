"""Bulk submit (issue 17, point 4): ``POST /jobs:batch`` and ``opsjobs submit --from-file``,
validated as a whole (an invalid item refuses the batch with its index, nothing written),
owned by the caller, inserted at once; and PostgreSQL wakes its listeners once per batch."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import client_for, run_cli, settings_for
from server_harness import Api, ServerThread, failed, finished, valid

from opsjobs.server.openapi import API

pytestmark = pytest.mark.timeout(120)

BATCH = f"{API}/jobs:batch"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("bulk"), memory_analysis=None).start()
    yield s
    s.stop()


@pytest.fixture
def alice(server: ServerThread) -> Api:
    return server.api(server.key(f"alice-{uuid.uuid4().hex[:8]}@example.org", "debug"))


@pytest.fixture
def admin(server: ServerThread) -> Api:
    return server.api(server.key(f"root-{uuid.uuid4().hex[:8]}@example.org", "system_admin"))


def _total(api: Api, everyone: bool = False) -> int:
    params = {"total": 1, **({"all": 1} if everyone else {})}
    return int(valid(api.get(f"{API}/jobs", params=params), "JobList")["total"])


def test_a_batch_is_queued_in_order_owned_by_the_caller_and_runs(alice: Api) -> None:
    jobs = [{"name": f"check-{i}", "command": f"print({i})"} for i in range(5)]
    jobs.append({"name": "argv", "argv": ["true"], "mode": "process", "queue": "default"})
    reply = valid(alice.post(BATCH, json={"jobs": jobs}), "BatchReply", 201)
    assert reply["count"] == 6 and [j["name"] for j in reply["jobs"]] == [
        *(f"check-{i}" for i in range(5)),
        "argv",
    ]
    (owner,) = {j["owner"] for j in reply["jobs"]}
    assert owner.startswith("alice-")
    assert all(j["state"] == "queued" for j in reply["jobs"])
    for i, job in enumerate(reply["jobs"][:5]):
        done = finished(alice, job["id"])
        assert done["state"] == "succeeded" and done["output"] == f"{i}\n"
    assert finished(alice, reply["jobs"][5]["id"])["state"] == "succeeded"


@pytest.mark.parametrize(
    ("bad", "status", "says"),
    [
        ({"name": "x", "command": "1", "mode": "Fast"}, 422, "jobs/2"),  # the schema
        ({"name": "x", "command": "def broken(:"}, 422, "job 2: "),  # the model
        ({"name": "x", "command": "1", "owner": "bob@example.org"}, 422, "jobs/2"),
        ({"name": "x", "command": "1", "call": "os:getcwd"}, 422, "job 2: "),
        ({"name": "x", "command": "1", "queue": "bad queue"}, 422, "jobs/2"),
    ],
)
def test_an_invalid_item_refuses_the_whole_batch_by_its_index(
    alice: Api, bad: dict[str, object], status: int, says: str
) -> None:
    before = _total(alice)
    good = {"name": "ok", "command": "print(1)"}
    error = failed(alice.post(BATCH, json={"jobs": [good, good, bad, good]}), status)
    assert says in error
    assert _total(alice) == before


def test_bad_batches_are_4xx_and_write_nothing(server: ServerThread, admin: Api) -> None:
    before = _total(admin, everyone=True)
    headers = {"Content-Type": "application/json"}
    for body, status in [
        (b"{not json", 400),
        (b"[]", 422),
        (b'{"jobs": []}', 422),
        (b'{"jobs": {"name": "x"}}', 422),
        (b'{"jobs": [{"name": "x", "command": "1"}], "more": 1}', 422),
        (json.dumps({"jobs": [{"name": "x", "command": "1"}] * 10_001}).encode(), 422),
        (json.dumps({"jobs": [{"name": "x" * 100, "command": "1"}] * 10_000}).encode(), 413),
    ]:
        assert len(failed(admin.post(BATCH, data=body, headers=headers), status)) < 400
    reader = server.api(server.key(f"reader-{uuid.uuid4().hex[:8]}@example.org", ""))
    assert "roles" in failed(
        reader.post(BATCH, json={"jobs": [{"name": "x", "command": "1"}]}), 403
    )
    assert _total(admin, everyone=True) == before


def test_a_user_who_may_not_run_an_item_gets_403_naming_it(server: ServerThread) -> None:
    bob = server.api(server.key(f"op-{uuid.uuid4().hex[:8]}@example.org", "operator"))
    before = _total(bob)
    jobs = [{"name": "fine", "argv": ["true"], "mode": "process"}] * 3
    jobs[1] = {"name": "code", "command": "1"}  # an operator runs no code of its own
    error = failed(bob.post(BATCH, json={"jobs": jobs}), 403)
    assert error.startswith("job 0: ") and "operator" in error
    assert _total(bob) == before


def test_each_user_sees_only_their_own_batch(alice: Api, server: ServerThread) -> None:
    other = server.api(server.key(f"carol-{uuid.uuid4().hex[:8]}@example.org", "debug"))
    reply = valid(
        alice.post(BATCH, json={"jobs": [{"name": "mine", "command": "1"}]}), "BatchReply", 201
    )
    failed(other.get(f"{API}/jobs/{reply['jobs'][0]['id']}"), 404)


# -- the CLI --------------------------------------------------------------------------------------
def _write(path: Path, *lines: object) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", "utf-8"
    )
    return path


def test_cli_submits_a_file_as_one_batch(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    jobs = _write(
        tmp_path / "jobs.jsonl",
        {"name": "ping-1", "command": "print(1)"},
        "",
        {"name": "ping-2", "argv": ["true"], "mode": "process", "priority": 3},
        {"name": "ping-3", "call": "operator:add", "kwargs": {"a": 1, "b": 2}, "retries": 1},
    )
    done = run_cli(settings, "submit", "--from-file", str(jobs))
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == 3 and done.stderr.strip() == "submitted 3 jobs"
    with client_for(settings) as client:
        got = [client.get(i) for i in ids]
    assert [j.name for j in got] == ["ping-1", "ping-2", "ping-3"]
    single = run_cli(settings, "submit", "--name", "one", "--command", "1")
    with client_for(settings) as client:
        owner = client.get(single.stdout.strip()).spec.owner
    assert {j.spec.owner for j in got} == {owner}  # the CLI's user, as for one submit
    assert got[1].spec.priority == 3 and got[2].spec.retries == 1


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([{"name": "a", "command": "1"}, "{not json"], "job 1 (line 2): not JSON"),
        (
            [{"name": "a", "command": "1"}, "", {"name": "b", "mode": "Fast", "command": "1"}],
            "job 1 (line 3)",
        ),
        (
            [{"name": "a", "command": "1"}, {"name": "b", "command": "1", "owner": "root"}],
            "job 1 (line 2)",
        ),
        ([{"command": "1"}], "job 0 (line 1)"),
        ([[1, 2]], "job 0 (line 1)"),
        ([{"name": "a", "command": "def broken(:"}], "job 0 (line 1)"),
    ],
)
def test_cli_refuses_a_file_with_a_bad_line_and_queues_nothing(
    tmp_path: Path, lines: list[object], says: str
) -> None:
    settings = settings_for(tmp_path)
    done = run_cli(settings, "submit", "--from-file", str(_write(tmp_path / "j.jsonl", *lines)))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("opsjobs: error: "), done.stderr
    assert says in done.stderr
    with client_for(settings) as client:
        assert client.results(limit=10) == []


def test_cli_from_file_option_errors(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    empty = _write(tmp_path / "empty.jsonl", "")
    for args, says in [
        (("--from-file", str(empty)), "no jobs"),
        (("--from-file", str(tmp_path / "missing.jsonl")), "cannot read"),
        (("--from-file", str(empty), "--name", "x"), "--name"),
        (("--from-file", str(empty), "--wait"), "--wait"),
        (("--mode", "thread", "--from-file", "-", "--timeout", "3"), "--timeout"),
        (("--command", "print(1)"), "give --name"),  # a single submit still needs its name
    ]:
        done = run_cli(settings, "submit", *args)
        assert done.returncode == 2 and says in done.stderr, (args, done.stderr)
        assert done.stderr.count("\n") == 1


@pytest.mark.slow
def test_the_readme_bulk_block_runs_as_written(server: ServerThread, tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import sys

    from harness import ROOT

    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index("### Bulk submit")
    (block,) = re.findall(r"```bash\n(.*?)```", text[start : text.index("\n### ", start + 5)], re.S)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPSJOBS_STORE": server.store_url,
        "OPSJOBS_DATA": str(server.data),
        "OPSJOBS_USER": "readme@example.org",
        "KEY": server.key("readme@example.org", "debug"),
        "API": f"{server.base}{API}",
    }
    done = subprocess.run(
        ["bash", "-c", _script(block)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ids = re.findall(r"^[0-9a-f-]{36}$", done.stdout, re.M)
    assert len(ids) == 2
    assert '"success": true, "count": 2' in done.stdout


def _script(block: str) -> str:
    """A README block as one ``set -euo pipefail`` bash script (continuation lines joined); a
    command followed by ``# opsjobs: error: …`` must fail with that message."""
    import shlex

    lines = block.replace("\\\n", " ").splitlines()
    out = ["set -euo pipefail"]
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        follow = lines[i + 1] if i + 1 < len(lines) else ""
        if follow.startswith("# opsjobs: error: "):
            expected = shlex.quote(follow[2:].split("...")[0].strip())
            out.append(f"if out=$({line} 2>&1); then echo 'expected a failure'; exit 90; fi")
            out.append(f'grep -qF {expected} <<<"$out" || {{ echo "$out"; exit 91; }}')
            continue
        out.append(line)
    return "\n".join(out) + "\n"
