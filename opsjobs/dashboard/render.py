"""HTML of the dashboard's tables, cards and detail view: pure functions of the data, escaped.

Buttons inside these tables carry ``data-oj="<action>:<argument>"``; the template's script hands
a click to the kernel through the dashboard's bridge widget (see :mod:`opsjobs.dashboard.app`).
Styles live in the Voila template (``voila-templates/opsjobs``), as ``oj-*`` classes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import datetime, timezone
from html import escape
from typing import Any

from opsjobs.alerts import Alert, Severity
from opsjobs.auth import SYSTEM_OWNER
from opsjobs.dashboard.data import SORTABLE, MemoryView, ResultsPage
from opsjobs.model import FAILED_STATES, Attempt, Job, JobState, Stats, WorkerInfo
from opsjobs.outputs import API_PATH
from opsjobs.schedules import Schedule

__all__ = [
    "alert_badges",
    "alerts_table",
    "attempts_html",
    "detail_html",
    "duration",
    "header_html",
    "jobs_table",
    "memory_summary",
    "number",
    "results_table",
    "schedules_table",
    "stat_cards",
    "when",
    "workers_table",
]


def when(ts: float | None) -> str:
    """``2026-01-23 14:30:01`` (UTC) or an em dash."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def number(value: float) -> str:
    """``390,230`` for a whole number (a count: ``390230.0`` too), ``48.8`` otherwise."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def duration(seconds: float | None) -> str:
    """``0.123 s``, ``12.4 s``, ``3 m 05 s``, ``2 h 04 m``, ``3 d 02 h``."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.3f} s"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} m {sec:02d} s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m:02d} m"
    d, h = divmod(h, 24)
    return f"{d} d {h:02d} h"


def ago(seconds: float) -> str:
    """How long ago, to the second: ``9 s``, ``3 m 05 s``, ``2 h 04 m``."""
    return f"{max(0, int(seconds))} s" if seconds < 60 else duration(seconds)


