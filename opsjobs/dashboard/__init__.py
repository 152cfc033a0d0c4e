"""The Voila dashboard: ``notebooks/dashboard.ipynb`` calls :func:`launch` and shows its widget.

Modules: :mod:`~opsjobs.dashboard.session` (who the kernel works for), :mod:`~.data` (what the
user may see and change, no widgets), :mod:`~.jobmem` (what a job's memory chart shows),
:mod:`~.render` (HTML of tables and the detail view), :mod:`~.charts` (matplotlib PNGs),
:mod:`~.results_tab` (the Results list: filters, selection, pager), :mod:`~.app` (the
ipywidgets app). Importing this package imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["launch"]


def launch(session: Mapping[str, Any] | None = None) -> Any:
    """The dashboard widget for the session Voila's prelaunch hook gave the kernel (with
    ``job``: opened on that job's detail view, as a notification's link asks).

    Without a valid session (the notebook opened outside ``opsjobs serve``, or an expired
    token) it returns a message widget instead; nothing is shown that needs a user.
    """
    from html import escape

    import ipywidgets as w

    from opsjobs.dashboard.session import open_session
    from opsjobs.errors import OpsJobsError

    try:
        client, user = open_session(session)
    except OpsJobsError as exc:
        box = w.HTML(
            f'<div class="oj-msg oj-msg-error"><b>Not signed in.</b> {escape(str(exc))}</div>'
        )
        box.add_class("opsjobs-signed-out")
        return box
    from opsjobs.dashboard.app import DashboardApp
    from opsjobs.dashboard.data import DashboardData
    from opsjobs.dashboard.session import ServerSide

    policy = ServerSide.read(str(session["config"])).policy()  # type: ignore[index]
    app = DashboardApp(DashboardData(client, user, policy=policy))
    app.refresh()
    job = session.get("job") if session else None
    if job:  # opened from a notification's link: that job's detail view
        app.command(f"view:{job}|link")
    return app.widget
