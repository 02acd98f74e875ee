from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.responses import Response

from shipyard.tracking.client import Client
from shipyard.wire import dumps

EMPTY = b"{}"


def json_response(payload: Any, status: int = 200) -> Response:
    """JSON already shaped by :mod:`shipyard.wire` (no second validation pass)."""
    return Response(dumps(payload) if payload is not None else EMPTY, status_code=status,
                    media_type="application/json")


def client(request: Request) -> Client:
    """The domain entry point the app was built with, acting as the request's principal."""
    base: Client = request.app.state.client
    principal = getattr(request.state, "principal", None)
    return base if principal is None else base.acting_as(principal)
