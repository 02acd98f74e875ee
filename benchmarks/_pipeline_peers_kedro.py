"""The benchmark's pipeline in Kedro (runs in ``.bench/kedro-venv``): nodes in a pipeline, parameters and
intermediate values in a data catalog (memory datasets), run by the sequential runner. Kedro has no cache:
each run executes every node."""

from __future__ import annotations

import _pipeline_work as w
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner

PIPELINE = Pipeline([
    node(w.make, "params:seed", "frame", name="make"),
    node(w.rolling, ["frame", "params:window"], "a", name="rolling"),
    node(w.ranks, "frame", "b", name="ranks"),
    node(w.join, ["frame", "a", "b"], "table", name="join"),
    node(w.fit, ["table", "params:c"], "model", name="fit"),
    node(w.evaluate, ["model", "table"], "metrics", name="evaluate"),
])

if __name__ == "__main__":
    params = {"params:seed": w.SEED, "params:window": w.WINDOW, "params:c": w.C}
    catalog = DataCatalog({name: MemoryDataset(value) for name, value in params.items()})
    SequentialRunner().run(PIPELINE, catalog)
    print("cached=0")
