"""The prediction routes straight from the path to the handler: the serving hot path.

Through Starlette, every request passes its error middleware, the access middleware, its
exception middleware, the router (which tries the routes' regular expressions in turn:
``/invocations`` is the last of fifteen) and the route's request and exception wrappers before
its handler runs, and each layer wraps ``send`` again. Under load that cost as much per request as
decoding and checking the body. :class:`ServingApp` is the serving apps' Starlette: a ``POST`` to
a prediction route (``/invocations``, ``/v1/models/{name}/predict``,
``/v2/models/{name}[/versions/{version}]/infer``) is matched by splitting its path, and the
route's own endpoint (the same function Starlette would call: error boundary, metrics, handler)
answers it, with the access log line and the ``x-request-id`` header of
:class:`~shipyard.serving.access.AccessMiddleware`. The answers, errors and status codes are the
same as Starlette's way, which takes everything else: other methods (405), unknown paths (404),
other routes, a mounted app (``root_path``), and every request of an app with a guard (``--auth``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from shipyard.serving.access import REQUEST_ID_HEADER, begin_request, log_request

__all__ = ["PREDICTION_ROUTES", "ServingApp"]

# The route names (serving.app.serving_routes) that take the fast path.
PREDICTION_ROUTES = frozenset({"predict", "infer", "version_infer", "invocations"})

Endpoint = Callable[[Request], Awaitable[Response]]
_ID_HEADER = REQUEST_ID_HEADER.encode()


class _PathTable:
    """``POST`` routes by path: exact paths in a dict, templates (``{param}`` segments, which
    match one non-empty segment like Starlette's ``str`` convertor) by their number of segments."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._exact: dict[str, Endpoint] = {}
        self._templates: dict[int, list[tuple[list[str], Endpoint]]] = {}
        for route in routes:
            if not isinstance(route, Route) or route.name not in PREDICTION_ROUTES or route.methods != {"POST"}:
                continue
            if "{" not in route.path:
                self._exact[route.path] = route.endpoint
            else:
                segments = route.path.split("/")
                self._templates.setdefault(len(segments), []).append((segments, route.endpoint))

    def match(self, path: str) -> tuple[Endpoint, dict[str, str]] | None:
        endpoint = self._exact.get(path)
        if endpoint is not None:
            return endpoint, {}
        parts = path.split("/")
        for segments, endpoint in self._templates.get(len(parts), ()):
            params = {}
            for want, got in zip(segments, parts, strict=True):
                if want.startswith("{"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return endpoint, params
        return None


class ServingApp(Starlette):
    """Starlette with the prediction routes of ``routes`` answered directly (``fast=True``)."""

    def __init__(self, *, routes: Sequence[BaseRoute], fast: bool, **options: Any) -> None:
        super().__init__(routes=list(routes), **options)
        self._fast = _PathTable(routes) if fast else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._fast is not None
            and scope["type"] == "http"
            and scope["method"] == "POST"
            and not scope.get("root_path")
        ):
            found = self._fast.match(scope["path"])
            if found is not None:
                scope["app"] = self
                await _answer(found[0], found[1], scope, receive, send)
                return
        await super().__call__(scope, receive, send)


async def _answer(endpoint: Endpoint, params: dict[str, str], scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    request_id = begin_request(scope)
    scope["path_params"] = params
    status = 500
    try:
        response = await endpoint(Request(scope, receive, send))
        status = response.status_code
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*response.raw_headers, (_ID_HEADER, request_id.encode("latin-1"))],
            }
        )
        await send({"type": "http.response.body", "body": response.body})
    finally:
        log_request(scope, status, started, request_id)
