"""A small OpenID Connect provider, served by a real uvicorn on a loopback port, for the single
sign-on tests: discovery, signing keys (an RSA key made here), an authorization endpoint that
signs in whoever the test names and sends the browser back with a code, and a token endpoint that
checks the client, the redirect URI and the PKCE verifier before it returns a signed ID token.

A test chooses who signs in (:attr:`Provider.user`) and can make the provider misbehave: sign with
another key, change claims (:attr:`Provider.tamper`), or refuse at the authorization endpoint.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support import uvicorn_thread

CLIENT_ID = "shipyard-test"
CLIENT_SECRET = "provider-secret-for-tests"


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@dataclass
class Provider:
    """The provider's state; ``url`` is set once it serves."""

    url: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "key-1"}))
    # The account that signs in at the authorization endpoint (its claims; "sub" is required).
    user: dict[str, Any] = field(default_factory=lambda: {"sub": "u-1", "preferred_username": "ada",
                                                          "email": "ada@example.com", "email_verified": True})
    # (claims, header) -> (claims, header): what the token endpoint changes before it signs.
    tamper: Callable[[dict[str, Any], dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]] | None = None
    signing_key: RSAKey | None = None  # None: its published key
    refuse: str = ""  # an OAuth error code the authorization endpoint answers with instead of a code
    auth_methods: list[str] = field(default_factory=lambda: ["client_secret_basic", "none"])  # at the token endpoint
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)  # what the authorization endpoint was sent
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/.well-known/openid-configuration", self.discovery),
            Route("/jwks", self.jwks),
            Route("/authorize", self.authorize),
            Route("/token", self.token, methods=["POST"]),
        ])

    async def discovery(self, request: Request) -> Response:
        return JSONResponse({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "code_challenge_methods_supported": ["S256"],
        })

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.requests.append(params)
        back = params["redirect_uri"]
        if self.refuse:
            query = urlencode({"error": self.refuse, "error_description": "the user said no", "state": params["state"]})
            return RedirectResponse(f"{back}?{query}", 302)
        if (params.get("client_id") != CLIENT_ID or params.get("response_type") != "code"
                or params.get("code_challenge_method") != "S256" or not params.get("code_challenge")):
            return JSONResponse({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"params": params, "user": dict(self.user)}
        return RedirectResponse(f"{back}?{urlencode({'code': code, 'state': params['state']})}", 302)

    def _client_authenticated(self, request: Request, form: dict[str, Any]) -> bool:
        """The client proves itself the way the discovery document offers: its secret as HTTP Basic
        or in the form, or (a public client) not at all, its PKCE verifier being the proof."""
        basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if "authorization" in request.headers:
            return "client_secret_basic" in self.auth_methods and request.headers["authorization"] == basic
        if "client_secret" in form:
            return ("client_secret_post" in self.auth_methods
                    and (form.get("client_id"), form["client_secret"]) == (CLIENT_ID, CLIENT_SECRET))
        return "none" in self.auth_methods and form.get("client_id") == CLIENT_ID

    async def token(self, request: Request) -> Response:
        form = dict(await request.form())
        self.token_requests.append({"form": form, "authorization": request.headers.get("authorization", "")})
        if not self._client_authenticated(request, form):
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.codes.pop(str(form.get("code")), None)  # a code is good once
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        params = grant["params"]
        if form.get("redirect_uri") != params["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri differs"}, 400)
        if _challenge(str(form.get("code_verifier", ""))) != params["code_challenge"]:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": params.get("nonce"),
                  **grant["user"]}
        header = {"alg": "RS256", "kid": "key-1"}
        if self.tamper is not None:
            claims, header = self.tamper(claims, header)
        id_token = jwt.encode(header, claims, self.signing_key or self.key)
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                             "id_token": id_token})


@contextmanager
def running_provider() -> Iterator[Provider]:
    provider = Provider()
    with uvicorn_thread(provider.app(), name="oidc-provider") as url:
        provider.url = url
        yield provider
