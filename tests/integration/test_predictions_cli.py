"""The prediction log end to end: train with a dataset, register, deploy, log predictions, then
``shipyard predictions export`` and ``shipyard lineage explain prediction:<id>``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import shipyard
from shipyard import deploy, lineage
from shipyard.cli import app
from shipyard.entities import Node, NodeKind
from shipyard.errors import NotFound
from shipyard.models import PythonModel
from shipyard.predictions.format import record_feedback
from shipyard.predictions.writer import PredictionLogger

HOUR = 3_600_000


class _Model(PythonModel):
    def predict(self, context, data):
        return data


@pytest.fixture
def deployed(fluent: str, tmp_path: Path) -> Iterator[dict]:
    """train.csv -> run -> churn/1 -> deployment churn-api, with 30 predictions logged over the
    last 3 hours (10 per hour, the newest 1 minute ago) and feedback on the newest."""
    path = tmp_path / "train.csv"
    pd.DataFrame({"x": np.arange(20.0)}).to_csv(path, index=False)
    with shipyard.start_run() as run:
        shipyard.set_tag("shipyard.git.commit", "c" * 40)
        data = shipyard.log_dataset(path, context="training")
        shipyard.log_model(_Model(), "model", registered_model_name="churn")
    client = shipyard.Client(tracking_uri=fluent)
    deploy.create_deployment(client, "churn-api", "models:/churn/1")
    now = time.time_ns() // 1_000_000
    rows = [{"prediction_id": uuid.uuid4().hex, "time": now - 60_000 - i * (HOUR // 10), "deployment": "churn-api",
             "model": "churn", "version": "1", "role": "primary", "inputs": {"x": float(i)}, "outputs": float(i),
             "latency_ms": 2.0, "request_id": f"req-{i}"} for i in range(30)]
    with PredictionLogger(client.artifacts, flush_seconds=60) as logger:
        logger.record(rows)
        logger.record([{**rows[0], "model": "churn", "version": "2", "role": "shadow", "outputs": -1.0}])
    record_feedback(client.artifacts, "churn-api", rows[0]["prediction_id"], 1.0)
    yield {"uri": fluent, "client": client, "rows": rows, "run": run.info.run_id, "data": data.ref,
           "digest": data.digest}
    client.close()


def cli(uri: str, *args: str, code: int = 0):
    result = CliRunner().invoke(app, ["--tracking-uri", uri, *args], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result


# -- lineage -----------------------------------------------------------------------------------------------
def test_explain_a_prediction_reaches_the_run_and_its_data(deployed: dict) -> None:
    pid = deployed["rows"][3]["prediction_id"]
    why = lineage.explain(f"prediction:{pid}", client=deployed["client"])
    assert {str(n) for n in why.graph.nodes} == {f"prediction:{pid}", "deployment:churn-api", "model:churn/1",
                                                 f"run:{deployed['run']}", f"dataset:{deployed['data']}"}
    assert why.graph.depth[Node(NodeKind.MODEL, "churn/1")] == 2
    assert why.data_digests == {deployed["data"]: deployed["digest"]}
    [run] = why.runs
    assert (run.run_id, run.commit, run.inputs) == (deployed["run"], "c" * 40, [(deployed["data"], "training")])
    [record] = why.records
    assert (record["deployment"], record["version"], record["role"]) == ("churn-api", "1", "primary")
    # the answering version, not the shadow that saw the same request
    first = deployed["rows"][0]["prediction_id"]
    assert "model:churn/1" in {str(n) for n in lineage.explain(f"prediction:{first}",
                                                               client=deployed["client"]).graph.nodes}
    shallow = lineage.explain(f"prediction:{pid}", depth=2, client=deployed["client"])
    assert {n.kind.value for n in shallow.graph.nodes} == {"prediction", "deployment", "model"}
    assert shallow.runs == []
    narrowed = lineage.explain(f"prediction:churn-api/{pid}", client=deployed["client"])
    assert narrowed.data_digests == why.data_digests
    with pytest.raises(NotFound, match="not in the prediction log"):
        lineage.explain(f"prediction:{'0' * 32}", client=deployed["client"])
    with pytest.raises(NotFound, match="deployment 'other'"):
        lineage.explain(f"prediction:other/{pid}", client=deployed["client"])


def test_explain_a_prediction_from_the_cli(deployed: dict) -> None:
    pid = deployed["rows"][5]["prediction_id"]
    text = cli(deployed["uri"], "lineage", "explain", f"prediction:{pid}").stdout
    assert "deployment:churn-api" in text
    assert "model:churn/1" in text
    assert deployed["run"] in text
    assert deployed["digest"] in text
    assert f"Prediction {pid}" in text
    found = json.loads(cli(deployed["uri"], "lineage", "explain", f"prediction:{pid}", "--json").stdout)
    assert found["runs"][0]["run_id"] == deployed["run"]
    assert found["records"][0]["prediction_id"] == pid
    shown = json.loads(cli(deployed["uri"], "lineage", "show", f"prediction:{pid}", "-f", "json").stdout)
    assert {e["relation"] for e in shown["edges"]} >= {"predicted", "deployed", "model", "input"}
    missing = cli(deployed["uri"], "lineage", "explain", f"prediction:{'0' * 32}", code=3)
    assert "not in the prediction log" in missing.output


# -- export ------------------------------------------------------------------------------------------------
def test_export_parquet_and_csv(deployed: dict, tmp_path: Path) -> None:
    out = tmp_path / "last.parquet"
    result = cli(deployed["uri"], "predictions", "export", "churn-api", "--since", "1h", "--out", str(out))
    assert "Exported" in result.stdout
    table = pq.read_table(out)
    assert table.num_rows == 11  # the 10 of the last hour (and the shadow of the newest)
    frame = table.to_pandas()
    newest = deployed["rows"][0]["prediction_id"]
    assert set(frame.loc[frame.prediction_id == newest, "feedback"]) == {"1.0"}
    assert frame["feedback"].notna().sum() == 2  # the answer and its shadow share the id

    csv = tmp_path / "all.csv"
    summary = json.loads(cli(deployed["uri"], "predictions", "export", "churn-api", "--out", str(csv), "--json",
                             "--no-feedback").stdout)
    assert (summary["rows"], summary["format"]) == (31, "csv")
    back = pd.read_csv(csv)
    assert len(back) == 31
    assert "feedback" not in back.columns
    assert back["time"].str.endswith("Z").all()

    iso = tmp_path / "iso.out"
    until = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=2)
    cli(deployed["uri"], "predictions", "export", "churn-api", "--until", until.isoformat(), "--format", "csv",
        "--out", str(iso))
    assert 0 < len(pd.read_csv(iso)) < 31


def test_export_of_an_empty_range_warns_and_writes_an_empty_file(deployed: dict, tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    result = cli(deployed["uri"], "predictions", "export", "churn-api", "--since", "2000-01-01",
                 "--until", "2000-01-02", "--out", str(out))
    assert "Warning" in result.stderr
    assert "no predictions" in result.stderr
    table = pq.read_table(out)
    assert table.num_rows == 0
    assert "prediction_id" in table.column_names
    assert "feedback" in table.column_names


def test_export_errors(deployed: dict, tmp_path: Path) -> None:
    unknown = cli(deployed["uri"], "predictions", "export", "nope", "--out", str(tmp_path / "x.parquet"), code=3)
    assert "no deployment named 'nope'" in unknown.output
    assert "Traceback" not in unknown.output
    bad = cli(deployed["uri"], "predictions", "export", "churn-api", "--since", "yesterday",
              "--out", str(tmp_path / "x.parquet"), code=2)
    assert "since" in bad.output
    assert not (tmp_path / "x.parquet").exists()
