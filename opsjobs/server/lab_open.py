"""``GET /jobs/{id}/lab``: a notebook job's executed notebook opened in JupyterLab.

The executed notebook is copied into the Lab user's own folder under the server's root,
``opsjobs-lab/<user>/<job name>-<id8>.ipynb``, and the answer redirects to it in Lab. A copy
made before is kept as it is (the user may have changed it); the job's own file is never
touched. Only users who may use Lab (``explore`` or an admin) get it, for a job they may see.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import quote

from opsjobs.auth import User
from opsjobs.errors import NotFound, PermissionDenied
from opsjobs.server.handlers import ApiFailure, ApiHandler, keyed
from opsjobs.server.lab import LAB_SETTING
from opsjobs.server.openapi import API
from opsjobs.server.service import ApiService

__all__ = ["LAB_FOLDER", "copy_for_lab", "lab_open_routes"]

#: The folder, under the server's root, that holds each Lab user's copies.
LAB_FOLDER = "opsjobs-lab"


def _safe(text: str, limit: int = 60) -> str:
    """``text`` as one path segment: letters, digits, ``._@-``; nothing else."""
    cleaned = re.sub(r"[^A-Za-z0-9._@-]+", "-", text).strip(".-")
    return cleaned[:limit] or "job"


def copy_for_lab(api: ApiService, user: User, job_id: str, root: Path) -> str:
    """The path (relative to ``root``, ``/``-separated) of ``user``'s copy of the job's
    executed notebook, made now unless it exists."""
    if not user.may_use_lab:
        raise PermissionDenied("JupyterLab needs the explore role or an admin role")
    job = api.visible_job(user, job_id)
    source = api.client.settings.outputs_dir / f"{job.id}.ipynb"
    if job.kind != "notebook" or not source.is_file():
        raise NotFound(f"job {job.id} has no executed notebook")
    folder = root / LAB_FOLDER / _safe(user.email)
    target = folder / f"{_safe(job.name)}-{job.id[:8]}.ipynb"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        shutil.copyfile(source, partial)
        partial.replace(target)  # never a half-written notebook under the name
    return target.relative_to(root).as_posix()


@keyed
class LabOpenHandler(ApiHandler):
    async def get(self, job_id: str) -> None:
        if not self.settings.get(LAB_SETTING):
            raise ApiFailure(404, "JupyterLab is not served here (opsjobs serve --no-lab?)")
        root = Path(self.settings.get("server_root_dir", ".")).resolve()
        path = await self.call(copy_for_lab, self.service, self.user, job_id, root)
        self.redirect(f"{self.base_url}lab/tree/{quote(path, safe='/@')}")


def lab_open_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler."""
    return {f"{API}/jobs/{{job_id}}/lab": LabOpenHandler}
