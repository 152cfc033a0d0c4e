"""The dashboard's widgets: header, tabs (Results, Jobs, Schedules, Workers, Memory, Run
notebook, Submit), a confirm bar and a message line, over one
:class:`~opsjobs.dashboard.data.DashboardData`. The Results tab's detail area shows one job
(live output while it runs, downloads, Stop / Run again) or the history of one job name.

Tables are HTML widgets (one message per refresh, however many rows); their buttons carry
``data-oj="<action>:<argument>"``. The Voila template's script forwards a click — and, every
5 s while the browser tab is visible, a ``tick`` — by writing ``<action>:<argument>|<nonce>``
into a hidden text widget, the *bridge*; :meth:`DashboardApp.command` runs it. So the refresh
loop lives in the page: when the page is closed the ticks stop, the kernel goes idle and the
server culls it. A refresh redraws only the visible tab, and a widget is only sent when its
value changed, so nothing flickers and filters, sort, page and the open detail stay as they are.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from html import escape
from typing import Any

import ipywidgets as w

from opsjobs.dashboard import render
from opsjobs.dashboard.data import WINDOWS, DashboardData, ResultsState, SubmitForm
from opsjobs.dashboard.notebook_form import NotebookForm
from opsjobs.dashboard.notify_panel import NotifyPanel
from opsjobs.dashboard.results_tab import ResultsList
from opsjobs.dashboard.results_tab import classed as _classed
from opsjobs.errors import OpsJobsError, ValidationError

__all__ = ["DashboardApp"]

log = logging.getLogger("opsjobs.dashboard")

TABS = ("Results", "Jobs", "Schedules", "Workers", "Memory", "Run notebook", "Submit")
_SUBMITTING = ("Run notebook", "Submit")


def _layout(**kw: str) -> w.Layout:
    return w.Layout(**kw)


class DashboardApp:
    """Build with a data layer; :attr:`widget` is what the notebook displays.

    Parameters
    ----------
    data
        The signed-in user's view of the store.
    clock
        Time source (tests).
    """

    def __init__(self, data: DashboardData, *, clock: Callable[[], float] = time.time) -> None:
        self.data = data
        self.clock = clock
        self.detail_id: str | None = None
        #: The job name whose history the detail area shows (instead of one job).
        self.history_name: str | None = None
        self._history_key: Any = None
        self._catalog_loaded = False
        #: What the confirm bar's Delete does (one result or the selected ones).
        self.pending: Callable[[], None] | None = None
        #: Auto-refresh paused (the page's ticks are ignored; the page stops sending them).
        self.paused = False
        self.refreshes = 0
        self._memory_key: Any = None
        self._memory_png: bytes | None = None
        self.window = "24 h"
        self._chart_key: Any = None
        self.panel_html: dict[str, w.HTML] = {}
        user = data.user
        tabs = [t for t in TABS if t not in _SUBMITTING or user.may_submit]
        self.tab_names = tabs

        # header (its alert summary is redrawn at every refresh, whatever the tab)
        self.header = _classed(
            w.HTML(render.header_html(user.email, user.roles, {})), "oj-header-html"
        )
        self.everyone = _classed(
            w.Checkbox(value=False, description="Everyone's jobs", indent=False),
            "opsjobs-everyone",
        )
        self.everyone.layout.display = "" if user.sees_all else "none"
        self.everyone.observe(self._on_everyone, "value")
        header = _classed(w.HBox([self.header, self.everyone]), "oj-header")
        self.refreshed = _classed(w.HTML(""), "opsjobs-refreshed-box")
        self.pause = _classed(
            w.Button(description="Pause", tooltip="auto-refresh"), "opsjobs-pause"
        )
        self.pause.on_click(lambda _: self.set_paused(not self.paused))
        status = _classed(w.HBox([self.refreshed, self.pause]), "oj-status")

        self.message = _classed(w.HTML(""), "opsjobs-message")
        self.confirm_text = w.HTML("")
        yes = _classed(w.Button(description="Delete", button_style="danger"), "opsjobs-confirm-yes")
        no = _classed(w.Button(description="Cancel"), "opsjobs-confirm-no")
        yes.on_click(lambda _: self._confirm(True))
        no.on_click(lambda _: self._confirm(False))
        self.confirm = _classed(
            w.HBox([self.confirm_text, yes, no]), "oj-confirm", "opsjobs-confirm"
        )
        self.confirm.layout.display = "none"

        self.bridge = _classed(w.Text(value="", continuous_update=True), "opsjobs-bridge")
        self.bridge.layout.display = "none"
        self.bridge.observe(lambda change: self.command(str(change["new"])), "value")

        panels = {
            "Results": self._results_panel(),
            "Jobs": self._simple_panel("jobs"),
            "Schedules": self._simple_panel("schedules"),
            "Workers": self._simple_panel("workers"),
            "Memory": self._memory_panel(),
            "Run notebook": self._notebook_panel(),
            "Submit": self._submit_panel(),
        }
        self.tabs = _classed(w.Tab(children=[panels[t] for t in tabs]), "opsjobs-tabs")
        self.tabs.titles = tuple(tabs)
        self.tabs.observe(self._on_tab, "selected_index")
        self.widget = _classed(
            w.VBox([header, status, self.message, self.confirm, self.tabs, self.bridge]),
            "opsjobs-app",
        )

    # -- panels -------------------------------------------------------------------------------
    def _results_panel(self) -> w.Widget:
        self.results = ResultsList(
            self.data, changed=self.refresh, ask=self._ask, say=self.say, guard=self._guard
        )
        self.list_box = self.results.widget

        self.detail_html = _classed(w.HTML(), "opsjobs-detail-html")
        self.history_chart = _classed(w.Image(format="png"), "opsjobs-history-chart")
        self.history_chart.layout.width = "100%"
        self.history_chart.layout.display = "none"
        back = _classed(w.Button(description="\u2039 Back to results"), "opsjobs-back")
        delete = _classed(w.Button(description="Delete", button_style="danger"), "opsjobs-delete")
        back.on_click(lambda _: self.show_list())
        delete.on_click(lambda _: self._guard(lambda: self.ask_delete(self.detail_id or "")))
        self.detail_box = _classed(
            w.VBox(
                [
                    _classed(w.HBox([back, delete]), "oj-bar"),
                    self.history_chart,
                    self.detail_html,
                ]
            ),
            "opsjobs-detail-view",
        )
        self.detail_box.layout.display = "none"
        self.delete_button = delete
        return w.VBox([self.list_box, self.detail_box])

    def _notebook_panel(self) -> w.Widget:
        self.notebook_form = NotebookForm(
            self.data.notebooks,
            self.data.run_notebook,
            self._queued,
            self._guard,
            save=self.data.set_schedule_parameters,
            on_saved=self._saved,
        )
        return self.notebook_form.widget

    def _simple_panel(self, name: str) -> w.Widget:
        html = _classed(w.HTML(), f"opsjobs-{name}")
        self.panel_html[name] = html
        return w.VBox([html])

    def _memory_panel(self) -> w.Widget:
        self.window_picker = _classed(
            w.ToggleButtons(options=list(WINDOWS), value=self.window), "opsjobs-window"
        )
        self.window_picker.observe(self._on_window, "value")
        self.chart = _classed(w.Image(format="png"), "opsjobs-memory-chart")
        self.chart.layout.width = "100%"
        self.memory_html = _classed(w.HTML(), "opsjobs-memory")
        self.alerts_html = _classed(w.HTML(), "opsjobs-memory-alerts")
        bar = _classed(w.HBox([self.window_picker]), "oj-bar")
        #: Notification rules on job outcomes and their sends, below the open alerts.
        self.notify = NotifyPanel(
            self.data.client.store, self.data.user, self.say, guard=self._guard
        )
        return w.VBox([bar, self.alerts_html, self.notify.widget, self.chart, self.memory_html])

    def _submit_panel(self) -> w.Widget:
        full = _layout(width="100%")
        self.f_name = _classed(w.Text(description="Name", layout=full), "opsjobs-submit-name")
        self.f_kind = _classed(
            w.ToggleButtons(options=["call", "command", "argv", "notebook"], description="Kind"),
            "opsjobs-submit-kind",
        )
        self.f_target = _classed(
            w.Textarea(description="Callable", placeholder="package.module:function", layout=full),
            "opsjobs-submit-target",
        )
        self.f_params = _classed(
            w.Textarea(description="Parameters", placeholder='{"key": "value"}', layout=full),
            "opsjobs-submit-params",
        )
        self.f_mode = w.Dropdown(
            options=[
                ("Runspace (thread)", "thread"),
                ("MainLoop (inline)", "inline"),
                ("BackgroundJob (process)", "process"),
            ],
            description="Mode",
        )
        self.f_queue = w.Text(value="default", description="Queue")
        self.f_timeout = w.BoundedFloatText(value=0, min=0, max=7 * 86400, description="Timeout s")
        go = _classed(w.Button(description="Submit job", button_style="primary"), "opsjobs-submit")
        go.on_click(lambda _: self._submit())
        self.f_kind.observe(self._on_kind, "value")
        hint = _classed(
            w.HTML(
                '<p class="oj-dim">Timeout 0 means none. Parameters are a JSON object '
                "(kwargs of a call, parameters of a notebook).</p>"
            ),
            "oj-hint",
        )
        row = _classed(w.HBox([self.f_mode, self.f_queue, self.f_timeout]), "oj-bar")
        return _classed(
            w.VBox([self.f_name, self.f_kind, self.f_target, self.f_params, row, hint, go]),
            "oj-form",
        )

    # -- refreshing ---------------------------------------------------------------------------
    @property
    def current_tab(self) -> str:
        return self.tab_names[self.tabs.selected_index or 0]

    # the Results list's state and widgets, under the names the app had
    @property
    def state(self) -> ResultsState:
        return self.results.state

    @property
    def table(self) -> w.HTML:
        return self.results.table

    @property
    def stats_html(self) -> w.HTML:
        return self.results.stats_html

    def refresh(self) -> None:
        """Redraw the visible tab from the store; errors become a message."""
        self._guard(self._refresh)
        self.refreshes += 1
        self._draw_status()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume the auto-refresh; resuming refreshes at once."""
        self.paused = paused
        self.pause.description = "Resume" if paused else "Pause"
        self.pause.button_style = "primary" if paused else ""
        if paused:
            self._draw_status()
        else:
            self.refresh()

    def _draw_status(self) -> None:
        """ "refreshed N s ago": the page's script counts the seconds from the last ``seq``."""
        paused = "1" if self.paused else "0"
        text = "auto-refresh paused · refreshed just now" if self.paused else "refreshed just now"
        self.refreshed.value = (
            f'<span class="oj-refreshed opsjobs-refreshed" data-seq="{self.refreshes}" '
            f'data-paused="{paused}">{text}</span>'
        )

    def _refresh(self) -> None:
        tab, now = self.current_tab, self.clock()
        user = self.data.user
        self.header.value = render.header_html(user.email, user.roles, self.data.alert_counts())
        if tab == "Results":
            if self.history_name is not None:
                self._draw_history()
            elif self.detail_id is not None:
                self._draw_detail()
            else:
                self._draw_results()
        elif tab == "Jobs":
            self.panel_html["jobs"].value = render.jobs_table(
                self.data.active_jobs(), now, self.data.may_change
            )
        elif tab == "Schedules":
            self.panel_html["schedules"].value = render.schedules_table(
                self.data.schedules(),
                may_manage=self.data.user.may_submit,
                manage_system=self.data.user.sees_all,  # the server's own: admins only
            )
        elif tab == "Workers":
            self.panel_html["workers"].value = render.workers_table(self.data.workers(), now)
        elif tab == "Memory":
            self._draw_memory()
        elif tab == "Run notebook" and not self._catalog_loaded:
            self._catalog_loaded = True  # once: a tick must not reset what the user typed
            self.notebook_form.reload()

    def _draw_results(self) -> None:
        self.results.draw()

    def _draw_detail(self) -> None:
        assert self.detail_id is not None
        job = self.data.job(self.detail_id)
        self.detail_html.value = render.detail_html(
            job,
            self.data.notebook_html(job) if job.finished else None,
            live_output=None if job.finished else self.data.live_output(job),
            files=self.data.files(job),
            actions=render.job_actions(
                job,
                may_submit=self.data.user.may_submit,
                may_use_lab=self.data.user.may_use_lab,
                may_change=self.data.may_change(job),
            ),
            attempts=self.data.attempts(job),
            memory_png=self._job_memory_png(job),
        )

    def _job_memory_png(self, job: Any) -> bytes | None:
        """The detail view's memory chart, drawn again only when what it shows changed."""
        from opsjobs.dashboard.jobmem import job_memory

        mem = job_memory(self.data.client, job, owner=self.data.owner)
        key = (job.id, mem)
        if key != self._memory_key:
            from opsjobs.dashboard.charts import job_memory_chart

            self._memory_png = None if mem is None else job_memory_chart(mem)
            self._memory_key = key
        return self._memory_png

    def _draw_history(self) -> None:
        assert self.history_name is not None
        jobs = self.data.history(self.history_name)
        key = (self.history_name, [(j.id, j.state, j.runtime, j.peak_rss) for j in jobs])
        if key != self._history_key:
            from opsjobs.dashboard.charts import history_chart

            self.history_chart.value = history_chart(jobs)
            self._history_key = key
        self.detail_html.value = render.history_html(self.history_name, jobs)

    def _draw_memory(self) -> None:
        view = self.data.memory(WINDOWS[self.window])
        key = (
            self.window,
            {m: {k: (len(v), v[-1]) for k, v in s.items()} for m, s in view.series.items()},
        )
        if key != self._chart_key:
            from opsjobs.dashboard.charts import memory_chart

            self.chart.value = memory_chart(view)
            self._chart_key = key
        self.alerts_html.value = render.alerts_table(view.alerts, view.until or self.clock())
        self.notify.refresh()
        self.memory_html.value = render.memory_summary(view)

    # -- commands from the page ---------------------------------------------------------------
    def command(self, text: str) -> None:
        """Run one bridge command, ``<action>:<argument>|<nonce>``."""
        action, _, arg = text.split("|", 1)[0].partition(":")
        if not action:
            return
        handlers: dict[str, Callable[[str], None]] = {
            "tick": lambda _: None if self.paused else self.refresh(),
            "select": self.results.select,
            "view": self.show_detail,
            "delete": self.ask_delete,
            "cancel": self._cancel,
            "sort": self._sort,
            "pause": lambda a: self._schedule("pause", a),
            "resume": lambda a: self._schedule("resume", a),
            "run": lambda a: self._schedule("run_now", a),
            "alerts": lambda _: self._show_tab("Memory"),
            "rerun": self.run_again,
            "params": self.edit_schedule,
            "history": self.show_history,
            "notify-remove": lambda a: self.notify.remove(a),
        }
        handler = handlers.get(action)
        if handler is None:
            self.say(f"Unknown action {action!r}.", error=True)
            return
        if action != "tick":
            self.say("")
        self._guard(lambda: handler(arg))

    def show_detail(self, job_id: str) -> None:
        job = self.data.job(job_id)
        self.detail_id = job.id
        self.history_name = None
        self.history_chart.layout.display = "none"
        self.delete_button.layout.display = "" if self.data.may_change(job) else "none"
        self.tabs.selected_index = 0  # also refreshes
        self.list_box.layout.display = "none"
        self.detail_box.layout.display = ""
        self._draw_detail()

    def show_history(self, name: str) -> None:
        """The runs of job name ``name`` over time in the detail area."""
        self.history_name = name
        self.detail_id = None
        self.history_chart.layout.display = ""
        self.delete_button.layout.display = "none"
        self.tabs.selected_index = 0
        self.list_box.layout.display = "none"
        self.detail_box.layout.display = ""
        self._draw_history()

    def run_again(self, job_id: str) -> None:
        """A notebook of the catalog: the Run notebook form, pre-filled; any other job: queued
        again as it was. Either way the new job is linked to this one."""
        job = self.data.job(job_id)
        notebook = self.data.catalog_name(job.spec)
        if notebook is None or "Run notebook" not in self.tab_names:
            self._queued(self.data.rerun(job.id))
            return
        self._catalog_loaded = True
        self.notebook_form.prefill(job, notebook)
        self._show_tab("Run notebook")
        self.say(f"Run again: {escape(job.name)} — change what you like, then Run notebook.")

    def edit_schedule(self, schedule_id: str) -> None:
        """A notebook schedule's parameters in the Run notebook form; Save stores them."""
        schedule = self.data.schedule(schedule_id)
        notebook = self.data.catalog_name(schedule.spec)
        if notebook is None:
            raise ValidationError(f"{schedule.name} does not run a notebook of the catalog")
        self._catalog_loaded = True
        self.notebook_form.prefill_schedule(schedule, notebook)
        self._show_tab("Run notebook")
        self.say(f"Parameters of schedule {escape(schedule.name)}: change them, then Save.")

    def _saved(self, schedule: Any) -> None:
        self._show_tab("Schedules")
        self.say(f"Saved the parameters of schedule {escape(schedule.name)}.")

    def _queued(self, job: Any) -> None:
        self.show_detail(job.id)
        self.say(f"Queued {escape(job.name)} ({job.id}); following it live.")

    def _show_tab(self, name: str) -> None:
        if name in self.tab_names:
            self.tabs.selected_index = self.tab_names.index(name)  # refreshes when it changes

    def show_list(self) -> None:
        self.detail_id = None
        self.history_name = None
        self.detail_box.layout.display = "none"
        self.list_box.layout.display = ""
        self.refresh()

    def ask_delete(self, job_id: str) -> None:
        job = self.data.deletable(job_id)
        if not job.finished:
            raise ValidationError(f"{job.name} is {job.state.value}: stop it first")

        def go() -> None:
            self.data.delete(job.id)
            self.results.selected.discard(job.id)
            self.say("Result deleted.")
            if self.detail_id == job.id:
                self.show_list()
            else:
                self.refresh()

        self._ask(
            f"<b>Delete the result of “{escape(job.name)}”?</b> "
            f'<span class="oj-dim">{job.id} — this cannot be undone.</span>',
            go,
        )

    def _ask(self, question: str, action: Callable[[], None]) -> None:
        """The one confirmation bar: ``question``, and Delete runs ``action``."""
        self.pending = action
        self.confirm_text.value = question
        self.confirm.layout.display = ""

    def _confirm(self, yes: bool) -> None:
        action, self.pending = self.pending, None
        self.confirm.layout.display = "none"
        if yes and action is not None:
            self._guard(action)

    def _cancel(self, job_id: str) -> None:
        job = self.data.cancel(job_id)
        self.say(f"Stop requested for {escape(job.name)} ({job.state.value}).")
        self.refresh()

    def _sort(self, column: str) -> None:
        self.results.sort(column)

    def _schedule(self, op: str, schedule_id: str) -> None:
        out = getattr(self.data, op)(schedule_id)
        if op == "run_now":
            self.say(f"Queued {escape(out.name)} now.")
        else:
            self.say(f"Schedule {escape(out.name)} {'resumed' if out.enabled else 'paused'}.")
        self.refresh()

    # -- inputs -------------------------------------------------------------------------------
    def _on_tab(self, _: Any) -> None:
        if "oj-msg-info" in self.message.value:
            self.say("")
        self.refresh()

    def _on_everyone(self, change: dict[str, Any]) -> None:
        self.data.everyone = bool(change["new"]) and self.data.user.sees_all
        self._chart_key = None
        self.refresh()

    def _on_window(self, change: dict[str, Any]) -> None:
        self.window = str(change["new"])
        self.refresh()

    def _on_kind(self, change: dict[str, Any]) -> None:
        labels = {
            "call": ("Callable", "package.module:function"),
            "command": ("Source", "print('hello')"),
            "argv": ("Command line", "df -h /var  (split like a shell; no shell runs it)"),
            "notebook": ("Notebook", "health_check.ipynb (a catalog name, or a path)"),
        }
        self.f_target.description, self.f_target.placeholder = labels[str(change["new"])]

    def _submit(self) -> None:
        def go() -> None:
            text = self.f_params.value.strip()
            try:
                params = json.loads(text) if text else {}
            except ValueError as exc:
                raise ValidationError(f"parameters are not valid JSON: {exc}") from None
            if not isinstance(params, dict):
                raise ValidationError("parameters must be a JSON object")
            timeout = float(self.f_timeout.value) or None
            job = self.data.submit(
                SubmitForm(
                    name=self.f_name.value,
                    kind=str(self.f_kind.value),
                    target=self.f_target.value,
                    parameters=params,
                    mode=str(self.f_mode.value),
                    queue=self.f_queue.value,
                    timeout=timeout,
                )
            )
            self.say(f'Queued <a data-oj="view:{job.id}">{escape(job.name)}</a> ({job.id}).')

        self.say("")
        self._guard(go)

    # -- messages -----------------------------------------------------------------------------
    def say(self, html: str, *, error: bool = False) -> None:
        tone = "oj-msg-error" if error else "oj-msg-info"
        self.message.value = f'<div class="oj-msg {tone}">{html}</div>' if html else ""

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except OpsJobsError as exc:
            if self.detail_id is not None and exc.__class__.__name__ == "JobNotFound":
                self.show_list()
            self.say(escape(str(exc)), error=True)
        except Exception as exc:  # shown as a message, never as a traceback in the page
            log.exception("dashboard error")
            self.say(
                f"Unexpected error: {escape(type(exc).__name__)}: {escape(str(exc))}", error=True
            )
