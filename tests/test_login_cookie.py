"""The login cookie is ``HttpOnly`` and ``SameSite=Lax`` always, and ``Secure`` when the server
is reached over TLS (its own certificate, or a proxy it trusts that says so)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import requests
from server_harness import ServerThread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def _login_cookie(base: str, key: str, **kw: object) -> str:
    """The ``Set-Cookie`` header of a successful sign-in on the login page."""
    browser = requests.Session()
    browser.get(base + "/login", timeout=30, **kw)  # type: ignore[arg-type]
    xsrf = browser.cookies.get("_xsrf")
    ok = browser.post(
        base + "/login",
        data={"password": key, "_xsrf": xsrf},
        allow_redirects=False,
        timeout=30,
        **kw,  # type: ignore[arg-type]
    )
    assert ok.status_code == 302, ok.text
    cookies = [c for c in ok.raw.headers.getlist("Set-Cookie") if not c.startswith("_xsrf")]
    assert len(cookies) == 1, cookies
    return cookies[0].lower()


def test_the_login_cookie_is_samesite_lax_and_not_secure_over_http(tmp_path: Path) -> None:
    server = ServerThread(tmp_path, worker=False, scheduler=False).start()
    try:
        cookie = _login_cookie(server.base, server.key("c@example.org", "debug"))
        assert "samesite=lax" in cookie and "httponly" in cookie
        assert "secure" not in cookie.replace("samesite", "")
        # behind a TLS proxy: Secure only when the server is told to trust its headers
        proxied = _login_cookie(
            server.base, server.key("p@example.org"), headers={"X-Forwarded-Proto": "https"}
        )
        assert "; secure" not in proxied
    finally:
        server.stop()


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_the_login_cookie_is_secure_over_tls(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    server = ServerThread(
        tmp_path, worker=False, scheduler=False, certfile=str(cert), keyfile=str(key)
    )
    server.base = server.base.replace("http://", "https://")
    server.start()
    try:
        cookie = _login_cookie(server.base, server.key("t@example.org"), verify=str(cert))
        assert "samesite=lax" in cookie and "; secure" in cookie and "httponly" in cookie
    finally:
        server.stop()


def test_behind_a_trusted_proxy_the_cookie_follows_its_scheme(tmp_path: Path) -> None:
    server = ServerThread(tmp_path, worker=False, scheduler=False, behind_proxy=True).start()
    try:
        key = server.key("x@example.org")
        tls = _login_cookie(server.base, key, headers={"X-Forwarded-Proto": "https"})
        assert "samesite=lax" in tls and "; secure" in tls
        plain = _login_cookie(server.base, key)
        assert "samesite=lax" in plain and "; secure" not in plain
    finally:
        server.stop()


def test_opsjobs_serve_over_tls_as_readme_shows(tmp_path: Path) -> None:
    import signal
    import sys

    from harness import cli_env, settings_for, wait_for
    from server_harness import free_port

    cert, key = _certificate(tmp_path)
    port = free_port()
    serve = [sys.executable, "-m", "opsjobs", "serve", "--no-voila", "--port", str(port)]
    proc = subprocess.Popen(
        [*serve, "--certfile", str(cert), "--keyfile", str(key)],
        env=cli_env(settings_for(tmp_path)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}/opsjobs/api/v1/me"

    def answers() -> int | None:
        assert proc.poll() is None, "opsjobs serve exited"
        try:
            return requests.get(url, verify=str(cert), timeout=5).status_code
        except requests.ConnectionError:
            return None

    try:
        assert wait_for(answers, 60, "opsjobs serve over TLS") == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    bad = subprocess.run(
        [*serve, "--certfile", str(tmp_path / "missing.pem")],
        env=cli_env(settings_for(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "missing.pem is not a file" in bad.stderr
