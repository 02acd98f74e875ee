"""The audit log: who changed what, from where, and every request that was refused.

:class:`AuditMiddleware` is a pure ASGI middleware (responses keep streaming), on only when the
server requires sign-in. For each HTTP request it

1. takes the request id from ``X-Request-Id`` (a well-formed one) or makes one, puts it on the
   request's state and echoes it in the response, so a user's report and the log line meet;
2. gives the request an empty ``touched`` list, where the scoped store
   (:func:`shipyard.auth.scoped.scoped_store`, through ``responses.client``) notes each
   ``(project, object)`` it reaches;
3. once the response is sent, records one :class:`~shipyard.entities.auth.AuditEvent` for every
   mutating request and every single sign-on callback (whatever its status) and for every
   refusal (401, 403, 429), in a worker
   thread: the database write neither blocks the event loop nor delays the response.

A refusal's event carries its error message as ``detail``, and the name a failed sign-in tried
(so password guessing shows up under the name guessed at). A failure to record is logged, never
turned into an error for a client who already has its answer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.clock import now_ms
from shipyard.entities.auth import AuditEvent

__all__ = ["AUDIT_DETAIL_KEY", "AUDIT_NAME_KEY", "REFUSED", "REQUEST_ID_HEADER", "AuditMiddleware", "request_id_of"]

log = logging.getLogger("shipyard.server.audit")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED = frozenset({401, 403, 429})
REQUEST_ID_HEADER = "x-request-id"
# Where the authenticator leaves the user name a sign-in tried, for the audit of a refusal.
AUDIT_NAME_KEY = "auth_attempt"
# A refusal's message where the response is no JSON error to read it from (the UI's HTML pages).
AUDIT_DETAIL_KEY = "audit_detail"
# A client's id is echoed and stored: keep it to what a log line can hold safely.
_GOOD_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
_DETAIL_BYTES = 4096
# POSTs that only read (a search, a lineage query): recorded only when refused.
READ_ONLY_POSTS = frozenset({
    "search_runs", "search_registered_models", "search_model_versions", "query_lineage_edges",
    "search_logged_models", "query_run_links", "mlflow_search_runs", "mlflow_search_experiments",
    "mlflow_search_logged_models", "mlflow_get_latest_versions",
})

# GETs that sign someone in: recorded whatever they answer, like the POST of the password form.
SIGN_IN_GETS = frozenset({"ui_oidc_callback"})


def request_id_of(scope: Scope) -> str:
    """The client's ``X-Request-Id`` when it is a sensible one, otherwise a new id."""
    for key, value in scope.get("headers", ()):
        if key == b"x-request-id":
            given: str = value.decode("latin-1").strip()
            if _GOOD_ID.fullmatch(given):
                return given
            break
    return uuid.uuid4().hex


class AuditMiddleware:
    """Records each request that changed something or was refused, after its response."""

    def __init__(self, app: ASGIApp, *, record: Callable[[Sequence[AuditEvent]], None],
                 clock: Callable[[], int] = now_ms) -> None:
        self.app = app
        self._record = record
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        touched: list[tuple[str | None, str]] = []
        scope["state"] = {**scope.get("state", {}), "request_id": request_id, "touched": touched}
        started = self._clock()
        status = 500  # an exception that escapes every handler ends as the outer 500
        body = bytearray()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and status in REFUSED and len(body) < _DETAIL_BYTES:
                body.extend(message.get("body", b"")[: _DETAIL_BYTES - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self._worth_recording(scope, status):
                event = self._event(scope, status, started, bytes(body))
                await anyio.to_thread.run_sync(self._write, event)

    @staticmethod
    def _worth_recording(scope: Scope, status: int) -> bool:
        name = getattr(scope.get("route"), "name", None)
        if status in REFUSED or name in SIGN_IN_GETS:
            return True
        if scope["method"] not in MUTATING:
            return False
        return name not in READ_ONLY_POSTS

    def _event(self, scope: Scope, status: int, started: int, body: bytes) -> AuditEvent:
        state: dict[str, Any] = scope["state"]
        principal = state.get("principal")
        name = principal.name if principal is not None else state.get(AUDIT_NAME_KEY) or "anonymous"
        touched: list[tuple[str | None, str]] = state.get("touched") or []
        project = next((p for p, _ in touched if p), None)
        obj = touched[0][1] if touched else None
        client = scope.get("client")
        return AuditEvent(
            time=started, principal=name, action=getattr(scope.get("route"), "name", None) or "",
            method=scope["method"], path=scope["path"][:1024], status=status, project=project, object=obj,
            address=client[0] if client else None, request_id=state["request_id"],
            detail=state.get(AUDIT_DETAIL_KEY) or (_message(body) if status in REFUSED else ""))

    def _write(self, event: AuditEvent) -> None:
        try:
            self._record([event])
        except Exception:  # the client has its answer; the operator needs the failure
            log.exception("could not record the audit event of %s %s (%s)", event.method, event.path,
                          event.request_id)


def _message(body: bytes) -> str:
    """The ``message`` of an error body (its start, when it is cut or not JSON)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")[:500]
    message = parsed.get("message") if isinstance(parsed, dict) else None
    return str(message)[:500] if message is not None else ""
