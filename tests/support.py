"""Helpers every test folder shares: a free port, waiting for a state, a server run as a real
process, a server run in-process, and the pinned wire shape of an API error.

One copy of each, so a fix (a port taken between probing and binding, a poll that never gives
up) lands everywhere at once. ``tests/ci.py`` stays separate: it decides what a missing tool does
under CI, and ``tests/unit/test_ci_guards.py`` pins that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest

__all__ = [
    "BASE",
    "ENVELOPE_KEYS",
    "GCS_BUCKET",
    "LAUNCH",
    "OCTET",
    "InProcessServer",
    "ServerProcess",
    "assert_error_envelope",
    "clean_environment",
    "free_port",
    "shipyard_command",
    "uvicorn_thread",
    "wait_for",
    "wait_for_async",
]

T = TypeVar("T")

BASE = "http://testserver"  # the host an in-process server answers to (its allowed hosts say so)
OCTET = {"content-type": "application/octet-stream"}
GCS_BUCKET = "shipyard-test"  # the bucket the session's GCS emulator (``gcs_emulator`` fixture) creates
# ``python -c LAUNCH …`` runs the CLI without relying on a console script being on the PATH.
LAUNCH = "from shipyard.cli import main; main()"
# A port free when probed may be taken before the server binds it; a first start tries this many.
PORT_TRIES = 5
ENVELOPE_KEYS = frozenset({"error_code", "message"})


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _attempts(timeout: float, what: str | Callable[[], str]) -> Iterator[None]:
    """One step per attempt of a wait; fails the test, naming ``what``, once ``timeout`` has passed
    (the first attempt always runs)."""
    deadline = time.monotonic() + timeout
    while True:
        yield
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what() if callable(what) else what}")


def wait_for(condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
             what: str | Callable[[], str] = "the condition") -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail the test after
    ``timeout`` seconds naming ``what`` (a callable is evaluated then, to report the latest state).

    An exception raised by ``condition`` (an ``assert`` that the process is still alive) ends the
    wait at once: waiting out the timeout for a state that can no longer come only hides why."""
    for _ in _attempts(timeout, what):
        if value := condition():
            return value
        time.sleep(interval)
    raise AssertionError("unreachable")  # pragma: no cover - _attempts fails or goes on


async def wait_for_async(condition: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.02,
                         what: str | Callable[[], str] = "the condition") -> T:
    """:func:`wait_for` inside an event loop: sleeps with ``asyncio.sleep`` so the tasks that should
    bring the state about keep running."""
    for _ in _attempts(timeout, what):
        if value := condition():
            return value
        await asyncio.sleep(interval)
    raise AssertionError("unreachable")  # pragma: no cover - _attempts fails or goes on


@contextlib.contextmanager
def uvicorn_thread(app: Any, *, name: str = "test-server", timeout: float = 10.0) -> Iterator[str]:
    """``app`` served by a real uvicorn on a free loopback port in a background thread of this
    process; yields its URL and stops it afterwards (the app's own resources are the caller's)."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
                                           ws="none"))
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=timeout, interval=0.02, what="uvicorn to start")
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def assert_error_envelope(response: httpx.Response, status: int, *, extra_keys: frozenset[str] = frozenset(),
                          nosniff: bool = True) -> dict[str, Any]:
    """The pinned wire shape of every API error (datasette's test_error_shape, for our API):
    ``{error_code, message[, details]}`` as JSON, the status the error class declares, no traceback.
    ``extra_keys`` are a protocol's own fields beside it (the Open Inference Protocol's ``error``);
    ``nosniff=False`` for the serving app, which does not send the tracking server's security headers.
    Returns the body for further checks."""
    from shipyard.errors import ShipyardError, error_class_for_code

    assert response.status_code == status, response.text
    assert response.headers.get("content-type") == "application/json", response.headers
    if nosniff:
        assert response.headers.get("x-content-type-options") == "nosniff", response.headers
    body = response.json()
    assert ENVELOPE_KEYS <= set(body) <= ENVELOPE_KEYS | {"details"} | extra_keys, body
    assert isinstance(body["error_code"], str)
    assert body["error_code"].isupper()
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body.get("details", {}), dict)
    declared = error_class_for_code(body["error_code"])
    if declared is not ShipyardError:  # a domain code: the body's class and the HTTP status agree
        assert declared.http_status == status, body
    for marker in ("Traceback", 'File "/'):
        assert marker not in response.text
    return body


def html_page(response: httpx.Response, status: int = 200) -> str:
    """The body of a web UI page answered with ``status``, as HTML under the UI's script policy."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    return response.text


