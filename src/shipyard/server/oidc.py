"""Single sign-on through an OpenID Connect provider: the relying party's half of the
authorization code flow with PKCE (RFC 7636, ``S256``).

authlib builds the authorization request (state, nonce, the code challenge) and checks the ID
token's claims (``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, ``azp``, ``at_hash``); joserfc,
authlib's JOSE library, checks its signature against the keys the provider publishes (JWKS),
with asymmetric algorithms only. The provider's metadata comes from
``{issuer}/.well-known/openid-configuration`` at the first sign-in and is kept for an hour; its
keys are read again at once when a token names a key not seen yet (a key rotation).

What a sign-in carries from its first request to its callback (state, nonce, PKCE verifier, the
redirect URI and the page to return to) lives in the browser, in an ``HttpOnly`` cookie limited to
``/ui/oidc/`` that lasts ten minutes and is read once. Nothing is kept on the server per sign-in,
so any worker finishes a sign-in another one began, and no secret key must be shared between them.
None of it is secret from the browser that holds it: the state ties the callback to the browser
that began the sign-in (a callback forged on another site arrives without the cookie, or with
another state), and the verifier is what a code intercepted on its way back is useless without.
"""

from __future__ import annotations

import base64
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from shipyard.addresses import is_loopback
from shipyard.config import Settings
from shipyard.entities.auth import Role
from shipyard.errors import InvalidInput, Unauthenticated

__all__ = ["FLOW_SECONDS", "Identity", "OidcClient", "OidcConfig"]

FLOW_SECONDS = 600  # from the sign-in button to the callback: time to type a password and a second factor
METADATA_SECONDS = 3600
TIMEOUT_SECONDS = 10.0
LEEWAY_SECONDS = 60  # clocks of the provider and this server may differ a little
# Signatures by the provider's published key pairs; a shared-secret (HS*) or unsigned token never signs anyone in.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_COOKIE_MAX = 3000


def _setting_error(name: str, problem: str) -> InvalidInput:
    return InvalidInput(f"SHIPYARD_{name.upper()} {problem}", field=name)


