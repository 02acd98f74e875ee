"""The scale benchmark's corpus, generated row by row (stdlib only: MLflow's venv imports it too).

One experiment of ``n`` runs; each run has 5 params, 5 metrics (one value each, step 0) and 3
tags. ``params.model`` is one of four values and ``metrics.acc`` is uniform in [0, 1), so the
filter of queries (a) and (b) matches about 0.25 % of the runs. Start times come in pairs (two
runs per millisecond), so the default order's tie-break by run id is exercised. Runs are yielded
in run-id order (random 32-hex ids, as the tools make them), which loads each primary key in
order without changing which rows exist.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CORPUS_VERSION = 1
SEED = 22
BASE_TIME_MS = 1_700_000_000_000
MODELS = ("rf", "gbm", "lr", "svm")
LEARNING_RATES = ("0.001", "0.003", "0.01", "0.03", "0.1", "0.3")
HISTORY_STEPS = 100_000
HISTORY_KEY = "curve"

FILTER = "metrics.acc > 0.99 and params.model = 'rf'"
QUERIES: dict[str, dict] = {
    "a": {"filter_string": FILTER, "max_results": 1000, "order_by": None},
    "b": {"filter_string": FILTER, "max_results": 100, "order_by": ["metrics.acc DESC"]},
    "c": {"filter_string": "", "max_results": 100, "order_by": ["start_time DESC"]},
}


def same_answer_query(n: int) -> dict:
    """(a) with its metric bound scaled to a store of ``n`` runs (0.9 at 10k, 0.99 at 100k, 0.999
    at 1M), so that about 250 runs match at every size: (a) itself matches 0.25 % of the runs, so
    its answer grows with the store (250 -> 2,500 matches, a page of 250 -> 1,000 runs)."""
    return {"filter_string": f"metrics.acc > {1 - 1000 / n:g} and params.model = 'rf'", "max_results": 1000,
            "order_by": None}


QUERY_LABELS = {
    "a": f"(a) {FILTER} (default order, max_results=1000)",
    "b": "(b) the same, order_by metrics.acc DESC, max_results=100",
    "c": "(c) no filter, order_by start_time DESC, max_results=100",
}


@dataclass(frozen=True, slots=True)
class RunRows:
    run_id: str
    name: str
    start_time: int
    params: tuple[tuple[str, str], ...]
    metrics: tuple[tuple[str, float], ...]
    tags: tuple[tuple[str, str], ...]


def runs(n: int) -> Iterator[RunRows]:
    rng = random.Random(SEED * 1_000_003 + n)
    ids = sorted(uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(n))
    order = list(range(n))
    rng.shuffle(order)
    for run_id, i in zip(ids, order, strict=True):
        start = BASE_TIME_MS + (i // 2)
        params = (("model", MODELS[rng.randrange(4)]), ("lr", rng.choice(LEARNING_RATES)),
                  ("depth", str(rng.randrange(2, 13))), ("n_estimators", str(50 * rng.randrange(1, 11))),
                  ("seed", str(i)))
        metrics = (("acc", rng.random()), ("loss", 2 * rng.random()), ("f1", rng.random()),
                   ("precision", rng.random()), ("recall", rng.random()))
        tags = (("team", f"team-{i % 8}"), ("env", "prod" if i % 3 == 0 else "dev"), ("note", f"trial {i}"))
        yield RunRows(run_id, f"run-{i}", start, params, metrics, tags)


def history(steps: int = HISTORY_STEPS) -> Iterator[tuple[int, float, int]]:
    """(step, value, timestamp) of the one long metric history of query (d)."""
    rng = random.Random(SEED)
    value = 1.0
    for step in range(steps):
        value = max(0.0, value * 0.99995 + rng.gauss(0, 0.001))
        yield step, value, BASE_TIME_MS + step * 10


MAX_WARM_UPS = 5


def warm_timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float, float]:
    """``fn``'s result, then the median and the minimum milliseconds of ``repeats`` warm calls, on
    both sides. Warm means the warm-up calls stopped getting faster (a call no faster than 0.9x the
    one before, at most ``MAX_WARM_UPS``): after the benchmark has used another database,
    PostgreSQL's default 128 MB of shared buffers took three searches of (a) at 1M runs to hold
    its pages again (122, 117, then 89 ms), and one warm-up left two of them in the median."""
    result = fn()
    before = None
    for _ in range(MAX_WARM_UPS):
        start = time.perf_counter()
        fn()
        took = time.perf_counter() - start
        if before is not None and took > 0.9 * before:
            break
        before = took
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return result, statistics.median(times), min(times)
