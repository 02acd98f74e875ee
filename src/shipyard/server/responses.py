from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from shipyard.auth import Permission, Principal
from shipyard.auth.scoped import scoped_store
from shipyard.tracking.client import Client
from shipyard.tracking.service import TrackingService
from shipyard.wire import dumps

EMPTY = b"{}"


def json_response(payload: Any, status: int = 200) -> Response:
    """JSON already shaped by :mod:`shipyard.wire` (no second validation pass)."""
    return Response(dumps(payload) if payload is not None else EMPTY, status_code=status,
                    media_type="application/json")


def client(request: Request) -> Client:
    """The domain entry point the app was built with, acting as the request's principal.

    A principal with roles (a server with ``--auth``) sees the store through
    :func:`~shipyard.auth.scoped.scoped_store` for the route's permission: objects of projects
    it holds no role in do not exist for it, lists and searches leave them out, and what it
    reaches is noted for the audit log. An unrestricted principal uses the store itself."""
    state = request.state
    made: Client | None = getattr(state, "shipyard_client", None)
    if made is not None:
        return made
    base: Client = request.app.state.client
    principal: Principal | None = getattr(state, "principal", None)
    if principal is None:
        return base
    if principal.unrestricted:
        made = base.acting_as(principal)
    else:
        permission = getattr(state, "permission", Permission.READ)
        scoped = scoped_store(base.store, principal, permission, touched=getattr(state, "touched", None))
        made = base.acting_as(principal, store=scoped)
    state.shipyard_client = made
    return made


def tracking(request: Request) -> TrackingService:
    """The tracking service (experiments, runs, metrics, artifacts) as the request's principal."""
    return client(request).tracking
