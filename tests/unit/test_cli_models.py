"""``shipyard models``: register, alias, approve, promote (with gates), history, show, download, delete."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    client: shipyard.Client
    runs: list[str]

    def invoke(self, *args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(app, ["--tracking-uri", self.tracking_uri, "--artifact-uri", self.artifact_uri,
                                        *args], env={"COLUMNS": "200"}, input=stdin)

    def ok(self, *args: str) -> str:
        result = self.invoke(*args)
        assert result.exit_code == 0, result.output
        return result.stdout


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    uri, artifacts = f"sqlite:///{tmp_path / 'db.sqlite'}", str(tmp_path / "artifacts")
    client = shipyard.Client(tracking_uri=uri, artifact_uri=artifacts)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=40), "z": rng.normal(size=40)})
    runs = []
    for f1 in (0.90, 0.70):
        run_id = client.create_run("0", f"f1={f1}").info.run_id
        client.log_metric(run_id, "f1", f1)
        client.log_model(run_id, LogisticRegression().fit(frame, frame["x"] > 0), "model",
                         input_example=frame.head(3))
        client.set_terminated(run_id)
        runs.append(run_id)
    client.flush()
    yield Registry(uri, artifacts, client, runs)
    client.close()


def test_register_alias_show_and_history(registry: Registry) -> None:
    out = registry.ok("models", "register", f"runs:/{registry.runs[0]}/model", "churn", "-d", "baseline")
    assert "Registered churn version 1" in out
    registry.ok("models", "register", f"runs:/{registry.runs[1]}/model", "churn")
    registry.ok("models", "alias", "churn", "staging", "1")
    registry.ok("models", "alias", "churn", "staging", "2")
    shown = registry.ok("models", "show", "churn")
    assert "staging → v2" in shown
    assert "production" in shown  # protected by default
    listed = json.loads(registry.ok("models", "list", "--json"))
    assert [(m["name"], m["latest_version"]) for m in listed] == [("churn", 2)]
    version = registry.ok("models", "show", "churn", "1")
    assert "sklearn" in version
    assert "x: float64, z: float64" in version
    assert registry.runs[0] in version
    history = registry.ok("models", "history", "churn")
    assert "alias set" in history
    assert "1 → 2" in history
    events = json.loads(registry.ok("models", "history", "churn", "--json"))
    assert [e["kind"] for e in events] == ["model_created", "version_created", "version_created", "alias_set",
                                           "alias_set"]
    assert [v["version"] for v in json.loads(registry.ok("models", "versions", "churn", "--json"))] == [2, 1]
    assert json.loads(registry.ok("models", "versions", "churn", "-f", "version < 2", "--json"))[0]["version"] == 1


def test_promote_with_gates_and_approval(registry: Registry) -> None:
    for run_id in registry.runs:
        registry.client.register_model(f"runs:/{run_id}/model", "churn")
    failed = registry.invoke("models", "promote", "churn", "2", "--to", "staging", "--require", "metrics.f1 >= 0.85")
    assert failed.exit_code == 1
    assert "FAIL" in failed.stdout
    assert "Not promoted" in failed.stdout
    assert registry.client.get_registered_model("churn").aliases == {}

    blocked = registry.invoke("models", "promote", "churn", "1", "--to", "production", "-r", "metrics.f1 >= 0.85")
    assert blocked.exit_code == 1
    assert "shipyard models approve churn 1" in blocked.stdout
    registry.ok("models", "approve", "churn", "1", "-m", "reviewed")
    out = registry.ok("models", "promote", "churn", "1", "--to", "production", "-r", "metrics.f1 >= 0.85")
    assert "Promoted: churn@production → version 1" in out

    registry.ok("models", "approve", "churn", "2")
    vs_champion = registry.invoke("models", "promote", "churn", "2", "--to", "production", "--compare-to",
                                  "production", "--compare-metric", "f1", "--json")
    assert vs_champion.exit_code == 1
    result = json.loads(vs_champion.stdout)
    assert result["champion"] == 1
    assert not result["promoted"]
    assert "worse by 22.22%" in result["gates"][0]["reason"]


def test_alias_protection_download_and_delete(registry: Registry, tmp_path: Path) -> None:
    registry.client.register_model(f"runs:/{registry.runs[0]}/model", "churn")
    registry.ok("models", "alias", "churn", "production", "--unprotect")
    registry.ok("models", "alias", "churn", "production", "1")
    folder = tmp_path / "dl"
    registry.ok("models", "download", "models:/churn@production", "--dst", str(folder))
    assert (folder / "MLmodel").is_file() or any(folder.rglob("MLmodel"))
    refused = registry.invoke("models", "delete", "churn", "1", "--yes")
    assert refused.exit_code == 4
    assert "production" in refused.output
    assert registry.invoke("models", "delete", "churn", "1").exit_code == 1  # no confirmation given
    registry.ok("models", "delete", "churn", "1", "--yes", "--force")
    assert registry.client.get_registered_model("churn").latest_version is None


@pytest.mark.parametrize(("args", "code", "message"), [
    (("models", "show", "ghost"), 3, "ghost"),
    (("models", "alias", "ghost", "staging", "1"), 3, "ghost"),
    (("models", "alias", "churn", "staging"), 2, "exactly one"),
    (("models", "alias", "churn", "latest", "1"), 2, "reserved"),
    (("models", "register", "file:///etc/passwd", "churn"), 2, "refused"),
    (("models", "promote", "churn", "1", "--to", "staging", "-r", "params.x = 'y'"), 2, "gates compare metrics"),
])
def test_bad_input(registry: Registry, args: tuple[str, ...], code: int, message: str) -> None:
    registry.client.register_model(f"runs:/{registry.runs[0]}/model", "churn")
    result = registry.invoke(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_evaluate_then_gate_on_its_metrics_and_card(registry: Registry, tmp_path: Path) -> None:
    registry.client.register_model(f"runs:/{registry.runs[1]}/model", "churn")
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"x": rng.normal(size=200), "z": rng.normal(size=200)})
    frame["y"] = (frame["x"] > 0).astype(int)
    data = tmp_path / "test.parquet"
    frame.to_parquet(data)
    out = registry.ok("models", "evaluate", "models:/churn/1", "--data", str(data), "--target", "y")
    assert "accuracy" in out
    assert "Logged as run" in out
    # The run logged f1 = 0.70; the evaluation's f1 (near 1 on separable data) now counts.
    registry.ok("models", "promote", "churn", "1", "--to", "staging", "--require", "metrics.f1 >= 0.85")
    card = registry.ok("models", "card", "churn", "1", "--raw")
    assert card.startswith("# ")
    assert "accuracy" in card
    edited = tmp_path / "card.md"
    edited.write_text(card + "\nReviewed by the risk team.\n")
    registry.ok("models", "card", "churn", "1", "--set", str(edited))
    assert "Reviewed by the risk team." in registry.ok("models", "card", "churn", "1", "--raw")
    assert "Reviewed by the risk team." not in registry.ok("models", "card", "churn", "1", "--raw", "--regenerate")
    missing = registry.invoke("models", "evaluate", "models:/churn/1", "--data", str(data), "--target", "label")
    assert missing.exit_code == 2
    assert "label" in missing.output


def test_tags_of_a_model_and_a_version_are_set_and_deleted(registry: Registry) -> None:
    registry.ok("models", "register", f"runs:/{registry.runs[0]}/model", "churn")
    out = registry.ok("models", "tag", "churn", "--set", "team=growth", "--set", "tier=gold")
    assert "Tags of churn: team=growth, tier=gold" in out
    registry.ok("models", "tag", "churn", "1", "--set", "draft=yes", "--set", "reviewed=no")
    registry.ok("models", "tag", "churn", "1", "--delete", "draft")
    registry.ok("models", "tag", "churn", "--delete", "tier")
    assert registry.client.get_registered_model("churn").tags == {"team": "growth"}
    tags = registry.client.get_model_version("churn", 1).tags
    assert tags["reviewed"] == "no"
    assert "draft" not in tags
    # Nothing to do, a malformed pair, an absent tag: one message each, nothing changed.
    assert "--set KEY=VALUE or --delete KEY" in registry.invoke("models", "tag", "churn").output
    assert "expected KEY=VALUE" in registry.invoke("models", "tag", "churn", "--set", "team").output
    absent = registry.invoke("models", "tag", "churn", "1", "--delete", "nope")
    assert absent.exit_code == 3  # NotFound
    assert "nope" in absent.output
    assert registry.client.get_model_version("churn", 1).tags == tags
