"""``Settings.scope_owner`` (``OPSJOBS_SCOPE_OWNER``, set in a JupyterLab kernel of a user who is
not an admin): the client reads and changes that owner's jobs only, as the REST API does."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from harness import client_for, settings_for

from opsjobs.client import Client
from opsjobs.errors import JobNotFound, PermissionDenied


def test_a_scoped_client_sees_and_touches_only_its_owners_jobs(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with client_for(settings) as admin:
        mine = admin.submit("mine", command="print(1)", owner="ada@example.org", queue="none")
        theirs = admin.submit("theirs", command="print(1)", owner="bob@example.org", queue="none")
        scoped = Client(admin.store, dataclasses.replace(settings, scope_owner="ada@example.org"))
        assert [j.id for j in scoped.results()] == [mine.id]
        assert scoped.count() == 1 and scoped.stats().total == 1
        assert list(scoped.runs_frame()["id"]) == [mine.id]
        assert list(scoped.attempts_frame()["job_id"]) == []
        assert scoped.get(mine.id).id == mine.id
        for act in (scoped.get, scoped.cancel, scoped.delete):
            with pytest.raises(JobNotFound):
                act(theirs.id)
        with pytest.raises(PermissionDenied):
            scoped.results(owner="bob@example.org")
        assert admin.get(theirs.id).state.value == "queued"  # untouched
        assert len(admin.results()) == 2  # the unscoped client sees both
