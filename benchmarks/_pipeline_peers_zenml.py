"""The benchmark's pipeline in ZenML (runs in ``.bench/zenml-venv``): steps and a pipeline, run by the default
local orchestrator on the default local store, with step caching on (ZenML's default). Prints ``cached=N``,
the number of steps the run reused."""

from __future__ import annotations

import _pipeline_work as w
import pandas as pd
from sklearn.linear_model import LogisticRegression
from zenml import pipeline, step
from zenml.enums import ExecutionStatus


@step
def make(seed: int) -> pd.DataFrame:
    return w.make(seed)


@step
def rolling(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    return w.rolling(frame, window)


@step
def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    return w.ranks(frame)


@step
def join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return w.join(frame, a, b)


@step
def fit(table: pd.DataFrame, c: float) -> LogisticRegression:
    return w.fit(table, c)


@step
def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return w.evaluate(model, table)


@pipeline
def flow(seed: int = w.SEED, window: int = w.WINDOW, c: float = w.C) -> None:
    frame = make(seed)
    table = join(frame, rolling(frame, window), ranks(frame))
    evaluate(fit(table, c), table)


if __name__ == "__main__":
    run = flow()
    steps = run.steps.values()
    if any(s.status not in (ExecutionStatus.COMPLETED, ExecutionStatus.CACHED) for s in steps):
        raise SystemExit(f"ZenML run ended {run.status}")
    print(f"cached={sum(s.status == ExecutionStatus.CACHED for s in steps)}")
