"""How the web UI answers: Jinja2 pages, HTML error pages, CSRF tokens, and its static files.

Every UI route is a :class:`UIRoute`, so a domain error raised while building a page (an unknown
run, a refused permission, a bad filter that a page did not handle itself) becomes an HTML page
with the error's status and message instead of the API's JSON body.

State-changing forms are protected twice: the browser sends the session's cookie only on
same-site requests (``SameSite=Lax``), and every form carries the cookie's token in a hidden
field that :func:`check_csrf` compares with the cookie (double submit): a page on another site
can make the browser post a form, but it can neither read nor set the token.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import math
import secrets
from collections.abc import Callable, Coroutine, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import HTMLResponse, RedirectResponse, Response

from shipyard._version import __version__
from shipyard.auth import Permission
from shipyard.errors import InvalidInput, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.server.authentication import SESSION_COOKIE
from shipyard.text import shorten

HERE = Path(__file__).parent
STATIC = HERE / "static"
CSRF_COOKIE = "shipyard_csrf"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 64 * 1024
# Scripts and styles only from the server itself; previews of HTML artifacts run in a sandboxed
# srcdoc frame (no scripts, no same origin), and no page may be framed at all (clickjacking).
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
PAGE_HEADERS = {"content-security-policy": CONTENT_SECURITY_POLICY, "referrer-policy": "same-origin",
                "x-frame-options": "DENY", "cache-control": "no-store"}
STATIC_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
                ".svg": "image/svg+xml"}


# -- formatting filters ---------------------------------------------------------------------------
def format_time(ms: int | None) -> str:
    if not ms:
        return "—"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_duration(start: int | None, end: int | None) -> str:
    if not start or not end or end < start:
        return "—"
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def format_number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_bytes(size: int | None) -> str:
    if size is None:
        return ""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"


def script_json(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can end it early)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c").replace(">", "\\u003e")


@cache
def environment() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(time=format_time, number=format_number, bytes=format_bytes, tojson_script=script_json,
                       shorten=shorten)
    env.globals.update(duration=format_duration, shipyard_version=__version__, static=static_url)
    return env


@cache
def static_url(name: str) -> str:
    """The URL of a static file, with a digest so a new version of Shipyard is never served stale."""
    import hashlib

    path = STATIC / name
    if not path.is_file():
        raise ValueError(f"no static file {name!r} in {STATIC}")
    return f"/ui/static/{name}?v={hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


# -- CSRF -----------------------------------------------------------------------------------------
def csrf_token(request: Request) -> str:
    """The browser's token: from its cookie, or a new one (set on the response by :func:`page`)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) < 32 or not token.replace("-", "").replace("_", "").isalnum():
        token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(32)
        request.state.new_csrf = token
    return token


async def read_form(request: Request) -> dict[str, str]:
    """The posted form's fields (first value of each), after checking its CSRF token. Raises
    ``PermissionDenied`` for a missing or wrong token or a cross-site origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host", ""):
        raise PermissionDenied(f"this form was posted from another site ({origin[:100]}); it changed nothing")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"form over {MAX_FORM_BYTES} bytes")
    try:
        fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise InvalidInput("the form is not valid UTF-8") from None
    cookie = request.cookies.get(CSRF_COOKIE, "")
    given = fields.pop(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
        raise PermissionDenied("the form's security token is missing or out of date (cookies off, or the page "
                               "was opened in another browser session); reload the page and submit it again")
    return fields


# -- responses ------------------------------------------------------------------------------------
def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with ``context`` (plus the request, its CSRF token, the signed-in
    principal that the header names: ``None`` on a server without sign-in, and ``can(permission,
    project)``, so a page offers an action only to whom the permission table allows it)."""
    token = csrf_token(request)
    principal = getattr(request.state, "principal", None)
    user = principal if principal is not None and not principal.anonymous else None

    def can(permission: str, project: str | None = None) -> bool:
        return principal is None or bool(principal.can(Permission(permission), project))

    html = environment().get_template(template).render(request=request, csrf_token=token, csrf_field=CSRF_FIELD,
                                                       user=user, can=can, **context)
    response = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
    if getattr(request.state, "new_csrf", None):
        response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="lax", path="/",
                            secure=request.url.scheme == "https")
    return response


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a page of this UI, never another site (``//evil.example``,
    ``/\\evil.example`` and absolute URLs are open redirects), else the experiments."""
    text = (value or "").strip()
    if (not text.startswith("/ui/") or text.startswith(("/ui/login", "/ui/logout")) or "\\" in text
            or any(ord(c) < 33 for c in text)):
        return "/ui/experiments"
    return text


def sign_in_redirect(request: Request) -> Response:
    """Send a browser that must sign in to the form, and back here afterwards. Its session cookie,
    if any, stopped working (expired, revoked): drop it, or every page would keep refusing it."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    target = "/ui/login" + (f"?next={quote(safe_next(here), safe='/')}" if request.method == "GET" else "")
    if request.headers.get("hx-request"):  # htmx swaps what it gets: tell it to load the page instead
        response: Response = Response(status_code=204, headers={"hx-redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if SESSION_COOKIE in request.cookies:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                               secure=request.url.scheme == "https")
    return response


def error_page(request: Request, status: int, message: str, code: str = "") -> HTMLResponse:
    titles = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    return page(request, "error.html", status, title=titles.get(status, "Error"), message=message, code=code,
                error_status=status)


def validation_message(err: RequestValidationError) -> str:
    problems = []
    for e in err.errors()[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "path", "body"))
        problems.append(f"{where}: {e.get('msg')}")
    return "invalid request: " + "; ".join(problems)


class UIRoute(APIRoute):
    """A route whose domain and validation errors are HTML pages (the API's stay JSON)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def ui_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Unauthenticated:
                return sign_in_redirect(request)
            except ShipyardError as err:
                return error_page(request, err.http_status, err.message, err.code)
            except RequestValidationError as err:
                return error_page(request, 400, validation_message(err), InvalidInput.code)

        return ui_handler


@cache
def static_files() -> Mapping[str, Path]:
    """Every file the UI serves, by its path under ``static/``: only these, so no URL reaches
    anything else on disk."""
    return {p.relative_to(STATIC).as_posix(): p for p in STATIC.rglob("*")
            if p.is_file() and (p.suffix in STATIC_TYPES or p.name == "LICENSE")}


def static_response(name: str) -> Response:
    path = static_files().get(name)
    if path is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    media = STATIC_TYPES.get(path.suffix, "text/plain; charset=utf-8")
    # The URL carries the file's digest (static_url), so a cached copy is never stale.
    return Response(path.read_bytes(), media_type=media, headers={"cache-control": "public, max-age=31536000"})
