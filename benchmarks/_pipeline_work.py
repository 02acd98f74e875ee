"""The work of the pipelines benchmark's 6 steps, as plain functions (numpy, pandas and scikit-learn only, so the
peers' virtualenvs import it too): a seeded 50,000 x 20 frame, two feature branches, a join, a fit, an evaluation.
Shipyard's flow (``_pipeline_flow.py``), each peer's (``_pipeline_peers_*.py``) and the plain script call these
same functions, so every tool does exactly the same work."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

ROWS, COLUMNS = 50_000, 20
SEED, WINDOW, C = 7, 7, 1.0  # the pipeline's parameters, the same for every tool


def make(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(ROWS, COLUMNS)), columns=[f"x{i}" for i in range(COLUMNS)])
    frame["y"] = (frame["x0"] + 0.5 * frame["x1"] + rng.normal(scale=0.5, size=ROWS) > 0).astype(int)
    return frame


def rolling(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    cols = [f"x{i}" for i in range(COLUMNS // 2)]
    return frame[cols].rolling(window, min_periods=1).mean().add_suffix("_roll")


def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    cols = [f"x{i}" for i in range(COLUMNS // 2, COLUMNS)]
    return frame[cols].rank(pct=True).add_suffix("_rank")


def join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, a, b], axis=1)


def fit(table: pd.DataFrame, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=200).fit(table.drop(columns="y"), table["y"])


def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return {"accuracy": float((model.predict(table.drop(columns="y")) == table["y"]).mean())}


def plain(seed: int = SEED, window: int = WINDOW, c: float = C) -> dict:
    """The pipeline as an ordinary script: the floor for a cold run."""
    frame = make(seed)
    table = join(frame, rolling(frame, window), ranks(frame))
    return evaluate(fit(table, c), table)