def shipyard_command(*args: str) -> list[str]:
    """The argv of ``shipyard ARGS…`` run by this interpreter."""
    return [sys.executable, "-c", LAUNCH, *args]


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``SHIPYARD_*`` setting (a developer's own must not
    leak into a server under test), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(extra or {})
    return env


class ServerProcess:
    """A server command run as a real process on a loopback port, ready once ``health`` answers 200.

    ``argv`` is the command without its port; ``--port N`` is appended. Output goes to files in
    ``root`` (a full pipe would stall the server), one pair per start: ``<name>-<start>.out`` and
    ``.err``. A first :meth:`start` moves to another port when the one picked was taken before the
    server bound it; a later start (a restart after :meth:`kill` or :meth:`stop`) keeps its port,
    the only one its clients know. Use as a context manager to start and stop it.
    """

    def __init__(self, argv: Sequence[str], root: Path, *, env: Mapping[str, str] | None = None,
                 health: str = "/health", name: str = "server", timeout: float = 30.0) -> None:
        self.argv = list(argv)
        self.root = root
        self.env = clean_environment(env)
        self.health = health
        self.name = name
        self.timeout = timeout
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def out_path(self, start: int | None = None) -> Path:
        return self.root / f"{self.name}-{start or self.starts}.out"

    def err_path(self, start: int | None = None) -> Path:
        return self.root / f"{self.name}-{start or self.starts}.err"

    def start(self, timeout: float | None = None) -> ServerProcess:
        """Run the server and return once it is ready; the test fails with its output otherwise."""
        self.starts += 1
        tries = PORT_TRIES if self.starts == 1 else 1
        for attempt in range(tries):
            if attempt:
                self.port = free_port()
            if self._launch(self.timeout if timeout is None else timeout):
                return self
        pytest.fail(f"port {self.port} was taken ({tries} tries):\n{self.logs(tail=3000)}")

    def _launch(self, timeout: float) -> bool:
        """Run on ``self.port``: True once ready, False if the port was in use."""
        with self.out_path().open("wb") as out, self.err_path().open("wb") as err:
            self.proc = subprocess.Popen([*self.argv, "--port", str(self.port)], stdout=out, stderr=err,
                                         env=self.env, cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Checked before asking for health: whoever holds the port would answer for us. Some
            # servers (the GCS emulator) report the taken port and then hang instead of exiting.
            if "address already in use" in self.logs().lower():
                self.stop()
                return False
            if self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.logs(tail=4000)}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}{self.health}", timeout=1).status_code == 200:
                    return True
            time.sleep(0.05)
        self.stop()  # `with` never reaches __exit__ when __enter__ fails: nothing else would end it
        pytest.fail(f"{self.name} did not answer {self.health} within {timeout:g}s:\n{self.logs(tail=4000)}")

    def assert_alive(self) -> None:
        """Fail with the server's output if it has exited (call it inside a wait)."""
        assert self.proc is not None, "the server was never started"
        assert self.proc.poll() is None, self.logs(tail=4000)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would end it; nothing is flushed."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM, as Kubernetes stops a pod (uvicorn shuts down gracefully, workers too); SIGKILL
        after 15 s. Returns the exit code (``None`` when it never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def logs(self, start: int | None = None, *, tail: int | None = None) -> str:
        """The output of start number ``start`` (default: the latest), stdout then stderr; with
        ``tail``, only the last ``tail`` characters of each."""
        texts = []
        for path in (self.out_path(start), self.err_path(start)):
            text = path.read_text(errors="replace") if path.exists() else ""
            texts.append(text[-tail:] if tail else text)
        return "\n".join(texts)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


class InProcessServer:
    """The Shipyard server app in this process, on SQLite and a local artifact folder below
    ``root``, reached without sockets through :class:`shipyard.testing.ASGITransport`.

    ``http`` is a plain httpx client of it; :meth:`client` is the SDK pointed at it (artifacts go
    through its proxy).
    """

    def __init__(self, root: Path, **settings: Any) -> None:
        from shipyard.config import Settings
        from shipyard.server import create_app
        from shipyard.testing import ASGITransport

        self.root = root
        self.artifact_root = root / "server-artifacts"
        resolved = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                                    artifact_uri=str(self.artifact_root), server_allowed_hosts="testserver",
                                    **settings)
        self.app = create_app(resolved)
        self.transport = ASGITransport(self.app)
        self.http = httpx.Client(base_url=BASE, transport=self.transport)

    def client(self) -> Any:
        """A ``shipyard.Client`` of the server, with artifacts wired automatically; the caller closes it."""
        import shipyard
        from shipyard.store.rest import RestStore

        return shipyard.Client(tracking_uri=BASE, store=RestStore(BASE, transport=self.transport))

    def close(self) -> None:
        self.app.state.client.close()
        self.transport.close()

    def __enter__(self) -> InProcessServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

