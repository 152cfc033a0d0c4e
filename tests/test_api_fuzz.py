"""Fuzz the REST API from its own OpenAPI document (schemathesis, bounded): valid and invalid
requests to every operation never get a 5xx, and every answer matches the documented status
codes, content type and response schema. The server hosts no worker or scheduler here, so
generated jobs are only queued, never run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from server_harness import ServerThread

from opsjobs.server.openapi import document

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

EXAMPLES = 25
SCHEMA = schemathesis.openapi.from_dict(document())
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    s = ServerThread(tmp_path_factory.mktemp("fuzz"), worker=False, scheduler=False).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def headers(server: ServerThread) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.key('fuzz@example.org', 'debug,system_admin')}"}


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_fuzz(
    server: ServerThread, headers: dict[str, str], operation: object, mode: GenerationMode
) -> None:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: schemathesis.Case) -> None:
        # The key is always sent (below), overriding generated headers; so a case is invalid
        # for sure only when a part other than its headers was generated invalid.
        components = case.meta.components if case.meta else {}
        invalid = {
            where for where, info in components.items() if info.mode is GenerationMode.NEGATIVE
        }
        strict = bool(invalid - {ParameterLocation.HEADER})
        extra = [negative_data_rejection] if strict else []
        send = headers
        if ParameterLocation.HEADER in invalid and "Authorization" not in (case.headers or {}):
            # The negative case is the missing key itself: sending ours would undo it (a
            # query marked negative could then be valid and rightly accepted).
            send = {}
        run_checks = checks + extra
        if ParameterLocation.HEADER in invalid:
            # A malformed header (a bad Host, say) is answered by the HTTP layer with a 400
            # before any API code runs: the API's documented statuses do not apply; 5xx still do.
            run_checks = [c for c in run_checks if c is not status_code_conformance]
        case.call_and_validate(base_url=server.base, headers=send, checks=run_checks, timeout=30)

    run()
