"""The ``notebook`` kind on real kernels: outputs, progress, context, failures, kills, CLI."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import psutil
import pytest
from harness import TESTS, client_for, run_cli, settings_for, wait_for

import opsjobs
from opsjobs import JobState
from opsjobs.client import Client
from opsjobs.errors import ValidationError
from opsjobs.runners.notebook import NotebookKind, parse_parameter_value, parse_parameters_text

NOTEBOOKS = TESTS / "notebooks"
MODES = ["thread", "process"]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Client, opsjobs.WorkerHandle]]:
    settings = settings_for(tmp_path, output_cap=64 * 1024, poll_interval=60.0)
    client = client_for(settings)
    handle = opsjobs.embed(store=client.store, settings=settings, threads=3)
    yield client, handle
    handle.stop(timeout=120)  # a loaded machine: never close the store under a running worker
    client.close()


def submit(client: Client, notebook: str, mode: str, **kw: object) -> opsjobs.Job:
    payload = {"path": str(NOTEBOOKS / notebook), "parameters": kw.pop("parameters", {})}
    return client.submit("nb", kind="notebook", payload=payload, mode=mode, **kw)  # type: ignore[arg-type]


def run(client: Client, notebook: str, mode: str, **kw: object) -> opsjobs.Job:
    return client.wait(submit(client, notebook, mode, **kw).id, timeout=90)


def outputs(client: Client, job: opsjobs.Job) -> tuple[Path, Path]:
    folder = client.settings.outputs_dir
    return folder / f"{job.id}.ipynb", folder / f"{job.id}.html"


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# -- submit-time validation (no kernel) -------------------------------------------------------
def test_parameter_values_are_typed_like_papermill_cli() -> None:
    assert [parse_parameter_value(v) for v in ["3", "-2", "0.5", "1e3", "True", "False"]] == [
        3,
        -2,
        0.5,
        1000.0,
        True,
        False,
    ]
    assert parse_parameter_value("None") is None
    assert parse_parameter_value("web-1") == "web-1"
    assert parse_parameter_value("true") == "true"  # papermill is case-sensitive too
    assert parse_parameters_text("{days: 7, hosts: [a, b]}") == {"days": 7, "hosts": ["a", "b"]}
    assert parse_parameters_text('{"x": null}') == {"x": None}
    with pytest.raises(ValidationError, match="mapping"):
        parse_parameters_text("[1, 2]")


def test_payload_is_validated_and_normalised(tmp_path: Path) -> None:
    kind = NotebookKind()
    clean = kind.validate({"path": str(NOTEBOOKS / "ok.ipynb"), "parameters": {"greeting": "x"}})
    assert clean == {
        "path": str((NOTEBOOKS / "ok.ipynb").resolve()),
        "parameters": {"greeting": "x"},
        "kernel": None,
        "cwd": None,
    }
    (tmp_path / "plain.ipynb").write_text("not json")
    (tmp_path / "list.ipynb").write_text("[]")
    (tmp_path / "x.py").write_text("print(1)")
    cases = [
        ({"path": str(tmp_path / "missing.ipynb")}, "notebook not found"),
        ({"path": str(tmp_path / "plain.ipynb")}, "not JSON"),
        ({"path": str(tmp_path / "list.ipynb")}, "no nbformat 4 cells"),
        ({"path": str(tmp_path / "x.py")}, "expected a .ipynb file"),
        ({"path": str(tmp_path)}, "expected a .ipynb file"),
        ({"path": ""}, "non-empty"),
        ({}, "non-empty"),
        ({"path": "a\x00.ipynb"}, "NUL"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "parameters": {"x; import os": 1}}, "identifier"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "parameters": {"class": 1}}, "identifier"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "parameters": [1]}, "JSON object"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "kernel": "../evil"}, "invalid kernel"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "cwd": str(tmp_path / "no")}, "not a folder"),
        ({"path": str(NOTEBOOKS / "ok.ipynb"), "output": "/etc/x"}, "unknown field"),
    ]
    for payload, message in cases:
        with pytest.raises(ValidationError, match=message):
            kind.validate(payload)


def test_inline_mode_is_refused(tmp_path: Path) -> None:
    with client_for(settings_for(tmp_path)) as client:
        with pytest.raises(ValidationError, match="runs only in process, thread mode"):
            client.submit("nb", kind="notebook", payload={"path": str(NOTEBOOKS / "ok.ipynb")},
                          mode="inline")  # fmt: skip
        assert client.results() == []


# -- running on real kernels ------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_ok_notebook_keeps_output_html_provenance_and_progress(env, mode: str) -> None:
    client, handle = env
    job = run(client, "ok.ipynb", mode, parameters={"greeting": "hey"})
    assert job.state is JobState.SUCCEEDED, job.error or job.output
    lines = job.output.splitlines()
    assert [ln for ln in lines if ln.startswith(("[cell ", "[injected"))] == [
        '[cell 1 (1/4)] greeting = "hello"',
        "[injected parameters (2/4)]",
        '[cell 2 (3/4)] print(greeting, "from a notebook")',
        "[cell 3 (4/4)] answer = 6 * 7",
    ]
    assert "hey from a notebook" in lines
    assert "--- 4 of 4 code cells run in" in job.output
    ipynb, html = outputs(client, job)
    nb = nbformat.read(ipynb, as_version=4)
    meta = nb.metadata["opsjobs"]
    assert meta["job_id"] == job.id and meta["version"] == opsjobs.__version__
    assert meta["parameters"] == {"greeting": "hey"} and meta["kernel"] == "python3"
    assert meta["worker_id"] == handle.id and meta["error"] is None
    assert nb.metadata["papermill"]["parameters"] == {"greeting": "hey"}
    assert nb.cells[-1].outputs[0]["data"]["text/plain"] == "42"
    assert "hey from a notebook" in html.read_text()
    assert job.result["output"] == str(ipynb.resolve()) and job.result["cells_run"] == 4
    assert not (client.settings.jobs_dir / job.id).exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_context_metrics_and_result_from_cells_land_on_the_job(env, mode: str) -> None:
    client, handle = env
    job = run(client, "metrics.ipynb", mode, parameters={"value": 2.5})
    assert job.state is JobState.SUCCEEDED, job.error or job.output
    assert job.result == {"job": job.id, "value": 2.5, "cwd": str(NOTEBOOKS)}
    first = client.store.metrics("nb_value", job_id=job.id)
    second = client.store.metrics("nb_second", job_id=job.id)
    assert [(m.value, dict(m.labels)) for m in first] == [(2.5, {"source": "notebook"})]
    assert [m.value for m in second] == [5.0]
    assert first[0].worker_id == handle.id and first[0].host == handle.worker.host
    assert job.started_at <= first[0].at <= second[0].at <= job.finished_at


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_failing_cell_fails_the_job_and_keeps_the_partial_notebook(env, mode: str) -> None:
    client, _ = env
    job = run(client, "fail_cell2.ipynb", mode)
    assert job.state is JobState.FAILED
    assert job.error == "NotebookExecutionError: cell 2 raised ValueError: boom in cell 2"
    assert "\n[cell 2 (3/4)] raise" in job.output  # the progress line names the same cell
    assert "before the failure" in job.output
    assert "never printed" not in job.output
    assert "--- failed after 3 of 4 code cells" in job.output
    ipynb, html = outputs(client, job)
    nb = nbformat.read(ipynb, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "ename" in o]
    assert [(o.ename, o.evalue) for o in errors] == [("ValueError", "boom in cell 2")]
    assert nb.metadata["opsjobs"]["error"] == job.error.split(": ", 1)[1]
    assert html.is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("code", "state"), [(3, JobState.FAILED), (0, JobState.SUCCEEDED)])
def test_sys_exit_in_a_cell(env, code: int, state: JobState) -> None:
    client, _ = env
    job = run(client, "sysexit.ipynb", "thread", parameters={"code": code})
    assert job.state is state, job.error
    assert f"exiting with {code}" in job.output
    assert "after the exit" not in job.output
    if code:
        assert job.error == "NotebookExecutionError: cell 1 raised SystemExit: 3"
    else:
        assert "stopped by sys.exit(0) in cell 1" in job.output


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_timeout_and_cancel_kill_the_kernel_and_its_children(
    env, tmp_path: Path, mode: str, how: str
) -> None:
    client, _ = env
    pid_file = tmp_path / "pids.json"
    job = submit(
        client,
        "long_running.ipynb",
        mode,
        parameters={"pid_file": str(pid_file)},
        # the timeout counts from the job's start: it must leave a loaded machine time to
        # start the child and its kernel (8 s did not, twice; 20 s did not once at load 7)
        # before the pids are written
        timeout=40.0 if how == "timeout" else None,
    )
    pids = wait_for(
        lambda: pid_file.is_file() and json.loads(pid_file.read_text()), 90, "the kernel's pids"
    )
    kernel = psutil.Process(pids["kernel"])
    assert kernel.pid != os.getpid() and not gone(pids["sleeper"])
    if how == "cancel":
        client.cancel(job.id)
    done = client.wait(job.id, timeout=60)  # the 40 s timeout, from the job's start
    assert done.state is (JobState.TIMED_OUT if how == "timeout" else JobState.CANCELLED)
    wait_for(lambda: gone(pids["kernel"]) and gone(pids["sleeper"]), 15, "kernel tree to die")
    log = client.log_path(job.id)
    if mode == "thread":  # the job's thread notices the dead kernel and says so
        wait_for(lambda: "the kernel and its children were killed" in log.read_text(), 15)
    assert "started" in log.read_text()
    assert "finished without being stopped" not in log.read_text()
    assert outputs(client, done)[0].is_file()  # the partial notebook is kept


@pytest.mark.slow
def test_notebook_removed_after_submit_fails_clearly(env, tmp_path: Path) -> None:
    client, _ = env
    copy = tmp_path / "gone.ipynb"
    shutil.copy(NOTEBOOKS / "ok.ipynb", copy)
    handle = env[1]
    handle.stop()  # nothing runs it before the file is gone
    job = client.submit("nb", kind="notebook", payload={"path": str(copy)}, mode="thread")
    copy.unlink()
    with opsjobs.embed(store=client.store, settings=client.settings, threads=1):
        done = client.wait(job.id, timeout=30)
    assert done.state is JobState.FAILED
    assert done.error == f"RunnerError: notebook not found: {copy}"


@pytest.mark.slow
def test_unknown_kernel_fails_clearly(env) -> None:
    client, _ = env
    payload = {"path": str(NOTEBOOKS / "ok.ipynb"), "kernel": "no-such-kernel"}
    job = client.submit("nb", kind="notebook", payload=payload, mode="thread")
    done = client.wait(job.id, timeout=30)
    assert done.state is JobState.FAILED
    assert "no Jupyter kernel named 'no-such-kernel'" in (done.error or "")


#: A kernel that dies before it answers the first time it starts (as one does when another
#: process took one of the ports jupyter_client picked for it: "Address already in use").
DIES_ONCE = """
import os, sys
marker, connection = sys.argv[1], sys.argv[2]
if not os.path.exists(marker):
    open(marker, "w").close()
    sys.exit(1)
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", connection])
"""


@pytest.mark.slow
def test_a_kernel_that_dies_before_answering_is_started_again(
    env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CI run: "Kernel died before replying to kernel_info" (ZMQError: Address already in use,
    # a port race with the other suites' kernels) failed a notebook job that never ran a cell.
    client, _ = env
    spec = tmp_path / "jupyter" / "kernels" / "dies-once"
    spec.mkdir(parents=True)
    marker = tmp_path / "started-once"
    argv = [sys.executable, "-c", DIES_ONCE, str(marker), "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "dies once", "language": "python"})
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    payload = {"path": str(NOTEBOOKS / "ok.ipynb"), "kernel": "dies-once"}
    job = client.wait(client.submit("nb", kind="notebook", payload=payload, mode="thread").id, 90)
    assert marker.exists()  # the first start did die
    assert job.state is JobState.SUCCEEDED, job.error or job.output
    assert "the kernel died before it answered; starting it again" in job.output


# -- the CLI ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_submit_notebook_with_typed_parameters_and_wait(env) -> None:
    client, _ = env
    done = run_cli(
        client.settings,
        *("submit", "--name", "typed", "--notebook", str(NOTEBOOKS / "typed_parameters.ipynb")),
        *("-p", "count", "3", "-p", "ratio", "0.5", "-p", "enabled", "True"),
        *("-p", "nothing", "None", "-y", "{label: web-1, items: [1, two]}", "--wait"),
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    assert "[cell 0 (1/3)] count = 0" in done.stdout
    assert "[cell 1 (3/3)] import opsjobs" in done.stdout
    job = client.results()[0]
    assert job.result == {
        "count": [3, "int"],
        "ratio": [0.5, "float"],
        "enabled": [True, "bool"],
        "label": ["web-1", "str"],
        "nothing": [None, "NoneType"],
        "items": [[1, "two"], "list"],
    }


def test_cli_bad_notebook_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    cases = [
        (["--notebook", str(tmp_path / "missing.ipynb")], "notebook not found"),
        (["--command", "print(1)", "-p", "a", "1"], "go with --notebook"),
        (["--notebook", str(NOTEBOOKS / "ok.ipynb"), "-p", "2x", "1"], "identifier"),
        (["--notebook", str(NOTEBOOKS / "ok.ipynb"), "-y", "[1]"], "mapping"),
        (["--notebook", str(NOTEBOOKS / "ok.ipynb"), "--mode", "inline"], "not inline"),
    ]
    for args, message in cases:
        done = run_cli(settings, "submit", "--name", "x", *args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("opsjobs: error: ") and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_client_submit_notebook_convenience(env) -> None:
    client, _ = env
    job = client.submit(
        "nb", notebook=NOTEBOOKS / "typed_parameters.ipynb", parameters={"count": 9}, mode="process"
    )
    assert job.kind == "notebook" and job.spec.payload["parameters"] == {"count": 9}
    done = client.wait(job.id, timeout=90)
    assert done.state is JobState.SUCCEEDED, done.error
    assert done.result["count"] == [9, "int"]
    with pytest.raises(ValidationError, match="go with notebook"):
        client.submit("nb", command="print(1)", parameters={"a": 1})
    with pytest.raises(ValidationError, match="exactly one of"):
        client.submit("nb", notebook=NOTEBOOKS / "ok.ipynb", command="print(1)")
