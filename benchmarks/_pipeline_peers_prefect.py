"""The benchmark's pipeline in Prefect 3 (runs in ``.bench/prefect-venv``): tasks whose results persist and are
cached by their source and the flow's parameters, called from a flow, against Prefect's ephemeral local server.
Prints ``cached=N``, the number of tasks that came from the cache.

Prefect's default policy adds the flow run's id (it never hits in a new run), and ``INPUTS`` hashes a DataFrame
input by its pickle, whose bytes differ once the frame was read back from the cache: with ``INPUTS +
TASK_SOURCE`` only the first three tasks hit on the re-run (measured). Every task here is decided by the flow's
parameters, so ``TASK_SOURCE + FLOW_PARAMETERS`` keys them as exactly, and hashes no frame."""

from __future__ import annotations

import _pipeline_work as w
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import FLOW_PARAMETERS, TASK_SOURCE
from sklearn.linear_model import LogisticRegression

CACHE = TASK_SOURCE + FLOW_PARAMETERS


@task(cache_policy=CACHE, persist_result=True)
def make(seed: int) -> pd.DataFrame:
    return w.make(seed)


@task(cache_policy=CACHE, persist_result=True)
def rolling(frame: pd.DataFrame, window: int) -> pd.DataFrame:
    return w.rolling(frame, window)


@task(cache_policy=CACHE, persist_result=True)
def ranks(frame: pd.DataFrame) -> pd.DataFrame:
    return w.ranks(frame)


@task(cache_policy=CACHE, persist_result=True)
def join(frame: pd.DataFrame, a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    return w.join(frame, a, b)


@task(cache_policy=CACHE, persist_result=True)
def fit(table: pd.DataFrame, c: float) -> LogisticRegression:
    return w.fit(table, c)


@task(cache_policy=CACHE, persist_result=True)
def evaluate(model: LogisticRegression, table: pd.DataFrame) -> dict:
    return w.evaluate(model, table)


@flow
def bench_flow(seed: int = w.SEED, window: int = w.WINDOW, c: float = w.C) -> list:
    frame = make(seed, return_state=True)
    a = rolling(frame.result(), window, return_state=True)
    b = ranks(frame.result(), return_state=True)
    table = join(frame.result(), a.result(), b.result(), return_state=True)
    model = fit(table.result(), c, return_state=True)
    metrics = evaluate(model.result(), table.result(), return_state=True)
    return [frame, a, b, table, model, metrics]


if __name__ == "__main__":
    states = bench_flow()
    print(f"cached={sum(s.name == 'Cached' for s in states)}")
