"""The README's examples work: examples/quickstart.py and examples/demo.py (``make demo``) on fresh embedded stores."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import shipyard

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.mark.slow
def test_quickstart_tracks_three_runs(tmp_path: Path) -> None:
    env = {**os.environ, "SHIPYARD_CAPTURE_PACKAGES": "false", "COLUMNS": "200"}
    env.pop("SHIPYARD_TRACKING_URI", None)
    out = subprocess.run([sys.executable, str(EXAMPLES / "quickstart.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "shipyard runs show" in out.stdout
    assert (tmp_path / ".shipyard" / "shipyard.db").is_file()
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / '.shipyard' / 'shipyard.db'}")
    try:
        experiment = client.get_experiment_by_name("quickstart")
        runs = client.search_runs([experiment.experiment_id], "metrics.accuracy > 0.8")
        assert len(runs) >= 2
        run = runs[0]
        assert run.info.status.value == "FINISHED"
        assert len(client.get_metric_history(run.run_id, "test_loss")) == 30
        listed = {a.path for a in client.list_artifacts(run.run_id)}
        assert {"confusion.json", "confusion.png", "model"} <= listed
        assert run.data.tags["shipyard.seed"] == "42"
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.timeout(900)  # about a minute on a quiet machine; the shared CI machine can be 5x slower
def test_demo_walks_the_whole_loop(tmp_path: Path) -> None:
    import json
    import re

    from shipyard.monitoring import read_predictions

    git = ["git", "-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "train.py").write_text("# the code the demo's runs record\n")
    subprocess.run([*git, "add", "train.py"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "demo"], cwd=tmp_path, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True,
                            check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_CAPTURE_PACKAGES="false", COLUMNS="200")
    out = subprocess.run([sys.executable, str(EXAMPLES / "demo.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=840)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stderr == ""
    text = out.stdout
    for command in ("shipyard runs list --experiment churn-demo", "shipyard models register runs:/",
                    "shipyard models promote churn 1 --to production", "shipyard deploy run churn-api",
                    "shipyard lineage explain prediction:churn-api/", "Where to look next"):
        assert command in text, command

    root = tmp_path / ".shipyard-demo"
    client = shipyard.Client(tracking_uri=f"sqlite:///{root / 'shipyard.db'}", artifact_uri=str(root / "artifacts"))
    try:
        experiment = client.get_experiment_by_name("churn-demo")
        training = client.search_runs([experiment.experiment_id], "params.model != ''")
        assert len(training) == 3
        assert client.get_registered_model("churn").aliases == {"production": 1}
        production = client.get_model_version("churn", 1)
        best = max(training, key=lambda run: run.data.metrics["f1"])
        assert production.run_id == best.info.run_id
        assert best.data.tags["shipyard.git.commit"] == commit

        # predictions were logged by the server process, and feedback joined to them
        logged = read_predictions(client, "churn-api")
        primary = logged[logged["role"] == "primary"]
        assert len(primary) >= 20
        assert primary["feedback"].notna().sum() == 20
        assert set(primary["version"]) == {"1"}

        # the explained prediction is one of them, traced to the training data's digest and the commit
        explained = re.search(r"lineage explain prediction:churn-api/([0-9a-f]{32})", text)
        assert explained is not None
        assert explained.group(1) in set(primary["prediction_id"])
        dataset = client.store.datasets.get_version("churn-train", 1)
        after = text.split(explained.group(0), 1)[1]
        assert dataset.digest in after
        assert commit in after

        # the drifted traffic was found drifted (the shifted columns only)
        drift = re.search(r"drifted columns: (.*) \(", text)
        assert drift is not None
        assert set(drift.group(1).split(", ")) == {"monthly_spend", "support_calls"}
        inputs = json.loads(primary.iloc[0]["inputs"])
        assert set(inputs) == {"tenure_months", "monthly_spend", "support_calls", "age"}
    finally:
        client.close()
    # the background server was stopped (the demo waits for it to exit)
    pid = int(re.search(r"kill (\d+)", text).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
