"""MLflow half of the scale benchmark; runs inside ``.bench/mlflow-venv`` (see scale.py).

    python _scale_mlflow.py --runs N --cache-dir DIR [--repeats 5] [--writes]
    python _scale_mlflow.py --runs N --cache-dir DIR --prepare-only   (for benchmarks/ui.py)

Builds (once, cached) an MLflow SQLite store holding the same corpus as Shipyard's
(``_scale_data``): MLflow creates its schema through its own client, then the rows are bulk
inserted into its ``runs``, ``params``, ``tags``, ``metrics`` and ``latest_metrics`` tables,
with the run of query (d) (one metric of 100,000 steps, run id ``f`` * 32) in an experiment of
its own, as in Shipyard's corpus. Then times queries (a)-(c) through ``MlflowClient.search_runs``
and writing runs through the client, and prints one JSON line; ``--prepare-only`` prints the
store's path instead of timing anything.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
from itertools import islice
from pathlib import Path

import _scale_data as data
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

WRITE_RUNS = 100


def build(path: Path, n: int) -> None:
    if path.exists():
        return
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    uri = f"sqlite:///{partial}"
    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("scale")
    client.delete_run(client.create_run(exp_id).info.run_id)  # make sure every table exists
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("DELETE FROM runs")
    conn.execute("PRAGMA synchronous = OFF")
    source = data.runs(n)
    while chunk := list(islice(source, 20_000)):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, ?, 'LOCAL', 'train.py', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
            [(r.run_id, r.name, r.start_time, r.start_time + 500, f"/tmp/art/{r.run_id}", int(exp_id))
             for r in chunk])
        conn.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                         [(k, v, r.run_id) for r in chunk for k, v in r.params])
        conn.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                         [(k, v, r.run_id) for r in chunk for k, v in r.tags])
        metric_rows = [(k, v, r.start_time, r.run_id, 0, 0) for r in chunk for k, v in r.metrics]
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                         "VALUES (?, ?, ?, ?, ?, ?)", metric_rows)
        conn.executemany("INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
                         "VALUES (?, ?, ?, ?, ?, ?)", metric_rows)
        conn.execute("COMMIT")
    _insert_history(conn, client.create_experiment("scale-history"))
    conn.execute("ANALYZE")
    conn.close()
    partial.replace(path)


def _insert_history(conn: sqlite3.Connection, experiment_id: str) -> None:
    run_id = "f" * 32
    conn.execute("BEGIN")
    conn.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
        "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
        "VALUES (?, 'history', 'LOCAL', 'train.py', '', 'bench', 'FINISHED', ?, ?, '', 'active', ?, ?)",
        (run_id, data.BASE_TIME_MS, data.BASE_TIME_MS + 1, f"/tmp/art/{run_id}", int(experiment_id)))
    points = [(data.HISTORY_KEY, v, ts, run_id, step, 0) for step, v, ts in data.history()]
    conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
                     points)
    conn.execute("INSERT INTO latest_metrics (key, value, timestamp, run_uuid, step, is_nan) "
                 "VALUES (?, ?, ?, ?, ?, ?)", points[-1])
    conn.execute("COMMIT")


def measure(path: Path, repeats: int) -> dict:
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    exp = client.get_experiment_by_name("scale")
    assert exp is not None
    out = {}
    for name, query in data.QUERIES.items():
        def once(query: dict = query) -> list:
            return client.search_runs([exp.experiment_id], filter_string=query["filter_string"],
                                      max_results=query["max_results"], order_by=query["order_by"])
        found, ms, low = data.warm_timed(once, repeats)  # as Shipyard's side is timed
        out[name] = {"ms": ms, "min_ms": low, "names": [r.info.run_name for r in found]}
    return out


def write_rate() -> dict:
    """Runs/s through MLflow's fluent calls and through its client, as ``scale.write_rate`` measures
    Shipyard (MLflow's fluent calls write before they return: nothing to flush)."""
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/w.db"
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment("fluent-writes")
        with mlflow.start_run():  # warm-up
            pass
        start = time.perf_counter()
        for i in range(WRITE_RUNS):
            with mlflow.start_run(run_name=f"w{i}"):
                mlflow.log_params({f"p{k}": k for k in range(5)})
                mlflow.log_metrics({f"m{k}": 0.5 for k in range(5)}, step=0)
        fluent = WRITE_RUNS / (time.perf_counter() - start)
        client = MlflowClient(tracking_uri=uri)
        exp_id = client.create_experiment("writes")
        client.create_run(exp_id)  # warm-up
        start = time.perf_counter()
        for i in range(WRITE_RUNS):
            run_id = client.create_run(exp_id, run_name=f"w{i}").info.run_id
            client.log_batch(run_id, metrics=[Metric(f"m{k}", 0.5, int(time.time() * 1000), 0) for k in range(5)],
                             params=[Param(f"p{k}", str(k)) for k in range(5)])
            client.set_terminated(run_id)
        return {"writes_per_s": fluent, "client_writes_per_s": WRITE_RUNS / (time.perf_counter() - start)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--writes", action="store_true")
    parser.add_argument("--prepare-only", action="store_true", help="build (or find) the store, print its path")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    path = args.cache_dir / f"mlflow-{mlflow.__version__}-{args.runs}-v{data.CORPUS_VERSION}h.db"
    start = time.perf_counter()
    build(path, args.runs)
    if args.prepare_only:
        print(json.dumps({"version": mlflow.__version__, "build_s": time.perf_counter() - start, "path": str(path)}))
        return
    result = {"version": mlflow.__version__, "build_s": time.perf_counter() - start,
              "queries": measure(path, args.repeats)}
    if args.writes:
        result.update(write_rate())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