def interval(seconds: float) -> str:
    """``30 min``, ``1 h``, ``1 d``; other lengths as :func:`duration`."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return duration(seconds)


def badge(state: JobState | str | None) -> str:
    """A coloured status pill."""
    if state is None:
        return '<span class="oj-badge oj-none">—</span>'
    value = state.value if isinstance(state, JobState) else str(state)
    if value == "succeeded":
        tone = "ok"
    elif value in {s.value for s in FAILED_STATES}:
        tone = "bad"
    elif value == "running":
        tone = "run"
    elif value == "cancelled":
        tone = "warn"
    else:
        tone = "idle"
    return f'<span class="oj-badge oj-{tone}">{escape(value.replace("_", " "))}</span>'


def button(label: str, action: str, *, tone: str = "", title: str = "") -> str:
    cls = f"oj-btn oj-btn-{tone}" if tone else "oj-btn"
    tip = f' title="{escape(title)}"' if title else ""
    return f'<button class="{cls}" data-oj="{escape(action)}"{tip}>{escape(label)}</button>'


def _table(cls: str, head: str, rows: Iterable[str], empty: str, columns: int) -> str:
    body = (
        "".join(rows) or f'<tr><td colspan="{columns}" class="oj-empty">{escape(empty)}</td></tr>'
    )
    return (
        f'<table class="oj-table {cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def stat_cards(stats: Stats) -> str:
    """Total / Successful / Failed / Avg Runtime."""
    cards = (
        ("Total", f"{stats.total:,}", "total"),
        ("Successful", f"{stats.succeeded:,}", "ok"),
        ("Failed", f"{stats.failed:,}", "bad"),
        ("Avg Runtime", duration(stats.avg_runtime), "time"),
    )
    return (
        '<div class="oj-cards">'
        + "".join(
            f'<div class="oj-card oj-card-{tone}"><div class="oj-card-label">{label}</div>'
            f'<div class="oj-card-value" data-stat="{label.lower().replace(" ", "-")}">'
            f"{value}</div>"
            "</div>"
            for label, value, tone in cards
        )
        + "</div>"
    )


def results_table(
    page: ResultsPage,
    selected: Collection[str] = (),
    may_change: Callable[[Job], bool] = lambda job: True,
) -> str:
    """The sortable results table of one page: View on every row; a checkbox (``selected``:
    the ids ticked) and Delete on the rows the user ``may_change``; the head's checkbox ticks
    all of those on the page."""
    column, desc = page.state.sort.lstrip("-"), page.state.sort.startswith("-")
    changeable = [job for job in page.rows if may_change(job)]
    every = bool(changeable) and all(job.id in selected for job in changeable)
    head = [
        '<th class="oj-check"><input type="checkbox" class="opsjobs-select-page" '
        f'title="select this page"{" checked" if every else ""}></th>'
    ]
    for key, title in SORTABLE:
        arrow = ("▼" if desc else "▲") if key == column else ""
        active = " oj-sorted" if arrow else ""
        head.append(
            f'<th class="oj-sort{active}" data-oj="sort:{key}" data-col="{key}">'
            f'{escape(title)}<span class="oj-arrow">{arrow}</span></th>'
        )
    head.append('<th class="oj-actions-col"></th>')
    rows = []
    for job in page.rows:
        allowed = may_change(job)
        tick = " checked" if allowed and job.id in selected else ""
        marked = ' class="oj-selected"' if tick else ""
        check = (
            f'<input type="checkbox" class="opsjobs-select" data-job="{job.id}"{tick}>'
            if allowed
            else ""
        )
        rows.append(
            f'<tr data-job="{job.id}"{marked}>'
            f'<td class="oj-check">{check}</td>'
            f'<td class="oj-name"><a data-oj="view:{job.id}">{escape(job.name)}</a></td>'
            f"<td>{badge(job.state)}</td>"
            f'<td class="oj-mono">{when(job.started_at)}</td>'
            f'<td class="oj-num" data-runtime="{job.runtime if job.runtime is not None else ""}">'
            f"{duration(job.runtime)}</td>"
            f"<td>{escape(job.mode.seed_name)}</td>"
            f"<td>{escape(job.host or '—')}</td>"
            f'<td class="oj-actions">{button("View", f"view:{job.id}")}'
            f"{button('Delete', f'delete:{job.id}', tone='danger') if allowed else ''}"
            "</td></tr>"
        )
    return _table("opsjobs-results-table", "".join(head), rows, "No results match.", 8)


def _payload_text(job: Job) -> str:
    payload = job.spec.payload
    if job.kind == "command":
        return str(payload.get("source", ""))
    if job.kind == "call":
        kwargs = payload.get("kwargs") or {}
        return f"{payload.get('target', '')}\n\nkwargs = {json.dumps(kwargs, indent=2)}"
    if job.kind == "notebook":
        params = payload.get("parameters") or {}
        return f"{payload.get('path', '')}\n\nparameters = {json.dumps(params, indent=2)}"
    if job.kind == "argv":
        return " ".join(str(a) for a in payload.get("argv", []))
    return json.dumps(dict(payload), indent=2)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} GiB"


def job_actions(
    job: Job, *, may_submit: bool, may_use_lab: bool = False, may_change: bool = True
) -> str:
    """The detail view's action buttons: Stop (active, to those who may change it), Run again
    (finished), History, and for a finished notebook job, Open in JupyterLab (to those who may
    use Lab)."""
    out = []
    if not job.finished:
        if may_change:
            out.append(button("Stop", f"cancel:{job.id}", tone="danger", title="stop this job"))
    elif may_submit:
        out.append(button("Run again", f"rerun:{job.id}", tone="primary", title="pre-filled form"))
    out.append(button("History of this name", f"history:{job.name}", title="runs over time"))
    if may_use_lab and job.finished and job.kind == "notebook":
        out.append(
            f'<a class="oj-btn opsjobs-open-lab" href="{API_PATH}/jobs/{escape(job.id)}/lab" '
            'target="_blank" rel="noopener" title="a copy of the executed notebook, in your '
            'folder">Open in JupyterLab</a>'
        )
    return f'<div class="oj-detail-actions opsjobs-detail-actions">{"".join(out)}</div>'


def downloads_html(files: Sequence[tuple[str, str, int]]) -> str:
    """Links to a job's files: (name, url, size) each."""
    if not files:
        return ""
    links = "".join(
        f'<li><a class="opsjobs-download" href="{escape(url)}" download>{escape(name)}</a> '
        f'<span class="oj-dim">{_size(size)}</span></li>'
        for name, url, size in files
    )
    return f'<h4 class="oj-h">Downloads</h4><ul class="oj-downloads">{links}</ul>'


