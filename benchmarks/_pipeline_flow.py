"""The 6-step pipeline of benchmarks/pipelines.py as Shipyard steps: a seeded 50,000 x 20 frame, two feature
branches, a join, a scikit-learn fit and an evaluation with a gate. The work is ``_pipeline_work.py``'s, which the
peers' flows and the plain script call too."""

from __future__ import annotations

import _pipeline_work as w
import pandas as pd
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step


@step
def make(seed: int) -> pd.DataFrame:
    return w.make(seed)


@step
def rolling(frame: pd.DataFrame, window: int = 7) -> pd.DataFrame:
    return w.rolling(frame, window)


@step
def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    return w.ranks(frame)


@step
def join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return w.join(frame, a, b)


@step
def fit(table: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    return w.fit(table, c)


@step(gate="metrics.accuracy >= 0.7")
def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return w.evaluate(model, table)


@pipeline
def flow(seed: int = w.SEED, window: int = w.WINDOW, c: float = w.C):
    frame = make(seed)
    table = join(frame, rolling(frame, window), ranks(frame))
    evaluate(fit(table, c), table)
