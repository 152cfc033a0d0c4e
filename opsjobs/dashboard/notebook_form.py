"""The "Run notebook" panel: pick a notebook of the catalog (titles in a dropdown), fill one typed
widget per parameter of its ``parameters`` cell, run it.

Widgets by type: ``int`` an IntText, ``float`` a FloatText, ``bool`` a Checkbox, ``str`` a Text,
``list`` and ``dict`` a JSON Textarea, anything else (a ``None`` default, an expression) a Text
read as papermill's ``-p`` reads a value. Each is pre-filled with the default and shows the
parameter's help comment. "Run again" on a finished job opens this panel pre-filled with that
job's notebook and parameters; the run is then linked to it (``rerun_of``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from html import escape
from typing import Any

import ipywidgets as w

from opsjobs.errors import ValidationError
from opsjobs.model import Job
from opsjobs.notebooks import NotebookInfo, Parameter
from opsjobs.runners.notebook import parse_parameter_value
from opsjobs.schedules import Schedule

__all__ = ["NotebookForm"]

_WIDE = "min(100%, 640px)"


def _classed(widget: Any, *classes: str) -> Any:
    for cls in classes:
        widget.add_class(cls)
    return widget


def _widget(p: Parameter) -> Any:
    """The input for one parameter, pre-filled with its default."""
    style = {"description_width": "180px"}
    layout = w.Layout(width=_WIDE)
    d = p.default
    if p.type == "int":
        widget = w.IntText(value=int(d or 0), description=p.name, style=style, layout=layout)
    elif p.type == "float":
        widget = w.FloatText(value=float(d or 0.0), description=p.name, style=style, layout=layout)
    elif p.type == "bool":
        widget = w.Checkbox(value=bool(d), description=p.name, indent=True, style=style)
    elif p.type == "str":
        widget = w.Text(value=str(d or ""), description=p.name, style=style, layout=layout)
    elif p.type in ("list", "dict"):
        text = json.dumps(d if d is not None else ([] if p.type == "list" else {}))
        widget = w.Textarea(value=text, description=p.name, style=style, layout=layout, rows=2)
    else:
        widget = w.Text(value=p.default_text, description=p.name, style=style, layout=layout)
    return _classed(widget, "opsjobs-param", f"opsjobs-param-{p.name}", f"oj-type-{p.type}")


def _value(p: Parameter, widget: Any) -> Any:
    """What the widget holds, as the parameter's value."""
    value = widget.value
    if p.type in ("list", "dict"):
        try:
            value = json.loads(str(value) or "null")
        except ValueError as exc:
            raise ValidationError(f"{p.name} is not valid JSON: {exc}") from None
        kind = list if p.type == "list" else dict
        if not isinstance(value, kind):
            raise ValidationError(f"{p.name} must be a JSON {'list' if kind is list else 'object'}")
        return value
    if p.type == "any":
        return parse_parameter_value(str(value).strip())
    return value


def _set(p: Parameter, widget: Any, value: Any) -> None:
    if p.type in ("list", "dict"):
        widget.value = json.dumps(value)
    elif p.type == "any":
        widget.value = "None" if value is None else str(value)
    elif value is not None:
        widget.value = value


