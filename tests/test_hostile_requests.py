"""A bounded hostile campaign against every route of the OpenAPI document: deeply nested bodies,
lone surrogates (escaped and as raw bytes), 10 MB strings, SQL in every filter and path part,
number-like queue names. Every answer is a 4xx or 2xx JSON — never a 5xx — and the store is
intact afterwards (integrity check, row counts, a normal submit and listing still work)."""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import requests
from server_harness import Api, ServerThread, failed, submit, valid

from opsjobs.server.openapi import API, document

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SQL = [
    "' OR '1'='1",
    "x'; DROP TABLE jobs; --",
    '" OR ""="',
    "1; DELETE FROM jobs",
    "%",
    "_",
    "\\",
    "') UNION SELECT * FROM api_keys --",
    "name/**/OR/**/1=1",
    "-submitted_at; DROP TABLE jobs",
]
ODD = ["nan", "-5s", "99999999999d", "1e309", "-1", "0x10", "\u202e", "😀" * 50, "a" * 5000]
#: query texts percent-encoded by hand: a lone surrogate as UTF-8 bytes, a NUL, bad UTF-8
RAW_QUERY = ["%ED%A0%80", "%00", "%FF%FE", "%C0%AF", "%F4%90%80%80"]
DEEP = [
    '{"a":' * 5000 + "1" + "}" * 5000,
    "[" * 100_000,
    "[" * 100_000 + "]" * 100_000,
    '{"name":' + "[" * 2000 + "]" * 2000 + "}",
    json.dumps(
        {
            "name": "n",
            "command": "print(1)",
            "kwargs": {"k": [[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]},
        }
    ).replace("[]", "[" * 60 + "]" * 60),
]
SURROGATES = ['"\\ud800"', '"\\udfff"', '"a\\ud800b"', '"\\udc00\\ud800"']
RAW_BODIES = [b'{"name": "\xed\xa0\x80"}', b'{"name": "\xff"}', b"\xef\xbb\xbf{}", b"\x00"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("hostile"), worker=False, scheduler=False).start()
    yield s
    s.stop()


def _operations() -> list[tuple[str, str, list[tuple[str, str]], str | None]]:
    out = []
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            params = [(p["name"], p["in"]) for p in op.get("parameters", [])]
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            body = ref.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1] or None
            out.append((method.upper(), path, params, body))
    return out


def _fields(schema: str) -> list[str]:
    spec = document()["components"]["schemas"][schema]
    return sorted(spec.get("properties", {}))


class Campaign:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.sent = 0
        self.statuses: dict[int, int] = {}
        self.server_errors: list[str] = []
        #: jobs the campaign's accepted requests created
        self.created = 0

    def send(
        self, method: str, path: str, *, data: bytes | str | None = None, may_drop: bool = False
    ) -> None:
        """One request; ``may_drop``: the server may close the connection instead of answering
        (tornado does so for a request line beyond its 64 KB header limit)."""
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            resp = self.api.request(method, path, data=data, headers=headers, timeout=60)
        except requests.ConnectionError as exc:
            if not may_drop:
                self.server_errors.append(f"{method} {path[:120]}: connection {exc}")
            self.sent += 1
            return
        self.sent += 1
        self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
        if resp.status_code == 201 and path.endswith(("/jobs", "/jobs/submit", "/analyze")):
            self.created += 1
        if resp.status_code >= 500:
            self.server_errors.append(f"{method} {path[:120]} -> {resp.status_code} {resp.text}")
        elif path.startswith(API) and resp.status_code >= 400:
            assert resp.headers["Content-Type"].startswith("application/json"), path
            assert "Traceback" not in resp.text


def _path(template: str, value: str) -> str:
    out = template
    for name in ("job_id", "name_or_id", "name"):
        out = out.replace("{" + name + "}", quote(value, safe=""))
    return out


