"""A job's files in the data folder, as users may download them: the executed notebook
(``notebook.ipynb``, provenance in its metadata) and its HTML (``notebook.html``), the full log
(``output.log``) and every file the job left under its results folder (``results/<path>``, e.g.
the analyzer's CSVs); and the log read from a byte offset on, for live output.

Names are looked up in the list :func:`list_job_files` makes, never joined onto a path, so no
name reaches outside the job's own files. The REST routes (:mod:`opsjobs.server.files`) and the
dashboard's links serve these.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from opsjobs.config import Settings

__all__ = ["API_PATH", "MAX_OUTPUT_CHUNK", "JobFile", "download_name", "list_job_files", "read_log"]

#: Where the REST API lives (the download routes are under it).
API_PATH = "/opsjobs/api/v1"
_MAX_RESULT_FILES = 1000
_TYPES = {
    ".ipynb": "application/x-ipynb+json",
    ".html": "text/html; charset=utf-8",
    ".log": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class JobFile:
    """One downloadable file of a job."""

    name: str
    path: Path
    size: int

    @property
    def media_type(self) -> str:
        return _TYPES.get(self.path.suffix.lower(), "application/octet-stream")

    def url(self, job_id: str) -> str:
        """Its download route (``GET /opsjobs/api/v1/jobs/{id}/files/{name}``)."""
        return f"{API_PATH}/jobs/{job_id}/files/{quote(self.name, safe='')}"

    def to_dict(self, job_id: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
            "url": self.url(job_id),
        }


def _file(name: str, path: Path) -> JobFile | None:
    try:
        if path.is_symlink() or not path.is_file():
            return None
        return JobFile(name, path, path.stat().st_size)
    except OSError:
        return None


def list_job_files(settings: Settings, job_id: str) -> list[JobFile]:
    """The files of job ``job_id`` (a validated UUID) that exist now."""
    found = [
        _file("notebook.ipynb", settings.outputs_dir / f"{job_id}.ipynb"),
        _file("notebook.html", settings.outputs_dir / f"{job_id}.html"),
        _file("output.log", settings.logs_dir / f"{job_id}.log"),
    ]
    results = settings.results_dir / job_id
    if results.is_dir() and not results.is_symlink():
        count = 0
        for root, dirs, names in os.walk(results):  # never follows symlinked folders
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                found.append(_file(f"results/{path.relative_to(results).as_posix()}", path))
                count += 1
                if count >= _MAX_RESULT_FILES:
                    break
    return [f for f in found if f is not None]


def download_name(job_name: str, job_id: str, name: str) -> str:
    """The file name offered to the browser: ``<job name>-<id prefix>-<file>``."""
    stem = _UNSAFE.sub("_", job_name).strip("._")[:60] or "job"
    return f"{stem}-{job_id[:8]}-{_UNSAFE.sub('_', name.replace('results/', ''))}"


#: Most bytes of log one ``/output`` answer carries.
MAX_OUTPUT_CHUNK = 256 << 10


def read_log(path: Path, offset: int, limit: int = MAX_OUTPUT_CHUNK) -> tuple[str, int, int]:
    """Text of the log at ``path`` from byte ``offset`` (at most ``limit`` bytes, ending on a
    whole UTF-8 character), the offset to ask for next and the log's size now."""
    try:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            offset = min(offset, size)
            fh.seek(offset)
            data = fh.read(min(limit, size - offset))
    except FileNotFoundError:
        return "", 0, 0
    # a character cut in half at the end waits for the next read
    for back in range(min(4, len(data))):
        try:
            return data[: len(data) - back].decode("utf-8"), offset + len(data) - back, size
        except UnicodeDecodeError as exc:
            if exc.reason != "unexpected end of data":
                break
    return data.decode("utf-8", errors="replace"), offset + len(data), size
