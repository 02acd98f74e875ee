"""The 6-step pipeline of benchmarks/pipelines.py: a seeded 50,000 x 20 frame, two feature branches, a join,
a scikit-learn fit and an evaluation. The same functions run as Shipyard steps (``flow``) and as a plain
script (``plain``), so the two do exactly the same work."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from shipyard import pipeline, step

ROWS, COLUMNS = 50_000, 20


def _make(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(ROWS, COLUMNS)), columns=[f"x{i}" for i in range(COLUMNS)])
    frame["y"] = (frame["x0"] + 0.5 * frame["x1"] + rng.normal(scale=0.5, size=ROWS) > 0).astype(int)
    return frame


def _rolling(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    cols = [f"x{i}" for i in range(COLUMNS // 2)]
    return frame[cols].rolling(window, min_periods=1).mean().add_suffix("_roll")


def _ranks(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [f"x{i}" for i in range(COLUMNS // 2, COLUMNS)]
    return frame[cols].rank(pct=True).add_suffix("_rank")


def _join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, a, b], axis=1)


def _fit(table: pd.DataFrame, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=200).fit(table.drop(columns="y"), table["y"])


def _evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return {"accuracy": float((model.predict(table.drop(columns="y")) == table["y"]).mean())}


@step
def make(seed: int) -> pd.DataFrame:
    return _make(seed)


@step
def rolling(frame: pd.DataFrame, window: int = 7) -> pd.DataFrame:
    return _rolling(frame, window)


@step
def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    return _ranks(frame)


@step
def join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return _join(frame, a, b)


@step
def fit(table: pd.DataFrame, c: float = 1.0) -> LogisticRegression:
    return _fit(table, c)


@step(gate="metrics.accuracy >= 0.7")
def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return _evaluate(model, table)


@pipeline
def flow(seed: int = 7, window: int = 7, c: float = 1.0):
    frame = make(seed)
    table = join(frame, rolling(frame, window), ranks(frame))
    evaluate(fit(table, c), table)


def plain(seed: int = 7, window: int = 7, c: float = 1.0) -> dict:
    frame = _make(seed)
    table = _join(frame, _rolling(frame, window), _ranks(frame))
    return _evaluate(_fit(table, c), table)
