"""A small, realistic store for the UI tests: an experiment of runs with params, metric histories,
tags, artifacts of every previewable kind, a dataset, a registered model with a protected alias,
a deployment with a canary, and a child run; and :func:`seeded_site`, that store served by a real
server (the browser tests and ``scripts/ui_screenshots.py`` both look at it)."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.tracking.client import Client

EXPERIMENT = "churn-model"
MODEL = "churn"
DEPLOYMENT = "churn-api"
DATASET = "churn-train"
RUNS = 12
STEPS = 300


@dataclass
class Seeded:
    experiment_id: str
    run_ids: list[str] = field(default_factory=list)  # in creation order: run-00 ... run-11
    best_run_id: str = ""
    child_run_id: str = ""
    dataset_ref: str = ""
    pipeline_run_id: str = ""


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4, 2.5), dpi=80)
    axes.plot([0, 1, 2, 3], [3, 1, 2, 0.5], marker="o")
    axes.set_title("confusion over epochs")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def seed(client: Client, tmp: Path) -> Seeded:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    experiment_id = client.create_experiment(EXPERIMENT, tags={"team": "growth"})
    seeded = Seeded(experiment_id)
    frame = pd.DataFrame({"tenure": np.arange(40) % 7, "spend": np.linspace(0, 100, 40),
                          "plan": ["basic", "pro"] * 20})
    for i in range(RUNS):
        lr = [0.1, 0.03, 0.01][i % 3]
        run = client.create_run(experiment_id, f"run-{i:02d}", start_time=1_700_000_000_000 + i * 60_000,
                                tags={"team": "growth", "stage": "sweep"})
        run_id = run.info.run_id
        client.log_params(run_id, {"lr": str(lr), "depth": "6" if i != 5 else "8", "optimizer": "adam"})
        from shipyard.entities import Metric

        decay = 1 + i / 4
        client.log_batch(run_id, metrics=[Metric("loss", float(np.exp(-s / (60 * decay)) + 0.02 * i), s,
                                                 1_700_000_000_000 + s) for s in range(STEPS)]
                         + [Metric("accuracy", 0.70 + 0.02 * i, s, 1_700_000_000_000 + s) for s in (0, STEPS - 1)])
        client.set_terminated(run_id, end_time=1_700_000_000_000 + i * 60_000 + 45_000)
        seeded.run_ids.append(run_id)
    best = seeded.run_ids[-1]
    seeded.best_run_id = best
    client.update_run(best, status="RUNNING")
    client.set_tags(best, {"shipyard.git.commit": "4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
                           "shipyard.git.branch": "main", "shipyard.git.dirty": "true",
                           "shipyard.env.python": "3.11.7", "shipyard.env.platform": "Linux-6.1-x86_64",
                           "shipyard.source.entry_point": "train.py"})
    client.log_text(best, "diff --git a/train.py b/train.py\n@@ -1,2 +1,2 @@\n-lr = 0.1\n+lr = 0.01\n",
                    "_shipyard/git.diff")
    client.log_text(best, "Training notes: the 0.01 learning rate converged fastest.\n", "notes.txt")
    client.log_dict(best, {"model": {"kind": "logistic", "C": 1.0}, "features": ["tenure", "spend"]},
                    "config.yaml")
    client.log_text(best, json.dumps({"accuracy": 0.92, "classes": ["stay", "churn"]}), "eval/metrics.json")
    client.log_text(best, "tenure,spend,plan\n" + "\n".join(f"{r.tenure},{r.spend:.1f},{r.plan}"
                                                            for r in frame.itertuples()) + "\n", "data/sample.csv")
    parquet = tmp / "table.parquet"
    frame.to_parquet(parquet)
    client.log_artifact(best, parquet, "data")
    client.artifacts.log_bytes(best, _png(), "plots/confusion.png")
    client.log_text(best, "<h1>Report</h1><p>All good.</p><script>document.title='pwned'</script>", "report.html")
    dataset = client.log_dataset(best, frame, DATASET, context="training")
    seeded.dataset_ref = dataset.ref
    model = LogisticRegression().fit(frame[["tenure", "spend"]], frame["tenure"] > 3)
    client.log_model(best, model, "model")
    client.set_terminated(best, end_time=1_700_000_000_000 + 11 * 60_000 + 45_000)
    child = client.create_run(experiment_id, "child-eval", parent_run_id=best, start_time=1_700_000_900_000)
    client.set_terminated(child.info.run_id, end_time=1_700_000_910_000)
    seeded.child_run_id = child.info.run_id
    client.register_model(f"runs:/{best}/model", MODEL, description="Predicts which customers leave.")
    client.register_model(f"runs:/{best}/model", MODEL)
    client.approve_model_version(MODEL, 1, comment="first release")
    client.set_alias(MODEL, "production", 1)
    client.deployments.create(DEPLOYMENT, f"models:/{MODEL}/1")
    client.deployments.canary(DEPLOYMENT, f"models:/{MODEL}/2", 20)
    client.flush()
    return seeded


MONITOR = "churn-drift"
HOUR_MS = 3_600_000
MONITOR_T0 = 1_714_521_600_000  # 2024-05-01 00:00 UTC
MONITOR_WINDOWS = 24


def seed_monitor(client: Client, name: str = MONITOR, deployment: str = DEPLOYMENT) -> None:
    """A monitor of ``deployment`` with a day of hourly windows: ``age`` drifts from hour 18 on
    (FIRING, a webhook alert, then a retrain that promoted its challenger), ``plan`` never does;
    ``output.prediction`` uses PSI (an effect-size test: no p-value)."""
    from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation

    store = client.store.monitors
    store.create(Monitor(name, deployment=deployment, window_seconds=3600, actions=("webhook:http://127.0.0.1:9/hook",
                                                                                    "retrain:make train"),
                         tests={"output.prediction": "psi"}, next_window_start=MONITOR_T0, state_since=MONITOR_T0),
                 user="ana")
    state = AlertState.OK
    for hour in range(MONITOR_WINDOWS):
        start = MONITOR_T0 + hour * HOUR_MS
        drifting = 18 <= hour < 22
        age_p = 1e-9 / (hour - 16) if drifting else 0.3 + 0.01 * hour
        scores = {
            "age": {"test": "ks", "statistic": 0.4 if drifting else 0.05, "p_value": age_p, "threshold": 0.025,
                    "drifted": drifting, "effect": 0.5, "status": "tested"},
            "plan": {"test": "chi2", "statistic": 1.2, "p_value": 0.5, "threshold": 0.025, "drifted": False,
                     "effect": 0.01, "status": "tested"},
            "output.prediction": {"test": "psi", "statistic": 0.3 if drifting else 0.02, "p_value": None,
                                  "threshold": 0.2, "drifted": drifting, "effect": None, "status": "tested"},
        }
        previous = state
        state = AlertState.FIRING if drifting else (AlertState.RESOLVED if state is AlertState.FIRING
                                                    else AlertState.OK)
        store.acquire_lease(name, "seed", 60)
        store.record_evaluation(MonitorEvaluation(
            name, start, start + HOUR_MS, "breach" if drifting else "ok", state, rows=500, labelled=120,
            dataset_drift=drifting, drifted_columns=("age", "output.prediction") if drifting else (),
            scores=scores, metrics={"accuracy": 0.71 if drifting else 0.9},
            breaches=("age drifted (ks p=1e-09)",) if drifting else (), evaluation_time=start + HOUR_MS),
            owner="seed")
        if state is not previous and state is not AlertState.OK:
            store.record_alert(Alert(name, start + HOUR_MS, state, start, "webhook:http://127.0.0.1:9/hook",
                                     "delivered" if state is AlertState.FIRING else "failed", attempts=3,
                                     detail="HTTP 200" if state is AlertState.FIRING else "connection refused"))
            if state is AlertState.FIRING:
                store.record_alert(Alert(name, start + HOUR_MS + 60_000, state, start, "retrain:make train",
                                         "promoted", attempts=1,
                                         detail="challenger v3 beat the champion v1 on accuracy (0.93 vs 0.71)"))
        store.release_lease(name, "seed")


def seed_dataset_version(client: Client, run_id: str) -> None:
    """A second version of DATASET: 10 more rows, ``spend`` with nulls and larger, ``plan`` with a
    new category, ``tenure`` retyped to text, ``region`` added."""
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"tenure": [str(v) for v in np.arange(50) % 7], "spend": np.linspace(0, 150, 50),
                          "plan": ["basic", "pro", "team", "pro", "basic"] * 10, "region": ["eu", "us"] * 25})
    frame.loc[:4, "spend"] = np.nan
    client.log_dataset(run_id, frame, DATASET, context="training")


def seed_pipeline(client: Client) -> str:
    """A small pipeline run (three steps, one fanning out to two): its run id."""
    from shipyard.pipelines import pipeline, step

    @step
    def prepare(n: int) -> int:
        return n

    @step
    def square(x: int) -> int:
        return x * x

    @step
    def score(x: int, y: int) -> dict:
        return {"score": float(x + y)}

    @pipeline
    def ui_pipeline(n: int = 3):
        a = prepare(n)
        score(a, square(a))

    return ui_pipeline.run(n=3, client=client).run_id


@contextmanager
def seeded_site() -> Iterator[tuple[str, Seeded]]:
    """Every seed above in a fresh SQLite store, served by uvicorn on a free loopback port: its URL
    and what was seeded. Monitors are not scheduled, so the seeded monitor's history stays as written."""
    from shipyard.config import Settings
    from shipyard.server import create_app
    from tests.support import uvicorn_thread

    with tempfile.TemporaryDirectory(prefix="shipyard-ui-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(env={"SHIPYARD_CAPTURE_PACKAGES": "false"},
                                    tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
                                    artifact_uri=str(root / "artifacts"), server_run_monitors=False)
        client = Client(settings=settings)
        try:
            seeded = seed(client, root)
            seed_monitor(client)
            seed_dataset_version(client, seeded.child_run_id)
            seeded.pipeline_run_id = seed_pipeline(client)
            with uvicorn_thread(create_app(settings, client=client), name="ui-test-server") as url:
                yield url, seeded
        finally:
            client.close()
