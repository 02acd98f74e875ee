"""Request ids and the access log: one pure-ASGI middleware around the serving app.

The request id is the caller's ``x-request-id`` when it sends a usable one (up to 128 visible
ASCII characters), else a new UUID4 hex; it is echoed in the response's ``x-request-id`` and
put in ``scope["state"]["request_id"]`` for handlers (error logs, the protocol's ``id``).

Each request gets one log line on the ``shipyard.serving.access`` logger, with the fields also
given as record attributes (``extra``) so a JSON log formatter can emit them as keys. Health,
readiness and metrics requests (probes and scrapes, several a second, and 503 by design while
the model loads) log at DEBUG.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["REQUEST_ID_HEADER", "AccessMiddleware", "request_id_of"]

REQUEST_ID_HEADER = "x-request-id"
_USABLE_ID = re.compile(r"[!-~]{1,128}")
_QUIET_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"})
access_log = logging.getLogger("shipyard.serving.access")


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = given if _USABLE_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope["path"]
            level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
            if access_log.isEnabledFor(level):
                elapsed_ms = (time.perf_counter() - start) * 1000
                client = scope.get("client")
                access_log.log(
                    level, "%s %s %d %.2fms request_id=%s", scope["method"], path, status, elapsed_ms, request_id,
                    extra={"http_method": scope["method"], "http_path": path, "http_status": status,
                           "duration_ms": round(elapsed_ms, 3), "request_id": request_id,
                           "client_addr": f"{client[0]}:{client[1]}" if client else None})
