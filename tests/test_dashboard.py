"""The dashboard without a browser: session tokens, the data layer's scoping, sorting and paging,
the HTML it renders and the widget app's commands (as the page's bridge sends them)."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness import ADA, BOB, dashboard_users

from opsjobs.auth import SYSTEM_OWNER, User
from opsjobs.client import Client
from opsjobs.dashboard import launch
from opsjobs.dashboard.data import DashboardData, ResultsState, SubmitForm
from opsjobs.dashboard.render import (
    detail_html,
    duration,
    job_actions,
    jobs_table,
    results_table,
)
from opsjobs.dashboard.session import SESSION_VARIABLE, open_session, sign_token, verify_token
from opsjobs.errors import JobNotFound, NotFound, PermissionDenied, ValidationError
from opsjobs.model import JobState, Metric
from opsjobs.server.voila import DashboardLauncher, prelaunch_hook
from opsjobs.store.base import Finish


def users(client: Client) -> dict[str, User]:
    return dashboard_users(client)


def finished(
    client: Client, name: str, owner: str, runtime: float, state: JobState = JobState.SUCCEEDED
) -> str:
    """A job that ran for ``runtime`` seconds and ended in ``state``."""
    queue = f"q-{abs(hash(name))}"
    job = client.submit(name, command="print(1)", owner=owner, queue=queue)
    now = time.time()
    claimed = client.store.claim("w1", "alpha", [job.queue], now=now, lease=30)
    assert claimed is not None and claimed.id == job.id
    outcome = Finish(state, output=f"output of {name}", result_json='{"answer": 42}')
    assert client.store.finish(job.id, "w1", claimed.attempt, outcome, now=now + runtime)
    return job.id


# -- session ----------------------------------------------------------------------------------
def test_token_round_trip_expiry_and_forgery() -> None:
    secret = b"s" * 32
    token = sign_token(secret, "user-1", now=1000.0, ttl=60)
    assert verify_token(secret, token, now=1030.0) == "user-1"
    with pytest.raises(PermissionDenied, match="expired"):
        verify_token(secret, token, now=1061.0)
    with pytest.raises(PermissionDenied, match="not valid"):
        verify_token(b"x" * 32, token, now=1030.0)
    _body, sig = token.split(".")
    forged = sign_token(secret, "user-2", now=1000.0).split(".")[0] + "." + sig
    with pytest.raises(PermissionDenied):
        verify_token(secret, forged, now=1030.0)
    with pytest.raises(PermissionDenied):
        verify_token(secret, "garbage", now=0)


def test_session_opens_the_store_as_the_signed_in_user(client: Client) -> None:
    people = users(client)
    launcher = DashboardLauncher(client.settings)
    try:
        assert stat.S_IMODE(os.stat(launcher.path).st_mode) == 0o600
        session = launcher.session_for(people["ada"])
        assert "oj_" not in str(session)  # no API key anywhere
        assert client.settings.store_url not in str(session)  # the store URL stays in the file
        kernel_client, user = open_session(session)
        with kernel_client:
            assert user == people["ada"]
            assert kernel_client.store.url == client.store.url
        with pytest.raises(PermissionDenied, match="expired"):
            open_session(session, now=time.time() + 3600)
    finally:
        launcher.close()
    with pytest.raises(PermissionDenied, match="opsjobs serve"):
        open_session(None)


def test_prelaunch_hook_injects_a_session_cell_for_the_dashboard_only(client: Client) -> None:
    import nbformat

    people = users(client)
    ext = SimpleNamespace(opsjobs_settings=client.settings)
    settings: dict[str, Any] = {"opsjobs": ext}
    handler = SimpleNamespace(
        request=SimpleNamespace(path="/voila/render/dashboard.ipynb"),
        current_user=SimpleNamespace(opsjobs=people["bob"]),
        settings=settings,
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    out = prelaunch_hook(handler, nb, "/")
    try:
        assert len(out.cells) == 2 and out.cells[0].source.startswith(SESSION_VARIABLE)
        scope: dict[str, Any] = {}
        exec(out.cells[0].source, scope)
        kernel_client, user = open_session(scope[SESSION_VARIABLE])
        kernel_client.close()
        assert user.email == BOB
        other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y = 2")])
        handler.request.path = "/voila/render/other.ipynb"
        assert len(prelaunch_hook(handler, other, "/").cells) == 1
    finally:
        settings["opsjobs_dashboard"].close()


def test_launch_without_a_session_shows_a_message_not_a_traceback() -> None:
    widget = launch(None)
    assert "Not signed in" in widget.value and "Traceback" not in widget.value


# -- data layer -------------------------------------------------------------------------------
def test_results_are_scoped_sorted_filtered_and_paged(client: Client) -> None:
    people = users(client)
    for i, runtime in enumerate([3.0, 1.0, 2.0, 5.0, 4.0]):
        state = JobState.FAILED if i == 1 else JobState.SUCCEEDED
        finished(client, f"ada-{i}", ADA, runtime, state)
    finished(client, "bob-only", BOB, 9.0)
    ada = DashboardData(client, people["ada"])
    page = ada.results(ResultsState(sort="-runtime", page_size=2))
    assert [j.name for j in page.rows] == ["ada-3", "ada-4"]
    assert (page.total, page.pages, page.first, page.last) == (5, 3, 1, 2)
    assert (page.stats.total, page.stats.succeeded, page.stats.failed) == (5, 4, 1)
    asc = ada.results(ResultsState(sort="-runtime", page_size=2).sorted_by("runtime"))
    assert [j.name for j in asc.rows] == ["ada-1", "ada-2"]
    last = ada.results(ResultsState(sort="runtime", page_size=2, page=99))
    assert last.state.page == 2 and [j.name for j in last.rows] == ["ada-3"]
    failed = ada.results(ResultsState(status="failed"))
    assert [j.name for j in failed.rows] == ["ada-1"]
    assert ada.results(ResultsState(name="ADA-4")).total == 1
    # bob sees only his own; ada's ids answer "not found"
    bob = DashboardData(client, people["bob"])
    assert [j.name for j in bob.results(ResultsState()).rows] == ["bob-only"]
    with pytest.raises(JobNotFound):
        bob.job(page.rows[0].id)
    with pytest.raises(JobNotFound):
        bob.delete(page.rows[0].id)
    # an admin sees their own until they switch to everyone's
    root = DashboardData(client, people["root"])
    assert root.results(ResultsState()).total == 0
    root.everyone = True
    assert root.results(ResultsState()).total == 6
    ada.everyone = True  # not an admin: ignored
    assert ada.results(ResultsState()).total == 5


def test_sort_toggle_and_unknown_column() -> None:
    state = ResultsState()
    assert state.sorted_by("runtime").sort == "-runtime"
    assert state.sorted_by("runtime").sorted_by("runtime").sort == "runtime"
    assert state.sorted_by("name").sort == "name"
    with pytest.raises(ValidationError):
        state.sorted_by("payload")


def test_delete_cancel_and_active_jobs(client: Client) -> None:
    people = users(client)
    done = finished(client, "done", ADA, 1.0)
    queued = client.submit("waiting", command="print(1)", owner=ADA, queue="nobody")
    data = DashboardData(client, people["ada"])
    assert [j.name for j in data.active_jobs()] == ["waiting"]
    assert data.cancel(queued.id).state is JobState.CANCELLED
    assert data.active_jobs() == []
    data.delete(done)
    with pytest.raises(JobNotFound):
        client.get(done)


def test_stop_and_delete_are_offered_only_on_jobs_the_user_may_change(client: Client) -> None:
    """Everyone sees the server's (``system``) jobs; only admins are offered Stop and Delete
    on them, as only admins may (clicking used to answer that only an admin may)."""
    people = users(client)
    mine = finished(client, "mine", ADA, 1.0)
    system_done = finished(client, "memory-analysis", SYSTEM_OWNER, 1.0)
    system_queued = client.submit("memory-analysis", command="print(1)", owner=SYSTEM_OWNER)
    ada, root = DashboardData(client, people["ada"]), DashboardData(client, people["root"])
    page = ada.results(ResultsState(page_size=50))
    assert {job.id for job in page.rows} >= {mine, system_done, system_queued.id}
    html = results_table(page, (), ada.may_change)
    assert f"delete:{mine}" in html
    assert f"delete:{system_done}" not in html and f"view:{system_done}" in html
    assert f"delete:{system_done}" in results_table(
        root.results(ResultsState()), (), root.may_change
    )
    queued = ada.job(system_queued.id)
    assert "cancel:" not in job_actions(queued, may_submit=True, may_change=ada.may_change(queued))
    assert f"cancel:{queued.id}" in job_actions(queued, may_submit=True, may_change=True)
    assert f"cancel:{queued.id}" not in jobs_table(ada.active_jobs(), time.time(), ada.may_change)
    assert f"cancel:{queued.id}" in jobs_table(root.active_jobs(), time.time(), root.may_change)
    with pytest.raises(PermissionDenied, match="only an admin"):
        ada.delete(system_done)
    # nor a checkbox to select them for "Delete selected" (which kept them with a refusal)
    assert f'class="opsjobs-select" data-job="{mine}"' in html
    assert f'class="opsjobs-select" data-job="{system_done}"' not in html
    assert f'class="opsjobs-select" data-job="{system_done}"' in results_table(
        root.results(ResultsState()), (), root.may_change
    )


def test_a_selection_takes_only_rows_the_user_may_delete(client: Client) -> None:
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    mine = finished(client, "mine", ADA, 1.0)
    system_done = finished(client, "memory-analysis", SYSTEM_OWNER, 1.0)
    app = DashboardApp(DashboardData(client, people["ada"]))
    app.refresh()
    # what a crafted page (or an old one) may send: both ids ticked
    app.bridge.value = "select:" + json.dumps({"on": [mine, system_done], "off": []}) + "|1"
    assert app.results.selected == {mine}
    assert 'data-selected="1"' in app.results.selection.value
    # the page's box ticks the whole page: with only the user's rows ticked, it shows ticked
    assert 'class="opsjobs-select-page" title="select this page" checked' in app.table.value


def test_schedules_need_a_submit_role_and_are_scoped(client: Client) -> None:
    people = users(client)
    client.schedules.add("ada-nightly", every="1h", command="print(1)", owner=ADA)
    client.schedules.add("bob-hourly", every="1h", command="print(1)", owner=BOB)
    ada = DashboardData(client, people["ada"])
    assert [s.name for s in ada.schedules()] == ["ada-nightly"]
    assert ada.pause("ada-nightly").enabled is False
    assert ada.resume("ada-nightly").enabled is True
    assert ada.run_now("ada-nightly").owner == ADA
    with pytest.raises(NotFound):
        ada.pause("bob-hourly")
    with pytest.raises(PermissionDenied):
        DashboardData(client, people["bob"]).pause("bob-hourly")  # bob has no submit role


def test_submit_form_kinds_and_errors(client: Client, tmp_path: Path) -> None:
    people = users(client)
    data = DashboardData(client, people["ada"])
    job = data.submit(SubmitForm("c", "call", "tests.jobfuncs:add", {"a": 1, "b": 2}, "inline"))
    assert (job.kind, job.owner, job.mode.value) == ("call", ADA, "inline")
    job = data.submit(SubmitForm("s", "command", "print(2)", timeout=5.0, queue="q1"))
    assert (job.kind, job.spec.timeout, job.queue) == ("command", 5.0, "q1")
    nb = tmp_path / "n.ipynb"
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "x = 0"}
    nb.write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    job = data.submit(SubmitForm("n", "notebook", str(nb), {"x": 1}, "process"))
    assert job.spec.payload["parameters"] == {"x": 1}
    with pytest.raises(ValidationError, match="declares only x"):  # typed, as everywhere
        data.submit(SubmitForm("n", "notebook", str(nb), {"y": 1}, "process"))
    with pytest.raises(ValidationError, match="give the"):
        data.submit(SubmitForm("c", "call", " "))
    with pytest.raises(ValidationError, match="no parameters"):
        data.submit(SubmitForm("s", "command", "print(1)", {"a": 1}))
    with pytest.raises(PermissionDenied):
        DashboardData(client, people["bob"]).submit(SubmitForm("x", "command", "print(1)"))
    # argv: a command line, split as a POSIX shell would (no shell runs it)
    job = data.submit(SubmitForm("a", "argv", "python3 -c 'print(\"a b\")'", mode="process"))
    assert (job.kind, job.spec.payload["argv"]) == ("argv", ["python3", "-c", 'print("a b")'])
    with pytest.raises(ValidationError, match="no parameters"):
        data.submit(SubmitForm("a", "argv", "true", {"a": 1}))
    with pytest.raises(ValidationError, match="quotation"):
        data.submit(SubmitForm("a", "argv", "echo 'unclosed"))


def test_memory_series_verdicts_and_latest_analysis(client: Client) -> None:
    people = users(client)
    now = time.time()
    points = [
        Metric("rss_mb", 100 + 5 * i, {"host": "alpha", "worker": "w1"}, at=now - 3600 * (10 - i))
        for i in range(10)
    ]
    points.append(Metric("rss_mb", 50, {"host": "alpha", "worker": "w1"}, at=now - 3 * 86400))
    points.append(Metric("gc_gen2_collections", 3, {"host": "alpha", "worker": "w1"}, at=now))
    client.store.record_metrics(points)
    data = DashboardData(client, people["ada"])
    view = data.memory(24 * 3600)
    assert len(view.series["rss_mb"]["alpha / w1"]) == 10  # the 3-day-old point is outside
    assert view.series["gc_gen2_collections"]["alpha / w1"] == [(pytest.approx(now), 3.0)]
    assert view.verdicts["alpha / w1"].leaking
    assert view.latest_analysis is None
    assert len(data.memory(7 * 86400).series["rss_mb"]["alpha / w1"]) == 11


# -- rendering --------------------------------------------------------------------------------
def test_duration_and_escaping(client: Client) -> None:
    assert duration(None) == "—" and duration(0.1234) == "0.123 s" and duration(75) == "1 m 15 s"
    assert duration(2 * 86400 + 3600) == "2 d 01 h"
    people = users(client)
    finished(client, "<script>alert(1)</script>", ADA, 1.0)
    data = DashboardData(client, people["ada"])
    page = data.results(ResultsState())
    html = results_table(page)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "opsjobs-results-table" in html and 'data-oj="sort:runtime"' in html
    detail = detail_html(page.rows[0])
    assert "output of" in detail and "&quot;answer&quot;: 42" in detail and "<script>" not in detail


# -- the widget app ---------------------------------------------------------------------------
def test_app_commands_from_the_bridge(client: Client) -> None:
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    ids = [finished(client, f"job-{i}", ADA, float(i + 1)) for i in range(3)]
    client.schedules.add("nightly", every="1h", command="print(1)", owner=ADA)
    app = DashboardApp(DashboardData(client, people["ada"]))
    app.refresh()
    assert "Submit" in app.tab_names and app.everyone.layout.display == "none"
    assert 'data-stat="total">3<' in app.stats_html.value
    app.bridge.value = "sort:runtime|1"
    assert app.state.sort == "-runtime"
    assert app.table.value.index("job-2") < app.table.value.index("job-0")
    app.bridge.value = f"view:{ids[1]}|2"
    assert app.detail_id == ids[1] and "output of job-1" in app.detail_html.value
    app.bridge.value = f"delete:{ids[1]}|3"
    assert app.confirm.layout.display == "" and "job-1" in app.confirm_text.value
    app._confirm(True)
    assert app.detail_id is None and "job-1" not in app.table.value
    assert "deleted" in app.message.value
    app.bridge.value = f"view:{ids[1]}|4"  # gone: a message, not a traceback
    assert "no job with id" in app.message.value and "Traceback" not in app.message.value
    app.tabs.selected_index = app.tab_names.index("Schedules")
    schedule = client.schedules.get("nightly")
    app.bridge.value = f"pause:{schedule.id}|5"
    assert "paused" in app.message.value and "Resume" in app.panel_html["schedules"].value
    app.tabs.selected_index = app.tab_names.index("Memory")
    assert app.chart.value[:4] == b"\x89PNG"
    app.bridge.value = "bogus:x|6"
    assert "Unknown action" in app.message.value


def test_app_for_a_reader_and_an_admin(client: Client) -> None:
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    finished(client, "ada-job", ADA, 1.0)
    bob = DashboardApp(DashboardData(client, people["bob"]))
    bob.refresh()
    assert "Submit" not in bob.tab_names and "ada-job" not in bob.table.value
    root = DashboardApp(DashboardData(client, people["root"]))
    root.refresh()
    assert root.everyone.layout.display == "" and "ada-job" not in root.table.value
    root.everyone.value = True
    assert "ada-job" in root.table.value


# -- alerts -----------------------------------------------------------------------------------
def open_alert(client: Client, rule: str, severity: str, host: str, value: float) -> None:
    """An alert opened the way a worker opens one: a rule, a recorded metric, the evaluator."""
    from opsjobs.alerts import AlertEvaluator, AlertRule, AlertRules

    try:
        client.store.get_alert_rule(rule)
    except NotFound:
        AlertRules(client.store).add(
            AlertRule(rule, "rss_mb", "above", 100.0, severity=severity, labels={"host": host})
        )
    metric = Metric("rss_mb", value, {"host": host, "worker": "w1"}, at=time.time())
    client.store.record_metrics([metric])
    evaluator = AlertEvaluator(client.store)
    try:
        assert evaluator.evaluate([metric])
    finally:
        evaluator.close()


def test_open_alerts_for_every_user_most_severe_first(client: Client) -> None:
    from opsjobs.dashboard.render import alert_badges, alerts_table, header_html

    people = users(client)
    bob = DashboardData(client, people["bob"])
    assert bob.alert_counts()["open"] == 0 and bob.open_alerts() == []
    assert 'data-open="0"' in alert_badges(bob.alert_counts())
    assert "No open alerts" in alerts_table([], time.time())

    open_alert(client, "big-rss", "warning", "alpha", 150.0)
    open_alert(client, "huge-rss", "critical", "beta<b>", 250.0)
    for who in ("ada", "bob", "root"):  # alerts are about hosts: every signed-in user sees them
        data = DashboardData(client, people[who])
        assert data.alert_counts() == {"open": 2, "critical": 1, "warning": 1, "info": 0}
        assert [a.rule_name for a in data.open_alerts()] == ["huge-rss", "big-rss"]
    view = bob.memory(24 * 3600)
    assert [a.severity.value for a in view.alerts] == ["critical", "warning"]
    assert view.until == pytest.approx(time.time(), abs=5)

    badges = alert_badges(bob.alert_counts())
    assert 'data-open="2"' in badges and 'data-oj="alerts:"' in badges
    assert "1 critical" in badges and "1 warning" in badges and "info" not in badges
    assert "bob@example.org" in header_html(BOB, (), bob.alert_counts())
    table = alerts_table(view.alerts, time.time())
    assert table.index("huge-rss") < table.index("big-rss")
    assert "beta&lt;b&gt;" in table and "<b>beta<b>" not in table  # labels are escaped
    assert "worker=w1" in table and "rss_mb &gt; 100" in table  # labels and the message


def test_app_header_and_memory_tab_show_open_alerts(client: Client) -> None:
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    app = DashboardApp(DashboardData(client, people["bob"]))  # a reader: no jobs of their own
    app.refresh()
    assert "no open alerts" in app.header.value
    open_alert(client, "big-rss", "critical", "alpha", 150.0)
    app.bridge.value = "tick:|1"
    assert "1 critical" in app.header.value and "no open alerts" not in app.header.value
    app.bridge.value = "alerts:|2"  # the header's badge opens the Memory tab
    assert app.current_tab == "Memory"
    assert "opsjobs-alerts-table" in app.alerts_html.value and "big-rss" in app.alerts_html.value


def test_an_empty_chart_spans_the_window_not_1970(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.dates import num2date
    from matplotlib.figure import Figure

    from opsjobs.dashboard.charts import memory_chart
    from opsjobs.dashboard.data import MemoryView

    drawn: list[Figure] = []
    savefig = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> None:
        drawn.append(self)
        savefig(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    now = time.time()
    assert memory_chart(MemoryView(now - 3600, {}, {}, None, until=now))[:4] == b"\x89PNG"
    for ax in drawn[0].axes:  # both panels: the window's hour on x, no value ticks
        left, right = (num2date(x).timestamp() for x in ax.get_xlim())
        assert left == pytest.approx(now - 3600, abs=1) and right == pytest.approx(now, abs=1)
        assert list(ax.get_yticks()) == []


def test_memory_tab_manages_notification_rules_in_the_users_scope(client: Client) -> None:
    from opsjobs.alerts.notices import NotifySend
    from opsjobs.dashboard.app import DashboardApp

    people = users(client)
    app = DashboardApp(DashboardData(client, people["ada"]))
    app.tabs.selected_index = app.tab_names.index("Memory")
    assert "No notification rules." in app.notify.rules_html.value
    assert "Nothing sent yet." in app.notify.sends_html.value
    app.notify.f_name.value = "my-fails"
    app.notify.f_job.value = "nightly-*"
    app.notify.f_email.value = "ada@example.org"
    app.notify.f_group.value = 30
    app.notify.add()
    assert "my-fails" in app.notify.rules_html.value and "1800 s" in app.notify.rules_html.value
    rule = client.store.get_notify_rule("my-fails")
    assert rule.owner == ADA and rule.group_seconds == 1800  # ada's rules watch ada's jobs
    app.notify.f_name.value = "bad"
    app.notify.f_email.value = "not an address"
    app.notify.widget.children[1].children[1].children[3].click()  # the Add button
    assert "invalid e-mail address" in app.message.value
    job_id = finished(client, "nightly-1", ADA, 1.0, JobState.FAILED)
    client.store.record_notify_send(
        NotifySend(
            rule.id,
            rule.name,
            job_id,
            "nightly-1",
            ADA,
            "failed",
            "email",
            ADA,
            False,
            "SMTPConnectError",
            1,
            time.time(),
        )
    )
    app.bridge.value = "tick:|1"
    assert "failed: SMTPConnectError" in app.notify.sends_html.value
    # bob (no role) sees neither ada's rule nor her sends, and cannot change rules
    bob = DashboardApp(DashboardData(client, people["bob"]))
    bob.tabs.selected_index = bob.tab_names.index("Memory")
    assert "my-fails" not in bob.notify.rules_html.value
    assert "Nothing sent yet." in bob.notify.sends_html.value
    bob.bridge.value = f"notify-remove:{rule.id}|1"
    assert "needs a role" in bob.message.value
    app.bridge.value = f"notify-remove:{rule.id}|2"
    assert (
        "removed" in app.message.value and "No notification rules." in app.notify.rules_html.value
    )


def test_a_notification_link_opens_the_jobs_detail(client: Client) -> None:
    import nbformat

    from opsjobs.alerts.notices import job_link

    people = users(client)
    job_id = finished(client, "nightly-1", BOB, 1.0, JobState.FAILED)
    assert job_link("https://ops.example.org", job_id).endswith(f"/opsjobs/?job={job_id}")
    settings: dict[str, Any] = {"opsjobs": SimpleNamespace(opsjobs_settings=client.settings)}
    handler = SimpleNamespace(
        request=SimpleNamespace(
            path="/voila/render/dashboard.ipynb", query_arguments={"job": [job_id.encode()]}
        ),
        current_user=SimpleNamespace(opsjobs=people["bob"]),
        settings=settings,
    )
    try:
        out = prelaunch_hook(handler, nbformat.v4.new_notebook(), "/")
        scope: dict[str, Any] = {}
        exec(out.cells[0].source, scope)
        assert scope[SESSION_VARIABLE]["job"] == job_id
        widget = launch(scope[SESSION_VARIABLE])
        tabs = next(c for c in widget.children if "opsjobs-tabs" in c._dom_classes)
        detail = tabs.children[0].children[1]  # Results → detail box
        assert detail.layout.display == "" and "nightly-1" in detail.children[-1].value
        # anything but a job id is not passed on
        handler.request.query_arguments = {"job": [b"x'); import os; ('"]}
        out = prelaunch_hook(handler, nbformat.v4.new_notebook(), "/")
        scope = {}
        exec(out.cells[0].source, scope)
        assert "job" not in scope[SESSION_VARIABLE]
    finally:
        settings["opsjobs_dashboard"].close()
