"""The Results tab's list: stat cards, the filter row (name, status, submitted time, page
size), the table with a checkbox per row, the selection bar (delete the selected rows in
bulk) and the pager (previous / next and jump to any page).

Filters, sort, page and selection live here in the kernel, so the 5 s refresh redraws the
same view. The selection is a set of job ids, kept across pages until the rows are deleted or
it is cleared; ticking a box in the page sends every box of the page (``select:`` command,
see ``opsjobs.js``), so a tick is never lost to a later one.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timezone
from html import escape
from typing import Any

import ipywidgets as w

from opsjobs.dashboard import render
from opsjobs.dashboard.data import (
    PAGE_SIZES,
    TIME_RANGES,
    DashboardData,
    ResultsPage,
    ResultsState,
)
from opsjobs.errors import ValidationError

__all__ = ["STATUSES", "ResultsList", "parse_utc"]

STATUSES = ("", "succeeded", "failed", "running", "queued", "cancelled", "timed_out", "lost")


def parse_utc(text: str, what: str) -> float | None:
    """``2026-12-06 14:00`` (UTC; seconds optional, a date alone is its midnight) as epoch
    seconds; empty → None; else :class:`ValidationError` naming ``what``."""
    text = text.strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("T", " ").removesuffix("Z"))
    except ValueError:
        raise ValidationError(f"{what}: {text!r} is not a time like 2026-12-06 14:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def classed(widget: Any, *classes: str) -> Any:
    """``widget`` with the CSS ``classes`` added (what the page's styles and tests find)."""
    for cls in classes:
        widget.add_class(cls)
    return widget


class ResultsList:
    """The list half of the Results tab.

    Parameters
    ----------
    data
        The user's view of the store.
    changed
        Called after an input changed the view (the app refreshes).
    ask
        ``ask(question_html, action)``: the app's one confirmation bar.
    say
        The app's message line.
    guard
        Runs a callable, turning an error into a message (inputs' callbacks go through it).
    """

    def __init__(
        self,
        data: DashboardData,
        *,
        changed: Callable[[], None],
        ask: Callable[[str, Callable[[], None]], None],
        say: Callable[[str], None],
        guard: Callable[[Callable[[], None]], None],
    ) -> None:
        self.data = data
        self.guard = guard
        self.changed = changed
        self.ask = ask
        self.say = say
        self.state = ResultsState()
        self.selected: set[str] = set()
        self.page: ResultsPage | None = None
        self._drawing = False

        self.stats_html = classed(w.HTML(), "opsjobs-stats")
        self.name_filter = classed(
            w.Text(placeholder="Filter by job name", continuous_update=False), "opsjobs-filter-name"
        )
        self.status_filter = classed(
            w.Dropdown(options=[(s.replace("_", " ") or "All statuses", s) for s in STATUSES]),
            "opsjobs-filter-status",
        )
        self.time_filter = classed(
            w.Dropdown(options=[(label, key) for key, (label, _) in TIME_RANGES.items()]),
            "opsjobs-filter-time",
        )
        self.since = classed(
            w.Text(placeholder="from, UTC: 2026-12-06 14:00", continuous_update=False),
            "opsjobs-filter-since",
        )
        self.until = classed(
            w.Text(placeholder="to, UTC (empty: now)", continuous_update=False),
            "opsjobs-filter-until",
        )
        self.custom = classed(w.HBox([self.since, self.until]), "oj-custom")
        self.custom.layout.display = "none"
        self.page_size = classed(
            w.Dropdown(options=[(f"{n} per page", n) for n in PAGE_SIZES], value=25),
            "opsjobs-page-size",
        )
        for widget in (
            self.name_filter, self.status_filter, self.time_filter, self.since, self.until,
            self.page_size,
        ):  # fmt: skip
            widget.observe(lambda _: self.guard(self._on_filter), "value")
        filters = classed(
            w.HBox(
                [self.name_filter, self.status_filter, self.time_filter, self.custom,
                 self.page_size]
            ),
            "oj-bar", "oj-filters",
        )  # fmt: skip
        self.table = classed(w.HTML(), "opsjobs-results")

        self.selection = classed(w.HTML(), "opsjobs-selection")
        self.delete_selected = classed(
            w.Button(description="Delete selected", button_style="danger", disabled=True),
            "opsjobs-delete-selected",
        )
        self.clear = classed(w.Button(description="Clear", disabled=True), "opsjobs-clear")
        self.delete_selected.on_click(lambda _: self.guard(self.ask_bulk_delete))
        self.clear.on_click(lambda _: self.guard(self._clear))
        bulk = classed(w.HBox([self.selection, self.delete_selected, self.clear]), "oj-bulk")

        self.prev = classed(w.Button(description="\u2039 Previous"), "opsjobs-prev")
        self.next = classed(w.Button(description="Next \u203a"), "opsjobs-next")
        self.page_label = classed(w.HTML(), "opsjobs-page-label")
        self.jump = classed(
            w.BoundedIntText(value=1, min=1, max=1, description="Page", continuous_update=False),
            "opsjobs-jump",
        )
        self.prev.on_click(lambda _: self.go(self.state.page - 1))
        self.next.on_click(lambda _: self.go(self.state.page + 1))
        self.jump.observe(lambda change: self.guard(lambda: self._on_jump(change)), "value")
        pages = classed(w.HBox([self.prev, self.page_label, self.jump, self.next]), "oj-pages")
        pager = classed(w.HBox([bulk, pages]), "oj-pager")
        self.widget = w.VBox([self.stats_html, filters, self.table, pager])

    # -- drawing ------------------------------------------------------------------------------
    def draw(self) -> None:
        """Query the page the state asks for and redraw cards, table, selection and pager."""
        page = self.data.results(self.state)
        self.page, self.state = page, page.state
        self.stats_html.value = render.stat_cards(page.stats)
        self.table.value = render.results_table(page, self.selected, self.data.may_change)
        self._draw_selection()
        self.page_label.value = (
            f'<span class="oj-page">{page.first:,}&ndash;{page.last:,} of {page.total:,} · '
            f'<span class="opsjobs-pages">{page.pages:,}</span> pages</span>'
        )
        self._drawing = True  # a max below the shown number clamps it: that is no jump
        try:
            self.jump.max = max(page.pages, page.state.page + 1)
            self.jump.value = page.state.page + 1
            self.jump.max = page.pages
        finally:
            self._drawing = False
        self.prev.disabled = page.state.page == 0
        self.next.disabled = page.state.page + 1 >= page.pages

    def _draw_selection(self) -> None:
        n = len(self.selected)
        self.selection.value = (
            f'<span class="oj-dim opsjobs-selected-count" data-selected="{n}">{n:,} selected</span>'
        )
        self.delete_selected.disabled = self.clear.disabled = n == 0
        self.delete_selected.description = f"Delete {n:,} selected" if n else "Delete selected"

    # -- inputs -------------------------------------------------------------------------------
    def go(self, page: int) -> None:
        """Show page ``page`` (0-based; clamped to the pages there are)."""
        self.state = dataclasses.replace(self.state, page=max(0, page))
        self.changed()

    def _on_jump(self, change: dict[str, Any]) -> None:
        if not self._drawing and int(change["new"]) - 1 != self.state.page:
            self.go(int(change["new"]) - 1)

    def sort(self, column: str) -> None:
        self.state = self.state.sorted_by(column)
        self.changed()

    def _on_filter(self) -> None:
        time = str(self.time_filter.value)
        self.custom.layout.display = "" if time == "custom" else "none"
        since = until = None
        if time == "custom":
            since = parse_utc(self.since.value, "from")
            until = parse_utc(self.until.value, "to")
        self.state = ResultsState(
            name=self.name_filter.value,
            status=self.status_filter.value,
            sort=self.state.sort,
            page=0,
            page_size=int(self.page_size.value),
            time=time,
            since=since,
            until=until,
        )
        self.changed()

    def select(self, arg: str) -> None:
        """``{"on": [ids], "off": [ids]}``: the page's boxes as the browser shows them."""
        try:
            boxes = json.loads(arg)
            on, off = [str(i) for i in boxes.get("on", [])], [str(i) for i in boxes.get("off", [])]
        except (ValueError, AttributeError, TypeError):
            raise ValidationError("a selection the dashboard cannot read") from None
        rows = self.page.rows if self.page else []
        # only rows the user was shown, and may delete (no box is drawn on the others)
        shown = {job.id for job in rows if self.data.may_change(job)}
        self.selected |= {i for i in on if i in shown}
        self.selected -= set(off)
        if self.page is not None:
            self.table.value = render.results_table(self.page, self.selected, self.data.may_change)
        self._draw_selection()

    def _clear(self) -> None:
        self.selected.clear()
        self.changed()

    def ask_bulk_delete(self) -> None:
        n = len(self.selected)
        if not n:
            return
        self.ask(
            f"<b>Delete the {n:,} selected result{'s' if n != 1 else ''}?</b> "
            '<span class="oj-dim">This cannot be undone.</span>',
            self._bulk_delete,
        )

    def _bulk_delete(self) -> None:
        ids = sorted(self.selected)
        done, kept = self.data.delete_many(ids)
        self.selected.clear()
        text = f"Deleted {done:,} result{'s' if done != 1 else ''}."
        if kept:
            shown = "; ".join(escape(k) for k in kept[:3])
            more = f" and {len(kept) - 3} more" if len(kept) > 3 else ""
            text += f" Kept {len(kept):,}: {shown}{more}."
        self.say(text)
        self.changed()
