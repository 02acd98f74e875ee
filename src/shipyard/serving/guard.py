"""Who may call a serving process started with ``--auth`` (``shipyard serve``, ``shipyard deploy run``).

Every route declares one :class:`~shipyard.auth.roles.Permission` in
:data:`SERVING_ROUTE_PERMISSIONS`, the way the tracking server's routes do in
``shipyard.server.permissions.ROUTE_PERMISSIONS``; which role grants each permission is the one
table in :mod:`shipyard.auth.roles`. The health probes are public; the list of models, their
metadata and predictions need ``read`` in the project of what is served (the deployment's, or the
registered model's), feedback needs ``write`` there, and ``/metrics`` a server admin, as on the
server. A route missing from the table is refused (403) until someone decides what it needs.

Callers send an API token, ``Authorization: Bearer shy_…``, checked against the store the process
serves from: by :class:`~shipyard.auth.service.AuthService` on a SQL store, by the team server
(:class:`~shipyard.auth.remote.RemoteAuth`, its ``whoami``) on an ``http(s)://`` one. What a check
found, a principal or a refusal, is kept for ``ttl_seconds``: after a token's first request a
request costs one dict lookup, no database read, hash or round trip. A token revoked or expired
meanwhile, or one whose user was disabled or lost their role, is refused once its entry lapses.

Without ``--auth`` nothing here runs: the app's routes are its own, unwrapped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard.auth.principal import VISITOR, Principal
from shipyard.auth.roles import Permission, minimum_role
from shipyard.auth.tokens import parse_secret
from shipyard.entities.auth import Role
from shipyard.errors import InvalidInput, NotFound, PermissionDenied, ShipyardError, Unauthenticated
from shipyard.serving.responses import error_response

if TYPE_CHECKING:
    from starlette.types import Scope

    from shipyard.models.registry import HasRegistry, RegistryService

__all__ = ["SERVING_ROUTE_PERMISSIONS", "SIGN_IN_MESSAGE", "ServingGuard", "TokenVerifier", "served_project",
           "token_verifier"]

SERVING_ROUTE_PERMISSIONS: Mapping[str, Permission] = {
    # probes: what an orchestrator calls, without credentials
    "health_live": Permission.PUBLIC,
    "health_ready": Permission.PUBLIC,
    "ping": Permission.PUBLIC,
    "health": Permission.PUBLIC,
    # every served model's numbers, like the server's /metrics
    "metrics": Permission.ADMIN,
    # what is served, and predictions on it: the project's viewers and up
    "server_metadata": Permission.READ,
    "list_models": Permission.READ,
    "model_metadata": Permission.READ,
    "model_ready": Permission.READ,
    "predict": Permission.READ,
    "infer": Permission.READ,
    "version_metadata": Permission.READ,
    "version_ready": Permission.READ,
    "version_infer": Permission.READ,
    "invocations": Permission.READ,
    # ground truth, joined to the prediction log (deployment mode): a change to the project's data
    "feedback": Permission.WRITE,
}

SIGN_IN_MESSAGE = ("this model server needs an API token: send 'Authorization: Bearer shy_…' (make one with "
                   "`shipyard tokens create`; its user needs a role in the project of the served model)")
CHALLENGE = {"www-authenticate": 'Bearer realm="shipyard"'}
# Nothing served here is visible to a principal without a role in its project: the answer an
# unknown route gets, in substance, and no project name.
_HIDDEN = "nothing is served here for {name}: ask an owner of the model's project for a role there"
_MAX_ENTRIES = 10_000


class TokenVerifier(Protocol):
    """What checks a token: :class:`~shipyard.auth.service.AuthService` or
    :class:`~shipyard.auth.remote.RemoteAuth`."""

    def authenticate_token(self, secret: str, *, project: str | None = None) -> Principal: ...


class _Entry(NamedTuple):
    expires: float
    principal: Principal | None  # None: the token was refused, for ``refused``
    role: Role | None  # the principal's role in the served project
    refused: str


class ServingGuard:
    """Checks each request to a serving app against :data:`SERVING_ROUTE_PERMISSIONS`, for the
    models of ``project``, with tokens checked by ``verifier`` and kept ``ttl_seconds``."""

    def __init__(self, verifier: TokenVerifier, project: str, *, ttl_seconds: float,
                 clock: Callable[[], float] = time.monotonic, max_entries: int = _MAX_ENTRIES) -> None:
        if not ttl_seconds > 0:
            raise InvalidInput("ttl_seconds must be above 0: a token is checked again once its entry lapses")
        self.verifier = verifier
        self.project = project
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._max_entries = max_entries
        # Keyed by the Authorization header's bytes as received: a hit needs no parsing at all.
        self._entries: dict[bytes, _Entry] = {}
        self._checking: dict[bytes, asyncio.Task[_Entry]] = {}

    # -- the routes ---------------------------------------------------------------------------------
    def protect(self, routes: Iterable[BaseRoute]) -> list[BaseRoute]:
        """``routes`` with each endpoint behind its route's declared permission (public ones as they are)."""
        protected: list[BaseRoute] = []
        for route in routes:
            if not isinstance(route, Route):
                raise TypeError(f"cannot guard {route!r}: serving apps are made of Starlette Routes")
            permission = SERVING_ROUTE_PERMISSIONS.get(route.name)
            if permission is Permission.PUBLIC:
                protected.append(route)
                continue
            protected.append(Route(route.path, self._guarded(route.endpoint, permission, route.path),
                                   methods=sorted(route.methods or ()), name=route.name))
        return protected

    def _guarded(self, endpoint: Callable[[Request], Awaitable[Response]], permission: Permission | None,
                 path: str) -> Callable[[Request], Awaitable[Response]]:
        oip = path.startswith("/v2/")

        async def guarded(request: Request) -> Response:
            try:
                if permission is None:
                    raise PermissionDenied(f"route {path} declares no permission and is refused")
                request.scope.setdefault("state", {})["principal"] = await self.check(request.scope, permission)
            except ShipyardError as err:
                response = error_response(err, oip=oip)
                if isinstance(err, Unauthenticated):
                    response.headers.update(CHALLENGE)
                return response
            return await endpoint(request)

        return guarded

    # -- the check --------------------------------------------------------------------------------------
    async def check(self, scope: Scope, permission: Permission) -> Principal:
        """The principal of the request in ``scope`` if it holds ``permission`` for what is served.
        ``Unauthenticated`` without a usable token, ``NotFound`` without any role in the project,
        ``PermissionDenied`` with too low a role (or not an admin, for ``admin``)."""
        header = _authorization(scope)
        if header is None:
            raise Unauthenticated(SIGN_IN_MESSAGE)
        entry = self._entries.get(header)
        if entry is None or entry.expires <= self._clock():
            entry = await self._checked(header)
        if entry.principal is None:
            raise Unauthenticated(entry.refused)
        principal = entry.principal
        if permission is Permission.ADMIN or permission is Permission.SIGNED_IN:
            if not principal.can(permission):
                raise PermissionDenied(f"{principal.name} may not do this: it needs a server admin (the "
                                       f"{permission.value} permission)")
            return principal
        if entry.role is None:
            raise NotFound(_HIDDEN.format(name=principal.name))
        needed = minimum_role(permission)
        if needed is not None and entry.role < needed:
            raise PermissionDenied(f"{principal.name} holds the {entry.role.label} role in project "
                                   f"{self.project!r}; this needs {needed.label} (the {permission.value} permission)",
                                   project=self.project)
        return principal

    async def _checked(self, header: bytes) -> _Entry:
        """Check the token in ``header`` once, however many requests bring it at the same moment."""
        secret = _bearer(header)  # a malformed header is refused here, never remembered
        task = self._checking.get(header)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._verify(header, secret))
            self._checking[header] = task
            task.add_done_callback(lambda _: self._checking.pop(header, None))
        # Shielded: a caller that hangs up must not cancel the check the others wait for.
        return await asyncio.shield(task)

    async def _verify(self, header: bytes, secret: str) -> _Entry:
        try:
            # A database read or a round trip to the team server: off the event loop.
            principal = await asyncio.to_thread(self.verifier.authenticate_token, secret)
            if principal.anonymous or principal.unrestricted:
                raise Unauthenticated("the tracking store accepted the token without checking it: serving with "
                                      "--auth needs a Shipyard server started with --auth")
            entry = _Entry(self._clock() + self.ttl_seconds, principal, principal.role_in(self.project), "")
        except Unauthenticated as err:
            entry = _Entry(self._clock() + self.ttl_seconds, None, None, err.message)
        # Anything else (the team server unreachable: 503) is not remembered: the next request tries again.
        self._remember(header, entry)
        return entry

    def _remember(self, header: bytes, entry: _Entry) -> None:
        if len(self._entries) >= self._max_entries:
            now = self._clock()
            self._entries = {k: v for k, v in self._entries.items() if v.expires > now}
            if len(self._entries) >= self._max_entries:  # that many live tokens: start over
                self._entries.clear()
        self._entries[header] = entry

    def forget(self) -> None:
        """Drop every remembered check: the next request of each token is checked again."""
        self._entries.clear()

    def close(self) -> None:
        closing = getattr(self.verifier, "close", None)
        if closing is not None:
            closing()