class NotebookForm:
    """The panel's widgets; :attr:`widget` is what the tab shows.

    Parameters
    ----------
    load
        Reads the catalog (called when the panel is shown and on "Reload").
    run
        Queues a run: ``run(notebook, name=, parameters=, mode=, queue=, timeout=, rerun_of=)``
        and returns the job.
    on_queued
        Called with the queued job (the app opens its detail view).
    guard
        Runs a button's action, turning errors into the app's message line.
    save, on_saved
        Store a schedule's new parameters (``save(schedule_id, parameters)``), then tell the
        app; the form edits a notebook schedule after :meth:`prefill_schedule`.
    """

    def __init__(
        self,
        load: Callable[[], list[NotebookInfo]],
        run: Callable[..., Job],
        on_queued: Callable[[Job], None],
        guard: Callable[[Callable[[], None]], None],
        save: Callable[[str, dict[str, Any]], Schedule] | None = None,
        on_saved: Callable[[Schedule], None] | None = None,
    ) -> None:
        self._save = save
        self._on_saved = on_saved
        #: The schedule whose parameters the form edits (instead of running a job).
        self.schedule_id: str | None = None
        self._load = load
        self._guard = guard
        self._run = run
        self._on_queued = on_queued
        self.infos: dict[str, NotebookInfo] = {}
        self.inputs: dict[str, Any] = {}
        self.rerun_of: str | None = None
        self.picker = _classed(
            w.Dropdown(options=[], description="Notebook", layout=w.Layout(width=_WIDE)),
            "opsjobs-nb-picker",
        )
        self.picker.observe(lambda _: self._build(), "value")
        self.title = _classed(w.HTML(""), "opsjobs-nb-title")
        self.params = _classed(w.VBox([]), "opsjobs-nb-params")
        self.name = _classed(
            w.Text(description="Job name", layout=w.Layout(width=_WIDE)), "opsjobs-nb-name"
        )
        self.mode = w.Dropdown(
            options=[("BackgroundJob (process)", "process"), ("Runspace (thread)", "thread")],
            description="Mode",
        )
        self.queue = w.Text(value="default", description="Queue")
        self.timeout = w.BoundedFloatText(value=0, min=0, max=7 * 86400, description="Timeout s")
        self.note = _classed(w.HTML(""), "opsjobs-nb-note")
        go = _classed(
            w.Button(description="Run notebook", button_style="primary"), "opsjobs-nb-run"
        )
        self.go = go
        go.on_click(lambda _: self._guard(self._submit))
        reload = _classed(w.Button(description="Reload catalog"), "opsjobs-nb-reload")
        reload.on_click(lambda _: self._guard(self.reload))
        row = _classed(w.HBox([self.mode, self.queue, self.timeout]), "oj-bar")
        self.run_options = (self.name, row)  # hidden while a schedule's parameters are edited
        self.widget = _classed(
            w.VBox(
                [
                    _classed(w.HBox([self.picker, reload]), "oj-bar"),
                    self.title,
                    self.params,
                    self.name,
                    row,
                    self.note,
                    go,
                ]
            ),
            "oj-form",
            "opsjobs-run-notebook",
        )

    def reload(self) -> None:
        """Read the catalog again, keeping the chosen notebook when it is still there."""
        infos = self._load()
        self.infos = {i.path: i for i in infos}
        current = self.picker.value
        options = [(f"{i.title} — {i.path}", i.path) for i in infos]
        if [o[1] for o in options] != [o[1] for o in self.picker.options]:
            self.picker.options = options
        if current in self.infos:
            self.picker.value = current
        elif infos:
            self.picker.value = infos[0].path
        self._build()

    def _build(self) -> None:
        info = self.infos.get(str(self.picker.value or ""))
        self.inputs = {}
        if info is None:
            self.title.value = '<p class="oj-dim">The catalog has no notebooks.</p>'
            self.params.children = ()
            return
        rows = []
        for p in info.parameters:
            widget = _widget(p)
            self.inputs[p.name] = widget
            help_text = escape(p.help) if p.help else ""
            label = f'<span class="oj-dim">{escape(p.type)}</span> {help_text}'
            rows.append(
                _classed(w.HBox([widget, _classed(w.HTML(label), "oj-param-help")]), "oj-param")
            )
        self.params.children = tuple(rows)
        what = (
            "takes no parameters (no cell tagged <code>parameters</code>)"
            if not info.has_parameters_cell
            else f"{len(info.parameters)} parameter(s), pre-filled with their defaults"
        )
        self.title.value = f'<p><b>{escape(info.title)}</b> <span class="oj-dim">{what}</span></p>'
        if self.rerun_of is None:
            self.name.value = info.path.rsplit(".", 1)[0]

    def _fill(self, notebook: str, given: Mapping[str, Any]) -> NotebookInfo:
        self.reload()
        if notebook not in self.infos:
            raise ValidationError(f"notebook {notebook} is no longer in the catalog")
        self.picker.value = notebook
        self._build()
        info = self.infos[notebook]
        for p in info.parameters:
            if p.name in given:
                _set(p, self.inputs[p.name], given[p.name])
        return info

    def prefill_schedule(self, schedule: Schedule, notebook: str) -> None:
        """Edit the parameters of a notebook schedule: the form shows them; Save stores them."""
        self.rerun_of = None
        self.schedule_id = schedule.id
        info = self._fill(notebook, schedule.spec.payload.get("parameters") or {})
        self.name.value = schedule.name
        self._show_run_options(False)
        self.go.description = "Save to schedule"
        self.title.value = (
            f"<p><b>{escape(info.title)}</b> <span class='oj-dim'>the parameters of schedule "
            f"{escape(schedule.name)}</span></p>"
        )
        self.note.value = (
            f'<p class="oj-dim opsjobs-nb-schedule">Editing schedule {escape(schedule.name)}: '
            "Save stores these parameters for its next runs.</p>"
        )

    def prefill(self, job: Job, notebook: str) -> None:
        """Open the form on ``notebook`` with ``job``'s parameters, name, mode and queue; the
        next run is linked to ``job``."""
        self._edit_done()
        self.rerun_of = job.id
        info = self._fill(notebook, job.spec.payload.get("parameters") or {})
        self.name.value = job.name
        self.mode.value = job.mode.value if job.mode.value in ("thread", "process") else "process"
        self.queue.value = job.queue
        self.timeout.value = job.spec.timeout or 0
        self.title.value = (
            f"<p><b>{escape(info.title)}</b> <span class='oj-dim'>pre-filled from the run "
            f"{job.id[:8]} ({escape(job.state.value)})</span></p>"
        )
        self.note.value = (
            f'<p class="oj-dim opsjobs-nb-rerun">Running again <span class="oj-mono">'
            f"{job.id[:8]}</span> — change what you like.</p>"
        )

    def values(self) -> dict[str, Any]:
        info = self.infos.get(str(self.picker.value or ""))
        if info is None:
            return {}
        return {p.name: _value(p, self.inputs[p.name]) for p in info.parameters}

    def _show_run_options(self, show: bool) -> None:
        for widget in self.run_options:
            widget.layout.display = "" if show else "none"

    def _edit_done(self) -> None:
        """Back from editing a schedule to running notebooks."""
        self.schedule_id = None
        self.go.description = "Run notebook"
        self.note.value = ""
        self._show_run_options(True)

    def _submit(self) -> None:
        if self.schedule_id is not None and self._save is not None:
            schedule = self._save(self.schedule_id, self.values())
            self._edit_done()
            if self._on_saved is not None:
                self._on_saved(schedule)
            return
        self.submit()

    def submit(self) -> Job:
        notebook = str(self.picker.value or "")
        if not notebook:
            raise ValidationError("pick a notebook")
        job = self._run(
            notebook,
            name=self.name.value.strip(),
            parameters=self.values(),
            mode=str(self.mode.value),
            queue=self.queue.value,
            timeout=float(self.timeout.value) or None,
            rerun_of=self.rerun_of,
        )
        self.rerun_of = None
        self.note.value = ""
        self._on_queued(job)
        return job
