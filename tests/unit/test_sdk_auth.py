"""The SDK's identity on a server: the credentials file ``shipyard login`` keeps, the bearer token
and project it sends, and what a 401 tells the user to do."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.auth.credentials import (
    credentials_path,
    forget_token,
    load_credentials,
    save_token,
    server_key,
    stored_token,
)
from shipyard.config import Settings
from shipyard.errors import InvalidInput, NotFound, Unauthenticated
from shipyard.store.http import HttpClient
from shipyard.store.rest import RestStore
from tests.support import uvicorn_thread

TOKEN = "shy_0123456789abcdef_" + "s" * 40


# -- the credentials file ---------------------------------------------------------------------
def test_the_credentials_file_follows_xdg_config_home(tmp_path: Path) -> None:
    assert credentials_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "shipyard" / "credentials.json"
    home_default = credentials_path({"XDG_CONFIG_HOME": "relative/dir"})  # invalid by the spec: ignored
    assert home_default == Path.home() / ".config" / "shipyard" / "credentials.json"


def test_a_token_is_kept_per_server_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "shipyard" / "credentials.json"
    save_token("HTTP://Server:5000/", TOKEN, user="alice", token_id="0123456789abcdef", path=path)
    save_token("https://other.example", "shy_ffffffffffffffff_other", user="bob", token_id="f" * 16, path=path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stored_token("http://server:5000", path) == TOKEN
    assert stored_token("https://other.example/", path) == "shy_ffffffffffffffff_other"
    assert stored_token("http://nobody:1", path) is None
    assert stored_token("sqlite:///x.db", path) is None
    assert set(load_credentials(path)) == {"http://server:5000", "https://other.example"}
    assert [p.name for p in path.parent.iterdir()] == ["credentials.json"]  # no temporary file left behind

    assert forget_token("http://server:5000", path)["user"] == "alice"
    assert forget_token("http://server:5000", path) is None
    assert stored_token("http://server:5000", path) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_damaged_credentials_file_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "credentials.json"
    path.write_text("{not json")
    with pytest.raises(InvalidInput, match="shipyard login"):
        load_credentials(path)


def test_a_server_key_must_be_an_http_url() -> None:
    assert server_key("http://Host:5000/") == "http://host:5000"
    with pytest.raises(InvalidInput, match="http"):
        server_key("sqlite:///x.db")


# -- headers -----------------------------------------------------------------------------------
def _recording_transport(seen: list[httpx.Request], status: int = 404) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        code = {404: "NOT_FOUND", 401: "UNAUTHENTICATED"}[status]
        return httpx.Response(status, json={"error_code": code, "message": "no such thing"})

    return httpx.MockTransport(handler)


def test_the_rest_store_sends_the_bearer_token_and_the_project() -> None:
    seen: list[httpx.Request] = []
    store = RestStore("http://srv:5000", transport=_recording_transport(seen), token=TOKEN, project="churn",
                      retries=0)
    with pytest.raises(NotFound):
        store.experiments.get("1")
    store.close()
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert seen[0].headers["x-shipyard-project"] == "churn"


def test_without_a_token_nothing_is_sent() -> None:
    seen: list[httpx.Request] = []
    store = RestStore("http://srv:5000", transport=_recording_transport(seen), retries=0)
    with pytest.raises(NotFound):
        store.experiments.get("1")
    store.close()
    assert "authorization" not in seen[0].headers
    assert "x-shipyard-project" not in seen[0].headers


def test_a_401_tells_the_user_how_to_sign_in() -> None:
    store = RestStore("http://srv:5000", transport=_recording_transport([], status=401), retries=0)
    with pytest.raises(Unauthenticated) as caught:
        store.experiments.get("1")
    store.close()
    assert "no such thing" in str(caught.value)
    assert "shipyard login http://srv:5000" in str(caught.value)
    assert "SHIPYARD_TRACKING_TOKEN" in str(caught.value)


def test_a_refused_password_is_not_answered_with_a_hint_to_sign_in() -> None:
    http = HttpClient("http://srv:5000", _recording_transport([], status=401), retries=0, basic=("al", "pw"))
    with pytest.raises(Unauthenticated) as caught:
        http.call("POST", "/api/v1/auth/tokens", json={})
    http.close()
    assert str(caught.value) == "no such thing"


@pytest.mark.parametrize("token", ["shy_abc def", "tökén", " "], ids=["space", "non-ascii", "blank"])
def test_a_token_that_cannot_be_a_header_is_refused_before_sending(token: str) -> None:
    with pytest.raises(InvalidInput, match="SHIPYARD_TRACKING_TOKEN"):
        HttpClient("http://srv:5000", None, token=token)


# -- the SDK picks the token up ----------------------------------------------------------------
@pytest.fixture
def echo_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server that records each request's headers and answers 404."""
    seen: list[dict[str, str]] = []
    lock = threading.Lock()

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        with lock:
            seen.append({k.decode(): v.decode() for k, v in scope["headers"]})
        body = json.dumps({"error_code": "NOT_FOUND", "message": "nothing here"}).encode()
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    with uvicorn_thread(app) as url:
        yield url, seen


def test_the_sdk_sends_the_configured_token_to_the_store_and_the_artifact_proxy(
        echo_server: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = echo_server
    settings = Settings.resolve(env={"SHIPYARD_TRACKING_TOKEN": TOKEN, "SHIPYARD_PROJECT": "churn"},
                                tracking_uri=url)
    assert TOKEN not in repr(settings)
    client = shipyard.Client(settings=settings)
    try:
        with pytest.raises(NotFound):
            client.get_experiment("1")
        with pytest.raises(NotFound):
            client.artifacts.list("0" * 32)
    finally:
        client.close()
    assert len(seen) == 2
    for headers in seen:
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["x-shipyard-project"] == "churn"


def test_without_a_configured_token_the_sdk_uses_the_one_login_kept(
        echo_server: tuple[str, list[dict[str, str]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, seen = echo_server
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    save_token(url, TOKEN, user="alice", token_id="0123456789abcdef")
    client = shipyard.Client(settings=Settings.resolve(env={}, tracking_uri=url + "/"))
    try:
        with pytest.raises(NotFound):
            client.get_experiment("1")
    finally:
        client.close()
    assert seen[-1]["authorization"] == f"Bearer {TOKEN}"
    assert "x-shipyard-project" not in seen[-1]
