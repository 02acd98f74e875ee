"""Signing in to the web UI, signing out, and making a new server's first admin.

A sign-in trades the user name and password, once, for a *session token* (an API token of kind
``session``, :data:`SESSION_MS` long) that the ``shipyard_session`` cookie carries; the server's
authenticator (:mod:`shipyard.server.authentication`) reads that cookie like a bearer token, so a
browser is one more client of the same rules. The cookie is ``HttpOnly`` (no script reads it),
``SameSite=Lax`` (not sent on another site's posts), ``Secure`` over HTTPS, ``Path=/``. Signing
out revokes the token on the server, so a copied cookie stops working too. A single sign-on
(:mod:`shipyard.server.ui.oidc_pages`) ends in the same session, made by :func:`new_session`.

Every form here checks the CSRF token like every other UI form; a sign-in refused answers 401 (or
429 while throttled) with the form again, so the audit log records it as a refusal.
"""

from __future__ import annotations

import math

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from shipyard.auth.principal import Principal
from shipyard.entities.auth import ApiToken
from shipyard.errors import Conflict, InvalidInput, ShipyardError, TooManyAttempts, Unauthenticated
from shipyard.server.audit import AUDIT_DETAIL_KEY, AUDIT_NAME_KEY
from shipyard.server.authentication import SESSION_COOKIE, VISITOR, Authenticator
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.rendering import UIRoute, page, read_form, safe_next

__all__ = ["SESSION_MS", "login_form", "new_session", "refused", "router", "session_response"]

router = PrefixRouter(prefixes=("/ui/login", "/ui/logout", "/ui/setup"), route_class=UIRoute,
                      include_in_schema=False)

SESSION_MS = 12 * 3600 * 1000  # a working day; the cookie itself lasts as long as the browser session
NO_AUTH = ("this server does not ask anyone to sign in: it was started without --auth, and every visitor may do "
           "everything")


def _authenticator(request: Request) -> Authenticator | None:
    return getattr(request.app.state, "authenticator", None)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def refused(request: Request, name: str, err: ShipyardError) -> None:
    """Audit a refused form under the name it tried (as a refused Basic sign-in is), with its reason."""
    request.scope.setdefault("state", {}).pop("principal", None)
    request.scope["state"][AUDIT_NAME_KEY] = name[:200] or "anonymous"
    request.scope["state"][AUDIT_DETAIL_KEY] = err.message


def _note(request: Request, obj: str) -> None:
    """The object a form acted on, for the audit log (as the auth API's routes note theirs)."""
    touched = getattr(request.state, "touched", None)
    if touched is not None:
        touched.append((None, obj))


def _signed_in(request: Request) -> Principal | None:
    principal = getattr(request.state, "principal", None)
    return principal if principal is not None and not principal.anonymous else None


def login_form(request: Request, status: int = 200, *, next_page: str, username: str = "", error: str = "",
               signed_in: Principal | None = None) -> Response:
    """The sign-in page: the password form, and the single sign-on button when it is configured."""
    oidc = getattr(request.app.state, "oidc", None)
    return page(request, "login.html", status, auth=_authenticator(request) is not None, next=next_page,
                username=username, error=error, signed_in=signed_in,
                oidc=oidc.config.provider_name if oidc is not None else "")


def new_session(authenticator: Authenticator, principal: Principal) -> tuple[ApiToken, str]:
    """A web session of ``principal``: a session token and its secret, for the cookie."""
    return authenticator.service(principal).create_token("web session", expires_in_ms=SESSION_MS, kind="session")


def session_response(request: Request, principal: Principal, token: ApiToken, secret: str, target: str) -> Response:
    """Go to ``target`` signed in: the session cookie set, and the audit log naming who signed in
    (not the visitor who asked) and the session made."""
    request.state.principal = principal
    _note(request, f"token:{token.token_id}")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, secret, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/ui/login", name="ui_login")
def login_page(request: Request) -> Response:
    return login_form(request, next_page=safe_next(request.query_params.get("next")), signed_in=_signed_in(request))


@router.post("/ui/login", name="ui_sign_in")
async def sign_in(request: Request) -> Response:
    fields = await read_form(request)
    name = fields.get("username", "").strip()
    password = fields.get("password", "")
    target = safe_next(fields.get("next"))
    authenticator = _authenticator(request)
    if authenticator is None:
        raise Conflict(NO_AUTH)
    if not name or not password:
        raise InvalidInput("give your user name and your password")
    address = _address(request)

    def session() -> tuple[Principal, ApiToken, str]:
        principal = authenticator.service(VISITOR).authenticate_password(name, password, address=address)
        return principal, *new_session(authenticator, principal)

    try:
        principal, token, secret = await run_in_threadpool(session)
    except (Unauthenticated, TooManyAttempts) as err:
        refused(request, name, err)
        response = login_form(request, err.http_status, next_page=target, username=name, error=err.message)
        retry = err.details.get("retry_after") if isinstance(err, TooManyAttempts) else None
        if retry is not None:
            response.headers["retry-after"] = str(math.ceil(float(retry)))
        return response
    return session_response(request, principal, token, secret, target)


@router.post("/ui/logout", name="ui_sign_out")
async def sign_out(request: Request) -> Response:
    await read_form(request)
    authenticator = _authenticator(request)
    principal = _signed_in(request)
    if authenticator is not None and principal is not None and principal.token_id is not None \
            and request.cookies.get(SESSION_COOKIE):
        token_id = principal.token_id
        _note(request, f"token:{token_id}")
        await run_in_threadpool(lambda: authenticator.service(principal).revoke_token(token_id))
    response = RedirectResponse("/ui/login" if authenticator is not None else "/ui/experiments", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
    return response


def _needs_setup(authenticator: Authenticator | None) -> bool:
    return authenticator is not None and authenticator.store.count_users() == 0


@router.get("/ui/setup", name="ui_setup")
def setup_page(request: Request) -> Response:
    authenticator = _authenticator(request)
    return page(request, "setup.html", auth=authenticator is not None, open=_needs_setup(authenticator),
                name="", email="", error="", signed_in=_signed_in(request))


@router.post("/ui/setup", name="ui_bootstrap")
async def bootstrap(request: Request) -> Response:
    fields = await read_form(request)
    authenticator = _authenticator(request)
    if authenticator is None:
        raise Conflict(NO_AUTH)
    name, email = fields.get("name", "").strip(), fields.get("email", "").strip()
    password, again = fields.get("password", ""), fields.get("password_again", "")

    _note(request, f"user:{name}")

    def make() -> None:
        authenticator.check_bootstrap_code(fields.get("code", ""))
        if password != again:
            raise InvalidInput("the two passwords differ: type the same password twice")
        authenticator.service(VISITOR).bootstrap(name, password, email=email)

    try:
        await run_in_threadpool(make)
    except (Unauthenticated, InvalidInput) as err:
        if isinstance(err, Unauthenticated):
            refused(request, name, err)
        return page(request, "setup.html", err.http_status, auth=True, open=True, name=name, email=email,
                    error=err.message, signed_in=None)
    return RedirectResponse("/ui/login?done=setup", status_code=303)
