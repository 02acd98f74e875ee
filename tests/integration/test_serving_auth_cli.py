"""``shipyard serve`` and ``shipyard deploy run`` with ``--auth``: no model server open beyond this machine by
accident, the guard wired into the app each command (or each worker) serves, and a store that cannot check
tokens stopping the command before any port opens. uvicorn is replaced by a function that calls the app it
was given in-process, so each case takes a fraction of a second."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shipyard.cli import app as cli_app
from tests.integration.serving_auth_world import World, build_world, serving

COMMANDS = {"serve": ["serve", "models:/alpha-model/1"], "deploy run": ["deploy", "run", "alpha-api"]}
PREDICT = {"serve": "/v1/models/alpha-model/predict", "deploy run": "/v1/models/alpha-api/predict"}
ROW = {"inputs": [{"x": 4.0}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("serving-auth-cli"))
    yield built
    built.client.close()


@pytest.fixture
def uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, dict[str, Any]]]:
    """What uvicorn.run was called with; ``probe`` (set by a test) runs against the app while "serving"."""
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")})
    calls: list[tuple[Any, dict[str, Any]]] = []

    def run(app: Any, **options: Any) -> None:
        calls.append((app, options))
        probe = getattr(run, "probe", None)
        if probe is not None:
            if isinstance(app, str):  # workers: what each worker process would build
                module, _, factory = app.partition(":")
                app = getattr(__import__(module, fromlist=[factory]), factory)()
            calls[-1] = (app, {**options, "answers": asyncio.run(probe(app))})

    monkeypatch.setattr("uvicorn.run", run)
    monkeypatch.setattr("shipyard.cli.reuseport.run", run)  # --workers where SO_REUSEPORT exists
    return calls


def _invoke(world: World, command: str, *args: str, env: dict[str, str] | None = None) -> Any:
    settings = world.client.settings
    return CliRunner().invoke(cli_app, ["--tracking-uri", settings.tracking_uri, "--artifact-uri",
                                        settings.artifact_uri, *COMMANDS[command], "--port", "8765", *args], env=env)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _prober(world: World, command: str) -> Callable[[Any], Any]:
    async def probe(app: Any) -> dict[str, int]:
        async with serving(app) as http:
            return {
                "live": (await http.get("/v2/health/live")).status_code,
                "none": (await http.post(PREDICT[command], json=ROW)).status_code,
                "viewer": (await http.post(PREDICT[command], json=ROW, headers=world.headers("viewer"))).status_code,
                "other": (await http.post(PREDICT[command], json=ROW, headers=world.headers("other"))).status_code,
            }

    return probe


@pytest.mark.parametrize("command", COMMANDS)
def test_a_model_server_open_beyond_this_machine_needs_auth(world: World, uvicorn: list[Any], command: str) -> None:
    refused = _invoke(world, command, "--host", "0.0.0.0")
    assert refused.exit_code == 2, refused.output
    assert "refusing to listen on 0.0.0.0 without --auth" in _flat(refused.stderr)
    assert "--insecure" in refused.stderr
    assert "Traceback" not in refused.output
    assert uvicorn == []

    insecure = _invoke(world, command, "--host", "0.0.0.0", "--insecure")
    assert insecure.exit_code == 0, insecure.output
    assert "anyone who can reach port 8765 can call the" in _flat(insecure.stdout).lower()
    assert "no token needed" in _flat(insecure.stdout)
    assert [options["host"] for _, options in uvicorn] == ["0.0.0.0"]


@pytest.mark.parametrize("command", COMMANDS)
def test_auth_puts_every_request_behind_a_token(world: World, uvicorn: list[Any], command: str) -> None:
    uvicorn_run = __import__("uvicorn").run
    uvicorn_run.probe = _prober(world, command)
    result = _invoke(world, command, "--auth", "--host", "0.0.0.0")  # --auth: no --insecure needed
    assert result.exit_code == 0, result.output
    assert "API tokens required (project alpha)" in _flat(result.stdout)
    assert "insecure" not in result.stdout.lower()
    [(_, options)] = uvicorn
    assert options["answers"] == {"live": 200, "none": 401, "viewer": 200, "other": 404}


def test_the_setting_and_its_cache_time_come_from_the_environment(world: World, uvicorn: list[Any]) -> None:
    uvicorn_run = __import__("uvicorn").run
    seen: list[float] = []

    async def probe(app: Any) -> None:
        guard = app.state.guard
        seen.append(guard.ttl_seconds)

    uvicorn_run.probe = probe
    result = _invoke(world, "deploy run", env={"SHIPYARD_SERVING_AUTH": "true",
                                               "SHIPYARD_SERVING_TOKEN_CACHE_SECONDS": "0.5"})
    assert result.exit_code == 0, result.output
    assert seen == [0.5]


@pytest.mark.parametrize("command", COMMANDS)
def test_workers_each_check_tokens(world: World, uvicorn: list[Any], command: str) -> None:
    __import__("uvicorn").run.probe = _prober(world, command)
    result = _invoke(world, command, "--auth", "--workers", "2")
    assert result.exit_code == 0, result.output
    [(_, options)] = uvicorn
    assert options["workers"] == 2
    assert options["answers"] == {"live": 200, "none": 401, "viewer": 200, "other": 404}


def test_a_store_without_users_stops_the_command(world: World, uvicorn: list[Any], tmp_path: Path) -> None:
    folder = world.client.download_model("models:/alpha-model/1", tmp_path / "model")
    result = CliRunner().invoke(cli_app, ["--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}", "serve", str(folder),
                                          "--auth"])
    assert result.exit_code == 2, result.output
    assert "the tracking store has no user yet" in _flat(result.stderr)
    assert "Traceback" not in result.output
    assert uvicorn == []
