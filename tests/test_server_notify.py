"""Notification routes on the real server application, in-process: rules scoped to their
maker's jobs, roles checked, bad input answered 4xx, and a job submitted over REST that fails
mailed by the server's own worker to a real local SMTP server, the send visible over REST."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import wait_for
from receivers import Mailbox
from server_harness import Api, ServerThread, failed, finished, submit, valid

from opsjobs.server.openapi import API

pytestmark = pytest.mark.timeout(180)
RULES = f"{API}/notifications/rules"
SENDS = f"{API}/notifications/sends"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def server(
    tmp_path: Path, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ServerThread]:
    monkeypatch.setenv("OPSJOBS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPSJOBS_SMTP_PORT", str(mailbox.port))
    monkeypatch.setenv("OPSJOBS_BASE_URL", "https://ops.example.org")
    s = ServerThread(tmp_path).start()
    yield s
    s.stop()


def _user(server: ServerThread, roles: str = "debug") -> tuple[str, Api]:
    email = f"u-{uuid.uuid4().hex[:8]}@example.org"
    return email, server.api(server.key(email, roles))


def test_rules_are_scoped_and_a_failure_is_mailed(server: ServerThread, mailbox: Mailbox) -> None:
    ann_email, ann = _user(server)
    _, bob = _user(server)
    _, admin = _user(server, "debug,site_admin")
    _, scraper = _user(server, "")
    body = {"name": "my-fails", "states": ["failed"], "email": [ann_email], "webhook": False}
    body["group_seconds"] = 0
    failed(scraper.post(RULES, json=body), 403)
    rule = valid(ann.post(RULES, json=body), "NotifyRuleReply", 201)["rule"]
    assert rule["owner"] == ann_email and rule["created_by"] == ann_email
    failed(ann.post(RULES, json=body), 409)
    failed(bob.post(RULES, json={**body, "name": "spy", "owner": ann_email}), 403)
    failed(ann.post(RULES, json={**body, "name": "x", "states": ["exploded"]}), 422)
    failed(ann.post(RULES, json={**body, "name": "x", "email": ["nope"]}), 422)
    failed(ann.post(RULES, json={**body, "name": "x", "surprise": 1}), 422)
    assert valid(bob.get(RULES), "NotifyRuleList")["rules"] == []
    assert [r["name"] for r in valid(admin.get(RULES), "NotifyRuleList")["rules"]] == ["my-fails"]

    # bob's failure is not ann's business; ann's own is mailed to her
    bobs = submit(bob, name="nightly", command="raise SystemExit(1)")
    assert finished(bob, bobs["id"])["state"] == "failed"
    job = submit(ann, name="nightly", command="raise SystemExit(1)")
    assert finished(ann, job["id"])["state"] == "failed"
    wait_for(lambda: mailbox.messages, 30, "the e-mail")
    sends = wait_for(lambda: valid(ann.get(SENDS), "NotifySendList")["sends"], 30, "the send")
    assert [(s["job_id"], s["channel"], s["ok"]) for s in sends] == [(job["id"], "email", True)]
    assert len(mailbox.messages) == 1
    text = mailbox.messages[0].get_payload(decode=True).decode()
    assert f"https://ops.example.org/opsjobs/?job={job['id']}" in text
    assert valid(bob.get(SENDS), "NotifySendList")["sends"] == []
    assert valid(admin.get(SENDS, params={"rule": "my-fails"}), "NotifySendList")["count"] == 1
    failed(bob.get(SENDS, params={"rule": "my-fails"}), 404)

    failed(bob.delete(f"{RULES}/my-fails"), 404)
    failed(scraper.delete(f"{RULES}/my-fails"), 403)
    assert valid(ann.delete(f"{RULES}/my-fails"), "Deleted")["id"] == rule["id"]
    failed(ann.delete(f"{RULES}/my-fails"), 404)
