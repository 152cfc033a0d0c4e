"""Real local receivers for alerts and notifications: an HTTP webhook receiver and an SMTP
server (aiosmtpd), each on 127.0.0.1 on a free port."""

from __future__ import annotations

import email
import json
import socket
import ssl
import subprocess
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

#: The password the SMTP server with ``login`` accepts.
PASSWORD = "s3cret-Pa55word"


class Receiver:
    """A webhook receiver on 127.0.0.1 (a free port): answers each POST with the next status of
    ``script`` (then 200) and keeps the bodies it accepted."""

    def __init__(self, script: list[int] | None = None) -> None:
        self.script = list(script or [])
        self.hits: list[tuple[str, int]] = []
        self.bodies: list[dict[str, Any]] = []
        self.gate = threading.Event()
        self.gate.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.gate.wait(30)
                status = outer.script.pop(0) if outer.script else 200
                outer.hits.append((self.path, status))
                if status == 200:
                    outer.bodies.append(json.loads(body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """A real SMTP server on 127.0.0.1 keeping every message it accepted; with ``login`` it
    accepts AUTH with :data:`PASSWORD` (over plain SMTP too, unless ``tls``); with ``tls``
    (certificate and key PEM files) it offers STARTTLS and takes nothing before it."""

    def __init__(self, *, login: bool = False, tls: tuple[str, str] | None = None) -> None:
        self.messages: list[Message] = []
        self.rcpts: list[list[str]] = []
        self.logins: list[str] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                outer.rcpts.append(list(envelope.rcpt_tos))
                outer.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
            ok = isinstance(data, LoginPassword) and data.password == PASSWORD.encode()
            if ok:
                outer.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)

        extra: dict[str, Any] = {}
        if login:
            extra = {"authenticator": authenticator, "auth_require_tls": tls is not None}
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            extra.update(tls_context=context, require_starttls=True)
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **extra)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def self_signed(folder: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files made by openssl)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(cert), str(key)
