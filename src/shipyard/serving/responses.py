"""JSON responses of the serving app, and the one place its errors become HTTP answers.

Every error body is ``{"error_code": ..., "message": ...}`` (plus ``details`` when there are
any), the same envelope as the tracking server's. Open Inference Protocol routes add ``"error"``
(the message again), the one field that protocol's clients read.

The serving-only failures below are :class:`~shipyard.errors.ShipyardError` subclasses, so they
carry their status like every other error; they are transport conditions (body size, media type,
readiness) that the rest of Shipyard never raises.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.serving.encoding import dumps

__all__ = ["MethodNotAllowed", "NotReady", "RequestTooLarge", "UnsupportedMediaType", "error_response", "json_response"]

JSON = "application/json"


class RequestTooLarge(InvalidInput):
    """The request body is over the size limit (HTTP 413)."""

    code = "REQUEST_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A body in a content type the endpoint does not read (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class MethodNotAllowed(InvalidInput):
    """The route exists, but not for this HTTP method (HTTP 405)."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405


class NotReady(ShipyardError):
    """The models are still loading, or failed to load (HTTP 503)."""

    code = "NOT_READY"
    http_status = 503
    exit_code = 6


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type=JSON, headers=headers)


def error_response(err: ShipyardError, *, oip: bool = False) -> Response:
    body = err.to_dict()
    if oip:
        body["error"] = err.message
    return json_response(body, err.http_status)