def test_hostile_campaign_gives_no_5xx_and_leaves_the_store_intact(server: ServerThread) -> None:
    api = server.api(server.key("fuzz@example.org", "debug,system_admin"))
    before = submit(api, name="kept", command="print('kept')")
    c = Campaign(api)
    ops = _operations()
    hostile = SQL + ODD
    for method, template, params, body in ops:
        # SQL and odd text in every path part and every query parameter
        for value in hostile:
            if "{" in template:
                c.send(method, _path(template, value))
            for name, where in params:
                if where == "query":
                    c.send(method, f"{_path(template, before['id'])}?{name}={quote(value)}")
        for raw in RAW_QUERY:
            for name, where in params:
                if where == "query":
                    c.send(method, f"{_path(template, before['id'])}?{name}={raw}")
            if "{" in template:
                c.send(method, _path(template, "RAW").replace("RAW", raw))
        if body is None:
            continue
        url = _path(template, "no-such-schedule")
        for text in DEEP:
            c.send(method, url, data=text)
        for raw_body in RAW_BODIES:
            c.send(method, url, data=raw_body)
        for field, (s, value) in itertools.product(
            _fields(body), itertools.product(SURROGATES, hostile[:6])
        ):
            c.send(method, url, data=f'{{"{field}": {s}, "x": {json.dumps(value)}}}')
            c.send(method, url, data=json.dumps({field: value, "name": "n", "command": "1"}))
    # 10 MB strings: in a body (413), and as a query text (refused before any handler)
    ten_mb = "x" * (10 << 20)
    for method, template, _params, body in ops[:3]:
        if body is not None:
            c.send(method, template, data=json.dumps({"name": ten_mb, "command": ten_mb}))
    c.send("GET", f"{API}/jobs?name={ten_mb}", may_drop=True)
    print(f"hostile campaign: {c.sent} requests, statuses {sorted(c.statuses.items())}")
    assert c.sent >= 1500, c.sent
    assert not c.server_errors, "\n".join(c.server_errors[:10])
    assert not any(code >= 500 for code in c.statuses), c.statuses

    # the store is intact: same rows, integrity check passes, a normal round trip works
    # (sqlite3's own context manager commits but does not close)
    with contextlib.closing(sqlite3.connect(server.data / "opsjobs.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"jobs", "api_keys", "users", "schedules"} <= tables
    listed = valid(api.get(f"{API}/jobs?all=1&limit=1000&total=1"), "JobList")
    assert listed["total"] == c.created + 1
    assert before["id"] in {j["id"] for j in listed["jobs"]}
    after = submit(api, name="after", command="print('after')")
    assert valid(api.get(f"{API}/jobs/{after['id']}"), "JobReply")["job"]["name"] == "after"


@pytest.mark.parametrize(
    "text",
    ['{"a":' * 5000 + "1" + "}" * 5000, "[" * 100_000, '{"name": "\\ud800", "command": "1"}'],
    ids=["deep-object", "deep-array", "lone-surrogate"],
)
@pytest.mark.parametrize(
    "path", [f"{API}/jobs", "/apps/WebHostTaskManagement/api/v1/jobs/submit", f"{API}/schedules"]
)
def test_deep_or_invalid_unicode_bodies_are_a_400(
    server: ServerThread, path: str, text: str
) -> None:
    api = server.api(server.key("deep@example.org", "debug"))
    resp = api.post(path, data=text, headers={"Content-Type": "application/json"})
    failed(resp, 400)


@pytest.mark.parametrize("queue", ["-5s", "nan", "NaN", "99999999999d", "1e5", "30m", "12", ""])
def test_number_like_queue_names_are_refused(server: ServerThread, queue: str) -> None:
    api = server.api(server.key("queue@example.org", "debug"))
    resp = api.post(f"{API}/jobs", json={"name": "q", "command": "1", "queue": queue})
    assert "queue" in failed(resp, 422)


@pytest.mark.parametrize("queue", ["default", "worker:0a1b", "3f2a9c1b0d4e", "web-01.example"])
def test_ordinary_queue_names_are_accepted(server: ServerThread, queue: str) -> None:
    api = server.api(server.key("queue@example.org", "debug"))
    assert submit(api, name="q", queue=queue)["queue"] == queue
