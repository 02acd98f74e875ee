"""Test tooling shipped with Shipyard: talk to a server app in-process, without sockets.

    app = shipyard.server.create_app(settings)
    store = RestStore("http://testserver", transport=ASGITransport(app))

:class:`ASGITransport` is a synchronous ``httpx`` transport that runs an ASGI app on an event
loop in a background thread (``httpx``'s own ASGI transport is async-only).
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio.from_thread
import httpx

__all__ = ["ASGITransport"]


class ASGITransport(httpx.BaseTransport):
    def __init__(self, app: Any, *, raise_app_exceptions: bool = False) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._stack = contextlib.ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        response = await self._inner.handle_async_request(forwarded)
        content = await response.aread()
        return httpx.Response(response.status_code, headers=response.headers, content=content,
                              request=request)

    def close(self) -> None:
        self._stack.close()
