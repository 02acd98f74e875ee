"""``shipyard monitor``: create, run, list, status, history, report, delete, and bad input."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import shipyard
from shipyard.auth import Principal
from shipyard.cli import app
from shipyard.deploy.rollout import DeploymentService
from tests.unit.monitor_helpers import HOUR, features, log_predictions, make_world, webhook_receiver


@dataclass
class World:
    client: shipyard.Client
    tracking_uri: str
    artifact_uri: str

    def invoke(self, *args: str) -> Result:
        return CliRunner().invoke(app, ["--tracking-uri", self.tracking_uri, "--artifact-uri", self.artifact_uri,
                                        *args], env={"COLUMNS": "250"})

    def ok(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def fails(self, exit_code: int, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == exit_code, result.output
        assert "Traceback" not in result.output
        assert result.stderr.startswith("Error: ")
        assert len(result.stderr.strip().splitlines()) == 1
        return result.stderr


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    client = make_world(tmp_path)
    yield World(client, f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts"))
    client.close()


def test_create_run_and_read_a_monitor(world: World, tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    first = (now - 3 * HOUR) // HOUR * HOUR
    with webhook_receiver() as hook:
        out = world.ok("monitor", "create", "churn-drift", "--deployment", "churn-api", "--window", "1h",
                       "--reference", "training", "--metric", "f1", "--min", "f1=0.80", "--since", "3h",
                       "--alert", f"webhook:{hook.url}/secret-token", "--alert", "log")
        assert "Created monitor churn-drift of deployment churn-api: windows of 1h against churn-train@1" in out
        log_predictions(world.client, first, features(300, 40))
        log_predictions(world.client, first + HOUR, features(300, 2, age_shift=8))
        log_predictions(world.client, first + 2 * HOUR, features(300, 3).rename(columns={"age": "years"}),
                        outputs=[0] * 300)
        out = world.ok("monitor", "run", "--once")
        assert len(hook.received) == 1
    assert "Evaluated windows" in out
    assert "breach" in out
    assert "FIRING → webhook:http://127.0.0.1:" in out
    assert "/…: delivered" in out
    assert "secret-token" not in out

    listed = world.ok("monitor", "list")
    assert "churn-drift" in listed
    assert "FIRING" in listed
    assert "churn-train@1" in listed
    assert json.loads(world.ok("monitor", "list", "--json"))[0]["state"] == "FIRING"

    status = world.ok("monitor", "status", "churn-drift")
    assert "Monitor churn-drift" in status
    assert "f1 ≥ 0.8" in status
    assert "Recent alerts" in status
    assert "delivered" in status
    assert "logged" in status
    assert "secret-token" not in status

    history = world.ok("monitor", "history", "churn-drift")
    assert "input drift in age" in history
    rows = json.loads(world.ok("monitor", "history", "churn-drift", "--json"))
    assert [(r["window_start"], r["status"], r["state"]) for r in rows] == \
        [(first, "ok", "OK"), (first + HOUR, "breach", "FIRING"), (first + 2 * HOUR, "breach", "FIRING")]
    # The third window renamed a column: reported as missing and new, the others still compared.
    renamed = rows[2]["scores"]
    assert (renamed["age"]["status"], renamed["years"]["status"], renamed["plan"]["status"]) == \
        ("missing_in_current", "new_in_current", "tested")
    assert rows[2]["breaches"] == ["prediction drift in output"]  # every answer 0 now

    page = tmp_path / "report.html"
    assert "Wrote" in world.ok("monitor", "report", "churn-drift", "--out", str(page))
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "Drift over time" in html
    assert "<svg" in html
    assert "http://" not in html
    assert "https://" not in html

    assert "Nothing to evaluate" in world.ok("monitor", "run")
    assert "Deleted monitor churn-drift" in world.ok("monitor", "delete", "churn-drift")
    assert "No monitors" in world.ok("monitor", "list")


def test_bad_input_is_one_line_and_a_non_zero_exit(world: World) -> None:
    DeploymentService(world.client.store, Principal("ana")).delete("churn-api")
    assert "deployment 'churn-api' does not exist" in world.fails(
        3, "monitor", "create", "m", "--deployment", "churn-api")
    assert "expected METRIC=NUMBER" in world.fails(2, "monitor", "create", "m", "--deployment", "x", "--min", "f1")
    assert "--once and --every exclude each other" in world.fails(2, "monitor", "run", "--once", "--every", "5m")
    assert "--every: expected a duration" in world.fails(2, "monitor", "run", "--every", "often")
    assert "monitor 'nope' does not exist" in world.fails(3, "monitor", "status", "nope")
    assert "monitor 'nope' does not exist" in world.fails(3, "monitor", "history", "nope")


def test_two_runner_processes_evaluate_each_window_once(world: World) -> None:
    import subprocess
    import sys

    now = int(time.time() * 1000)
    world.ok("monitor", "create", "busy", "--deployment", "churn-api", "--window", "10m", "--since", "4h")
    for i in range(4):  # a little traffic in some windows; the rest are empty
        log_predictions(world.client, now - (i + 1) * HOUR, features(60, 80 + i))
    command = [str(Path(sys.executable).with_name("shipyard")), "--tracking-uri", world.tracking_uri, "--artifact-uri",
               world.artifact_uri, "monitor", "run", "--once"]
    runners = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [r.communicate(timeout=120) for r in runners]
    assert [r.returncode for r in runners] == [0, 0], outputs
    starts = [e.window_start for e in world.client.store.monitors.evaluations("busy")]
    assert len(starts) == len(set(starts)) >= 24
    assert starts == sorted(starts)
    assert all(b - a == 600_000 for a, b in itertools.pairwise(starts))
