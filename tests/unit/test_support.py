"""The shared test helpers (``tests/support.py``) do what the tests relying on them assume: a wait
gives up and says on what, a server launcher moves off a taken port on its first start only, and the
error-envelope check refuses what is not the pinned shape."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import ServerProcess, assert_error_envelope, free_port, wait_for

# A minimal server taking ``--port``: /health answers 200. Binding a taken port raises
# "Address already in use", as uvicorn reports it.
TINY_SERVER = """
import argparse, http.server
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", parser.parse_args().port), Health).serve_forever()
"""


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_wait_for_returns_the_first_truthy_value_and_fails_naming_what() -> None:
    calls: list[int] = []

    def third_time() -> str | None:
        calls.append(1)
        return "ready" if len(calls) >= 3 else None

    assert wait_for(third_time, interval=0.01) == "ready"
    assert len(calls) == 3
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="waiting for the answer 42"):
        wait_for(lambda: None, timeout=0.2, interval=0.01, what=lambda: f"the answer {6 * 7}")
    assert 0.2 <= time.monotonic() - started < 5


def test_a_first_start_moves_off_a_taken_port_and_a_restart_keeps_its_own(tmp_path: Path) -> None:
    server = ServerProcess([sys.executable, "-c", TINY_SERVER], tmp_path, name="tiny")
    with listening_socket() as taken:
        server.port = taken.getsockname()[1]
        try:
            server.start()
            assert server.port != taken.getsockname()[1]
            assert httpx.get(f"{server.url}/health").status_code == 200
            port = server.port
            server.kill()
            server.start()
            assert (server.port, server.starts) == (port, 2)  # its clients know only this port
            assert httpx.get(f"{server.url}/health").status_code == 200
        finally:
            server.stop()


def test_a_restart_whose_port_is_taken_fails(tmp_path: Path) -> None:
    server = ServerProcess([sys.executable, "-c", TINY_SERVER], tmp_path, name="tiny")
    try:
        server.start()
        server.kill()
        with socket.socket() as thief:
            thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # the health checks' connections linger
            thief.bind(("127.0.0.1", server.port))
            thief.listen()
            with pytest.raises(pytest.fail.Exception, match=rf"port {server.port} was taken \(1 tries\)"):
                server.start()
    finally:
        server.stop()


def test_a_server_that_exits_fails_with_its_output(tmp_path: Path) -> None:
    server = ServerProcess([sys.executable, "-c", "import sys; print('bad config'); sys.exit(3)"], tmp_path,
                           name="broken")
    with pytest.raises(pytest.fail.Exception, match=r"(?s)broken exited with 3.*bad config"):
        server.start()


def test_a_server_that_never_gets_healthy_is_stopped_before_the_test_fails(tmp_path: Path) -> None:
    # ``with server:`` never reaches __exit__ when the start fails: the launcher itself must end it
    server = ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, name="stuck",
                           timeout=0.5)
    with pytest.raises(pytest.fail.Exception, match=r"stuck did not answer /health within 0.5s"):
        server.start()
    assert server.proc is not None
    assert server.proc.poll() is not None


def envelope(status: int, body: dict[str, object], **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"x-content-type-options": "nosniff", **headers})


def test_the_error_envelope_check() -> None:
    body = assert_error_envelope(envelope(404, {"error_code": "NOT_FOUND", "message": "no run 'x'"}), 404)
    assert body["message"] == "no run 'x'"
    bad = [
        (envelope(404, {"error_code": "NOT_FOUND", "message": "no run"}), 400),  # another status
        (envelope(400, {"error_code": "NOT_FOUND", "message": "no run"}), 400),  # the code's own status is 404
        (envelope(400, {"error_code": "INVALID_INPUT"}), 400),  # no message
        (envelope(400, {"error_code": "invalid", "message": "m"}), 400),  # codes are upper case
        (envelope(400, {"error_code": "INVALID_INPUT", "message": "m", "trace": "x"}), 400),  # unknown key
        (envelope(500, {"error_code": "INTERNAL", "message": "Traceback (most recent call last)"}), 500),
        (httpx.Response(400, json={"error_code": "INVALID_INPUT", "message": "m"}), 400),  # no nosniff
    ]
    for response, status in bad:
        with pytest.raises(AssertionError):
            assert_error_envelope(response, status)
