"""MLflow half of the tracking benchmark. Runs inside ``.bench/mlflow-venv`` (see tracking.py).

Uses only MLflow's public tracking API (``mlflow.*`` fluent calls and ``MlflowClient``) on a
SQLite database in a fresh folder, with MLflow's default synchronous logging.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import _workload as w
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

MAX_METRICS_PER_BATCH = 1_000  # MLflow rejects larger log_batch calls.


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def copy_sqlite(source: Path, target: Path) -> None:
    """Consistent copy of a SQLite database (the backup API, not a file copy)."""
    partial = target.with_name(target.name + f".{os.getpid()}.partial")
    with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    partial.replace(target)


def bench_single(uri: str, sizes: w.Sizes) -> w.Throughput:
    calls = w.single_calls(sizes)
    keys = sorted({key for key, _, _ in calls})
    w.start(f"MLflow: {len(calls):,} log_metric calls, {sizes.single_repeats} runs")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("single")
    client = MlflowClient(tracking_uri=uri)

    def one_run() -> float:
        with mlflow.start_run() as run:
            start = time.perf_counter()
            for key, value, step in calls:
                mlflow.log_metric(key, value, step=step)
            seconds = time.perf_counter() - start
        stored = sum(len(client.get_metric_history(run.info.run_id, key)) for key in keys)
        assert stored == len(calls), f"MLflow stored {stored} of {len(calls)} metric values"
        return seconds

    result = w.Throughput.of(len(calls), [one_run() for _ in range(sizes.single_repeats)], calls=len(calls))
    w.done(f"{result.per_second:,.0f} calls/s (median)")
    return result


def bench_batch(uri: str, sizes: w.Sizes) -> w.Throughput:
    metrics = [Metric(key=k, value=v, timestamp=ts, step=s) for k, v, s, ts in w.batch_metrics(sizes)]
    chunks = [metrics[i : i + MAX_METRICS_PER_BATCH] for i in range(0, len(metrics), MAX_METRICS_PER_BATCH)]
    w.start(f"MLflow: log_batch of {len(metrics):,} metrics in {len(chunks)} calls")
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment("batch")
    run_id = client.create_run(experiment_id, run_name="batch").info.run_id
    start = time.perf_counter()
    for chunk in chunks:
        client.log_batch(run_id, metrics=chunk)
    seconds = time.perf_counter() - start
    client.set_terminated(run_id)
    stored = len(client.get_metric_history(run_id, "b0"))
    expected = len(metrics) // w.BATCH_KEYS
    assert stored == expected, f"MLflow stored {stored} values of b0, expected {expected}"
    result = w.Throughput.of(len(metrics), [seconds], calls=len(chunks),
                             note=f"chunks of {MAX_METRICS_PER_BATCH:,}")
    w.done(f"{result.per_second:,.0f} metrics/s")
    return result


def populate(uri: str, sizes: w.Sizes) -> float:
    """Create the search corpus through the public client: one log_batch per run."""
    corpus = w.search_corpus(sizes)
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(w.SEARCH_EXPERIMENT)
    w.start(f"MLflow: populating {len(corpus):,} runs (cached afterwards)", total=len(corpus))
    start = time.perf_counter()
    for i, spec in enumerate(corpus):
        run_id = client.create_run(experiment_id, run_name=spec.name).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(key=k, value=v, timestamp=w.BASE_TIMESTAMP_MS + i, step=0)
                     for k, v in spec.metrics.items()],
            params=[Param(k, v) for k, v in spec.params.items()],
        )
        client.set_terminated(run_id)
        if (i + 1) % 100 == 0:
            w.advance(i + 1, len(corpus))
    seconds = time.perf_counter() - start
    w.done(f"{len(corpus):,} runs in {seconds:,.0f} s")
    return seconds


def prepare_search(workdir: Path, cache_dir: Path | None, sizes: w.Sizes) -> w.Populated:
    """``search.db`` in the workdir: restored from the cache, or populated and then cached."""
    db = workdir / w.SEARCH_DB
    cached = cache_dir / f"{w.cache_key(mlflow.__version__, sizes)}.db" if cache_dir else None
    if cached is not None and cached.exists():
        copy_sqlite(cached, db)
        return w.Populated(sizes.search_runs, seconds=None, cached=True)
    seconds = populate(sqlite_uri(db), sizes)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        copy_sqlite(db, cached)
    return w.Populated(sizes.search_runs, seconds=seconds)


def bench_search(workdir: Path, sizes: w.Sizes) -> w.SearchResult:
    client = MlflowClient(tracking_uri=sqlite_uri(workdir / w.SEARCH_DB))
    experiment = client.get_experiment_by_name(w.SEARCH_EXPERIMENT)
    assert experiment is not None, "the search experiment is missing"
    return w.measure_search(
        "MLflow",
        lambda: client.search_runs(
            [experiment.experiment_id], filter_string=w.SEARCH_FILTER, max_results=w.SEARCH_MAX_RESULTS
        ),
        lambda run: run.info.run_name,
        sizes,
    )


def main() -> None:
    args = w.parse_args()
    if args.phase == "write":
        uri = sqlite_uri(args.workdir / "mlflow.db")
        w.emit(tool="mlflow", version=mlflow.__version__, single=bench_single(uri, args.sizes),
               batch=bench_batch(uri, args.sizes),
               populated=prepare_search(args.workdir, args.cache_dir, args.sizes),
               durability=w.sqlite_durability(MlflowClient(tracking_uri=uri)._tracking_client.store.engine))
    else:
        w.emit(search=bench_search(args.workdir, args.sizes))


if __name__ == "__main__":
    main()
