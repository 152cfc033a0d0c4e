"""Notifications on job outcomes, end to end on real parts: a real local SMTP server (aiosmtpd),
a real local HTTP receiver for the webhooks, real workers, a real scheduler and a real notebook
kernel; the messages are asserted as received."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, TESTS, cli_env, client_for, run_cli, settings_for, wait_for
from receivers import PASSWORD, Mailbox, Receiver, free_port, self_signed

from opsjobs.alerts.notices import NotifyRule, job_link
from opsjobs.alerts.notifier import Notifier
from opsjobs.alerts.notify_rules import NotifyRules
from opsjobs.client import Client
from opsjobs.config import Settings
from opsjobs.errors import NotFound, PermissionDenied, ValidationError
from opsjobs.model import Job, JobState, ResultQuery
from opsjobs.scheduler import Scheduler
from opsjobs.worker import embed

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


BASE = "http://ops.example.org:8888"


def notify_settings(tmp_path: Path, mailbox: Mailbox | None, receiver: Receiver | None, **kw: Any):
    values: dict[str, Any] = {"base_url": BASE, "poll_interval": 0.5}
    if mailbox is not None:
        values.update(smtp_host="127.0.0.1", smtp_port=mailbox.port, smtp_from="ops@example.org")
    if receiver is not None:
        values["webhooks"] = (receiver.url,)
    values.update(kw)
    return settings_for(tmp_path, **values)


def add_rule(client: Client, **fields: Any) -> NotifyRule:
    rules = NotifyRules(client.store, "tester", sees_all=True)
    return rules.add(rules.build(fields))


def failed_runs(client: Client, name: str) -> list[Job]:
    query = ResultQuery(exact_name=name, states=(JobState.FAILED,), sort="finished_at")
    return client.store.results(query)


# -- the acceptance: a failing scheduled notebook --------------------------------------------------
@pytest.mark.slow
def test_failing_scheduled_notebook_mails_and_posts_once_per_window(
    tmp_path: Path, mailbox: Mailbox, receiver: Receiver
) -> None:
    settings = notify_settings(tmp_path, mailbox, receiver)
    with client_for(settings) as client:
        add_rule(
            client,
            name="nightly-fails",
            states=["failed", "timed_out", "lost"],
            job_name="nightly-*",
            email=["oncall@example.org"],
            group_seconds=3600,
        )
        handle = embed(store=client.store, settings=settings, threads=2)
        try:
            with Scheduler(client.store, settings).start():
                client.schedules.add(
                    "nightly-report",
                    every=1,
                    notebook=str(TESTS / "notebooks" / "fail_cell2.ipynb"),
                    mode="process",
                )
                wait_for(
                    lambda: len(failed_runs(client, "nightly-report")) >= 3,
                    120,
                    "three failed runs of the schedule",
                )
            assert handle.worker.notices.flush(30)  # type: ignore[attr-defined]
        finally:
            handle.stop()
        runs = failed_runs(client, "nightly-report")
        first = runs[0]
        assert "boom in cell 2" in (first.error or "")
        # exactly one e-mail and one webhook call in the window, about the first failure
        assert len(mailbox.messages) == 1, [m["Subject"] for m in mailbox.messages]
        assert len(receiver.bodies) == 1
        mail = mailbox.messages[0]
        assert mail["Subject"] == "[opsjobs] nightly-report failed"
        assert mail["From"] == "ops@example.org"
        assert mailbox.rcpts == [["oncall@example.org"]]
        body = mail.get_payload(decode=True).decode()
        link = f"{BASE}/opsjobs/?job={first.id}"
        assert link == job_link(BASE, first.id)
        assert f"Details:  {link}" in body
        assert "State:    failed" in body and "boom in cell 2" in body
        assert f"Host:     {first.host}" in body and "Runtime:  " in body
        hook = receiver.bodies[0]
        assert hook["link"] == link and hook["count"] == 1 and hook["state"] == "failed"
        assert hook["job"]["id"] == first.id and hook["job"]["name"] == "nightly-report"
        assert link in hook["text"]
        # both deliveries are on record, and visible through the CLI
        sends = client.store.notify_sends()
        assert sorted((s.channel, s.ok, s.job_id) for s in sends) == [
            ("email", True, first.id),
            ("webhook", True, first.id),
        ]
    out = run_cli(settings, "notify", "sends")
    assert out.returncode == 0, out.stderr
    assert "nightly-fails" in out.stdout and "oncall@example.org" in out.stdout


# -- grouping windows and their counts -----------------------------------------------------------
def test_a_new_window_reports_the_ends_held_in_the_last(
    tmp_path: Path, mailbox: Mailbox, receiver: Receiver
) -> None:
    settings = notify_settings(tmp_path, mailbox, receiver)
    with client_for(settings) as client:
        add_rule(client, name="fails", email=["a@example.org"], group_seconds=2)
        with embed(store=client.store, settings=settings, threads=1) as handle:
            jobs = [client.submit("flaky", command="raise SystemExit(3)") for _ in range(3)]
            for job in jobs:
                assert client.wait(job.id, timeout=30).state is JobState.FAILED
            assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
            assert len(mailbox.messages) == len(receiver.bodies) == 1
            first = client.store.get(jobs[0].id)
            assert first.finished_at is not None
            wait_for(lambda: time.time() > first.finished_at + 2.05, 10, "the window's end")
            late = client.submit("flaky", command="raise SystemExit(3)")
            assert client.wait(late.id, timeout=30).state is JobState.FAILED
            wait_for(lambda: len(mailbox.messages) == 2, 20, "the next window's message")
            wait_for(lambda: len(receiver.bodies) == 2, 20, "the next window's webhook")
    assert (
        mailbox.messages[1]["Subject"] == "[opsjobs] flaky failed (3 times since the last message)"
    )
    body = mailbox.messages[1].get_payload(decode=True).decode()
    assert "Count:    3 end(s) of flaky since the last message" in body
    assert f"{BASE}/opsjobs/?job={late.id}" in body
    assert receiver.bodies[1]["count"] == 3


def test_a_success_rule_sends_on_success_and_recovered_only_after_a_failure(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    settings = notify_settings(tmp_path, mailbox, None)
    with client_for(settings) as client:
        add_rule(
            client, name="ok", states=["succeeded"], job_name="deploy", email=["a@example.org"],
            webhook=False, group_seconds=0,
        )  # fmt: skip
        add_rule(
            client, name="back", states=["recovered"], email=["b@example.org"], webhook=False,
            group_seconds=0,
        )  # fmt: skip
        with embed(store=client.store, settings=settings, threads=1) as handle:
            notices: Notifier = handle.worker.notices  # type: ignore[attr-defined]
            for name, src in [
                ("deploy", "pass"),
                ("sync", "pass"),
                ("sync", "raise SystemExit(1)"),
            ]:
                assert client.wait(client.submit(name, command=src).id, timeout=30).finished
                assert notices.flush(20)
            assert [m["Subject"] for m in mailbox.messages] == ["[opsjobs] deploy succeeded"]
            job = client.submit("sync", command="pass")
            assert client.wait(job.id, timeout=30).state is JobState.SUCCEEDED
            assert notices.flush(20)
    assert [m["Subject"] for m in mailbox.messages][1:] == ["[opsjobs] sync recovered"]
    assert mailbox.rcpts == [["a@example.org"], ["b@example.org"]]
    assert f"?job={job.id}" in mailbox.messages[1].get_payload(decode=True).decode()


def test_rules_match_by_glob_queue_and_owner(tmp_path: Path, mailbox: Mailbox) -> None:
    settings = notify_settings(tmp_path, mailbox, None)
    with client_for(settings) as client:
        add_rule(
            client, name="r", job_name="backup-*", queue="nightly", owner="ann",
            email=["a@example.org"], webhook=False, group_seconds=0,
        )  # fmt: skip
        with embed(["default", "nightly"], store=client.store, settings=settings) as handle:
            cases = [
                ("backup-db", "nightly", "ann"),  # the one that matches
                ("backup-db", "default", "ann"),
                ("backup-db", "nightly", "bob"),
                ("restore-db", "nightly", "ann"),
            ]
            for name, queue, owner in cases:
                job = client.submit(name, command="raise SystemExit(1)", queue=queue, owner=owner)
                assert client.wait(job.id, timeout=30).state is JobState.FAILED
            assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
    assert len(mailbox.messages) == 1
    body = mailbox.messages[0].get_payload(decode=True).decode()
    assert "Queue:    nightly" in body and "Owner:    ann" in body


# -- several workers, one store ------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_notifiers_sharing_a_store_send_each_end_once(
    tmp_path: Path, mailbox: Mailbox, backend: str
) -> None:
    with contextlib.ExitStack() as stack:
        extra: dict[str, Any] = {}
        if backend == "postgres":
            from pg import isolated_schema  # a fresh schema; skips without a server

            extra["store_url"] = stack.enter_context(isolated_schema())
        settings = notify_settings(tmp_path, mailbox, None, **extra)
        client = stack.enter_context(client_for(settings))
        add_rule(client, name="each", email=["a@example.org"], webhook=False, group_seconds=0)
        with embed(store=client.store, settings=settings, threads=2) as handle:
            jobs = [client.submit(f"j{i}", command="raise SystemExit(1)") for i in range(6)]
            for job in jobs:
                assert client.wait(job.id, timeout=30).state is JobState.FAILED
            assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
        assert len(mailbox.messages) == 6
        # every worker of a fleet reporting the same ends again, at once, sends nothing more
        ends: list[tuple[str, int | None]] = [(job.id, 1) for job in jobs]
        others = [Notifier(client.store, settings) for _ in range(3)]
        threads = [threading.Thread(target=n.handle, args=(ends,)) for n in others]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(mailbox.messages) == 6
        assert len(client.store.notify_sends()) == 6


# -- failures to send are recorded; the password is never shown ---------------------------------
def test_failures_to_send_are_recorded(tmp_path: Path, receiver: Receiver) -> None:
    dead = free_port()  # nothing listens there
    settings = notify_settings(tmp_path, None, receiver, smtp_host="127.0.0.1", smtp_port=dead)
    receiver.script = [500, 500, 500]  # every try of the one delivery
    with client_for(settings) as client:
        add_rule(client, name="r", email=["a@example.org"], group_seconds=0)
        notifier = Notifier(client.store, settings, webhook_backoff=0.01)
        job = client.submit("x", command="raise SystemExit(1)")
        with embed(store=client.store, settings=settings, threads=1):
            assert client.wait(job.id, timeout=30).state is JobState.FAILED
        wait_for(lambda: len(client.store.notify_sends()) == 2, 30, "both failures recorded")
        by_channel = {s.channel: s for s in client.store.notify_sends()}
        assert by_channel["email"].ok is False
        assert "ConnectionRefusedError" in by_channel["email"].detail
        assert by_channel["webhook"].ok is False and by_channel["webhook"].detail == "HTTP 500"
        assert by_channel["webhook"].target == "http://127.0.0.1/…"  # the path may be a secret
        assert [h[1] for h in receiver.hits] == [500, 500, 500]  # retried, then given up
        # without a mail server or receivers configured, the rule's sends say so
        bare = Notifier(client.store, settings_for(tmp_path / "bare"))
        client.store.remove_notify_rule(client.store.get_notify_rule("r").id)
        add_rule(client, name="r2", email=["a@example.org"], group_seconds=0)
        sends = bare.handle([(job.id, None)])
        assert sorted((s.channel, s.ok) for s in sends) == [("email", False), ("webhook", False)]
        assert "OPSJOBS_SMTP_HOST" in sends[0].detail + sends[1].detail
        assert notifier.handle([(job.id, 1)]) == []  # handled already: nothing twice


def test_smtp_login_and_the_password_stays_secret(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    box = Mailbox(login=True)
    try:
        base = {"smtp_host": "127.0.0.1", "smtp_port": box.port, "smtp_user": "opsbot"}
        good = notify_settings(tmp_path, None, None, smtp_password=PASSWORD, **base)
        bad = notify_settings(tmp_path, None, None, smtp_password="wrong-" + PASSWORD, **base)
        assert PASSWORD not in repr(good)
        caplog.set_level(logging.DEBUG)
        with client_for(good) as client:
            add_rule(client, name="r", email=["a@example.org"], webhook=False, group_seconds=0)
            with embed(store=client.store, settings=good, threads=1) as handle:
                job = client.submit("x", command="raise SystemExit(1)")
                assert client.wait(job.id, timeout=30).state is JobState.FAILED
                assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
            assert box.logins == ["opsbot"] and len(box.messages) == 1
            job2 = client.submit("y", command="pass")
            client.store.remove_notify_rule(client.store.get_notify_rule("r").id)
            add_rule(client, name="r", states=["succeeded"], email=["a@example.org"],
                     webhook=False, group_seconds=0)  # fmt: skip
            with embed(store=client.store, settings=bad, threads=1) as handle:
                assert client.wait(job2.id, timeout=30).state is JobState.SUCCEEDED
                assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
            failure = client.store.notify_sends()[0]
            assert failure.ok is False and "SMTPAuthenticationError 535" in failure.detail
            shown = [s.detail for s in client.store.notify_sends()]
        assert "not sent: SMTPAuthenticationError" in caplog.text
        assert PASSWORD not in caplog.text and PASSWORD not in " ".join(shown)
        out = run_cli(good, "notify", "sends", "--json", OPSJOBS_SMTP_PASSWORD=PASSWORD)
        assert out.returncode == 0 and PASSWORD not in out.stdout + out.stderr
    finally:
        box.close()


# -- rules: validation, scope, CLI ---------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"name": "r", "states": ["exploded"]},
        {"name": "r", "states": []},
        {"name": "r", "email": ["not an address"]},
        {"name": "r", "webhook": False},  # no channel
        {"name": "r", "group_seconds": -1},
        {"name": "r", "queue": "bad queue!"},
        {"name": "", "email": ["a@example.org"]},
        {"name": "r", "surprise": 1},
    ],
)
def test_invalid_rules_are_refused(fields: dict[str, Any]) -> None:
    from opsjobs.store import open_store

    with pytest.raises(ValidationError):
        NotifyRules(open_store("memory://"), "root", sees_all=True).build(fields)


def test_a_users_rules_watch_only_their_own_jobs() -> None:
    from opsjobs.store import open_store

    store = open_store("memory://")
    ann = NotifyRules(store, "ann@example.org", sees_all=False)
    bob = NotifyRules(store, "bob@example.org", sees_all=False)
    admin = NotifyRules(store, "root@example.org", sees_all=True)
    rule = ann.add(ann.build({"name": "mine", "email": ["ann@example.org"]}))
    assert rule.owner == "ann@example.org" and rule.created_by == "ann@example.org"
    with pytest.raises(PermissionDenied):
        bob.build({"name": "spy", "owner": "ann@example.org"})
    assert bob.list() == [] and [r.name for r in admin.list()] == ["mine"]
    with pytest.raises(NotFound):
        bob.remove("mine")
    everyone = admin.add(admin.build({"name": "all"}))
    assert everyone.owner == ""
    assert [r.name for r in ann.list()] == ["mine"]
    ann.remove("mine")
    assert [r.name for r in admin.list()] == ["all"]


def test_cli_manages_rules_and_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    out = run_cli(
        settings, "notify", "rules", "add", "--name", "nightly", "--on", "failed,recovered",
        "--job", "nightly-*", "--email", "ops@example.org", "--group", "30m",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "failed,recovered of nightly-* → email, webhook" in out.stdout
    out = run_cli(settings, "notify", "rules", "list")
    assert "nightly" in out.stdout and "1800s" in out.stdout
    bad = run_cli(settings, "notify", "rules", "add", "--name", "x", "--on", "exploded")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "invalid state 'exploded'" in bad.stderr
    assert run_cli(settings, "notify", "rules", "remove", "nightly").returncode == 0
    gone = run_cli(settings, "notify", "rules", "remove", "nightly")
    assert gone.returncode == 2 and "no notification rule" in gone.stderr
    assert run_cli(settings, "notify", "sends").stdout.strip() == "no notifications sent"


def test_settings_from_the_environment() -> None:
    env = {
        "OPSJOBS_SMTP_HOST": "mail.example.org",
        "OPSJOBS_SMTP_PORT": "587",
        "OPSJOBS_SMTP_STARTTLS": "true",
        "OPSJOBS_SMTP_USER": "opsbot",
        "OPSJOBS_SMTP_PASSWORD": PASSWORD,
        "OPSJOBS_BASE_URL": "https://ops.example.org/",
    }
    s = Settings.from_env(env)
    assert (s.smtp_host, s.smtp_port, s.smtp_starttls, s.smtp_user) == (
        "mail.example.org", 587, True, "opsbot",
    )  # fmt: skip
    assert s.smtp_password == PASSWORD and PASSWORD not in repr(s)
    assert job_link(s.base_url, "j1") == "https://ops.example.org/opsjobs/?job=j1"
    from opsjobs.errors import ConfigError

    for bad in ({"OPSJOBS_SMTP_STARTTLS": "maybe"}, {"OPSJOBS_SMTP_PORT": "0"}):
        with pytest.raises(ConfigError):
            Settings.from_env(bad)


def test_the_readme_notifications_block_runs_as_written(tmp_path: Path) -> None:
    """README's "Notifications on job outcomes" commands, through bash, line by line; a command
    followed by a ``# opsjobs: error: …`` line must fail with that message."""
    text = (ROOT / "README.md").read_text("utf-8")
    start = text.index("### Notifications on job outcomes")
    block = re.findall(r"```bash\n(.*?)```", text[start : text.index("\n### ", start + 5)], re.S)
    assert len(block) == 1
    lines = block[0].replace("\\\n", " ").splitlines()
    script = ["set -euo pipefail"]
    for i, line in enumerate(lines):
        if not line.strip() or line.startswith("#"):
            continue
        follow = lines[i + 1] if i + 1 < len(lines) else ""
        if follow.startswith("# opsjobs: error: "):
            expected = shlex.quote(follow[2:].strip())
            script.append(f"if out=$({line} 2>&1); then exit 90; fi")
            script.append(f'grep -qF {expected} <<<"$out" || {{ echo "$out"; exit 91; }}')
        else:
            script.append(line)
    settings = settings_for(tmp_path)
    env = cli_env(settings)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nightly-fails" in done.stdout and "no notifications sent" in done.stdout
    with client_for(settings) as client:
        assert [r.name for r in client.store.list_notify_rules()] == ["nightly-fails"]