def detail_html(
    job: Job,
    notebook_html: str | None = None,
    *,
    live_output: str | None = None,
    files: Sequence[tuple[str, str, int]] = (),
    actions: str = "",
    attempts: Sequence[Attempt] = (),
    memory_png: bytes | None = None,
) -> str:
    """The detail view of one job (everything but the Back and Delete buttons); a running
    job's ``live_output`` (its log so far) stands in for the output it has not stored yet.
    ``attempts`` of a retried job are listed, each with its own outcome and output;
    ``memory_png`` is the chart of its memory (:mod:`opsjobs.dashboard.jobmem`)."""
    ok = job.state is JobState.SUCCEEDED
    bad = job.state in FAILED_STATES
    icon = "✔" if ok else ("✖" if bad else "●")
    tone = "ok" if ok else ("bad" if bad else "idle")
    facts = (
        ("Status", badge(job.state)),
        ("Mode", f"{escape(job.mode.seed_name)} <span class='oj-dim'>({job.mode.value})</span>"),
        ("Kind", escape(job.kind)),
        ("Queue", escape(job.queue)),
        ("Owner", escape(job.owner or "—")),
        ("Worker", f"<span class='oj-mono'>{escape(job.worker_id or '—')}</span>"),
        ("Host", escape(job.host or "—")),
        ("Queued", when(job.submitted_at)),
        ("Started", when(job.started_at)),
        ("Finished", when(job.finished_at)),
        ("Runtime", duration(job.runtime)),
        ("Exit code", "—" if job.exit_code is None else str(job.exit_code)),
        ("Peak memory", "—" if job.peak_rss is None else _size(job.peak_rss)),
        (
            "Run again of",
            "—"
            if job.spec.rerun_of is None
            else f'<a class="oj-mono opsjobs-rerun-of" data-oj="view:{job.spec.rerun_of}">'
            f"{job.spec.rerun_of[:8]}</a>",
        ),
    )
    grid = "".join(f"<div class='oj-fact'><div>{k}</div><div>{v}</div></div>" for k, v in facts)
    parts = [
        f'<div class="oj-detail-head oj-{tone}"><span class="oj-icon">{icon}</span>'
        f'<span class="oj-title">{escape(job.name)}</span>'
        f'<span class="oj-mono oj-dim">{job.id}</span></div>',
        actions,
        f'<div class="oj-facts">{grid}</div>',
    ]
    if job.spec.description:
        parts.append(f"<p class='oj-desc'>{escape(job.spec.description)}</p>")
    if memory_png is not None:
        data = base64.b64encode(memory_png).decode("ascii")
        parts.append(
            '<h4 class="oj-h">Memory</h4><img class="oj-chart opsjobs-job-memory" '
            f'alt="memory of this job" src="data:image/png;base64,{data}">'
        )
    parts.append(_section(job.kind.capitalize(), _payload_text(job)))
    if job.error:
        parts.append(_section("Error", job.error, cls="oj-error"))
    if live_output is not None and not job.finished:
        parts.append(
            _section(
                "Output (live)", live_output or "(no output yet)", cls="opsjobs-output oj-live"
            )
        )
    else:
        parts.append(_section("Output", job.output or "(no output)", cls="opsjobs-output"))
    parts.append(attempts_html(job, attempts))
    parts.append(downloads_html(files))
    if job.result is not None:
        parts.append(_section("Result", json.dumps(job.result, indent=2, default=str)))
    if notebook_html is not None:
        parts.append(
            '<h4 class="oj-h">Executed notebook</h4>'
            f'<iframe class="oj-notebook" sandbox="" srcdoc="{escape(notebook_html)}"></iframe>'
        )
    return f'<div class="oj-detail opsjobs-detail">{"".join(parts)}</div>'