def _url(name: str, value: str) -> str:
    """``value`` if it is an https URL, or http on this machine (a provider run for tests or a demo)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _setting_error(name, f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise _setting_error(name, f"{value!r} must use https: codes and tokens must not cross the network in "
                                   "clear (http is accepted for localhost only)")
    return value


def _grants(raw: str) -> tuple[tuple[str, Role], ...]:
    grants = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        project, colon, role = item.rpartition(":")
        if not colon or not project.strip():
            raise _setting_error("server_oidc_grants", f"item {item!r} is not PROJECT:ROLE (e.g. default:viewer)")
        try:
            grants.append((project.strip(), Role.parse(role)))
        except InvalidInput as err:
            raise _setting_error("server_oidc_grants", f"item {item!r}: {err.message}") from None
    return tuple(grants)


@dataclass(frozen=True)
class OidcConfig:
    """The provider and this server's registration there, from the ``server_oidc_*`` settings."""

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    scopes: str = "openid email profile"
    username_claim: str = "preferred_username"
    provider_name: str = ""
    redirect_uri: str = ""
    grants: tuple[tuple[str, Role], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig | None:
        """The configuration, or ``None`` when no issuer is set (single sign-on off). Raises
        ``InvalidInput`` naming the variable that is wrong."""
        issuer = settings.server_oidc_issuer.strip()
        if not issuer:
            return None
        _url("server_oidc_issuer", issuer)
        client_id = settings.server_oidc_client_id.strip()
        if not client_id:
            raise _setting_error("server_oidc_client_id", "is empty: give the client id this server was registered "
                                                          "with at the provider")
        scopes = settings.server_oidc_scopes.split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")  # without it the provider sends no ID token at all
        claim = settings.server_oidc_username_claim.strip()
        if not claim:
            raise _setting_error("server_oidc_username_claim", "is empty: name an ID token claim, e.g. "
                                                               "preferred_username or email")
        redirect = settings.server_oidc_redirect_uri.strip()
        if redirect:
            _url("server_oidc_redirect_uri", redirect)
        return cls(issuer=issuer, client_id=client_id, client_secret=settings.server_oidc_client_secret,
                   scopes=" ".join(scopes), username_claim=claim,
                   provider_name=settings.server_oidc_provider_name.strip() or urlsplit(issuer).hostname or issuer,
                   redirect_uri=redirect, grants=_grants(settings.server_oidc_grants))


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in: ``(issuer, subject)`` names the person for good; the
    other claims are what the ID token said this time. ``next`` is the page to return to."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]
    next: str

    def names(self, claim: str) -> list[str]:
        """Candidate user names, best first: the configured claim, the e-mail address, the subject."""
        found = [self.claims.get(claim), self.claims.get("email"), self.subject]
        return list(dict.fromkeys(n for n in found if isinstance(n, str) and n))

    @property
    def email(self) -> str:
        email = self.claims.get("email")
        verified = self.claims.get("email_verified", True) is not False
        return email if isinstance(email, str) and verified else ""


@dataclass(frozen=True)
class _Flow:
    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str
    started: float

    def cookie(self) -> str:
        raw = json.dumps([self.state, self.nonce, self.verifier, self.redirect_uri, self.next, self.started])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def from_cookie(cls, value: str | None, now: float) -> _Flow:
        if not value:
            raise Unauthenticated("this sign-in was not started in this browser, or its cookie was lost (cookies "
                                  "off?): start again from the sign-in page")
        try:
            fields = json.loads(base64.urlsafe_b64decode(value[:_COOKIE_MAX] + "=" * (-len(value) % 4)))
            flow = cls(*fields)
            if not all(isinstance(f, str) for f in fields[:5]) or not isinstance(flow.started, int | float):
                raise TypeError(fields)
        except (ValueError, TypeError):
            raise Unauthenticated("this sign-in's cookie is damaged: start again from the sign-in page") from None
        if not 0 <= now - flow.started <= FLOW_SECONDS:
            raise Unauthenticated(f"this sign-in took longer than {FLOW_SECONDS // 60} minutes: start again from "
                                  "the sign-in page")
        return flow


class OidcClient:
    """This server as a client of one OpenID Connect provider (thread-safe; one per app)."""

    flow_seconds = FLOW_SECONDS

    def __init__(self, config: OidcConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None

    # -- talking to the provider ----------------------------------------------------------------
    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            with httpx.Client(timeout=TIMEOUT_SECONDS) as http:
                response = http.get(url, headers={"accept": "application/json"})
        except httpx.HTTPError as err:
            raise self._unreachable(url, err) from None
        if response.status_code != 200:
            raise Unauthenticated(f"the sign-in provider answered {response.status_code} for its {what} ({url}): "
                                  "try again later; if it goes on, the operator should check "
                                  "SHIPYARD_SERVER_OIDC_ISSUER")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unauthenticated(f"the sign-in provider's {what} ({url}) is not a JSON object")
        return body

    @staticmethod
    def _unreachable(url: str, err: Exception) -> Unauthenticated:
        return Unauthenticated(f"could not reach the sign-in provider at {url} ({type(err).__name__}: {err}); nobody "
                               "was signed in: try again later, or sign in with a password")

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for an hour). Raises ``Unauthenticated`` when
        it cannot be read or is not this issuer's."""
        with self._lock:
            if self._metadata is not None and self._clock() - self._metadata[0] < METADATA_SECONDS:
                return self._metadata[1]
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        found = self._get_json(url, "discovery document")
        issuer = found.get("issuer")
        if not isinstance(issuer, str) or issuer.rstrip("/") != self.config.issuer.rstrip("/"):
            # A document naming another issuer would let that issuer's tokens through the iss check.
            raise Unauthenticated(f"the sign-in provider's discovery document names issuer {issuer!r}, not "
                                  f"{self.config.issuer!r}: the operator should check SHIPYARD_SERVER_OIDC_ISSUER")
        missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
                   if not isinstance(found.get(k), str)]
        if missing:
            raise Unauthenticated(f"the sign-in provider's discovery document lacks {', '.join(missing)}")
        with self._lock:
            self._metadata = (self._clock(), found)
            self._keys = None
        return found

    def _key_set(self, metadata: Mapping[str, Any], *, refresh: bool = False) -> KeySet:
        with self._lock:
            if self._keys is not None and not refresh:
                return self._keys
        body = self._get_json(metadata["jwks_uri"], "signing keys")
        try:
            keys = KeySet.import_key_set(body)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError) as err:
            raise Unauthenticated(f"the sign-in provider's signing keys cannot be read ({err})") from None
        with self._lock:
            self._keys = keys
        return keys

    # -- the two halves of a sign-in -------------------------------------------------------------
    def begin(self, redirect_uri: str, next_page: str) -> tuple[str, str]:
        """The provider's authorization URL to send the browser to, and the value of the cookie
        that carries this sign-in to :meth:`finish`."""
        metadata = self.metadata()
        flow = _Flow(state=generate_token(32), nonce=generate_token(32), verifier=generate_token(64),
                     redirect_uri=redirect_uri, next=next_page, started=self._clock())
        url = prepare_grant_uri(metadata["authorization_endpoint"], client_id=self.config.client_id,
                                response_type="code", redirect_uri=redirect_uri, scope=self.config.scopes,
                                state=flow.state, nonce=flow.nonce,
                                code_challenge=create_s256_code_challenge(flow.verifier),
                                code_challenge_method="S256")
        return url, flow.cookie()

    def finish(self, cookie: str | None, params: Mapping[str, str]) -> Identity:
        """Check the callback's ``params`` against the sign-in in ``cookie``, trade the code for
        tokens and verify the ID token. Raises ``Unauthenticated`` saying what was wrong."""
        flow = _Flow.from_cookie(cookie, self._clock())
        if params.get("error"):
            description = str(params.get("error_description") or "")[:300]
            raise Unauthenticated(f"the sign-in provider refused the sign-in: {str(params['error'])[:100]}"
                                  + (f" ({description})" if description else ""))
        if not hmac.compare_digest(str(params.get("state", "")).encode(), flow.state.encode()):
            raise Unauthenticated("this callback does not belong to the sign-in this browser started (its state "
                                  "differs): start again from the sign-in page")
        code = params.get("code")
        if not code:
            raise Unauthenticated("the sign-in provider sent no authorization code back")
        metadata = self.metadata()
        tokens = self._exchange(metadata, code, flow)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise Unauthenticated("the sign-in provider sent no ID token: the operator should check that the "
                                  "'openid' scope is allowed for this client")
        claims = self._verify(metadata, id_token, flow.nonce, tokens.get("access_token"))
        return Identity(issuer=metadata["issuer"], subject=claims["sub"], claims=claims, next=flow.next)

    def _exchange(self, metadata: Mapping[str, Any], code: str, flow: _Flow) -> dict[str, Any]:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": flow.redirect_uri,
                "code_verifier": flow.verifier}
        headers = {"accept": "application/json"}
        secret = self.config.client_secret
        methods: Sequence[str] = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if not secret:  # a public client: the PKCE verifier is its only proof
            form["client_id"] = self.config.client_id
        elif "client_secret_basic" in methods:  # RFC 6749 2.3.1: each part form-encoded before base64
            pair = f"{quote(self.config.client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=self.config.client_id, client_secret=secret)
        url = metadata["token_endpoint"]
        try:
            with httpx.Client(timeout=TIMEOUT_SECONDS) as http:
                response = http.post(url, data=form, headers=headers)
        except httpx.HTTPError as err:
            raise self._unreachable(url, err) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise Unauthenticated(f"the sign-in provider's token endpoint answered {response.status_code} without "
                                  "a JSON object")
        if response.status_code != 200 or "error" in body:
            description = str(body.get("error_description") or "")[:300]
            raise Unauthenticated(f"the sign-in provider refused to trade the code for tokens: "
                                  f"{str(body.get('error', response.status_code))[:100]}"
                                  + (f" ({description})" if description else ""))
        return body

    def _verify(self, metadata: Mapping[str, Any], id_token: str, nonce: str, access_token: Any) -> dict[str, Any]:
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in offered if a in ASYMMETRIC]
        options: dict[str, Any] = {"iss": {"essential": True, "value": metadata["issuer"]},
                                   "aud": {"essential": True, "value": self.config.client_id},
                                   "sub": {"essential": True}}
        params = {"nonce": nonce, "client_id": self.config.client_id,
                  "access_token": access_token if isinstance(access_token, str) else None}
        try:
            try:
                token = jwt.decode(id_token, self._key_set(metadata), algorithms=algorithms)
            except InvalidKeyIdError:  # signed with a key published after ours were read
                token = jwt.decode(id_token, self._key_set(metadata, refresh=True), algorithms=algorithms)
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(now=int(self._clock()), leeway=LEEWAY_SECONDS)
        except JoseError as err:
            raise Unauthenticated(f"the ID token from the sign-in provider is not valid ({err.description or err.error}"
                                  "); nobody was signed in") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthenticated("the ID token from the sign-in provider names no subject")
        return dict(claims)
