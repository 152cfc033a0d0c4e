"""The notifications area of the Memory tab (beside the open alerts): the user's notification
rules on job outcomes with a Remove button each, a form to add one (for roles that submit
jobs), and the latest sends and failures to send — the user's scope, as over REST (see
:mod:`opsjobs.alerts.notify_rules`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from html import escape
from typing import Any

import ipywidgets as w

from opsjobs.alerts.notices import NOTIFY_STATES, NotifyRule, NotifySend
from opsjobs.alerts.notify_rules import NotifyRules
from opsjobs.auth import User
from opsjobs.dashboard.render import button, when
from opsjobs.errors import PermissionDenied

__all__ = ["NotifyPanel", "rules_table", "sends_table"]

#: Latest sends listed.
MAX_SENDS = 20


def rules_table(rules: Sequence[NotifyRule], *, may_change: bool) -> str:
    head = "".join(f"<th>{t}</th>" for t in ("Rule", "On", "Jobs", "To", "Group", ""))
    rows = []
    for r in rules:
        to = ", ".join([*r.email, *(["webhooks"] if r.webhook else [])])
        scope = escape(r.job_name) + (f" · queue {escape(r.queue)}" if r.queue else "")
        scope += f" · owner {escape(r.owner)}" if r.owner else ""
        remove = button("Remove", f"notify-remove:{r.id}", tone="danger") if may_change else ""
        rows.append(
            f'<tr data-rule="{escape(r.id)}"><td class="oj-name">{escape(r.name)}'
            f"{'' if r.enabled else ' <span class=oj-dim>(off)</span>'}</td>"
            f"<td>{escape(', '.join(r.states))}</td><td class='oj-mono'>{scope}</td>"
            f"<td>{escape(to)}</td><td class='oj-num'>{r.group_seconds:g} s</td>"
            f"<td>{remove}</td></tr>"
        )
    body = "".join(rows) or '<tr><td colspan="6" class="oj-empty">No notification rules.</td></tr>'
    return (
        '<h4 class="oj-h">Notifications on job outcomes</h4>'
        f'<table class="oj-table opsjobs-notify-rules"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def sends_table(sends: Sequence[NotifySend]) -> str:
    head = "".join(
        f"<th>{t}</th>" for t in ("When", "Rule", "Job", "State", "Count", "To", "Result")
    )
    rows = []
    for s in sends:
        result = "sent" if s.ok else f"failed: {s.detail}"
        tone = "oj-ok" if s.ok else "oj-bad"
        rows.append(
            f"<tr><td>{when(s.at)}</td><td>{escape(s.rule_name)}</td>"
            f'<td class="oj-name"><a data-oj="view:{escape(s.job_id)}">{escape(s.job_name)}</a>'
            f"</td><td>{escape(s.state)}</td><td class='oj-num'>{s.count}</td>"
            f"<td>{escape(s.channel)}: {escape(s.target)}</td>"
            f'<td><span class="oj-badge {tone}">{escape(result)}</span></td></tr>'
        )
    body = "".join(rows) or '<tr><td colspan="7" class="oj-empty">Nothing sent yet.</td></tr>'
    return (
        '<h4 class="oj-h">Latest notifications</h4>'
        f'<table class="oj-table opsjobs-notify-sends"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


class NotifyPanel:
    """The widgets of the notifications area, as ``user`` on ``store``; ``say`` shows a
    message in the app's message line, ``guard`` runs a button's action turning its errors
    into such a message."""

    def __init__(
        self,
        store: Any,
        user: User,
        say: Callable[[str], None],
        *,
        guard: Callable[[Callable[[], None]], None] = lambda fn: fn(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules = NotifyRules(store, user.email, sees_all=user.sees_all, clock=clock)
        self.may_change = user.sees_all or user.may_submit
        self.say = say
        self.rules_html = w.HTML()
        self.rules_html.add_class("opsjobs-notify")
        self.sends_html = w.HTML()
        self.f_name = w.Text(description="Rule name")
        self.f_states = w.SelectMultiple(
            options=list(NOTIFY_STATES), value=("failed", "timed_out", "lost"), description="On"
        )
        self.f_job = w.Text(value="*", description="Job name", placeholder="name or glob")
        self.f_email = w.Text(description="E-mail to", placeholder="a@example.org, b@…")
        self.f_webhook = w.Checkbox(value=True, description="Webhooks", indent=False)
        self.f_group = w.BoundedIntText(value=10, min=0, max=7 * 1440, description="Group min")
        for widget, cls in (
            (self.f_name, "opsjobs-notify-name"),
            (self.f_job, "opsjobs-notify-job"),
            (self.f_email, "opsjobs-notify-email"),
            (self.f_states, "opsjobs-notify-states"),
        ):
            widget.add_class(cls)
        add = w.Button(description="Add rule", button_style="primary")
        add.add_class("opsjobs-notify-add")
        add.on_click(lambda _: guard(self.add))
        rows = [
            w.HBox([self.f_name, self.f_job, self.f_email]),
            w.HBox([self.f_states, self.f_group, self.f_webhook, add]),
        ]
        for row in rows:
            row.add_class("oj-bar")  # fields share the row (a form's text fields are full width)
            row.add_class("opsjobs-notify-row")
        form = w.VBox(rows)
        form.add_class("oj-form")
        form.layout.display = "" if self.may_change else "none"
        self.widget = w.VBox([self.rules_html, form, self.sends_html])

    def refresh(self) -> None:
        self.rules_html.value = rules_table(self.rules.list(), may_change=self.may_change)
        self.sends_html.value = sends_table(self.rules.sends(limit=MAX_SENDS))

    def add(self) -> None:
        """Add the rule of the form (errors are the app's message)."""
        if not self.may_change:
            raise PermissionDenied("changing notification rules needs a role that submits jobs")
        fields = {
            "name": self.f_name.value,
            "states": list(self.f_states.value),
            "job_name": self.f_job.value,
            "email": self.f_email.value,
            "webhook": bool(self.f_webhook.value),
            "group_seconds": float(self.f_group.value) * 60,
        }
        rule = self.rules.add(self.rules.build(fields))
        self.f_name.value = ""
        self.say(f"Notification rule {escape(rule.name)} added: {escape(rule.summary)}.")
        self.refresh()

    def remove(self, rule_id: str) -> None:
        if not self.may_change:
            raise PermissionDenied("changing notification rules needs a role that submits jobs")
        rule = self.rules.remove(rule_id)
        self.say(f"Notification rule {escape(rule.name)} removed.")
        self.refresh()
