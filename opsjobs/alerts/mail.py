"""E-mail over SMTP with the standard library: plain SMTP, or upgraded with STARTTLS; a login
when a user is configured.

The password is held by :class:`Mailer` only to log in: it is in no repr, no message and no
log line (an error names the exception and the server's answer, never the credentials).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from opsjobs.config import Settings
from opsjobs.errors import OpsJobsError

__all__ = ["MailError", "Mailer", "SmtpConfig"]


class MailError(OpsJobsError):
    """An e-mail could not be handed to the SMTP server."""


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send: the ``smtp_*`` settings."""

    host: str
    port: int = 25
    starttls: bool = False
    ca_file: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    sender: str = "opsjobs@localhost"
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig | None:
        """The settings' SMTP server, or None when no ``smtp_host`` is set."""
        if not settings.smtp_host:
            return None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            ca_file=settings.smtp_ca_file,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
            timeout=settings.smtp_timeout,
        )


class Mailer:
    """Sends plain-text e-mails through one SMTP server, one connection per message."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def message(self, to: Sequence[str], subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = subject
        msg["Date"] = formatdate(usegmt=True)
        msg["Message-ID"] = make_msgid(domain="opsjobs")
        msg.set_content(body)
        return msg

    def send(self, to: Sequence[str], subject: str, body: str) -> None:
        """Hand one message to the server; :class:`MailError` (one line) if it is refused."""
        cfg = self.config
        try:
            msg = self.message(to, subject, body)
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout) as smtp:
                smtp.ehlo()
                if cfg.starttls:
                    context = ssl.create_default_context(cafile=cfg.ca_file or None)
                    smtp.starttls(context=context)
                    smtp.ehlo()
                if cfg.user:
                    smtp.login(cfg.user, cfg.password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            raise MailError(f"{type(exc).__name__} {exc.smtp_code}: {text[:200]}") from None
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            raise MailError(f"{type(exc).__name__}: {str(exc)[:200]}") from None
        if refused:
            raise MailError(f"refused recipients: {', '.join(sorted(refused))}")
