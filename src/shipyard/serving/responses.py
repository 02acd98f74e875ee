"""JSON responses of the serving app, and the one place its errors become HTTP answers.

Every error body is ``{"error_code": ..., "message": ...}`` (plus ``details`` when there are
any), the same envelope as the tracking server's. Open Inference Protocol routes add ``"error"``
(the message again), the one field that protocol's clients read.

Transport conditions (body size, media type, method, readiness) are :mod:`shipyard.errors`
classes like every other error, so they carry their status and round-trip from their codes.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from shipyard.errors import ShipyardError
from shipyard.serving.encoding import dumps

__all__ = ["error_response", "json_response"]

JSON = "application/json"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type=JSON, headers=headers)


def error_response(err: ShipyardError, *, oip: bool = False) -> Response:
    body = err.to_dict()
    if oip:
        body["error"] = err.message
    return json_response(body, err.http_status)
