"""Webhook delivery of alert changes: JSON with a Slack-compatible ``text`` field.

:class:`WebhookSender` posts on a thread of its own, so whoever reports an alert change never
waits for a receiver. A delivery that fails with a connection error, a timeout, 429 or a 5xx
is retried with exponential backoff (``backoff``, doubled each time, at most ``max_backoff``)
up to ``attempts`` times in all; other answers (3xx — redirects are never followed — and other
4xx) are final. Each receiver gets the changes in order (a retried delivery holds up the later
ones to the same receiver, never those to others). Deliveries still
pending when the sender closes are given a short grace, then dropped (the store keeps every
event regardless).
"""

from __future__ import annotations

import collections
import heapq
import http.client
import itertools
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opsjobs.alerts.model import Alert, AlertEvent, Severity
from opsjobs.config import parse_webhooks, redact_url, validate_webhook_url
from opsjobs.model import iso

__all__ = [
    "WebhookSender",
    "alert_payload",
    "parse_webhooks",
    "post_json",
    "validate_webhook_url",
]

log = logging.getLogger("opsjobs.alerts.webhooks")

_ICONS = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}


def alert_payload(alert: Alert, event: AlertEvent) -> dict[str, Any]:
    """The JSON body posted for one change: ``text`` for Slack, the details beside it."""
    if event.kind == "resolved":
        head = f":white_check_mark: RESOLVED [{alert.severity.value}]"
    else:
        head = f"{_ICONS[alert.severity]} [{alert.severity.value}]"
    return {
        "text": f"{head} {event.message}",
        "event": event.kind,
        "at": iso(event.at),
        "alert": alert.to_dict(),
    }


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookSender:
    """Posts JSON bodies to every configured URL on a background thread, with retries.

    Parameters
    ----------
    urls
        Receivers (validated with :func:`validate_webhook_url`).
    timeout
        Seconds one request may take (connect and read).
    attempts
        Tries per delivery, the first included.
    backoff, max_backoff
        First pause before a retry, doubled each time, capped.
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        timeout: float = 5.0,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = parse_webhooks(list(urls))
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._clock = clock
        #: Due deliveries: the head of each receiver's queue only (keeps each one in order).
        self._heap: list[_Delivery] = []
        self._queues: dict[str, collections.deque[bytes]] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._in_flight = 0
        self._opener = urllib.request.build_opener(_NoRedirect)
        #: Deliveries that succeeded and that were given up (for logs and tests).
        self.delivered = 0
        self.failed = 0

    def send(self, payload: Mapping[str, Any]) -> None:
        """Queue ``payload`` for every URL; returns at once."""
        if not self.urls:
            return
        body = json.dumps(payload, allow_nan=False, default=str).encode("utf-8")
        with self._cond:
            if self._closing:
                return
            for url in self.urls:
                waiting = self._queues.setdefault(url, collections.deque())
                waiting.append(body)
                if len(waiting) == 1:
                    self._push(url, body)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="opsjobs-webhooks", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _push(self, url: str, body: bytes) -> None:
        heapq.heappush(self._heap, _Delivery(self._clock(), next(self._seq), url, body))

    def idle(self) -> bool:
        """True when nothing is queued or being posted."""
        with self._cond:
            return not self._heap and not self._in_flight

    def close(self, grace: float = 5.0) -> None:
        """Deliver what is due within ``grace`` seconds, then stop."""
        deadline = self._clock() + grace
        with self._cond:
            while (self._heap or self._in_flight) and self._clock() < deadline:
                self._cond.wait(min(0.05, max(deadline - self._clock(), 0.0)))
            self._closing = True
            dropped = sum(len(q) for q in self._queues.values())
            self._heap, self._queues = [], {}
            self._cond.notify_all()
            thread = self._thread
        if dropped:
            log.warning("%d webhook deliveries dropped at shutdown", dropped)
        if thread is not None:
            thread.join(self.timeout + 1)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (not self._heap or self._heap[0].due > self._clock()):
                    wait = self._heap[0].due - self._clock() if self._heap else None
                    self._cond.wait(wait)
                if self._closing:
                    return
                item = heapq.heappop(self._heap)
                self._in_flight += 1
            try:
                ok, retry, detail = self._post(item.url, item.body)
            except Exception as exc:  # the sender thread must outlive any surprise
                ok, retry, detail = False, False, type(exc).__name__
            with self._cond:
                self._in_flight -= 1
                self._after(item, ok, retry, detail)
                self._cond.notify_all()

    def _after(self, item: _Delivery, ok: bool, retry: bool, detail: str) -> None:
        if ok:
            self.delivered += 1
        elif retry and item.attempt < self.attempts and not self._closing:
            pause = min(self.backoff * 2 ** (item.attempt - 1), self.max_backoff)
            log.info(
                "webhook %s failed (%s); retry %d in %.1f s",
                redact_url(item.url),
                detail,
                item.attempt,
                pause,
            )
            item.attempt += 1
            item.due = self._clock() + pause
            heapq.heappush(self._heap, item)
            return
        else:
            self.failed += 1
            log.warning("webhook %s failed (%s); given up", redact_url(item.url), detail)
        waiting = self._queues.get(item.url)
        if waiting:
            waiting.popleft()
            if waiting:
                self._push(item.url, waiting[0])

    def _post(self, url: str, body: bytes) -> tuple[bool, bool, str]:
        """``(delivered, worth retrying, detail)``."""
        return post_json(url, body, timeout=self.timeout, opener=self._opener)


def post_json(
    url: str,
    body: bytes,
    *,
    timeout: float = 5.0,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[bool, bool, str]:
    """POST a JSON ``body`` once, never following a redirect: ``(delivered, worth retrying,
    detail)`` — a connection error, a timeout, 429 and 5xx are worth retrying."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "opsjobs-alerts"},
    )
    opener = opener or urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as resp:
            resp.read(65536)
            return True, False, str(resp.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return False, exc.code == 429 or exc.code >= 500, f"HTTP {exc.code}"
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return False, True, type(exc).__name__
