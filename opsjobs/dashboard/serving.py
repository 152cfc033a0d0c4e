"""How ``opsjobs serve`` serves the dashboard: Voila settings, the template and kernel culling.

The template lives in ``voila-templates/opsjobs/``. A wheel installs it where Voila looks
(``share/jupyter/voila/templates/opsjobs``), but an editable install or a plain clone does not,
so the server does not depend on Voila's search: :func:`install_template` points Voila's render
handler at the folder :func:`template_dir` finds (the source tree first, then the installed
copy), followed by the ``lab`` template it extends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "CULL_IDLE_SECONDS",
    "TEMPLATE",
    "install_template",
    "template_dir",
    "template_paths",
    "voila_config",
]

#: The template's name (``VoilaConfiguration.template``).
TEMPLATE = "opsjobs"
#: A dashboard kernel whose page is gone (no connection, no ticks) is shut down after this long.
CULL_IDLE_SECONDS = 120


def template_dir() -> Path | None:
    """The opsjobs Voila template folder: the source tree's, else an installed copy."""
    source = Path(__file__).resolve().parents[2] / "voila-templates" / TEMPLATE
    if (source / "index.html.j2").is_file():
        return source
    from jupyter_core.paths import jupyter_path

    for root in jupyter_path("voila", "templates", TEMPLATE):
        if (Path(root) / "index.html.j2").is_file():
            return Path(root)
    return None


def template_paths() -> list[str]:
    """Jinja search paths for the opsjobs template: its folder, then Voila's ``lab``."""
    from voila.paths import collect_template_paths

    found = template_dir()
    lab = collect_template_paths(["voila", "nbconvert"], "lab")
    return ([str(found)] if found is not None else []) + lab


def voila_config(c: Any) -> None:
    """Voila and kernel-manager settings for the dashboard, into a traitlets ``Config``."""
    from .session import prelaunch_hook

    v = c.VoilaConfiguration
    v.template = TEMPLATE if template_dir() is not None else "lab"
    v.prelaunch_hook = prelaunch_hook
    v.show_tracebacks = False
    # Idle kernels without a connected page are culled; a visible page ticks every 5 s.
    k = c.MappingKernelManager
    k.cull_idle_timeout = CULL_IDLE_SECONDS
    k.cull_interval = 30
    k.cull_connected = False


def install_template(web_app: Any) -> bool:
    """Point Voila's render handler at :func:`template_paths`; False if Voila is not loaded."""
    try:
        from voila.tornado.handler import TornadoVoilaHandler
    except ImportError:
        return False
    if template_dir() is None:
        return False
    paths = template_paths()
    found = False
    for rule in _rules(web_app.default_router):
        target = rule.target
        if (
            isinstance(target, type)
            and issubclass(target, TornadoVoilaHandler)
            and rule.target_kwargs is not None
        ):
            rule.target_kwargs["template_paths"] = paths
            found = True
    return found


def _rules(router: Any) -> Any:
    for rule in getattr(router, "rules", []):
        yield rule
        if hasattr(rule.target, "rules"):
            yield from _rules(rule.target)
