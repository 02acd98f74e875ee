"""Who sends a request, on a server started with ``--auth``.

The credentials looked at, in this order:

1. ``Authorization: Bearer <token>``: an API token (``shy_…``), what the Shipyard SDK and CLI
   send, and MLflow's client with ``MLFLOW_TRACKING_TOKEN``;
2. ``Authorization: Basic base64(user:secret)``: a password, or an API token in its place (what
   MLflow's client sends with ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, and ``curl -u``);
3. the web UI's session cookie (:data:`SESSION_COOKIE`), which holds a session token: for reads,
   and for changes only through the UI's forms (``/ui/``, each checks a CSRF token).

A request with none of them is the anonymous *visitor*, who holds no role anywhere: it reaches
only the public routes, and every other route answers 401 with a ``WWW-Authenticate``
challenge. Credentials that are present but bad (malformed, unknown, revoked, expired, of a
disabled user) are a 401 at once, never a fall back to the visitor: a client must learn that
its token stopped working. A token in the query string is refused outright: URLs are kept in
access logs, shell histories and ``Referer`` headers.

``X-Shipyard-Project`` names the project new objects of the request go to (the SDK's
``SHIPYARD_PROJECT``); the scoped store checks the principal's role there as for any object.

Without ``--auth`` no :class:`Authenticator` exists and every request is the unrestricted
local user, exactly as before access control existed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from urllib.parse import parse_qsl

from starlette.requests import cookie_parser
from starlette.types import Scope

from shipyard.auth.passwords import VerifiedPasswords
from shipyard.auth.principal import VISITOR, Principal
from shipyard.auth.service import AuthService
from shipyard.auth.throttle import Throttle
from shipyard.auth.tokens import PREFIX as TOKEN_PREFIX
from shipyard.errors import InvalidInput, Unauthenticated
from shipyard.server.audit import AUDIT_NAME_KEY
from shipyard.store.protocol import AuthStore

__all__ = ["BOOTSTRAP_HASH_ENV", "PROJECT_HEADER", "SESSION_COOKIE", "SIGN_IN_MESSAGE", "VISITOR",
           "Authenticator", "bootstrap_code_hash"]

SESSION_COOKIE = "shipyard_session"
PROJECT_HEADER = "x-shipyard-project"
# The hash of the one-time code that makes the first admin, from `shipyard server` to its workers.
BOOTSTRAP_HASH_ENV = "SHIPYARD_SERVER_BOOTSTRAP_CODE_SHA256"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
QUERY_TOKEN_NAMES = frozenset({"token", "access_token", "api_key", "apikey"})
SIGN_IN_MESSAGE = ("sign in to use this server: send an API token as 'Authorization: Bearer shy_…' (`shipyard "
                   "login URL` makes one; MLflow clients: MLFLOW_TRACKING_TOKEN) or a user name and password as "
                   "HTTP Basic (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)")
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def bootstrap_code_hash(code: str) -> str:
    """What the server keeps of the one-time bootstrap code (and compares a given code with)."""
    return hashlib.sha256(code.strip().encode()).hexdigest()


class Authenticator:
    """Resolves each request's principal against ``store``; one per app, shared by its requests
    (the throttle of failed sign-ins and the cache of verified passwords live as long as it)."""

    def __init__(self, store: AuthStore, *, bootstrap_hash: str | None = None) -> None:
        self.store = store
        self.bootstrap_hash = bootstrap_hash or None
        self._throttle = Throttle()
        self._verified = VerifiedPasswords()
        # Signing in needs no acting principal: the visitor holds no rights, so this service can
        # do nothing else.
        self._service = self.service(VISITOR)

    def service(self, principal: Principal) -> AuthService:
        """The auth service acting as ``principal`` (for the auth API), sharing the sign-in state."""
        return AuthService(self.store, principal, throttle=self._throttle, verified=self._verified)

    def principal(self, scope: Scope) -> Principal:
        """The principal of the request in ``scope`` (the visitor when it has no credentials).
        Raises ``Unauthenticated`` for bad credentials or a token in the query string,
        ``TooManyAttempts`` while sign-ins of the name or from the address are throttled."""
        _refuse_query_token(scope)
        headers = scope["headers"]
        authorization = _header(headers, b"authorization")
        project = _project(_header(headers, PROJECT_HEADER.encode()))
        if authorization is not None:
            principal = self._from_authorization(scope, authorization, project)
        else:
            session = cookie_parser(_header(headers, b"cookie") or "").get(SESSION_COOKIE)
            if not session or not _cookie_may_act(scope):
                return VISITOR
            principal = self._service.authenticate_token(session, project=project)
        return principal

    def _from_authorization(self, scope: Scope, value: str, project: str | None) -> Principal:
        kind, _, credentials = value.strip().partition(" ")
        credentials = credentials.strip()
        if kind.lower() == "bearer" and credentials:
            return self._service.authenticate_token(credentials, project=project)
        if kind.lower() == "basic" and credentials:
            name, secret = _basic(credentials)
            scope.setdefault("state", {})[AUDIT_NAME_KEY] = name
            if secret.startswith(TOKEN_PREFIX):
                principal = self._service.authenticate_token(secret, project=project)
                if name and name != principal.name:
                    raise Unauthenticated(f"the API token sent as the password of {name!r} belongs to another "
                                          "user: send it with that user's name, or with an empty one")
                return principal
            client = scope.get("client")
            return self._service.authenticate_password(name, secret, address=client[0] if client else None,
                                                       project=project)
        raise Unauthenticated(f"unsupported Authorization header ({kind[:20]!r}): send 'Bearer <API token>' or "
                              "'Basic <base64 of user:password>'")

    def check_bootstrap_code(self, code: str) -> None:
        """Raise ``Unauthenticated`` unless ``code`` is this server's one-time bootstrap code."""
        if self.bootstrap_hash is None:
            raise Unauthenticated("this server has no bootstrap code: it prints one when it starts with --auth "
                                  "and no user exists; otherwise an admin creates users (shipyard users create)")
        if not isinstance(code, str) or not hmac.compare_digest(bootstrap_code_hash(code), self.bootstrap_hash):
            raise Unauthenticated("wrong bootstrap code: use the one-time code `shipyard server --auth` printed "
                                  "when it started")


def _cookie_may_act(scope: Scope) -> bool:
    """A browser sends the cookie with every request to this server, a cross-site form's too; only
    the UI's own forms check a CSRF token. So the cookie signs in reads anywhere, and changes only
    under ``/ui/``; an API change needs the Authorization header, which no other site can set."""
    return scope.get("method") in SAFE_METHODS or str(scope.get("path", "")).startswith("/ui/")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _refuse_query_token(scope: Scope) -> None:
    query = scope.get("query_string", b"")
    if not query:
        return
    names = {k.lower() for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    found = names & QUERY_TOKEN_NAMES
    if found:
        raise Unauthenticated(f"send tokens in the Authorization header ('Authorization: Bearer shy_…'), not in "
                              f"the URL (?{sorted(found)[0]}=…): URLs are kept in logs and browser histories. "
                              "Revoke a token that was sent this way")


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise Unauthenticated("malformed Basic credentials: expected base64 of 'user:password' (or "
                              "'user:API token')") from None
    name, colon, secret = decoded.partition(":")
    if not colon:
        raise Unauthenticated("malformed Basic credentials: expected 'user:password', with a colon")
    return name, secret


def _project(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _PROJECT.fullmatch(value):
        raise InvalidInput(f"X-Shipyard-Project {value[:80]!r} is not a project name: 1 to 64 letters, digits "
                           "and _ . -", field="project")
    return value

