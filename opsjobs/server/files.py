"""Downloads of a job's files, owner-scoped like the job itself: ``GET /jobs/{id}/files`` lists
them, ``GET /jobs/{id}/files/{name}`` sends one with ``Content-Disposition: attachment``; and
``GET /jobs/{id}/output?offset=N``, the job's log from byte ``N`` on while it runs (live output).

A job's files are its executed notebook (``notebook.ipynb``, provenance in its metadata) and its
HTML (``notebook.html``), its full log (``output.log``) and every file it left under its results
folder (``results/<path>``, e.g. the analyzer's CSVs). Names are looked up in that list, never
joined onto a path, so no name reaches outside the job's own files.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tornado import web

from ..auth import User
from ..config import Settings
from ..errors import NotFound
from .handlers import ApiHandler, keyed
from .openapi import API
from .service import ApiService

__all__ = ["JobFile", "file_routes", "list_job_files"]

_CHUNK = 1 << 16
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

    def to_dict(self, job_id: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "media_type": self.media_type,
            "url": f"{API}/jobs/{job_id}/files/{quote(self.name, safe='')}",
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


class FileService:
    """The synchronous core of the download routes."""

    def __init__(self, api: ApiService) -> None:
        self.api = api

    def files(self, user: User, job_id: str) -> tuple[str, list[JobFile]]:
        job = self.api.visible_job(user, job_id)
        return job.id, list_job_files(self.api.client.settings, job.id)

    def output(self, user: User, job_id: str, offset: int) -> dict[str, Any]:
        """The job's output from byte ``offset`` of its log, and where to go on from."""
        job = self.api.visible_job(user, job_id)
        path = self.api.client.settings.logs_dir / f"{job.id}.log"
        text, after, size = read_log(path, offset)
        if size == 0 and job.finished and offset == 0 and job.output:
            text, after = job.output, len(job.output.encode())  # no log file: the row's copy
        return {
            "job_id": job.id,
            "state": job.state.value,
            "finished": job.finished,
            "text": text,
            "offset": after,
            "size": size,
        }

    def one(self, user: User, job_id: str, name: str) -> tuple[JobFile, str]:
        job = self.api.visible_job(user, job_id)
        for f in list_job_files(self.api.client.settings, job.id):
            if f.name == name:
                return f, download_name(job.name, job.id, name)
        raise NotFound(f"job {job.id} has no file {name[:80]!r}")


@keyed
class FilesHandler(ApiHandler):
    async def get(self, job_id: str) -> None:
        svc = FileService(self.service)
        jid, found = await self.call(svc.files, self.user, job_id, read=True)
        self.reply({"job_id": jid, "files": [f.to_dict(jid) for f in found]})


@keyed
class OutputHandler(ApiHandler):
    async def get(self, job_id: str) -> None:
        offset = self.int_arg("offset", 0, 0, 1 << 50)
        data = await self.call(
            FileService(self.service).output, self.user, job_id, offset, read=True
        )
        self.reply(data)


@keyed
class FileHandler(ApiHandler):
    async def get(self, job_id: str, name: str) -> None:
        svc = FileService(self.service)
        found, filename = await self.call(svc.one, self.user, job_id, name, read=True)
        try:
            fh = found.path.open("rb")
        except OSError:
            raise web.HTTPError(404, "no file %s", name[:80]) from None
        with fh:
            self.set_header("Content-Type", found.media_type)
            self.set_header(
                "Content-Disposition",
                f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}",
            )
            self.set_header("X-Content-Type-Options", "nosniff")
            self.set_header("Cache-Control", "private, no-store")
            while chunk := fh.read(_CHUNK):
                self.write(chunk)
                await self.flush()
        self.finish()


def file_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the download routes."""
    return {
        f"{API}/jobs/{{job_id}}/files": FilesHandler,
        f"{API}/jobs/{{job_id}}/output": OutputHandler,
        f"{API}/jobs/{{job_id}}/files/{{name}}": FileHandler,
    }
