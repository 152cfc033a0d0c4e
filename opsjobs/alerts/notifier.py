"""The notifier: job ends → notification rules → e-mail and webhooks, off the worker's thread.

A worker hands every end it recorded to :meth:`Notifier.observe` (a job id and attempt put in a
deque: nothing else on the finish path). One background thread, started at the first end,
drains them in batches: it reads the rules once per batch, reads each ended job, and for each
matching rule asks the store to note the end (:meth:`~opsjobs.store.notices.NoticeStore.
note_job_end`: once per rule and job end across all workers, grouped per rule and job name).
When the store says "send", it builds the message and delivers it on this thread — e-mail via
:class:`~opsjobs.alerts.mail.Mailer`, a POST to each configured webhook receiver (retried on a
connection error, 429 or 5xx) — and records each delivery and each failure in the store.

An end noted but not delivered because the process died is not sent again: a notification is
sent at most once.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from opsjobs.alerts.mail import Mailer, MailError, SmtpConfig
from opsjobs.alerts.notices import NotifyRule, NotifySend, job_link
from opsjobs.alerts.webhooks import post_json
from opsjobs.config import redact_url
from opsjobs.errors import OpsJobsError
from opsjobs.model import TERMINAL_STATES, Job, JobState, ResultQuery, iso

if TYPE_CHECKING:
    from opsjobs.config import Settings
    from opsjobs.store import Store

__all__ = ["Message", "Notifier", "compose"]

log = logging.getLogger("opsjobs.alerts.notify")

#: Ends waiting for the notifier before further ones are dropped (with a warning).
MAX_WAITING = 100_000
_WEBHOOK_ATTEMPTS = 3
#: Seconds the notifier lets ends gather after the first wakes it.
_GATHER = 0.05


class Message:
    """One notification: its subject and text, and the JSON posted to webhooks."""

    def __init__(self, subject: str, body: str, payload: dict[str, Any]) -> None:
        self.subject = subject
        self.body = body
        self.payload = payload


def _runtime(job: Job) -> str:
    if job.runtime is None:
        return "-"
    return f"{job.runtime:.1f} s" if job.runtime < 120 else f"{job.runtime / 60:.1f} min"


def compose(job: Job, rule: NotifyRule, count: int, link: str, *, recovered: bool) -> Message:
    """The message of one job end for ``rule``; ``count`` ends of the name since the last."""
    what = "recovered" if recovered else job.state.value
    subject = f"[opsjobs] {job.name} {what.replace('_', ' ')}"
    if count > 1:
        subject += f" ({count} times since the last message)"
    lines = [
        f"Job {job.name} {what.replace('_', ' ')}.",
        "",
        f"State:    {job.state.value}",
        f"Runtime:  {_runtime(job)}",
        f"Host:     {job.host or '-'}",
        f"Queue:    {job.queue}",
        f"Owner:    {job.owner}",
        f"Finished: {iso(job.finished_at)}",
    ]
    if job.error:
        lines.append(f"Error:    {job.error[:2000]}")
    if count > 1 or rule.group_seconds:
        lines.append(
            f"Count:    {count} end(s) of {job.name} since the last message "
            f"(grouped per {rule.group_seconds:g} s)"
        )
    lines += ["", f"Details:  {link}", "", f"Rule: {rule.name} ({rule.summary})"]
    body = "\n".join(lines) + "\n"
    payload = {
        "text": f"{subject} — {link}",
        "event": "job_end",
        "rule": rule.name,
        "state": what,
        "count": count,
        "link": link,
        "job": {
            "id": job.id,
            "name": job.name,
            "state": job.state.value,
            "runtime": job.runtime,
            "error": job.error,
            "host": job.host,
            "queue": job.queue,
            "owner": job.owner,
            "finished_at": iso(job.finished_at),
        },
    }
    return Message(subject, body, payload)


class Notifier:
    """Sends the notifications of job ends on a background thread.

    Parameters
    ----------
    store
        Rules, the once-only record of ends, the send log, and the ended jobs.
    settings
        ``webhooks`` (the receivers), ``smtp_*`` (e-mail) and ``base_url`` (links).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        webhook_backoff: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings
        smtp = SmtpConfig.from_settings(settings)
        self.mailer = Mailer(smtp) if smtp is not None else None
        self._clock = clock
        self._backoff = webhook_backoff
        self._ends: collections.deque[tuple[str, int | None]] = collections.deque()
        self._event = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._dropped = 0

    # -- the worker's side ----------------------------------------------------------------
    def observe(self, job_id: str, attempt: int | None = None) -> None:
        """Queue a job end the worker just recorded (``attempt``: which run ended; None: the
        job's last); never blocks."""
        if self._closed:
            return
        if len(self._ends) >= MAX_WAITING:
            self._dropped += 1
            if self._dropped in (1, 10, 100) or self._dropped % 1000 == 0:
                log.warning("notifications are behind: %d job ends not judged", self._dropped)
            return
        self._ends.append((job_id, attempt))
        if self._thread is None:
            self._start()
        # Set only when clear: the thread clears the event before it takes the ends, so an end
        # queued after that finds it clear (Event.set takes a lock and notifies every time).
        if not self._event.is_set():
            self._event.set()

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="opsjobs-notify", daemon=True
                )
                self._thread.start()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued end was handled (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._ends or self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or self._thread is None:
                    return not (self._ends or self._busy)
                self._idle.wait(min(left, 0.05))
        return True

    def close(self, grace: float = 5.0) -> None:
        """Handle what is queued (within ``grace``), then stop."""
        self.flush(grace)
        with self._lock:
            self._closed = True
            thread = self._thread
        self._event.set()
        if thread is not None:
            thread.join(grace)

    def _run(self) -> None:
        while True:
            self._event.wait(1.0)
            if not self._closed:
                # gather the ends of a busy worker into one batch: one read of the rules each
                time.sleep(_GATHER)
            self._event.clear()
            with self._idle:
                batch = []
                while self._ends:
                    batch.append(self._ends.popleft())
                self._busy = bool(batch)
            if self._closed and not batch:
                return
            try:
                if batch:
                    self.handle(batch)
            except Exception:  # the notifier must outlive a bad rule or a store hiccup
                log.exception("job-end notifications failed")
            finally:
                with self._idle:
                    self._busy = False
                    self._idle.notify_all()

    # -- judging and sending --------------------------------------------------------------
    def handle(self, ends: Sequence[tuple[str, int | None]]) -> list[NotifySend]:
        """Judge the rules on these job ends now (on this thread); returns the sends made."""
        try:
            rules = [r for r in self.store.list_notify_rules() if r.enabled]
        except OpsJobsError as exc:
            log.warning("cannot read notification rules: %s", exc)
            return []
        if not rules:
            return []
        sends: list[NotifySend] = []
        for job_id, attempt in dict.fromkeys(ends):
            try:
                job = self.store.get(job_id)
            except OpsJobsError:
                continue  # deleted meanwhile
            if job.state not in TERMINAL_STATES or attempt not in (None, job.attempt):
                continue
            for rule in rules:
                if not rule.matches(job):
                    continue
                try:
                    sends += self._judge(rule, job)
                except OpsJobsError as exc:
                    log.warning("notification rule %s not judged: %s", rule.name, exc)
        return sends

    def _judge(self, rule: NotifyRule, job: Job) -> list[NotifySend]:
        recovered = False
        if job.state is JobState.SUCCEEDED and "recovered" in rule.states:
            recovered = rule.is_recovery(self._previous(job))
            if not recovered and rule.wants_previous(job):
                return []
        count = self.store.note_job_end(
            rule.id,
            job.id,
            job.attempt,
            job.name,
            at=job.finished_at or self._clock(),
            window=rule.group_seconds,
        )
        if not count:
            return []  # handled elsewhere, or held in the open window
        link = job_link(self.settings.base_url, job.id)
        message = compose(job, rule, count, link, recovered=recovered)
        sends = []
        if rule.email:
            sends.append(self._mail(rule, job, count, message))
        if rule.webhook:
            sends += self._post(rule, job, count, message)
        for send in sends:
            self.store.record_notify_send(send)
        return sends

    def _previous(self, job: Job) -> Job | None:
        """The run of the same name (and owner) that finished last before ``job``."""
        query = ResultQuery(owner=job.owner, exact_name=job.name, sort="-finished_at", limit=10)
        for other in self.store.results(query):
            if (
                other.id == job.id
                or other.finished_at is None
                or other.state not in TERMINAL_STATES
            ):
                continue
            if job.finished_at is None or other.finished_at <= job.finished_at:
                return other
        return None

    def _record(
        self,
        rule: NotifyRule,
        job: Job,
        count: int,
        channel: str,
        target: str,
        ok: bool,
        detail: str,
    ) -> NotifySend:
        return NotifySend(
            rule_id=rule.id,
            rule_name=rule.name,
            job_id=job.id,
            job_name=job.name,
            owner=job.owner,
            state=job.state.value,
            channel=channel,
            target=target,
            ok=ok,
            detail=detail[:500],
            count=count,
            at=self._clock(),
        )

    def _mail(self, rule: NotifyRule, job: Job, count: int, message: Message) -> NotifySend:
        target = ", ".join(rule.email)
        if self.mailer is None:
            detail = "e-mail is not configured (no OPSJOBS_SMTP_HOST)"
            log.warning("notification %s to %s not sent: %s", rule.name, target, detail)
            return self._record(rule, job, count, "email", target, False, detail)
        try:
            self.mailer.send(rule.email, message.subject, message.body)
        except MailError as exc:
            log.warning("notification %s to %s not sent: %s", rule.name, target, exc)
            return self._record(rule, job, count, "email", target, False, str(exc))
        return self._record(rule, job, count, "email", target, True, "sent")

    def _post(self, rule: NotifyRule, job: Job, count: int, message: Message) -> list[NotifySend]:
        if not self.settings.webhooks:
            detail = "no webhook receivers are configured (OPSJOBS_WEBHOOKS)"
            return [self._record(rule, job, count, "webhook", "-", False, detail)]
        body = json.dumps(message.payload, allow_nan=False, default=str).encode("utf-8")
        sends = []
        for url in self.settings.webhooks:
            ok, detail, pause = False, "", self._backoff
            for attempt in range(1, _WEBHOOK_ATTEMPTS + 1):
                ok, retry, detail = post_json(url, body)
                if ok or not retry or attempt == _WEBHOOK_ATTEMPTS or self._closed:
                    break
                time.sleep(pause)  # on the notifier's own thread: no job waits for it
                pause *= 2
            if not ok:
                log.warning("notification %s to %s failed: %s", rule.name, redact_url(url), detail)
            target = redact_url(url)
            sends.append(self._record(rule, job, count, "webhook", target, ok, detail))
        return sends
