"""The last 2.x ``mlflow`` client against a real ``shipyard server``: the whole tracking flow.

Users pinned to MLflow 2 point ``MLFLOW_TRACKING_URI`` at Shipyard and keep their code. The
client runs in its own virtualenv, ``.cache/mlflow2-venv`` at the repository's root, built with
``mlflow-skinny`` from PyPI on first use and reused after (keyed by the version). Without PyPI
the test skips, except under CI (``CI=true``), where it fails: there it must run.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ci import unavailable
from tests.support import ServerProcess, shipyard_command

MLFLOW2_VERSION = "2.22.5"  # the last 2.x release of mlflow-skinny
ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".cache" / "mlflow2-venv"
READY = VENV / ".ready"  # holds the installed version once the venv is complete
PIP_TIMEOUT_S = 900

# Runs in the mlflow 2 venv with MLFLOW_TRACKING_URI set to the server; argv[1]: a scratch folder.
CLIENT_SCRIPT = r"""
import json
import sys
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts, load_dict, load_text

work = Path(sys.argv[1])
data_file = work / "data.csv"
data_file.write_text("x,y\n1,2\n3,4\n")

mlflow.set_experiment("mlflow2-flow")
with mlflow.start_run(run_name="mlflow2-run") as run:
    mlflow.log_param("lr", 0.01)
    mlflow.log_params({"depth": 6, "optimizer": "adam"})
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.log_metrics({"acc": 0.875, "f1": 0.75}, step=4)
    mlflow.set_tag("team", "shipyard")
    mlflow.log_text("hello from mlflow 2\n", "notes/hello.txt")
    mlflow.log_dict({"layers": [64, 32], "dropout": 0.25}, "config/model.json")
    mlflow.log_artifact(str(data_file), artifact_path="data")
with mlflow.start_run(run_name="other-run"):  # matches the metric filter below, not the param one
    mlflow.log_param("lr", 0.1)
    mlflow.log_metric("loss", 0.1)

run_id, experiment_id = run.info.run_id, run.info.experiment_id
client = MlflowClient()
finished = client.get_run(run_id)
found = client.search_runs([experiment_id], "metrics.loss < 0.5 and params.lr = '0.01'",
                           order_by=["attributes.start_time DESC"])
low_loss = client.search_runs([experiment_id], "metrics.loss < 0.5", order_by=["params.lr ASC"])
(work / "all").mkdir()
(work / "one").mkdir()
everything = Path(download_artifacts(run_id=run_id, dst_path=str(work / "all")))
single = Path(client.download_artifacts(run_id, "notes/hello.txt", str(work / "one")))


def listing(path=None):
    return [[f.path, f.is_dir, f.file_size] for f in client.list_artifacts(run_id, path)]


print(json.dumps({
    "version": mlflow.__version__,
    "experiment": {"id": experiment_id, "name": client.get_experiment(experiment_id).name},
    "run": {
        "id": run_id,
        "name": finished.info.run_name,
        "status": finished.info.status,
        "ended": finished.info.end_time is not None and finished.info.end_time >= finished.info.start_time,
        "artifact_uri": finished.info.artifact_uri,
        "params": finished.data.params,
        "metrics": finished.data.metrics,
        "tags": finished.data.tags,
    },
    "search": [[r.info.run_id, r.info.run_name] for r in found],
    "search_low_loss": [r.info.run_name for r in low_loss],
    "history": {key: [[m.step, m.value, m.timestamp > 0] for m in client.get_metric_history(run_id, key)]
                for key in ("loss", "acc")},
    "list": {"root": listing(), "notes": listing("notes"), "config": listing("config"), "data": listing("data")},
    "downloaded": {p.relative_to(everything).as_posix(): p.read_text() for p in sorted(everything.rglob("*"))
                   if p.is_file()},
    "single": [single.name, single.read_text()],
    "load_dict": load_dict(f"runs:/{run_id}/config/model.json"),
    "load_text": load_text(f"{finished.info.artifact_uri}/notes/hello.txt"),
}))
"""


def _unavailable(reason: str) -> None:
    unavailable(f"the mlflow 2 client test cannot run: {reason}")


def _build(python: Path, log: Path) -> str | None:
    """Install mlflow-skinny into the venv; None when done, else why not (pip's last lines)."""
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
           f"mlflow-skinny=={MLFLOW2_VERSION}"]
    try:
        with log.open("w") as sink:
            done = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, timeout=PIP_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return f"`pip install mlflow-skinny=={MLFLOW2_VERSION}` took over {PIP_TIMEOUT_S} s"
    if done.returncode:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
        return f"cannot install mlflow-skinny=={MLFLOW2_VERSION} from PyPI: {tail}"
    return None


