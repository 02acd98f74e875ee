"""The request guard: a pure ASGI middleware in front of every route (streaming stays intact).

In order, for each HTTP request:
1. the ``Host`` header must be in the allowlist (DNS-rebinding defence);
2. a mutating request with a body must be ``application/json`` or, for streamed uploads,
   ``application/octet-stream``: a cross-site form post (urlencoded, multipart, text/plain)
   changes nothing, and neither type can be sent cross-site without a CORS preflight. The
   web UI's own forms (urlencoded, under ``/ui/``) are let through because each checks a
   CSRF token before changing anything. The other exception is a PUT to MLflow's artifact
   proxy, whose client sends each file with its guessed type (``text/plain``, ``image/png``):
   a PUT is never a CORS "simple" request, so a browser cannot send one cross-site without a
   preflight whatever its type. Last, MLflow's ``upload-artifact`` call may send its bytes with
   no media type at all, as MLflow's clients do, when the request has no ``Origin`` header: a
   browser sends one with every cross-site POST, so a page still cannot write a file this way;
3. a JSON body over the size limit is refused with 413 (declared or actually sent);
4. every response carries ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY`` (no
   page of this server may be framed, by another site or by itself: HTML artifact previews are
   ``srcdoc`` frames, not framed responses), and every response under ``/ui/`` a
   ``Content-Security-Policy`` (the pages' own, or :data:`PAGE_POLICY` for any that lacks one).

Permissions are checked per route by :func:`shipyard.server.permissions.authorize`.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.errors import RequestTooLarge
from shipyard.server.errors import error_response, too_large_response
from shipyard.server.mlflow_compat.errors import MLFLOW_ARTIFACT_PATHS, MLFLOW_UNTYPED_UPLOADS
from shipyard.server.ui.rendering import CONTENT_SECURITY_POLICY

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
STREAM = "application/octet-stream"
FORM = "application/x-www-form-urlencoded"
UI_PREFIX = "/ui/"
# Scripts, styles and images from this server only (no inline script runs), framed by nobody.
PAGE_POLICY = CONTENT_SECURITY_POLICY.encode("latin-1")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def _content_type(scope: Scope) -> str:
    return (_header(scope, b"content-type") or "").split(";")[0].strip().lower()


def host_without_port(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:5000
        return host[1:host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_mlflow_upload(scope: Scope) -> bool:
    return scope["method"] == "PUT" and bool(scope["path"].startswith(MLFLOW_ARTIFACT_PATHS))


def _is_untyped_script_upload(scope: Scope, given: str) -> bool:
    return given == "" and scope["path"] in MLFLOW_UNTYPED_UPLOADS and _header(scope, b"origin") is None


class RequestGuard:
    def __init__(self, app: ASGIApp, *, allowed_hosts: Iterable[str], max_body_bytes: int) -> None:
        self.app = app
        hosts = {h.strip().lower() for h in allowed_hosts if h.strip()}
        self._any_host = "*" in hosts
        self._hosts = hosts
        self._max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        is_page = scope["path"].startswith(UI_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-frame-options"]
                headers.append((b"x-frame-options", b"DENY"))
                if not any(k == b"x-content-type-options" for k, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                if is_page and not any(k == b"content-security-policy" for k, _ in headers):
                    headers.append((b"content-security-policy", PAGE_POLICY))
                message = {**message, "headers": headers}
            await send(message)

        if scope["method"] in MUTATING and _content_type(scope) != STREAM and not _is_mlflow_upload(scope):
            receive = self._limited(receive)
        try:
            await self.app(scope, receive, send_with_headers)
        except RequestTooLarge:
            await self._too_large(scope)(scope, receive, send)

    def _check(self, scope: Scope) -> Response | None:
        path = scope["path"]
        host = host_without_port(_header(scope, b"host") or "")
        if not self._any_host and host not in self._hosts:
            return error_response(400, "INVALID_HOST",
                                  f"host {host!r} is not allowed; start the server with --allowed-hosts "
                                  f"including it (allowed now: {', '.join(sorted(self._hosts))})", path=path)
        if scope["method"] in MUTATING and self._has_body(scope) and not _is_mlflow_upload(scope):
            given = _content_type(scope)
            if given == FORM and path.startswith(UI_PREFIX):
                pass  # the web UI's forms: each one's CSRF token is checked (server/ui/rendering.read_form)
            elif given not in (JSON, STREAM) and not _is_untyped_script_upload(scope, given):
                return error_response(415, "UNSUPPORTED_MEDIA_TYPE",
                                      f"send request bodies as {JSON} (or {STREAM} for uploads), "
                                      f"not {given or 'no type'}", path=path)
            length = _header(scope, b"content-length")
            if given in (JSON, FORM) and length and length.isdigit() and int(length) > self._max_body:
                return self._too_large(scope)
        return None

    @staticmethod
    def _has_body(scope: Scope) -> bool:
        length = _header(scope, b"content-length")
        return bool(length and length != "0") or _header(scope, b"transfer-encoding") is not None

    def _too_large(self, scope: Scope) -> Response:
        return too_large_response(self._max_body, scope["path"])

    def _limited(self, receive: Receive) -> Receive:
        seen = 0
        limit = self._max_body

        async def counting() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise RequestTooLarge(f"request body over {limit} bytes", limit=limit)
            return message

        return counting
