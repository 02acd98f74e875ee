"""What the monitor tests share: a store with a deployed model trained on a logged dataset, a
prediction log written the way the serving app writes it, and a local webhook receiver."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import shipyard
from shipyard.auth import Principal
from shipyard.deploy.rollout import DeploymentService
from shipyard.monitoring.alerts import Notifier
from shipyard.monitoring.service import MonitorService
from shipyard.predictions.format import feedback_rows, write_feedback
from shipyard.predictions.writer import PredictionLogger

HOUR = 3_600_000
T0 = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)
PLANS = ["basic", "pro", "team"]


def features(n: int, seed: int, *, age_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.normal(40 + age_shift, 10, n), "income": rng.lognormal(10, 0.5, n),
                         "plan": rng.choice(PLANS, n, p=[0.5, 0.3, 0.2])})


def churned(frame: pd.DataFrame) -> np.ndarray:
    return (frame["age"].to_numpy() > 45).astype(int)


def make_world(tmp_path: Path, *, train_rows: int = 3000) -> shipyard.Client:
    """A client with model churn/1 (trained in a run that read dataset churn-train@1 with context
    training, snapshotted) served by deployment churn-api."""
    from sklearn.linear_model import LogisticRegression

    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             artifact_uri=str(tmp_path / "artifacts"))
    train = features(train_rows, 100)
    run_id = client.create_run("0", "train").info.run_id
    client.log_dataset(run_id, train, "churn-train", context="training", snapshot=True)
    client.log_model(run_id, LogisticRegression().fit(train[["age"]], churned(train)), "model")
    client.set_terminated(run_id)
    client.register_model(f"runs:/{run_id}/model", "churn")
    DeploymentService(client.store, Principal("ana")).create("churn-api", "models:/churn/1")
    return client


def service(client: shipyard.Client, now: int, **notifier: Any) -> MonitorService:
    notifier.setdefault("timeout", 1.0)
    notifier.setdefault("backoff", 0.01)
    return MonitorService(client.store, client.artifacts, Principal("ana"), notifier=Notifier(**notifier),
                          clock=lambda: now)


def log_predictions(client: shipyard.Client, start: int, frame: pd.DataFrame, *, outputs: Any = None,
                    labels: Any = None, deployment: str = "churn-api", role: str = "primary") -> list[str]:
    """Write ``frame``'s rows as predictions answered from ``start`` on (one ms apart), with the
    outputs given (default: the churn rule's 0/1 answer) and, when given, feedback labels."""
    ids = [uuid.uuid4().hex for _ in range(len(frame))]
    answers = list(churned(frame)) if outputs is None else list(outputs)
    records = frame.to_dict(orient="records")
    logger = PredictionLogger(client.artifacts)
    logger.record([{"prediction_id": pid, "time": start + i, "deployment": deployment, "model": "churn",
                    "version": "1", "role": role, "inputs": row, "outputs": answer}
                   for i, (pid, row, answer) in enumerate(zip(ids, records, answers, strict=True))])
    logger.close()
    if labels is not None:
        write_feedback(client.artifacts, feedback_rows(
            [{"prediction_id": pid, "value": label, "deployment": deployment, "time": start + i}
             for i, (pid, label) in enumerate(zip(ids, labels, strict=True))]))
    return ids


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        server.received.append(body)
        if server.mode == "slow":
            time.sleep(server.delay)
        status = 500 if server.mode == "error" else 200
        try:
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:  # the client gave up (timeout)
            pass

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook_receiver(mode: str = "ok", delay: float = 0.0) -> Iterator[Any]:
    """A local HTTP server on 127.0.0.1 recording each JSON body POSTed to it; ``mode`` ``error``
    answers 500, ``slow`` answers after ``delay`` seconds. ``server.url`` is its address."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    server.mode = mode
    server.delay = delay
    server.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