def attempts_html(job: Job, attempts: Sequence[Attempt]) -> str:
    """The attempts of a job that was retried (nothing for a job that ran once): one row
    each, the earlier ones' output folded."""
    if len(attempts) < 2 and not (attempts and attempts[-1].attempt != job.attempt):
        return ""
    rows = []
    for a in attempts:
        output = (
            f"<details><summary>output</summary><pre class='oj-pre'>{escape(a.output)}</pre>"
            "</details>"
            if a.output and a.attempt != job.attempt
            else ""
        )
        rows.append(
            f'<tr data-attempt="{a.attempt}"><td class="oj-num">{a.attempt}</td>'
            f"<td>{badge(a.state)}</td><td>{when(a.started_at)}</td>"
            f'<td class="oj-num">{duration(a.runtime)}</td>'
            f'<td class="oj-num">{"—" if a.exit_code is None else a.exit_code}</td>'
            f"<td>{escape((a.error or '').splitlines()[0][:200] if a.error else '')}"
            f"{output}</td></tr>"
        )
    head = "".join(f"<th>{t}</th>" for t in ("#", "Status", "Started", "Runtime", "Exit", "Error"))
    return '<h4 class="oj-h">Attempts</h4>' + _table("opsjobs-attempts", head, rows, "", 6)


def _section(title: str, text: str, *, cls: str = "") -> str:
    return f'<h4 class="oj-h">{escape(title)}</h4><pre class="oj-pre {cls}">{escape(text)}</pre>'


def jobs_table(
    jobs: Sequence[Job], now: float, may_change: Callable[[Job], bool] = lambda job: True
) -> str:
    """Queued and running jobs with elapsed time and Stop (where ``may_change``)."""
    head = "".join(
        f"<th>{t}</th>" for t in ("Job Name", "Status", "Owner", "Queue", "Mode", "Elapsed", "")
    )
    rows = []
    for job in jobs:
        since = job.started_at if job.started_at is not None else job.submitted_at
        if job.cancel_requested:
            stop = '<span class="oj-dim">stopping…</span>'
        else:
            stop = button("Stop", f"cancel:{job.id}", tone="danger") if may_change(job) else ""
        rows.append(
            f'<tr data-job="{job.id}"><td class="oj-name"><a data-oj="view:{job.id}">'
            f"{escape(job.name)}</a></td><td>{badge(job.state)}</td>"
            f"<td>{escape(job.owner)}</td><td>{escape(job.queue)}</td>"
            f"<td>{escape(job.mode.seed_name)}</td>"
            f'<td class="oj-num">{duration(now - since)}</td>'
            f'<td class="oj-actions">{stop}</td></tr>'
        )
    return _table("opsjobs-jobs-table", head, rows, "Nothing queued or running.", 7)


def schedules_table(
    schedules: Sequence[Schedule], *, may_manage: bool, manage_system: bool = False
) -> str:
    """Each schedule with its trigger, next and last run, last status and its buttons; the
    server's own (``system``) ones are marked, read-only but for admins (``manage_system``)."""
    titles = ("Schedule", "Trigger", "Next run", "Last run", "Last status", "")
    head = "".join(f"<th>{t}</th>" for t in titles)
    rows = []
    for s in schedules:
        trigger = f"every {interval(s.every_seconds)}" if s.every_seconds else f"{s.cron} {s.tz}"
        system = s.spec.owner == SYSTEM_OWNER
        if not may_manage or (system and not manage_system):
            buttons = ""
        elif s.enabled:
            buttons = button("Pause", f"pause:{s.id}")
        else:
            buttons = button("Resume", f"resume:{s.id}", tone="primary")
        if may_manage and (manage_system or not system):
            buttons += button("Run now", f"run:{s.id}")
            if s.spec.kind == "notebook":
                buttons += button("Parameters", f"params:{s.id}", title="edit its parameters")
        state = badge(s.last_job_state) if s.last_job_state else '<span class="oj-dim">—</span>'
        paused = "" if s.enabled else ' <span class="oj-badge oj-warn">paused</span>'
        if system:
            paused += ' <span class="oj-badge oj-idle" title="the server\'s own">system</span>'
        rows.append(
            f'<tr data-schedule="{escape(s.name)}"><td class="oj-name">{escape(s.name)}{paused}'
            f'</td><td class="oj-mono">{escape(trigger)}</td><td>{when(s.next_fire_at)}</td>'
            f"<td>{when(s.last_fire_at)}</td><td>{state}</td>"
            f'<td class="oj-actions">{buttons}</td></tr>'
        )
    return _table("opsjobs-schedules-table", head, rows, "No schedules.", 6)


