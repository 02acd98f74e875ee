"""The lineage figure of the data benchmark: ``explain`` of a model version in a store whose
graph holds 100,000 edges (SQLite, embedded). Runs in this interpreter (Shipyard only: no peer
keeps such a graph).

The graph: 20,000 synthetic training runs, each reading 4 of 2,000 dataset versions and
registering one model version (100,000 edges in all), plus one real chain for the explained
version: a run with its params, tags and 3 real input datasets, a parent run, registered as
``bench-model/1``. ``explain`` must walk from the version to the raw data through the big graph
by index, not by scanning it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from shipyard.models import PythonModel

EDGES = 100_000
TARGET_MS = 50.0


class Identity(PythonModel):
    def predict(self, context, data):
        return data


def build(root: Path, edges: int = EDGES) -> tuple[object, str]:
    import shipyard
    from shipyard.entities import Edge, Node, NodeKind, Relation

    client = shipyard.Client(tracking_uri=f"sqlite:///{root / 'lineage.db'}", artifact_uri=str(root / "artifacts"))
    runs, datasets = edges // 5, 2_000
    batch: list[Edge] = []
    for i in range(runs):
        run = Node(NodeKind.RUN, f"{i:032x}")
        batch += [Edge(Node(NodeKind.DATASET, f"synthetic-{(i * 7 + k) % datasets}@1"), run, Relation.INPUT,
                       "training") for k in range(4)]
        batch.append(Edge(run, Node(NodeKind.MODEL, f"synthetic-{i % 500}/{i // 500 + 1}"), Relation.MODEL))
        if len(batch) >= 5_000:
            client.store.lineage.add_edges(batch)
            batch = []
    client.store.lineage.add_edges(batch)

    parent = client.create_run("0", "parent").info.run_id
    run_id = client.create_run("0", "train", parent_run_id=parent, tags={
        "shipyard.git.commit": "c0ffee" * 6 + "c0ff", "shipyard.git.dirty": "false",
        "shipyard.seed": "7", "shipyard.source.entry_point": "train.py"}).info.run_id
    client.log_params(run_id, {"lr": "0.1", "depth": "6"})
    import numpy as np
    import pandas as pd

    for k in range(3):
        frame = pd.DataFrame({"x": np.arange(1_000.0) + k})
        client.log_dataset(run_id, frame, name=f"real-{k}", context="training")
    client.log_dataset(parent, pd.DataFrame({"y": np.arange(10.0)}), name="raw", context="extract")
    client.log_model(run_id, Identity(), "model", code_paths=[__file__])
    client.register_model(f"runs:/{run_id}/model", "bench-model")
    client.set_terminated(run_id)
    client.set_terminated(parent)
    return client, "models:/bench-model/1"


def measure(repeats: int = 15) -> dict[str, float]:
    from shipyard.lineage import explain

    with tempfile.TemporaryDirectory(prefix="shipyard-bench-lineage-") as tmp:
        started = time.perf_counter()
        client, ref = build(Path(tmp))
        built = time.perf_counter() - started
        explain(ref, client=client)  # warm-up
        samples = []
        for _ in range(repeats):
            t = time.perf_counter()
            found = explain(ref, client=client)
            samples.append((time.perf_counter() - t) * 1000)
        if len(found.datasets) != 4 or len(found.runs) != 2:
            raise RuntimeError(f"explain found {len(found.datasets)} datasets and {len(found.runs)} runs, "
                               "expected 4 and 2")
        client.close()  # type: ignore[attr-defined]
    return {"edges": EDGES, "build_s": built, "median_ms": statistics.median(samples), "min_ms": min(samples),
            "max_ms": max(samples), "target_ms": TARGET_MS}


if __name__ == "__main__":
    print(measure())
