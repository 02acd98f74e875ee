"""``shipyard server`` and access control: no open server beyond this machine by accident, and the
one-time code that makes the first admin of a server started with ``--auth``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from shipyard.auth import ANONYMOUS
from shipyard.auth.service import AuthService
from shipyard.cli import app as cli_app
from shipyard.server.app import app_from_environment
from shipyard.server.authentication import BOOTSTRAP_HASH_ENV, bootstrap_code_hash
from shipyard.store.registry import open_store
from shipyard.testing import ASGITransport

PASSWORD = "a long enough passphrase 7"


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")})
    calls: list[dict[str, Any]] = []
    # What uvicorn (and so each worker) saw in the environment, as "environ".
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: calls.append({**k, "environ": dict(os.environ)}))
    return calls


def _serve(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(cli_app, ["server", "--backend-store-uri", f"sqlite:///{tmp_path / 's.db'}",
                                        "--port", "5999", *args])


def _flat(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "shipyard.internal", "::"])
def test_a_server_open_beyond_this_machine_needs_auth(tmp_path: Path, uvicorn_calls: list[dict[str, Any]],
                                                      host: str) -> None:
    result = _serve(tmp_path, "--host", host)
    assert result.exit_code == 2, result.output
    message = _flat(result.stderr)
    assert f"refusing to listen on {host} without --auth" in message
    assert "--insecure" in message
    assert "Traceback" not in result.output
    assert uvicorn_calls == []


def test_insecure_says_what_it_means_and_serves(tmp_path: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    result = _serve(tmp_path, "--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0, result.output
    assert "anyone who can reach port 5999 can read, change and delete everything" in _flat(result.stdout).lower()
    assert [c["host"] for c in uvicorn_calls] == ["0.0.0.0"]
    assert uvicorn_calls[-1]["environ"]["SHIPYARD_SERVER_AUTH"] == "false"
    assert "SHIPYARD_SERVER_AUTH" not in os.environ  # set for the workers, then put back


def test_loopback_needs_neither(tmp_path: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    result = _serve(tmp_path)
    assert result.exit_code == 0, result.output
    assert "insecure" not in result.stdout.lower()
    assert "sign-in off" in _flat(result.stdout)
    assert BOOTSTRAP_HASH_ENV not in uvicorn_calls[-1]["environ"]


def test_auth_prints_a_bootstrap_code_once_no_user_exists(tmp_path: Path,
                                                          uvicorn_calls: list[dict[str, Any]]) -> None:
    result = _serve(tmp_path, "--auth", "--host", "0.0.0.0")
    assert result.exit_code == 0, result.output
    text = _flat(result.stdout)
    assert "sign-in required" in text
    code = re.search(r"one-time code \(.*?\): ([A-Za-z0-9_-]{24})", text)
    assert code is not None, text
    # The workers get the code's hash, never the code.
    workers = uvicorn_calls[-1]["environ"]
    assert workers[BOOTSTRAP_HASH_ENV] == bootstrap_code_hash(code.group(1))
    assert code.group(1) not in str(workers)
    assert workers["SHIPYARD_SERVER_AUTH"] == "true"
    assert BOOTSTRAP_HASH_ENV not in os.environ

    # A worker (the app factory, in the environment it is given) takes it: the code makes the first admin, once.
    os.environ.update(workers)
    app = app_from_environment()
    transport = ASGITransport(app)
    try:
        with httpx.Client(base_url="http://127.0.0.1", transport=transport) as http:
            body = {"name": "admin", "password": PASSWORD, "code": "not-the-code"}
            assert http.post("/api/v1/auth/bootstrap", json=body).status_code == 401
            body["code"] = code.group(1)
            made = http.post("/api/v1/auth/bootstrap", json=body)
            assert made.status_code == 201, made.text
            assert made.json()["user"]["admin"] is True
            again = http.post("/api/v1/auth/bootstrap", json={**body, "name": "second"})
            assert again.status_code == 409
            who = http.get("/api/v1/auth/whoami", auth=("admin", PASSWORD)).json()["principal"]
            assert (who["name"], who["admin"]) == ("admin", True)
    finally:
        transport.close()
        app.state.client.close()

    # Once a user exists, no code: an admin makes the others.
    del os.environ[BOOTSTRAP_HASH_ENV]
    result = _serve(tmp_path, "--auth")
    assert result.exit_code == 0, result.output
    assert "one-time code" not in result.stdout
    assert BOOTSTRAP_HASH_ENV not in uvicorn_calls[-1]["environ"]


def test_auth_with_existing_users_prints_no_code(tmp_path: Path, uvicorn_calls: list[dict[str, Any]]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        AuthService(store.auth, ANONYMOUS).create_user("root", password=PASSWORD, admin=True)
    finally:
        store.close()
    result = _serve(tmp_path, "--auth")
    assert result.exit_code == 0, result.output
    assert "one-time code" not in result.stdout