def workers_table(workers: Sequence[WorkerInfo], now: float) -> str:
    """Host, pid, queues, busy threads, last heartbeat, alive or dead."""
    titles = ("Worker", "Host", "PID", "Queues", "Busy", "Last heartbeat", "State")
    head = "".join(f"<th>{t}</th>" for t in titles)
    rows = []
    for w in workers:
        if w.stopped_at is not None:
            state = '<span class="oj-badge oj-idle">stopped</span>'
        elif w.alive(now):
            state = '<span class="oj-badge oj-ok">alive</span>'
        else:
            state = '<span class="oj-badge oj-bad">dead</span>'
        queues = ", ".join(q for q in w.queues if not q.startswith("worker:")) or "—"
        rows.append(
            f'<tr><td class="oj-mono">{escape(w.id[:8])}</td><td>{escape(w.host)}</td>'
            f'<td class="oj-num">{w.pid}</td><td>{escape(queues)}</td>'
            f'<td class="oj-num">{w.busy} / {w.threads}</td>'
            f"<td>{when(w.heartbeat_at)} <span class='oj-dim'>"
            f"({ago(now - w.heartbeat_at)} ago)</span></td><td>{state}</td></tr>"
        )
    return _table("opsjobs-workers-table", head, rows, "No workers registered.", 7)


def memory_summary(view: MemoryView) -> str:
    """Leak verdicts per worker and the latest analysis with its recommendations."""
    rows = []
    for label, v in sorted(view.verdicts.items()):
        tone = "bad" if v.leaking else "ok"
        text = "leak suspected" if v.leaking else "no leak"
        rows.append(
            f"<tr><td>{escape(label)}</td><td><span class='oj-badge oj-{tone}'>{text}</span></td>"
            f"<td>{escape(v.reason)}</td><td class='oj-num'>{v.growth_per_hour:+.2f} MB/h</td>"
            f"<td class='oj-num'>{v.first:.1f} → {v.last:.1f} MB</td>"
            f"<td class='oj-num'>{v.points}</td></tr>"
        )
    head = "".join(
        f"<th>{t}</th>" for t in ("Host / worker", "Verdict", "Why", "Trend", "RSS", "Points")
    )
    parts = [
        '<h4 class="oj-h">Leak verdicts</h4>',
        _table("opsjobs-verdicts", head, rows, "No rss_mb series in this window.", 6),
    ]
    job = view.latest_analysis
    parts.append('<h4 class="oj-h">Latest analysis</h4>')
    if job is None:
        parts.append('<p class="oj-dim">No memory analysis visible to you yet.</p>')
    else:
        result: dict[str, Any] = job.result
        summary = result.get("summary") or {}
        figures = " · ".join(
            f"{k} <b>{number(summary[k])}</b>"
            for k in ("rss_mb", "uss_mb", "heap_mb", "objects")
            if isinstance(summary.get(k), int | float)
        )
        parts.append(
            f'<p><a data-oj="view:{job.id}">{escape(job.name)}</a> on '
            f"{escape(str(result.get('host') or job.host or '?'))}, finished "
            f"{when(job.finished_at)} UTC. {figures}</p>"
        )
        recs = result.get("recommendations") or []
        items = "".join(
            f"<li class='oj-rec oj-rec-{escape(str(r.get('severity', 'info')))}'>"
            f"<b>{escape(str(r.get('severity', 'info')).upper())}</b> "
            f"{escape(str(r.get('message', '')))}<div class='oj-dim'>"
            f"{escape(str(r.get('suggestion', '')))}</div></li>"
            for r in recs
        )
        parts.append(f"<ul class='oj-recs'>{items or '<li>[OK] No issues detected</li>'}</ul>")
    return "".join(parts)


# -- alerts -----------------------------------------------------------------------------------
_SEVERITIES = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)


def alert_badges(counts: dict[str, int]) -> str:
    """The header's alert summary: a coloured pill per severity with open alerts (a click
    opens the Memory tab), or a quiet "no open alerts"."""
    if not counts.get("open"):
        return (
            '<div class="oj-alerts opsjobs-alerts" data-open="0">'
            '<span class="oj-alerts-none">● no open alerts</span></div>'
        )
    pills = "".join(
        f'<span class="oj-alert-pill oj-sev-{sev.value}" data-severity="{sev.value}">'
        f"{counts[sev.value]} {sev.value}</span>"
        for sev in _SEVERITIES
        if counts.get(sev.value)
    )
    total = counts["open"]
    title = f"{total} open alert{'s' if total != 1 else ''}: see the Memory tab"
    return (
        f'<div class="oj-alerts opsjobs-alerts" data-open="{total}" data-oj="alerts:" '
        f'title="{escape(title)}"><span class="oj-alerts-label">Alerts</span>{pills}</div>'
    )


