"""Signing in to the web UI through an OpenID Connect provider (single sign-on).

``GET /ui/oidc/login`` sends the browser to the provider, with the sign-in's state in a cookie
(:mod:`shipyard.server.oidc`); the provider sends it back to ``GET /ui/oidc/callback``, which
checks the callback against that cookie, trades the code for a verified ID token, finds or makes
the user linked to the token's ``(issuer, subject)``
(:meth:`~shipyard.auth.service.AuthService.authenticate_identity`) and starts the same web
session a password sign-in starts (:func:`~shipyard.server.ui.auth_pages.new_session`).

Every callback is audited, a success under the user's name and a refusal (401, or 409 for a
user name another user holds) with its reason, like a password sign-in. On a server without
single sign-on both routes answer 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.responses import RedirectResponse, Response

from shipyard.auth.principal import Principal
from shipyard.errors import Conflict, NotFound, ShipyardError, Unauthenticated
from shipyard.server.authentication import VISITOR, Authenticator
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.auth_pages import login_form, new_session, refused, session_response
from shipyard.server.ui.rendering import UIRoute, safe_next

if TYPE_CHECKING:
    from shipyard.server.oidc import OidcClient  # needs authlib: imported only where single sign-on is on

__all__ = ["FLOW_COOKIE", "router"]

router = PrefixRouter(prefixes=("/ui/oidc/",), route_class=UIRoute, include_in_schema=False)

FLOW_COOKIE = "shipyard_oidc"
FLOW_PATH = "/ui/oidc/"  # sent to the callback only, not with every request to the server
NEXT_MAX = 1000

NOT_CONFIGURED = ("single sign-on is not configured on this server: sign in with a user name and password, or "
                  "ask the operator to set SHIPYARD_SERVER_OIDC_ISSUER and SHIPYARD_SERVER_OIDC_CLIENT_ID")


def _oidc(request: Request) -> OidcClient:
    oidc: OidcClient | None = getattr(request.app.state, "oidc", None)
    if oidc is None:
        raise NotFound(NOT_CONFIGURED)
    return oidc


def _failed(request: Request, err: ShipyardError, name: str, target: str = "/ui/experiments") -> Response:
    refused(request, name, err)
    return login_form(request, err.http_status, next_page=target, error=err.message)


def _forget_flow(request: Request, response: Response) -> Response:
    """The sign-in's cookie is read once: a callback replayed later finds none."""
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH, httponly=True, samesite="lax",
                           secure=request.url.scheme == "https")
    return response


@router.get("/ui/oidc/login", name="ui_oidc_login")
def oidc_login(request: Request) -> Response:
    oidc = _oidc(request)
    target = safe_next(request.query_params.get("next"))
    if len(target) > NEXT_MAX:  # it travels in the sign-in's cookie, which a browser keeps only under 4 kB
        target = safe_next(None)
    redirect_uri = oidc.config.redirect_uri or str(request.url_for("ui_oidc_callback"))
    try:
        url, flow = oidc.begin(redirect_uri, target)
    except Unauthenticated as err:
        return _failed(request, err, "anonymous", target)
    response = RedirectResponse(url, status_code=303)
    # SameSite=Lax: the provider brings the browser back with a top-level GET, which carries it.
    response.set_cookie(FLOW_COOKIE, flow, max_age=oidc.flow_seconds, path=FLOW_PATH, httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return response


@router.get("/ui/oidc/callback", name="ui_oidc_callback")
def oidc_callback(request: Request) -> Response:
    oidc = _oidc(request)
    authenticator: Authenticator = request.app.state.authenticator
    name = "anonymous"
    try:
        identity = oidc.finish(request.cookies.get(FLOW_COOKIE), request.query_params)
        names = identity.names(oidc.config.username_claim)
        name = names[0] if names else name
        principal: Principal = authenticator.service(VISITOR).authenticate_identity(
            identity.issuer, identity.subject, names=names, email=identity.email, grants=oidc.config.grants)
        token, secret = new_session(authenticator, principal)
    except (Unauthenticated, Conflict) as err:
        return _forget_flow(request, _failed(request, err, name))
    except NotFound as err:  # a project of the grants for new users is missing: nothing was made
        wrong = Conflict(f"the roles for new users (SHIPYARD_SERVER_OIDC_GRANTS) name a project that does not exist "
                         f"({err.message}): ask the operator to create it or to change the setting")
        return _forget_flow(request, _failed(request, wrong, name))
    # Checked again: the cookie came back from the browser, which could have changed it.
    target = safe_next(identity.next)
    return _forget_flow(request, session_response(request, principal, token, secret, target))
