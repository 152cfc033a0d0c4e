"""The opsjobs jupyter_server extension: REST API, hosted worker and scheduler, API-key auth.

Importing this package imports no part of jupyter_server; the server loads the extension
through :func:`_jupyter_server_extension_points`.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from opsjobs.server.extension import OpsJobsExtension

    return [{"module": "opsjobs.server.extension", "app": OpsJobsExtension}]
