"""Search and history at team scale: Shipyard on SQLite and PostgreSQL at 10k, 100k and 1M runs,
MLflow on SQLite at 10k and 100k, in one run.

    .venv/bin/python benchmarks/scale.py [--quick] [--sizes 10000,100000,1000000] [--no-postgres]
                                         [--no-mlflow] [--repeats 5] [--json PATH]

Corpora (``_scale_data``: one experiment, each run with 5 params, 5 metrics, 3 tags) are written
by bulk SQL into each tool's own schema, not through the SDKs (a million runs through an SDK
takes hours): see ``_scale_corpus.py`` for Shipyard and ``_scale_mlflow.py`` for MLflow. They
are cached (``.bench/scale/``, PostgreSQL databases ``shipyard_scale_<n>``). Measured, each a
median of ``--repeats`` once warm (``_scale_data.warm_timed``), through the SDK's ``Client``:

(a) ``metrics.acc > 0.99 and params.model = 'rf'`` (0.25 % of runs), default order, max_results=1000;
    ``a_same``: its bound scaled to the store (0.9, 0.99, 0.999), so ~250 runs match at every size
(b) the same, ``order_by metrics.acc DESC``, max_results=100
(c) no filter, ``order_by start_time DESC``, max_results=100
(d) the history of one run's metric of 100,000 steps, as columns and as objects
(w) writing runs through the SDK (start, 5 params, 5 metrics, end), runs/s: the fluent calls (timed until
    flush() returns) and the Client's explicit ones; MLflow's the same two ways

Shipyard's and MLflow's answers to (a)-(c) must name the same runs in the same order. Prints the
growth per 10x and the ratio to MLflow. ``--quick``: 10k only. PostgreSQL is
``SHIPYARD_BENCH_POSTGRES`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import _scale_corpus as corpus
import _scale_data as data
import sqlalchemy as sa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import shipyard
from shipyard.entities import Metric, Param
from shipyard.store.sql.engine import normalize_url

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent / ".bench"
SCALE_DIR = BENCH / "scale"
MLFLOW_PYTHON = BENCH / "mlflow-venv" / "bin" / "python"
WRITE_RUNS = 300  # through the Client's explicit calls (and MLflow's)
FLUENT_RUNS = 2000  # through the fluent SDK: a few seconds at its rate


def measure_shipyard(uri: str, n: int, repeats: int) -> dict[str, Any]:
    client = shipyard.Client(tracking_uri=uri, artifact_uri=str(BENCH / "scale-artifacts"))
    try:
        exp = client.get_experiment_by_name(corpus.EXPERIMENT)
        assert exp is not None
        out: dict[str, Any] = {}
        for name, query in {**data.QUERIES, "a_same": data.same_answer_query(n)}.items():
            found, ms, low = data.warm_timed(lambda q=query: client.search_runs([exp.experiment_id], **q), repeats)
            out[name] = {"ms": ms, "min_ms": low, "names": [r.info.run_name for r in found]}
        run_id = "f" * 32
        columns, ms, low = data.warm_timed(lambda: client.get_metric_history_columns(run_id, data.HISTORY_KEY), repeats)
        assert len(columns) == data.HISTORY_STEPS
        out["d"] = {"ms": ms, "min_ms": low}
        _objects, ms, low = data.warm_timed(lambda: client.get_metric_history(run_id, data.HISTORY_KEY), repeats)
        out["d_objects"] = {"ms": ms, "min_ms": low}
        _thin, ms, low = data.warm_timed(lambda: client.get_metric_history_columns(run_id, data.HISTORY_KEY,
                                                                              max_points=1000), repeats)
        out["d_chart"] = {"ms": ms, "min_ms": low}
        return out
    finally:
        client.close()


def write_rate(uri: str) -> dict[str, float]:
    """(w), runs/s through the SDK, each run with 5 params and 5 metrics: the fluent calls
    (``start_run``, ``log_params``, ``log_metrics``, ``end_run``; capture off), timed until
    ``flush()`` returns, when every run is in the store; and the ``Client``'s explicit calls
    (``create_run``, ``log_batch``, ``set_terminated``: each written before it returns)."""
    shipyard.set_tracking_uri(uri)
    try:
        shipyard.set_experiment(f"writes-{uuid.uuid4().hex[:8]}")
        with shipyard.start_run(capture=False):  # warm-up: open the store
            pass
        shipyard.flush()
        start = time.perf_counter()
        for i in range(FLUENT_RUNS):
            with shipyard.start_run(run_name=f"w{i}", capture=False):
                shipyard.log_params({f"p{k}": k for k in range(5)})
                shipyard.log_metrics({f"m{k}": 0.5 for k in range(5)}, step=0)
        shipyard.flush()
        fluent = FLUENT_RUNS / (time.perf_counter() - start)
    finally:
        shipyard.set_tracking_uri("sqlite://")  # closes the fluent client's connections to ``uri``
    client = shipyard.Client(tracking_uri=uri, artifact_uri=str(BENCH / "scale-artifacts"))
    try:
        exp_id = client.create_experiment(f"writes-{uuid.uuid4().hex[:8]}")
        client.create_run(exp_id)  # warm-up: open the store
        start = time.perf_counter()
        for i in range(WRITE_RUNS):
            run_id = client.create_run(exp_id, f"w{i}").info.run_id
            client.log_batch(run_id, metrics=[Metric(f"m{k}", 0.5, 0, int(time.time() * 1000))
                                              for k in range(5)],
                             params=[Param(f"p{k}", str(k)) for k in range(5)])
            client.set_terminated(run_id)
        return {"writes_per_s": fluent, "client_writes_per_s": WRITE_RUNS / (time.perf_counter() - start)}
    finally:
        client.close()


def postgres_admin() -> str | None:
    uri = os.environ.get("SHIPYARD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        engine = sa.create_engine(normalize_url(uri))
        with engine.connect():
            pass
        engine.dispose()
        return uri
    except Exception:
        return None


def mlflow_side(n: int, repeats: int, writes: bool, *, prepare_only: bool = False) -> dict[str, Any]:
    """``_scale_mlflow.py`` in MLflow's venv: its figures, or with ``prepare_only`` the path of its
    corpus of ``n`` runs (built and cached on first use)."""
    cmd = [str(MLFLOW_PYTHON), str(HERE / "_scale_mlflow.py"), "--runs", str(n), "--cache-dir", str(SCALE_DIR),
           "--repeats", str(repeats), *(["--writes"] if writes else []), *(["--prepare-only"] if prepare_only else [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHIPYARD_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONPATH=str(HERE))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise RuntimeError(f"the MLflow side failed:\n{done.stderr[-3000:]}")
    parsed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k runs only")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    console = Console(width=None if sys.stdout.isatty() else 200)
    admin = None if args.no_postgres else postgres_admin()
    if admin is None and not args.no_postgres:
        console.print("[yellow]PostgreSQL is not reachable: measuring SQLite only[/]")
    results: dict[str, dict[int, dict[str, Any]]] = {"sqlite": {}, "postgresql": {}, "mlflow": {}}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        for n in sizes:
            task = progress.add_task(f"SQLite corpus of {n:,} runs", total=n)
            path = corpus.build_sqlite(SCALE_DIR, n, lambda done, total, t=task: progress.update(t, completed=done))
            progress.remove_task(task)
            results["sqlite"][n] = measure_shipyard(f"sqlite:///{path}", n, args.repeats)
            if admin is not None:
                task = progress.add_task(f"PostgreSQL corpus of {n:,} runs", total=n)
                uri = corpus.build_postgres(admin, n, lambda done, total, t=task: progress.update(t, completed=done))
                progress.remove_task(task)
                results["postgresql"][n] = measure_shipyard(uri, n, args.repeats)
            if not args.no_mlflow and n <= 100_000 and MLFLOW_PYTHON.exists():
                task = progress.add_task(f"MLflow at {n:,} runs (corpus cached after the first run)", total=None)
                results["mlflow"][n] = mlflow_side(n, args.repeats, writes=n == sizes[0])
                progress.remove_task(task)
        with tempfile.TemporaryDirectory() as tmp:
            results["sqlite"][0] = write_rate(f"sqlite:///{tmp}/w.db")
        if admin is not None:
            name = f"shipyard_writes_{uuid.uuid4().hex[:8]}"
            engine = sa.create_engine(normalize_url(admin), isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                results["postgresql"][0] = write_rate(admin.rsplit("/", 1)[0] + f"/{name}")
            finally:
                with engine.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                engine.dispose()
    same = report(console, results, sizes)
    if args.json:
        for side in results.values():
            for figures in side.values():
                for fig in figures.values():
                    if isinstance(fig, dict):
                        fig.pop("names", None)
        args.json.write_text(json.dumps({"load_average": os.getloadavg(), "results": results}, indent=2) + "\n")
    return 0 if same else 2


def report(console: Console, results: dict[str, dict[int, dict[str, Any]]], sizes: list[int]) -> bool:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"Search and history at scale (ms, median; load average {load} on {os.cpu_count()} cores)")
    table.add_column("figure")
    for backend in ("sqlite", "postgresql"):
        for n in sizes:
            if n in results[backend]:
                table.add_column(f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'} {n:,}", justify="right")
        if len(sizes) > 1 and results[backend]:
            table.add_column("growth/10x", justify="right")
    mlflow_sizes = sorted(results["mlflow"])
    for n in mlflow_sizes:
        table.add_column(f"MLflow {n:,}", justify="right")
        table.add_column(f"ratio {n:,} (SQLite)", justify="right")
    same = True
    for figure in ("a", "a_same", "b", "c", "d", "d_objects", "d_chart"):
        row = [figure]
        for backend in ("sqlite", "postgresql"):
            measured = [(n, results[backend][n][figure]["ms"]) for n in sizes if n in results[backend]]
            row += [f"{ms:,.1f}" for _n, ms in measured]
            if len(sizes) > 1 and results[backend]:
                growth = [b / a for (_n, a), (_m, b) in pairwise(measured)]
                row.append(" / ".join(f"{g:.1f}x" for g in growth))
        for n in mlflow_sizes:
            theirs = results["mlflow"][n]["queries"].get(figure)
            ours = results["sqlite"][n][figure]
            row += ["—", "—"] if theirs is None else [f"{theirs['ms']:,.1f}", f"{theirs['ms'] / ours['ms']:.1f}x"]
            if theirs is not None and theirs["names"] != ours["names"]:
                same = False
                console.print(f"[bold red]MLflow and Shipyard disagree on {figure} at {n:,} runs[/]")
        table.add_row(*row)
    console.print(table)
    # (a)'s page grows with the store (250 -> 1,000 runs from 100k to 1M): its cost per returned run
    # is what a "cost follows the result" target can hold it to.
    per_run = Table(title="(a)-(c) per returned run (µs, median / runs on the page)")
    per_run.add_column("figure")
    for backend in ("sqlite", "postgresql"):
        for n in sizes:
            if n in results[backend]:
                per_run.add_column(f"{'SQLite' if backend == 'sqlite' else 'PostgreSQL'} {n:,}", justify="right")
    for figure in ("a", "a_same", "b", "c"):
        cells = [figure]
        for backend in ("sqlite", "postgresql"):
            for n in sizes:
                if n in results[backend]:
                    fig = results[backend][n][figure]
                    cells.append(f"{fig['ms'] * 1000 / max(1, len(fig['names'])):,.0f} ({len(fig['names'])})")
        per_run.add_row(*cells)
    console.print(per_run)
    labels = {**data.QUERY_LABELS, "a_same": "(a) with its bound scaled to the store (acc > 0.9 / 0.99 / 0.999), "
              "so that ~250 runs match at every size: the growth a cost that follows the result allows",
              "d": "(d) the history of one metric, 100,000 steps, as columns",
              "d_objects": "the same as objects (get_metric_history)", "d_chart": "the same thinned to 1,000 points"}
    for figure, label in labels.items():
        console.print(f"[dim]{figure}: {label}[/]", highlight=False)
    for backend in ("sqlite", "postgresql"):
        if 0 in results[backend]:
            rates = results[backend][0]
            console.print(f"(w) writing runs on {backend}: {rates['writes_per_s']:,.0f} runs/s through the fluent SDK, "
                          f"{rates['client_writes_per_s']:,.0f} runs/s through the Client's explicit calls")
    if mlflow_sizes and "writes_per_s" in results["mlflow"][mlflow_sizes[0]]:
        rates = results["mlflow"][mlflow_sizes[0]]
        console.print(f"(w) writing runs through MLflow on SQLite: {rates['writes_per_s']:,.0f} runs/s fluent, "
                      f"{rates['client_writes_per_s']:,.0f} runs/s through its client")
    return same


if __name__ == "__main__":
    sys.exit(main())
