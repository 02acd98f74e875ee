"""The one place errors become HTTP responses.

Every error body has the same shape, ``{"error_code": ..., "message": ...}`` (plus
``details`` where there are any), whatever raised it: the domain (``ShipyardError`` carries
its status), request validation (400 naming the field), routing (404/405), the security
middleware, or a bug (500, logged, with no traceback in the body).

FastAPI turns *any* failure while reading a JSON body into a bare 400 "error parsing the body";
:func:`_http_error` looks at the cause so the answer names the real problem: a body over the
size limit (the guard's :class:`RequestTooLarge`, raised while the body streams in) is a 413,
and a body nested deeper than the parser's recursion limit a 400 that says so.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shipyard.errors import InvalidInput, NotFound, RequestTooLarge, ShipyardError
from shipyard.server.mlflow_compat.errors import is_mlflow_path, mlflow_error_body, unsupported_route_message
from shipyard.wire import dumps

log = logging.getLogger("shipyard.server")

_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_TOO_LARGE",
               415: "UNSUPPORTED_MEDIA_TYPE", 400: "INVALID_INPUT", 403: "PERMISSION_DENIED",
               401: "UNAUTHENTICATED"}
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "cache-control": "no-store"}
CHALLENGE = 'Basic realm="shipyard", charset="UTF-8"'


def error_response(status: int, code: str, message: str, details: dict[str, Any] | None = None, *,
                   path: str = "") -> Response:
    """The error body; on the MLflow-compatible routes (by ``path``) in MLflow's codes."""
    body: dict[str, Any] = {"error_code": code, "message": message}
    if is_mlflow_path(path):
        body["error_code"], status, body["message"] = mlflow_error_body(code, status, message, details)
    elif details:
        body["details"] = details
    headers = SECURITY_HEADERS
    if status == 401:
        # The challenge every HTTP client understands; MLflow's and Shipyard's clients send
        # their credentials up front, so it is only the answer to a request that had none.
        headers = {**headers, "www-authenticate": CHALLENGE}
    elif status == 429 and details and details.get("retry_after") is not None:
        headers = {**headers, "retry-after": str(max(1, math.ceil(float(details["retry_after"]))))}
    return Response(dumps(body), status_code=status, media_type="application/json", headers=headers)


def shipyard_error_response(err: ShipyardError, path: str = "") -> Response:
    return error_response(err.http_status, err.code, err.message, err.details, path=path)


def too_large_response(limit: int, path: str = "") -> Response:
    return error_response(413, "REQUEST_TOO_LARGE",
                          f"request body over the limit of {limit} bytes; send smaller batches "
                          "(or raise SHIPYARD_SERVER_MAX_BODY_BYTES)", path=path)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    path = request.url.path
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        message = f"malformed JSON body: {first.get('ctx', {}).get('error', first.get('msg'))}"
        return error_response(400, InvalidInput.code, message, path=path)
    problems = [f"{_field(tuple(e['loc']))}: {e['msg']}" for e in exc.errors()[:5]]
    return error_response(400, InvalidInput.code, "invalid request: " + "; ".join(problems),
                          {"fields": [_field(tuple(e["loc"])) for e in exc.errors()[:20]]}, path=path)


def body_error(cause: BaseException | None, path: str = "") -> Response | None:
    """The real reason behind a failure to read a JSON body, when we know it."""
    if isinstance(cause, RequestTooLarge):
        return too_large_response(cause.details["limit"], path)
    if isinstance(cause, RecursionError):
        # json.loads recurses once per level, so a 10,000-deep [[[...]]] hits the interpreter's
        # recursion limit: say that, rather than a vague "error parsing the body".
        return error_response(400, InvalidInput.code, "malformed JSON body: nested too deeply for the "
                              "parser (no request of this API needs more than a few levels)", path=path)
    if isinstance(cause, UnicodeDecodeError):
        return error_response(400, InvalidInput.code, "malformed JSON body: not valid UTF-8", path=path)
    return None


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    path = request.url.path
    if exc.status_code == 400:
        known = body_error(exc.__cause__, path)
        if known is not None:
            return known
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = "no such route" if exc.status_code == 404 and exc.detail == "Not Found" else str(exc.detail)
    if exc.status_code == 404:
        code = NotFound.code
        if is_mlflow_path(path):
            # Not NOT_FOUND's RESOURCE_DOES_NOT_EXIST: the client must not read this as "no such run".
            code = "ENDPOINT_NOT_FOUND"
            message = unsupported_route_message(path)
    return error_response(exc.status_code, code, message, path=path)


async def _shipyard_error(request: Request, exc: ShipyardError) -> Response:
    return shipyard_error_response(exc, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, ShipyardError.code, "internal server error; the server log has the details",
                          path=request.url.path)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ShipyardError, _shipyard_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
