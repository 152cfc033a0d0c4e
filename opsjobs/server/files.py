"""Downloads of a job's files, owner-scoped like the job itself: ``GET /jobs/{id}/files`` lists
them, ``GET /jobs/{id}/files/{name}`` sends one with ``Content-Disposition: attachment``; and
``GET /jobs/{id}/output?offset=N``, the job's log from byte ``N`` on while it runs (live output).

A job's files are its executed notebook (``notebook.ipynb``, provenance in its metadata) and its
HTML (``notebook.html``), its full log (``output.log``) and every file it left under its results
folder (``results/<path>``, e.g. the analyzer's CSVs). Names are looked up in that list, never
joined onto a path, so no name reaches outside the job's own files.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tornado import web

from opsjobs.auth import User
from opsjobs.errors import NotFound
from opsjobs.outputs import JobFile, download_name, list_job_files, read_log
from opsjobs.server.handlers import ApiHandler, keyed
from opsjobs.server.openapi import API
from opsjobs.server.service import ApiService

__all__ = ["FileService", "file_routes"]

_CHUNK = 1 << 16


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