def test_a_lost_job_is_reported_by_the_worker_that_finds_it(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    settings = notify_settings(tmp_path, mailbox, None, lease_seconds=1.0)
    with client_for(settings) as client:
        add_rule(client, name="lost", states=["lost"], email=["a@example.org"], webhook=False)
        job = client.submit("orphan", command="pass", queue="gone")
        # a worker that died at once: it claimed the job with a lease that lapses now
        claimed = client.store.claim("dead-worker", "h0", ["gone"], now=time.time(), lease=0.2)
        assert claimed is not None and claimed.id == job.id
        with embed(store=client.store, settings=settings, threads=1):
            assert client.wait(job.id, timeout=30).state is JobState.LOST
            wait_for(lambda: mailbox.messages, 20, "the e-mail about the lost job")
    assert mailbox.messages[0]["Subject"] == "[opsjobs] orphan lost"
    assert f"?job={job.id}" in mailbox.messages[0].get_payload(decode=True).decode()


def test_a_timed_out_job_is_reported(tmp_path: Path, mailbox: Mailbox) -> None:
    settings = notify_settings(tmp_path, mailbox, None)
    with client_for(settings) as client:
        add_rule(client, name="slow", states=["timed_out"], email=["a@example.org"], webhook=False)
        with embed(store=client.store, settings=settings, threads=1) as handle:
            job = client.submit(
                "stuck", command="import time\ntime.sleep(60)", mode="process", timeout=1
            )
            assert client.wait(job.id, timeout=60).state is JobState.TIMED_OUT
            assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
    assert [m["Subject"] for m in mailbox.messages] == ["[opsjobs] stuck timed out"]
    assert "State:    timed_out" in mailbox.messages[0].get_payload(decode=True).decode()


def test_starttls_is_required_when_asked_for(tmp_path: Path, mailbox: Mailbox) -> None:
    """With ``smtp_starttls`` the mail never goes in clear: a server without STARTTLS gets
    nothing, and the failure is on record."""
    settings = notify_settings(tmp_path, mailbox, None, smtp_starttls=True)
    with client_for(settings) as client:
        add_rule(client, name="r", email=["a@example.org"], webhook=False, group_seconds=0)
        with embed(store=client.store, settings=settings, threads=1) as handle:
            job = client.submit("x", command="raise SystemExit(1)")
            assert client.wait(job.id, timeout=30).state is JobState.FAILED
            assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
        [send] = client.store.notify_sends()
    assert mailbox.messages == []
    assert send.ok is False and "STARTTLS extension not supported" in send.detail


def test_starttls_and_login_deliver_over_a_verified_connection(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    box = Mailbox(login=True, tls=(cert, key))
    try:
        settings = notify_settings(
            tmp_path, None, None, smtp_host="127.0.0.1", smtp_port=box.port,
            smtp_starttls=True, smtp_ca_file=cert, smtp_user="opsbot", smtp_password=PASSWORD,
        )  # fmt: skip
        untrusted = dataclasses.replace(settings, smtp_ca_file="")  # the system's CAs
        with client_for(settings) as client:
            add_rule(client, name="r", email=["a@example.org"], webhook=False, group_seconds=0)
            job = client.submit("x", command="raise SystemExit(1)")
            with embed(store=client.store, settings=settings, threads=1):
                assert client.wait(job.id, timeout=30).state is JobState.FAILED
            wait_for(lambda: client.store.notify_sends(), 20, "the send")
            assert client.store.notify_sends()[0].ok
            assert box.logins == ["opsbot"] and len(box.messages) == 1
            sends = Notifier(client.store, untrusted).handle([(job.id, None)])
            assert sends == []  # handled already; a new job for the untrusted one:
            other = client.submit("y", command="raise SystemExit(1)")
            with embed(store=client.store, settings=untrusted, threads=1) as handle:
                assert client.wait(other.id, timeout=30).state is JobState.FAILED
                assert handle.worker.notices.flush(20)  # type: ignore[attr-defined]
            failure = client.store.notify_sends()[0]
        assert failure.ok is False and "CERTIFICATE_VERIFY_FAILED" in failure.detail
        assert len(box.messages) == 1
    finally:
        box.close()
