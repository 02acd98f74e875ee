"""A small, realistic store for the UI tests: an experiment of runs with params, metric histories,
tags, artifacts of every previewable kind, a dataset, a registered model with a protected alias,
a deployment with a canary, and a child run."""

from __future__ import annotations

import io
import json
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
