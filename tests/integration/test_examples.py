"""The README's demo works: examples/quickstart.py on a fresh embedded store."""

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
