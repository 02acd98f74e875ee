"""``shipyard deploy``: create, canary, shadow, promote, rollback, status, history, list, and errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

import shipyard
from shipyard.cli import app


@dataclass
class Registry:
    tracking_uri: str
    artifact_uri: str

    def invoke(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(app, ["--tracking-uri", self.tracking_uri, "--artifact-uri", self.artifact_uri,
                                        *args], env={"COLUMNS": "200"}, input=stdin)

    def ok(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.stdout

    def fails(self, exit_code: int, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == exit_code, result.output
        assert "Traceback" not in result.output
        assert result.stderr.startswith("Error: ")
        return result.stderr


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    """Model ``churn`` with versions 1-3, ``production`` -> 1."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("LOGNAME", "ana")
    uri, artifacts = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts")
    client = shipyard.Client(tracking_uri=uri, artifact_uri=artifacts)
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=30)})
    run_id = client.create_run("0", "train").info.run_id
    client.log_model(run_id, LogisticRegression().fit(frame, frame["x"] > 0), "model")
    client.set_terminated(run_id)
    for _ in range(3):
        client.register_model(f"runs:/{run_id}/model", "churn")
    client.approve_model_version("churn", 1)
    client.set_alias("churn", "production", 1)
    client.close()
    return Registry(uri, artifacts)


def test_rollout_from_create_to_rollback(registry: Registry) -> None:
    out = registry.ok("deploy", "create", "churn-api", "--model", "models:/churn@production", "--env", "production",
                      "--replicas", "2", "--cpu", "500m", "--memory", "1Gi", "--max-batch-size", "16")
    assert "Created churn-api in production: churn/1 100%" in out
    assert "churn/1 90%, churn/2 10% (canary)" in registry.ok("deploy", "canary", "churn-api", "--model",
                                                              "models:/churn/2", "--weight", "10")
    assert "shadow churn/3" in registry.ok("deploy", "shadow", "churn-api", "-m", "models:/churn/3")
    assert "Unchanged" in registry.ok("deploy", "shadow", "churn-api", "-m", "models:/churn/3")

    status = registry.ok("deploy", "status", "churn-api")
    for expected in ("production", "ACTIVE", "models:/churn/1", "90%", "canary", "models:/churn/2", "10%",
                     "shadow", "models:/churn/3", "up to 16 rows", "2 replicas, cpu 500m, memory 1Gi", "by ana"):
        assert expected in status, expected
    assert "Revision      3" in status

    assert "churn/2 100%" in registry.ok("deploy", "promote", "churn-api")
    assert "churn/1 90%, churn/2 10%" in registry.ok("deploy", "rollback", "churn-api")
    history = registry.ok("deploy", "history", "churn-api")
    for expected in ("create", "canary", "shadow", "promote", "rollback", "rolled back to revision 3", "ana"):
        assert expected in history, expected
    events = json.loads(registry.ok("deploy", "history", "churn-api", "--json"))
    assert [(e["revision"], e["kind"]) for e in events] == \
        [(1, "create"), (2, "canary"), (3, "shadow"), (4, "promote"), (5, "rollback")]
    state = json.loads(registry.ok("deploy", "status", "churn-api", "--json"))
    assert [(r["version"], r["weight"]) for r in state["routes"]] == [(1, 90), (2, 10)]
    assert state["revision"] == 5


def test_weight_unshadow_stop_start_list_delete(registry: Registry) -> None:
    registry.ok("deploy", "create", "b-api", "--model", "models:/churn/1", "--env", "staging")
    registry.ok("deploy", "create", "a-api", "--model", "models:/churn/2")
    registry.ok("deploy", "canary", "b-api", "--model", "models:/churn/2")
    assert "churn/1 75%, churn/2 25%" in registry.ok("deploy", "weight", "b-api", "25")
    registry.ok("deploy", "shadow", "b-api", "--model", "models:/churn/3")
    assert "shadow" not in registry.ok("deploy", "unshadow", "b-api", "--model", "models:/churn/3")
    assert "[stopped]" in registry.ok("deploy", "stop", "b-api")
    listed = registry.ok("deploy", "list")
    assert listed.index("a-api") < listed.index("b-api")
    assert "STOPPED" in listed
    assert "[stopped]" not in registry.ok("deploy", "start", "b-api")
    assert [d["name"] for d in json.loads(registry.ok("deploy", "list", "--env", "staging", "--json"))] == ["b-api"]
    assert "Deleted deployment b-api" in registry.ok("deploy", "delete", "b-api", "--yes")
    assert [d["name"] for d in json.loads(registry.ok("deploy", "list", "--json"))] == ["a-api"]
    assert "delete" in registry.ok("deploy", "history", "b-api")


def test_errors_are_a_message_and_an_exit_code(registry: Registry) -> None:
    assert "no version 9" in registry.fails(3, "deploy", "create", "churn-api", "--model", "models:/churn/9")
    assert "'nope'" in registry.fails(3, "deploy", "create", "churn-api", "--model", "models:/nope/1")
    assert "models:/" in registry.fails(2, "deploy", "create", "churn-api", "--model", "runs:/abc/model")
    assert "environment" in registry.fails(2, "deploy", "create", "churn-api", "--model", "models:/churn/1",
                                           "--env", "not valid")
    assert "does not exist" in registry.fails(3, "deploy", "status", "churn-api")
    registry.ok("deploy", "create", "churn-api", "--model", "models:/churn/1")
    assert "already exists" in registry.fails(4, "deploy", "create", "churn-api", "--model", "models:/churn/2")
    assert "no canary to promote" in registry.fails(4, "deploy", "promote", "churn-api")
    assert "nothing to roll back to" in registry.fails(4, "deploy", "rollback", "churn-api")
    assert "already the primary" in registry.fails(2, "deploy", "canary", "churn-api", "-m", "models:/churn/1")
    usage = registry.invoke("deploy", "canary", "churn-api", "-m", "models:/churn/2", "--weight", "150")
    assert usage.exit_code == 2


def test_help_reads_well() -> None:
    result = CliRunner().invoke(app, ["deploy", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for command in ("create", "canary", "shadow", "promote", "rollback", "status", "history", "list"):
        assert command in result.stdout
    assert "shipyard deploy canary churn-api --model models:/churn/7 --weight 10" in result.stdout
