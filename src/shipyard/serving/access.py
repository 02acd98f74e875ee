"""Request ids and the access log: one pure-ASGI middleware around the serving app.

The request id is the caller's ``x-request-id`` when it sends a usable one (up to 128 visible
ASCII characters), else a new UUID4 hex; it is echoed in the response's ``x-request-id`` and
put in ``scope["state"]["request_id"]`` for handlers (error logs, the protocol's ``id``).

Each request gets one log line on the ``shipyard.serving.access`` logger, with the fields also
given as record attributes (``extra``) so a JSON log formatter can emit them as keys. Health,
readiness and metrics requests (probes and scrapes, several a second, and 503 by design while
the model loads) log at DEBUG.

The lines are written by a background thread, not by the request: the event loop appends each
request's fields to a list and hands what gathered to that thread in one step, 50 ms after the
first line (:data:`HAND_OVER_SECONDS`), so formatting, the handlers' locks and the write to the
terminal or file stay off the request path and the thread wakes a few times a second, not once
per turn of the loop. Everything queued is written before the app's shutdown completes.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import re
import threading
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.serving.encoding import uuid4_hex

__all__ = ["REQUEST_ID_HEADER", "AccessMiddleware", "begin_request", "flush_access_log", "log_request", "request_id_of"]

REQUEST_ID_HEADER = "x-request-id"
_USABLE_ID = re.compile(r"[!-~]{1,128}")
_QUIET_PATHS = frozenset({"/v2/health/live", "/v2/health/ready", "/ping", "/health", "/metrics"})
access_log = logging.getLogger("shipyard.serving.access")
# Lines are handed to the writer thread at most this often: each hand-over wakes that thread, and
# under load a wake-up per turn of the event loop cost more than writing the lines.
HAND_OVER_SECONDS = 0.05


def request_id_of(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


_Line = tuple[int, str, str, int, float, str, Any]


class _AccessWriter:
    """Writes queued access lines on a daemon thread; :meth:`add` is for the event loop only."""

    def __init__(self) -> None:
        self._turn: list[_Line] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None  # the loop a hand-over is pending on
        self._queue: queue.SimpleQueue[list[_Line] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def add(self, line: _Line) -> None:
        self._turn.append(line)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: write it now
            self._hand_over()
            return
        if self._scheduled_on is not loop:  # (a loop that closed with the hand-over pending is not this one)
            self._scheduled_on = loop
            loop.call_later(HAND_OVER_SECONDS, self._hand_over)

    def _hand_over(self) -> None:
        self._scheduled_on = None
        lines, self._turn = self._turn, []
        if not lines:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="shipyard-access-log", daemon=True)
            self._thread.start()
        self._idle.clear()
        self._queue.put(lines)

    def _run(self) -> None:
        while True:
            lines = self._queue.get()
            if lines is None:
                return
            for line in lines:
                _write(line)
            if self._queue.empty():
                self._idle.set()

    def drain(self, timeout: float = 5.0) -> None:
        """Write what is queued (the current loop turn's lines too) before returning. Call it on
        the event loop's thread or once the loop no longer serves."""
        self._hand_over()
        self._idle.wait(timeout)


def _write(line: _Line) -> None:
    level, method, path, status, elapsed_ms, request_id, client = line
    try:
        access_log.log(level, "%s %s %d %.2fms request_id=%s", method, path, status, elapsed_ms, request_id,
                       extra={"http_method": method, "http_path": path, "http_status": status,
                              "duration_ms": round(elapsed_ms, 3), "request_id": request_id,
                              "client_addr": f"{client[0]}:{client[1]}" if client else None})
    except Exception:  # pragma: no cover - logging reports its own handler errors; never kill the writer
        pass


# One writer per process: every app's lines go to the same logger.
_WRITER = _AccessWriter()


def flush_access_log(timeout: float = 5.0) -> None:
    """Wait until every access line queued so far is written (tests, and the app's shutdown)."""
    _WRITER.drain(timeout)


def begin_request(scope: Scope) -> str:
    """The request's id (the caller's usable ``x-request-id``, else a new UUID4 hex), recorded in
    ``scope["state"]`` for the handlers."""
    given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
    request_id = given if _USABLE_ID.fullmatch(given) else uuid4_hex()
    scope.setdefault("state", {})["request_id"] = request_id
    return request_id


def log_request(scope: Scope, status: int, started: float, request_id: str) -> None:
    """Queue the request's access line (written off the event loop, see the module docstring)."""
    path = scope["path"]
    level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
    if access_log.isEnabledFor(level):
        _WRITER.add((level, scope["method"], path, status, (time.perf_counter() - started) * 1000, request_id,
                     scope.get("client")))


class AccessMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._writer = _WRITER

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = begin_request(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (REQUEST_ID_HEADER.encode(), request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log_request(scope, status, start, request_id)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, with the queued access lines written before shutdown completes."""

        async def send_after_drain(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown."):
                self._writer._hand_over()
                await asyncio.to_thread(self._writer.drain)
            await send(message)

        await self.app(scope, receive, send_after_drain)