def _authorization(scope: Scope) -> bytes | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            return bytes(value)
    return None


def _bearer(header: bytes) -> str:
    kind, _, credentials = header.decode("latin-1").strip().partition(" ")
    credentials = credentials.strip()
    if kind.lower() != "bearer" or not credentials:
        raise Unauthenticated(f"unsupported Authorization header ({kind[:20]!r}): {SIGN_IN_MESSAGE}")
    parse_secret(credentials)
    return credentials


def token_verifier(store: Any) -> TokenVerifier:
    """What checks tokens for a serving process reading from ``store``: its users on a SQL store,
    the team server on a remote one. ``InvalidInput`` when no token could ever be accepted (no
    user yet), or when the store cannot tell who sends one (a server without ``--auth``)."""
    auth = getattr(store, "auth", None)
    if auth is not None:
        from shipyard.auth.service import AuthService

        if auth.count_users() == 0:
            raise InvalidInput("--auth: the tracking store has no user yet, so no API token could be accepted: "
                               "make the first admin (`shipyard server --auth` prints how), then a token "
                               "(`shipyard tokens create`)")
        return AuthService(auth, VISITOR)
    from shipyard.store.rest import RestStore

    if not isinstance(store, RestStore):
        raise InvalidInput(f"--auth needs a tracking store that keeps users (sqlite://, postgresql://, or a "
                           f"Shipyard server started with --auth), not {type(store).__name__}")
    from shipyard.auth.remote import RemoteAuth
    from shipyard.store.http import HttpClient

    remote = RemoteAuth(HttpClient(store.uri, store.transport))
    try:
        unchecked = remote.whoami()  # sent without a token: a server with --auth answers 401
    except Unauthenticated:
        return remote
    remote.close()
    raise InvalidInput(f"--auth: the Shipyard server at {store.uri} does not check who calls it (without a token "
                       f"it answers as {unchecked.name!r}), so it cannot check tokens either: start it with --auth")


def served_project(source: RegistryService | HasRegistry, uri: str, default: str) -> str:
    """The project whose members may call the model at the pinned ``uri``: its registered model's
    (``models:/NAME/VERSION``) or its run's experiment's (``runs:/``), read through ``source`` (a
    registry service, or a ``Client``); ``default`` for a folder on disk, which no store knows."""
    from shipyard.models.registry import as_registry

    store = as_registry(source).store
    if uri.startswith("models:/"):
        from shipyard.models.uri import parse_models_uri

        return store.models.get_model(parse_models_uri(uri)[0]).project
    if uri.startswith("runs:/"):
        run = store.runs.get(uri[len("runs:/"):].lstrip("/").partition("/")[0])
        return store.experiments.get(run.info.experiment_id).project
    return default