def header_html(email: str, roles: Sequence[str], counts: dict[str, int]) -> str:
    """The header: brand, the alert summary and the signed-in user."""
    who = ", ".join(roles) or "read only"
    return (
        '<div class="oj-brand"><span class="oj-logo">◆</span> opsjobs'
        '<span class="oj-sub">Task Management</span></div>'
        f"{alert_badges(counts)}"
        f'<div class="oj-user opsjobs-user">{escape(email)}'
        f'<span class="oj-dim"> · {escape(who)}</span>'
        '<button type="button" class="oj-signout" data-oj-signout="1">Sign out</button></div>'
    )


def alerts_table(alerts: Sequence[Alert], now: float) -> str:
    """The Memory tab's open alerts: severity, rule, labels, value, since when, message."""
    if not alerts:
        return '<p class="oj-alerts-ok opsjobs-alerts-none">✔ No open alerts.</p>'
    titles = ("Severity", "Rule", "Host / labels", "Value", "Since", "Message")
    head = "".join(f"<th>{t}</th>" for t in titles)
    rows = []
    for a in alerts:
        labels = a.shown_labels
        host = labels.pop("host", "")
        extra = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        where = f"<b>{escape(host or '—')}</b>" + (
            f" <span class='oj-dim'>{escape(extra)}</span>" if extra else ""
        )
        value = "—" if a.value is None else f"{a.value:,.4g}"
        rows.append(
            f'<tr data-alert="{escape(a.id)}"><td><span class="oj-alert-pill '
            f'oj-sev-{a.severity.value}">{a.severity.value}</span></td>'
            f'<td class="oj-name">{escape(a.rule_name)}'
            f"<div class='oj-dim oj-mono'>{escape(a.metric)}</div></td>"
            f"<td>{where}</td><td class='oj-num'>{escape(value)}</td>"
            f"<td>{when(a.opened_at)} <span class='oj-dim'>({ago(now - a.opened_at)} ago)"
            f"</span></td><td class='oj-msg-cell'>{escape(a.message)}</td></tr>"
        )
    return '<h4 class="oj-h">Open alerts</h4>' + _table(
        "opsjobs-alerts-table", head, rows, "No open alerts.", 6
    )


def history_html(name: str, jobs: Sequence[Job]) -> str:
    """The history of one job name (``jobs`` oldest first): summary cards and the runs,
    newest first, with runtime, outcome and peak memory. The chart is drawn beside it."""
    done = [j for j in jobs if j.finished]
    ok = sum(1 for j in done if j.state is JobState.SUCCEEDED)
    runtimes = [j.runtime for j in done if j.runtime is not None]
    peaks = [j.peak_rss for j in jobs if j.peak_rss is not None]
    cards = (
        ("Runs", f"{len(jobs):,}"),
        ("Success rate", f"{100 * ok / len(done):.0f}%" if done else "—"),
        ("Avg runtime", duration(sum(runtimes) / len(runtimes)) if runtimes else "—"),
        ("Max peak memory", _size(max(peaks)) if peaks else "—"),
    )
    head = "".join(
        f'<div class="oj-card"><div class="oj-card-label">{k}</div>'
        f'<div class="oj-card-value">{v}</div></div>'
        for k, v in cards
    )
    rows = [
        f'<tr><td><a data-oj="view:{j.id}" class="oj-mono">{j.id[:8]}</a></td>'
        f"<td>{badge(j.state)}</td><td>{when(j.submitted_at)}</td>"
        f"<td>{duration(j.runtime)}</td>"
        f"<td>{'—' if j.peak_rss is None else _size(j.peak_rss)}</td>"
        f"<td>{'—' if j.spec.rerun_of is None else 'run again'}</td></tr>"
        for j in reversed(jobs)
    ]
    table = _table(
        "opsjobs-history-table",
        "<th>Job</th><th>Status</th><th>Queued</th><th>Runtime</th><th>Peak memory</th><th></th>",
        rows,
        "No runs of this name.",
        6,
    )
    return (
        f'<div class="opsjobs-history"><h3 class="oj-h">History of “{escape(name)}”</h3>'
        f'<div class="oj-cards">{head}</div>{table}</div>'
    )
