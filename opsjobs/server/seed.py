"""The seed's routes under ``/apps/WebHostTaskManagement/api/v1``, answering with its JSON field
names so its scripts keep working.

``command`` is Python source here; ``executionMode`` takes the seed's names (MainLoop, Runspace,
BackgroundJob — or ours) and is answered with the seed's name. Results are the caller's finished
jobs, newest first (an admin's too: the seed shows a user their own results).
"""

from __future__ import annotations

import time
from typing import Any

from opsjobs.auth import Auth, User
from opsjobs.model import TERMINAL_STATES, Job, JobSpec, JobState, Mode, WorkerInfo, iso
from opsjobs.server.handlers import ApiFailure, ApiHandler, keyed
from opsjobs.server.openapi import SEED
from opsjobs.server.schedules import ScheduleService
from opsjobs.server.service import ApiService

__all__ = ["seed_command", "seed_command_of", "seed_result", "seed_routes", "seed_tasks"]


def seed_command(job: Job) -> str:
    """The seed's ``Command`` text of any job."""
    return seed_command_of(job.spec)


def seed_command_of(spec: JobSpec) -> str:
    payload = spec.payload
    if spec.kind == "command":
        return str(payload.get("source", ""))
    if spec.kind == "call":
        return f"{payload.get('target', '')}(**{payload.get('kwargs', {})!r})"
    if spec.kind == "argv":
        return " ".join(str(a) for a in payload.get("argv", []))
    return f"{spec.kind}: {dict(payload)!r}"


def seed_result(job: Job) -> dict[str, Any]:
    """One entry of ``jobs/results`` with the seed's field names."""
    return {
        "JobID": job.id,
        "JobName": job.name,
        "Command": seed_command(job),
        "Description": job.spec.description,
        "ExecutionMode": job.mode.seed_name,
        "DateStarted": iso(job.started_at),
        "DateCompleted": iso(job.finished_at),
        "Runtime": round(job.runtime, 3) if job.runtime is not None else None,
        "Output": job.output,
        "Success": job.state is JobState.SUCCEEDED,
    }


def _active(job: Job) -> dict[str, Any]:
    return {
        "JobID": job.id,
        "JobName": job.name,
        "Command": seed_command(job),
        "Description": job.spec.description,
        "ExecutionMode": job.mode.seed_name,
        "Status": job.state.value,
        "DateSubmitted": iso(job.submitted_at),
        "DateStarted": iso(job.started_at),
        "Owner": job.owner,
    }


def _runspace(w: WorkerInfo, now: float) -> dict[str, Any]:
    state = "stopped" if w.stopped_at is not None else ("alive" if w.alive(now) else "dead")
    return {
        "RunspaceID": w.id,
        "Host": w.host,
        "ProcessID": w.pid,
        "Queues": list(w.queues),
        "Threads": w.threads,
        "Busy": w.busy,
        "State": state,
        "Started": iso(w.started_at),
        "LastHeartbeat": iso(w.heartbeat_at),
    }


@keyed
class SubmitHandler(ApiHandler):
    async def post(self) -> None:
        body = self.body("SeedSubmitRequest")
        native = {
            "name": body["jobName"],
            "command": body["command"],
            "description": body.get("description", ""),
            "mode": body.get("executionMode", Mode.THREAD.seed_name),
        }
        job = await self.call(self.service.submit, self.user, native)
        self.reply(
            {
                "jobId": job.id,
                "message": "Job submitted successfully",
                "executionMode": job.mode.seed_name,
            }
        )


@keyed
class ResultsHandler(ApiHandler):
    async def get(self) -> None:
        limit = self.int_arg("maxResults", 100, 1, 1000)
        states = [s.value for s in TERMINAL_STATES]
        client = self.service.client
        jobs = await self.call(
            client.results,
            limit=limit,
            states=states,
            owner=Auth.owner_scope(self.user),  # theirs and the server's own (issue 18)
            sort="-submitted_at",
            read=True,
        )
        self.reply({"count": len(jobs), "results": [seed_result(j) for j in jobs]})

    async def delete(self) -> None:
        job_id = self.arg("jobId")
        if not job_id:
            raise ApiFailure(400, "jobId is required")
        await self.call(self.service.delete, self.user, job_id)
        self.reply({"message": "Job result deleted successfully"})


@keyed
class ActiveJobsHandler(ApiHandler):
    async def get(self) -> None:
        jobs = await self.call(self.service.active_jobs, self.user, everyone=self.user.sees_all)
        self.reply({"count": len(jobs), "jobs": [_active(j) for j in jobs]})


@keyed
class TasksHandler(ApiHandler):
    async def get(self) -> None:
        tasks = await self.call(seed_tasks, self.service, self.user)
        self.reply({"count": len(tasks), "tasks": tasks})


@keyed
class RunspacesHandler(ApiHandler):
    async def get(self) -> None:
        workers = await self.call(self.service.client.store.workers)
        now = time.time()
        self.reply({"count": len(workers), "runspaces": [_runspace(w, now) for w in workers]})


def seed_tasks(service: ApiService, user: User) -> list[dict[str, Any]]:
    """The seed's ``tasks`` listing: the caller's schedules (everyone's for admins)."""
    out = []
    for s in ScheduleService(service).list(user, everyone=user.sees_all):
        out.append(
            {
                "TaskID": s.id,
                "TaskName": s.name,
                "Command": seed_command_of(s.spec),
                "Description": s.spec.description,
                "ExecutionMode": s.spec.mode.seed_name,
                "Schedule": s.trigger_text,
                "Enabled": s.enabled,
                "NextRun": s.to_dict()["next_fire_at"],
                "LastRun": s.to_dict()["last_fire_at"],
                "LastJobID": s.last_job_id,
                "LastStatus": s.last_job_state.value if s.last_job_state else None,
            }
        )
    return out


def seed_routes() -> dict[str, type[ApiHandler]]:
    """OpenAPI path → handler of the seed's routes."""
    return {
        f"{SEED}/jobs/submit": SubmitHandler,
        f"{SEED}/jobs/results": ResultsHandler,
        f"{SEED}/jobs": ActiveJobsHandler,
        f"{SEED}/tasks": TasksHandler,
        f"{SEED}/runspaces": RunspacesHandler,
    }