@pytest.fixture(scope="session")
def mlflow2_python() -> Path:
    """The python of the mlflow 2 venv, built (under a lock, for parallel sessions) when missing."""
    python = VENV / "bin" / "python"
    VENV.parent.mkdir(exist_ok=True)
    with (VENV.parent / "mlflow2-venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if READY.exists() and READY.read_text() == MLFLOW2_VERSION and python.exists():
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        why = _build(python, VENV.parent / "mlflow2-venv.log")
        if why is not None:
            shutil.rmtree(VENV, ignore_errors=True)  # half-built: the next session tries again
            _unavailable(why)
        READY.write_text(MLFLOW2_VERSION)
    return python


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    root = tmp_path / "server"
    root.mkdir()
    with ServerProcess(shipyard_command("server", "--backend-store-uri", f"sqlite:///{root / 'shipyard.db'}",
                                        "--artifacts-destination", str(root / "artifacts")), root) as server:
        yield server


def _run_client(python: Path, server: ServerProcess, work: Path) -> dict[str, Any]:
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHIPYARD_"))}
    env.update(MLFLOW_TRACKING_URI=server.url, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1",
               MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    done = subprocess.run([str(python), "-c", CLIENT_SCRIPT, str(work)], capture_output=True, text=True, env=env,
                          cwd=work, timeout=180, check=False)
    assert done.returncode == 0, f"the mlflow 2 client failed:\n{done.stderr[-4000:]}\nserver:\n{server.logs()}"
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


@pytest.mark.timeout(PIP_TIMEOUT_S + 300)
def test_the_mlflow2_client_tracks_to_shipyard(mlflow2_python: Path, server: ServerProcess, tmp_path: Path) -> None:
    out = _run_client(mlflow2_python, server, tmp_path / "client")
    assert out["version"] == MLFLOW2_VERSION

    run = out["run"]
    assert out["experiment"]["name"] == "mlflow2-flow"
    assert run["name"] == "mlflow2-run"
    assert run["status"] == "FINISHED"
    assert run["ended"]
    assert run["artifact_uri"] == f"mlflow-artifacts:/{out['experiment']['id']}/{run['id']}/artifacts"
    assert run["params"] == {"lr": "0.01", "depth": "6", "optimizer": "adam"}
    assert run["metrics"] == {"loss": 0.2, "acc": 0.875, "f1": 0.75}  # the latest value of each
    assert run["tags"]["team"] == "shipyard"
    assert run["tags"]["mlflow.runName"] == "mlflow2-run"
    assert run["tags"]["mlflow.source.type"] == "LOCAL"  # the 2.x client's context tags are kept
    assert "mlflow.user" in run["tags"]

    assert out["search"] == [[run["id"], "mlflow2-run"]]
    assert out["search_low_loss"] == ["mlflow2-run", "other-run"]  # "0.01" < "0.1", as strings
    assert out["history"] == {
        "loss": [[step, 1.0 / (step + 1), True] for step in range(5)],
        "acc": [[4, 0.875, True]],
    }

    data, text = "x,y\n1,2\n3,4\n", "hello from mlflow 2\n"
    config = json.dumps({"layers": [64, 32], "dropout": 0.25}, indent=2)  # what log_dict writes
    assert out["list"] == {
        "root": [["config", True, None], ["data", True, None], ["notes", True, None]],
        "notes": [["notes/hello.txt", False, len(text)]],
        "config": [["config/model.json", False, len(config)]],
        "data": [["data/data.csv", False, len(data)]],
    }
    assert out["downloaded"] == {"config/model.json": config, "data/data.csv": data, "notes/hello.txt": text}
    assert out["single"] == ["hello.txt", text]
    assert out["load_dict"] == {"layers": [64, 32], "dropout": 0.25}
    assert out["load_text"] == text

    # The bytes went through the server's proxy into --artifacts-destination.
    stored = {p.read_bytes() for p in (server.root / "artifacts").rglob("*") if p.is_file()}
    assert {data.encode(), text.encode(), config.encode()} <= stored

