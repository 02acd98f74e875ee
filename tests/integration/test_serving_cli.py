"""``shipyard serve`` as a real process on a free port: predictions over HTTP, workers, SIGTERM, bad URIs."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app as cli_app

pytestmark = pytest.mark.slow
LAUNCH = "from shipyard.cli import main; main()"
TRAIN = pd.DataFrame({"x": np.random.default_rng(5).normal(size=60), "z": np.random.default_rng(6).normal(size=60)})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def registered(tracking_uri: str) -> tuple[str, object]:
    """A store holding churn version 1 (approved, alias production); yields (tracking URI, estimator)."""
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression().fit(TRAIN, (TRAIN["x"] - TRAIN["z"] > 0).astype(int))
    client = shipyard.Client(tracking_uri=tracking_uri)
    try:
        experiment = client.create_experiment("serving")
        run_id = client.create_run(experiment).info.run_id
        client.log_model(run_id, estimator, "model", input_example=TRAIN.head(2))
        client.set_terminated(run_id)
        client.register_model(f"runs:/{run_id}/model", "churn")
        client.approve_model_version("churn", 1)
        client.set_alias("churn", "production", 1)
    finally:
        client.close()
    return tracking_uri, estimator


class Served:
    def __init__(self, root: Path, tracking_uri: str, *args: str) -> None:
        self.root, self.args = root, args
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
        self.env["SHIPYARD_TRACKING_URI"] = tracking_uri
        self.launches = 0
        self.launch()

    def launch(self) -> None:
        self.launches += 1
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.err_path = self.root / f"serve-{self.port}.err"
        self.out_path = self.root / f"serve-{self.port}.out"
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", *self.args, "--port",
                                          str(self.port)], stdout=out, stderr=err, env=self.env, cwd=self.root)

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # The port was free when picked but may be taken before the server binds it: try another.
                if "address already in use" in self.logs().lower() and self.launches < 5:
                    self.launch()
                    deadline = time.monotonic() + timeout
                    continue
                pytest.fail(f"shipyard serve exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        pytest.fail(f"not ready within {timeout}s:\n{self.logs()[-4000:]}")

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; uvicorn shuts down gracefully, then exits by the signal."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in (self.out_path, self.err_path))


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    started: list[Served] = []

    def make(tracking_uri: str, *args: str) -> Served:
        served = Served(tmp_path, tracking_uri, *args)
        started.append(served)
        return served

    yield make
    for served in started:
        served.stop()


def test_serve_predicts_over_http_and_stops_cleanly(registered: tuple[str, object], start: object) -> None:
    tracking_uri, estimator = registered
    server = start(tracking_uri, "models:/churn@production", "--max-batch-size", "16", "--max-wait-ms", "5")
    server.wait_ready()
    rows = TRAIN.head(5)
    expected = estimator.predict(rows).tolist()

    native = httpx.post(f"{server.url}/v1/models/churn/predict", json={"inputs": rows.to_dict("records")},
                        headers={"x-request-id": "cli-test-1"})
    assert native.status_code == 200, native.text
    assert native.headers["x-request-id"] == "cli-test-1"
    assert native.json()["version"] == "1"
    assert native.json()["predictions"] == expected
    v2 = httpx.post(f"{server.url}/v2/models/churn/versions/1/infer", json={"inputs": [
        {"name": "features", "shape": [5, 2], "datatype": "FP64", "data": rows.to_numpy().ravel().tolist()}]})
    assert v2.json()["outputs"][0]["data"] == expected
    mlflow = httpx.post(f"{server.url}/invocations", content=rows.to_csv(index=False), headers={
        "content-type": "text/csv"})
    assert mlflow.json() == {"predictions": expected}
    missing = httpx.post(f"{server.url}/v1/models/churn/predict", json={"inputs": [{"x": 1.0}]})
    assert missing.status_code == 400
    assert "missing column 'z'" in missing.json()["message"]

    async def many() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url) as client:
            return list(await asyncio.gather(*(
                client.post("/v1/models/churn/predict", json={"inputs": TRAIN.iloc[[i]].to_dict("records")})
                for i in range(40))))

    answers = asyncio.run(many())
    assert [a.json()["predictions"][0] for a in answers] == estimator.predict(TRAIN.head(40)).tolist()
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'shipyard_serving_requests_total{model="churn",protocol="native",status="200",version="1"} 41.0' in metrics

    assert server.stop() in (0, -signal.SIGTERM)
    logs = server.logs()
    assert "Application shutdown complete" in logs
    assert "Serving churn version 1 (sklearn)" in logs
    assert "POST /v1/models/churn/predict 200" in logs
    assert "request_id=cli-test-1" in logs
    assert "Traceback" not in logs


def test_serve_with_workers_shares_metrics(registered: tuple[str, object], start: object) -> None:
    tracking_uri, estimator = registered
    server = start(tracking_uri, "models:/churn/1", "--workers", "2", "--name", "retention")
    server.wait_ready()
    for i in range(6):  # new connections each time: both workers may answer
        answer = httpx.post(f"{server.url}/v1/models/retention/predict",
                            json={"inputs": TRAIN.iloc[[i]].to_dict("records")})
        assert answer.json()["predictions"] == estimator.predict(TRAIN.iloc[[i]]).tolist()
    metrics = httpx.get(f"{server.url}/metrics").text
    labels = 'model="retention",protocol="native",status="200",version="1"'
    assert f"shipyard_serving_requests_total{{{labels}}} 6.0" in metrics
    assert server.stop() in (0, -signal.SIGTERM)


@pytest.mark.parametrize(("uri", "exit_code", "fragment"), [
    ("models:/nope@production", 3, "registered model 'nope' does not exist"),
    ("models:/churn/7", 3, "version 7"),
    ("ftp:/somewhere", 2, "cannot serve model 'ftp:/somewhere'"),
    ("./no-such-folder", 3, "no model folder at"),
], ids=["unknown-model", "unknown-version", "scheme", "folder"])
def test_a_bad_uri_is_one_error_line(registered: tuple[str, object], monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path, uri: str, exit_code: int, fragment: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn started for a bad model URI"))
    result = CliRunner().invoke(cli_app, ["--tracking-uri", registered[0], "serve", uri])
    assert result.exit_code == exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.output
