"""MLflow-client benchmark: the same ``mlflow`` client script against ``mlflow server`` and ``shipyard server``.

    .venv/bin/python benchmarks/mlflow_compat.py [--quick] [--json PATH] [--refresh-mlflow]

Shipyard's server speaks MLflow's REST API, so MLflow's own client works against it unchanged.
This measures what a user of that client would see: the client script below runs in this venv
(``mlflow-skinny``, in one interpreter for both servers, a fresh one per server) against each
server in turn, Shipyard first, then MLflow. Each server runs alone on a free 127.0.0.1 port with
one worker, a SQLite backend and artifacts proxied by the server (``mlflow-artifacts:/``) into a
fresh temporary folder; ``mlflow server`` runs from ``.bench/mlflow-venv`` (created by
tracking.py's helper) and is started as in server.py, with ``--artifacts-destination`` in place
of ``--default-artifact-root`` so that its client, like Shipyard's, sends the model's bytes over
HTTP. In order, against a server that has just started:

1. ``search_runs``: ``MlflowClient.search_runs`` with the filter of ``_workload.py`` over 10,000
   runs of one experiment, ``max_results=1000``, median of 5 after a warm-up (server.py's MLflow
   client half, ``_server_mlflow.driver``); both servers must return the same runs. The corpus
   is written into each server's SQLite file before it starts, by server.py's ``prepare`` phase
   (MLflow's from the cache in ``.bench/cache/``; setup, not measured).
2. ``log_metric``: 2,000 sequential ``MlflowClient.log_metric`` calls into a fresh run, median
   of 3 runs (MLflow's client logs synchronously by default: each call is one request).
3. ``log_batch``: 100,000 metrics into a fresh run in ``MlflowClient.log_batch`` calls of 1,000
   (MLflow's maximum), median of 3 runs (server.py's ``measure_batch``).
4. Model round trip: ``mlflow.sklearn.log_model`` of a fitted ``Pipeline(StandardScaler,
   LogisticRegression)`` (``_models_workload.py``) inside a run, with explicit ``pip_requirements``
   (no requirement inference), then ``mlflow.pyfunc.load_model`` of the logged model's
   ``models:/m-…`` URI into a fresh folder; median of 7 after an untimed warm-up. Every loaded
   model must predict the pipeline's own labels.

5. HTTP level (``_mlflow_http.py``): the request bodies the client builds for steps 1 and 3 and
   for ``get_run`` of one corpus run, captured without sending, replayed with httpx against the
   server: ``runs/log-batch`` into a fresh run (median of 3), ``runs/search`` (median of 5),
   1,000 sequential ``runs/get``.
6. Ceilings: the client calls of steps 1-3 against a null server (answering at once; for the
   search, with this server's answer), i.e. the client's own time.

``--quick``: 500 calls, 10,000 metrics, 1,000 runs, 200 gets, fewer repeats. Targets (ratio =
MLflow time / Shipyard time) apply to the HTTP rows: at least 5x on ``runs/log-batch`` and
``runs/search``, 3x on ``runs/get``; the client rows are information, each printed with its
ceiling (MLflow's client time / the client's own time). Logs: ``.bench/logs/server-compat-*.log``.

Exits 0 when every target is met, 1 when one is not, 2 when the benchmark fails or the two
servers return different search results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _mlflow_http as mh
import _models_workload as mw
import _server_common as c
import _workload as w
import server as s
import tracking as t
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()

# HTTP-level targets (the same request bodies, replayed with httpx): MLflow time / Shipyard time.
HTTP_BATCH_TARGET = 5.0
HTTP_SEARCH_TARGET = 5.0
HTTP_GET_TARGET = 3.0
TIMES = "\N{MULTIPLICATION SIGN}"
CLIENT_PHASE = "client"
SINGLE_EXPERIMENT = "single"
MODEL_EXPERIMENT = "models"
TOOL_NAMES = {"shipyard": "Shipyard", "mlflow": "MLflow"}
SERVER_NAME_VAR = "BENCH_SERVER_NAME"  # tells the client script which server it talks to, for its progress lines


@dataclass(frozen=True)
class Sizes:
    single_calls: int = 2_000
    single_repeats: int = 3  # fresh runs; the figure is the median
    batch_metrics: int = 100_000
    batch_chunk: int = 1_000
    batch_repeats: int = 3
    search_runs: int = 10_000
    search_repeats: int = 5
    round_trips: int = 7
    get_calls: int = 1_000  # sequential runs/get replays
    ceiling_repeats: int = 3  # client-level calls against the null server

    @classmethod
    def quick(cls) -> Sizes:
        return cls(single_calls=500, batch_metrics=10_000, search_runs=1_000, search_repeats=3, round_trips=3,
                   get_calls=200, ceiling_repeats=1)

    def server(self) -> c.ServerSizes:
        """server.py's sizes, for its prepare phase (the corpus) and its measurements reused here."""
        return c.ServerSizes(batch_metrics=self.batch_metrics, batch_chunk=self.batch_chunk,
                             batch_repeats=self.batch_repeats, search_runs=self.search_runs,
                             search_repeats=self.search_repeats)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ClientResult:
    """What the client script measured against one server."""

    mlflow_version: str  # of the client
    search: w.SearchResult
    single: w.Throughput
    batch: w.Throughput
    log_model: mw.Timing
    load_model: mw.Timing
    round_trip: mw.Timing
    client_cpu: mw.Timing  # the client process's own CPU time per round trip
    first_round_trip: float  # the untimed warm-up: the first in the process, imports included
    predictions_digest: str
    http: mh.HttpResult  # the client's own request bodies replayed with httpx
    ceilings: mh.Ceilings  # the client-level calls against a null server: the client's own time

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ClientResult:
        timings = {k: mw.Timing(**raw[k]) for k in ("log_model", "load_model", "round_trip", "client_cpu")}
        return cls(**{**raw, **timings, "search": w.SearchResult(**raw["search"]),
                      "single": w.Throughput(**raw["single"]), "batch": w.Throughput(**raw["batch"]),
                      "http": mh.HttpResult.from_dict(raw["http"]), "ceilings": mh.Ceilings(**raw["ceilings"])})


# --- the client script: this file with --phase client, in this venv, against either server --------


def measure_single(client: Any, sizes: Sizes, label: str) -> w.Throughput:
    """``single_repeats`` fresh runs, each getting ``single_calls`` sequential ``log_metric`` calls."""
    calls = w.single_calls(w.Sizes(single_calls=sizes.single_calls))
    keys = sorted({key for key, _, _ in calls})
    experiment_id = client.create_experiment(SINGLE_EXPERIMENT)
    w.start(f"{label}: {len(calls):,} log_metric calls, {sizes.single_repeats} runs", total=sizes.single_repeats)
    samples: list[float] = []
    for repeat in range(sizes.single_repeats):
        run_id = client.create_run(experiment_id, run_name=f"single-{repeat}").info.run_id
        start = time.perf_counter()
        for key, value, step in calls:
            client.log_metric(run_id, key, value, step=step)
        samples.append(time.perf_counter() - start)
        client.set_terminated(run_id)
        stored = sum(len(client.get_metric_history(run_id, key)) for key in keys)
        assert stored == len(calls), f"{label}: the server stored {stored} of {len(calls)} metric values"
        w.advance(repeat + 1, sizes.single_repeats)
    result = w.Throughput.of(len(calls), samples, calls=len(calls))
    w.done(f"{result.per_second:,.0f} calls/s (median)")
    return result


def measure_models(url: str, sizes: Sizes, workdir: Path, label: str) -> tuple[dict[str, mw.Timing], float, str]:
    """Timings of log_model, load_model and both, the warm-up's time and the predictions' digest."""
    import mlflow
    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import sklearn

    w.start(f"{label}: fitting the pipeline (untimed)")
    workload = mw.make_workload(mw.Sizes())
    w.done("pipeline fitted")
    requirements = [f"scikit-learn=={sklearn.__version__}"]
    mlflow.set_tracking_uri(url)
    mlflow.set_experiment(MODEL_EXPERIMENT)

    def round_trip(name: str) -> tuple[float, float, float, Any]:
        dst = workdir / "loads" / name
        dst.mkdir(parents=True)
        with mlflow.start_run(run_name=name):
            t0, c0 = time.perf_counter(), time.process_time()
            info = mlflow.sklearn.log_model(workload.pipeline, name=mw.ARTIFACT_PATH, pip_requirements=requirements)
            t1, c1 = time.perf_counter(), time.process_time()
        t2, c2 = time.perf_counter(), time.process_time()
        model = mlflow.pyfunc.load_model(info.model_uri, dst_path=str(dst))
        t3, c3 = time.perf_counter(), time.process_time()
        cpu = (c1 - c0) + (c3 - c2)
        predictions = model.predict(workload.frame)
        if not any(p.is_file() for p in dst.rglob("*")):
            raise RuntimeError(f"{label}: load_model left {dst} empty")
        if not np.array_equal(np.asarray(predictions), workload.expected):
            raise RuntimeError(f"{label}: the model loaded from {info.model_uri} predicts other labels")
        return t1 - t0, t3 - t2, cpu, predictions

    w.start(f"{label}: log_model + load_model, {sizes.round_trips} round trips", total=sizes.round_trips + 1)
    logged, loaded, _, predictions = round_trip("warm-up")
    first = logged + loaded
    w.advance(1, sizes.round_trips + 1)
    trips = []
    for i in range(sizes.round_trips):
        logged, loaded, cpu, predictions = round_trip(f"trip-{i}")
        trips.append((logged, loaded, cpu))
        w.advance(i + 2, sizes.round_trips + 1)
    timings = {"log_model": mw.Timing.of([a for a, _, _ in trips]),
               "load_model": mw.Timing.of([b for _, b, _ in trips]),
               "round_trip": mw.Timing.of([a + b for a, b, _ in trips]),
               "client_cpu": mw.Timing.of([cpu for _, _, cpu in trips])}
    w.done(f"{timings['round_trip'].seconds * 1000:,.0f} ms (median; first in process {first * 1000:,.0f} ms)")
    return timings, first, mw.predictions_digest(predictions)


def run_client(url: str, sizes: Sizes, workdir: Path) -> ClientResult:
    """The client script: the same calls, in the same order, whichever server is at ``url``."""
    import _server_mlflow
    import mlflow
    from mlflow import MlflowClient

    name = os.environ.get(SERVER_NAME_VAR, "the")
    label = f"mlflow client → {name} server"
    driver = dataclasses.replace(_server_mlflow.driver(url), tool=label)
    search, matched = c.measure_search(driver, sizes.server())
    single = measure_single(MlflowClient(tracking_uri=url), sizes, label)
    batch = c.measure_batch(driver, sizes.server())
    timings, first, digest = measure_models(url, sizes, workdir, label)
    http, ceilings = measure_http_level(url, sizes, workdir, driver.search_experiment_id(),
                                        min(matched, key=driver.run_name).info.run_id, f"httpx → {name} server")
    return ClientResult(mlflow_version=mlflow.__version__, search=search, single=single, batch=batch,
                        first_round_trip=first, predictions_digest=digest, http=http, ceilings=ceilings, **timings)


def measure_http_level(url: str, sizes: Sizes, workdir: Path, search_experiment_id: str, get_run_id: str,
                       label: str) -> tuple[mh.HttpResult, mh.Ceilings]:
    """The client's own request bodies replayed with httpx, then the client-level calls against a
    null server answering what this server answered (the ceilings)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    rows = w.batch_metrics(w.Sizes(batch_metrics=sizes.batch_metrics))
    chunks = [rows[i:i + sizes.batch_chunk] for i in range(0, len(rows), sizes.batch_chunk)]
    batches, search, get = mh.captured_calls(chunks, search_experiment_id, get_run_id)
    http_experiment = MlflowClient(tracking_uri=url).create_experiment("http-level")
    http = mh.measure_http(url, batches, search, get, batch_experiment_id=http_experiment,
                           batch_repeats=sizes.batch_repeats, search_repeats=sizes.search_repeats,
                           get_calls=sizes.get_calls, label=label)
    calls = w.single_calls(w.Sizes(single_calls=sizes.single_calls))
    metric_chunks = [[Metric(k, v, ts, s) for k, v, s, ts in chunk] for chunk in chunks]

    def single(client: Any) -> None:
        for key, value, step in calls:
            client.log_metric("0" * 32, key, value, step=step)

    def batch(client: Any) -> None:
        for chunk in metric_chunks:
            client.log_batch("0" * 32, metrics=chunk)

    def search_runs(client: Any) -> None:
        found = client.search_runs([search_experiment_id], filter_string=w.SEARCH_FILTER,
                                   max_results=w.SEARCH_MAX_RESULTS)
        assert len(found) == http.search.matched, f"the null server's answer parsed to {len(found)} runs"

    canned = {"runs/search": mh.search_answer(url, search)}
    ceilings = mh.measure_ceilings(canned, workdir / "null-server", single=single, batch=batch, search=search_runs,
                                   repeats=sizes.ceiling_repeats)
    return http, ceilings


# --- the orchestrator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerResult:
    tool: str
    version: str  # of the server
    populated: w.Populated
    server_command: list[str]
    client: ClientResult


def check_client(console: Console) -> None:
    """The client script needs the mlflow client (and scikit-learn) in this venv."""
    probe = subprocess.run([sys.executable, "-c", "import mlflow.sklearn, sklearn"], capture_output=True,
                           text=True, check=False)
    if probe.returncode:
        raise t.BenchError(f"the mlflow client does not import in {sys.prefix}; install it there with "
                           f"`pip install mlflow-skinny` (the version of {t.MLFLOW_VENV.name} is best):\n"
                           f"{(probe.stderr.strip().splitlines() or [''])[-1]}")
    version = subprocess.run([sys.executable, "-c", "import mlflow; print(mlflow.__version__)"],
                             capture_output=True, text=True, check=False).stdout.strip()
    console.print(f"[green]✓[/] mlflow client {version} in {sys.prefix}")


def proxied(spec: s.ServerSpec) -> s.ServerSpec:
    """server.py's ``mlflow server`` with its artifacts proxied (``--artifacts-destination``), as
    MLflow's server does by default, rather than read and written by the client in place."""
    cmd = ["--artifacts-destination" if arg == "--default-artifact-root" else arg for arg in spec.cmd]
    return dataclasses.replace(spec, cmd=cmd)


def bench_server(name: str, half: s.Side, spec_for: Callable[[Path, int], s.ServerSpec], sizes: Sizes,
                 progress: Progress, workdir: Path) -> ServerResult:
    """Prepare the corpus with server.py's ``half``, start the server, run the client script."""
    prepared = s.run_phase(half, "prepare", sizes.server(), progress, timeout_s=s.PREPARE_TIMEOUT_S)
    spec = dataclasses.replace(spec_for(half.workdir, s.free_port()), log=t.LOG_DIR / f"server-compat-{name}.log")
    env = s.client_env({**t.mlflow_env(), SERVER_NAME_VAR: TOOL_NAMES[name]})
    client = s.Side(f"compat-{name}", Path(sys.executable), SCRIPT, env, workdir / "client")
    task = progress.add_task(f"starting {name} server on {spec.url}", total=None)
    with s.running(spec) as url:
        progress.remove_task(task)
        # run_phase only asks its sizes for to_json(), which these have too.
        raw = s.run_phase(client, CLIENT_PHASE, sizes, progress, url=url)  # type: ignore[arg-type]
    return ServerResult(tool=prepared["tool"], version=prepared["version"],
                        populated=w.Populated(**prepared["populated"]), server_command=spec.cmd,
                        client=ClientResult.from_dict(raw["client"]))


def same_results(ship: ServerResult, mlf: ServerResult) -> bool:
    """Both servers matched the same runs, through the client and over raw HTTP."""
    pairs = ((ship.client.search, mlf.client.search), (ship.client.http.search, mlf.client.http.search))
    return all(a.matched == b.matched and a.matched_digest == b.matched_digest for a, b in pairs)


def build_rows(ship: ServerResult, mlf: ServerResult, sizes: Sizes) -> list[s.Row]:
    sc, mc = ship.client, mlf.client
    sh, mh_ = sc.http, mc.http
    ceil = sc.ceilings  # the client's own time, measured in the process that drove Shipyard

    def row(figure: str, unit: str, ours: float, theirs: float, target: float | None, workload: str,
            passed: bool = True) -> s.Row:
        ratio = theirs / ours
        return s.Row(figure, unit, ours, theirs, ratio, f"≥ {target:g}{TIMES}" if target else "—",
                     passed and ratio >= target if target else None, workload)

    def ceiling(mlflow_seconds: float, client_seconds: float) -> str:
        return (f"ceiling {mlflow_seconds / client_seconds:.1f}{TIMES}: the client alone needs "
                f"{client_seconds * 1000:,.0f} ms against a null server")

    return [
        row("HTTP runs/log-batch", "s", sh.log_batch.seconds, mh_.log_batch.seconds, HTTP_BATCH_TARGET,
            f"{sh.log_batch.count:,} metrics into a fresh run in {sh.log_batch.calls} runs/log-batch requests "
            f"(the bodies MlflowClient.log_batch sends, replayed with httpx), median of {sizes.batch_repeats}: "
            f"{sh.log_batch.per_second:,.0f} metrics/s (Shipyard), {mh_.log_batch.per_second:,.0f} (MLflow)"),
        row("HTTP runs/search", "ms", sh.search.seconds * 1000, mh_.search.seconds * 1000, HTTP_SEARCH_TARGET,
            f"the body MlflowClient.search_runs sends ({w.SEARCH_FILTER!r} over {sizes.search_runs:,} runs, "
            f"max_results={w.SEARCH_MAX_RESULTS}) replayed with httpx, median of {sizes.search_repeats} after a "
            f"warm-up; matched {sh.search.matched:,} (Shipyard) and {mh_.search.matched:,} (MLflow)",
            passed=same_results(ship, mlf)),
        row("HTTP runs/get", "ms", sh.get_run.seconds / sh.get_run.count * 1000,
            mh_.get_run.seconds / mh_.get_run.count * 1000, HTTP_GET_TARGET,
            f"{sizes.get_calls:,} sequential runs/get of one corpus run (the client's GET) with httpx, per call: "
            f"{sh.get_run.per_second:,.0f} calls/s (Shipyard), {mh_.get_run.per_second:,.0f} (MLflow)"),
        row("client search_runs", "ms", sc.search.seconds * 1000, mc.search.seconds * 1000, None,
            f"MlflowClient.search_runs, same filter, median of {sizes.search_repeats} after a warm-up; "
            + ceiling(mc.search.seconds, ceil.search), passed=same_results(ship, mlf)),
        row("client log_metric", "s", sc.single.seconds, mc.single.seconds, None,
            f"{sizes.single_calls:,} sequential MlflowClient.log_metric calls into a fresh run, median of "
            f"{sizes.single_repeats} runs; " + ceiling(mc.single.seconds, ceil.single)),
        row("client log_batch", "s", sc.batch.seconds, mc.batch.seconds, None,
            f"{sizes.batch_metrics:,} metrics in {sc.batch.calls} MlflowClient.log_batch calls of "
            f"{sizes.batch_chunk:,}, median of {sizes.batch_repeats} runs; " + ceiling(mc.batch.seconds, ceil.batch)),
        row("client model round trip", "ms", sc.round_trip.seconds * 1000, mc.round_trip.seconds * 1000, None,
            f"mlflow.sklearn.log_model (explicit pip_requirements) + mlflow.pyfunc.load_model into a fresh "
            f"folder, median of {sizes.round_trips} after a warm-up (first in process: Shipyard "
            f"{sc.first_round_trip * 1000:,.0f} ms, MLflow {mc.first_round_trip * 1000:,.0f} ms); "
            f"ceiling {mc.round_trip.seconds / sc.client_cpu.seconds:.2f}{TIMES}: the client burns "
            f"{sc.client_cpu.seconds * 1000:,.0f} ms of CPU per round trip"),
        row("  log_model", "ms", sc.log_model.seconds * 1000, mc.log_model.seconds * 1000, None,
            "the round trip's first part, inside an active run"),
        row("  load_model", "ms", sc.load_model.seconds * 1000, mc.load_model.seconds * 1000, None,
            "the round trip's second part, by the logged model's models:/m-… URI"),
    ]


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:,.2f}"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def render(console: Console, rows: Sequence[s.Row], ship: ServerResult, mlf: ServerResult) -> None:
    table = Table(title=f"mlflow client {ship.client.mlflow_version} against Shipyard {ship.version} and MLflow "
                        f"{mlf.version} servers: 127.0.0.1, SQLite, 1 worker, {os.cpu_count()} cores, "
                        f"Python {platform.python_version()}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("unit", "left"), ("Shipyard", "right"), ("MLflow", "right"),
        ("ratio", "right"), ("target", "left"), ("result", "center"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "[dim]info[/]"}
    for row in rows:
        table.add_row(row.figure, row.unit, fmt(row.shipyard, row.unit), fmt(row.mlflow, row.unit),
                      f"[bold]{row.ratio:,.1f}{TIMES}[/]", row.target, verdict[row.passed],
                      style="dim" if row.passed is None else None)
    console.print(table)
    console.print("[dim]ratio = MLflow time / Shipyard time. HTTP rows: the mlflow client's own request "
                  "bodies replayed with httpx (the servers' figures, targets apply). client rows: wall time of the "
                  "same mlflow client script, bound by the client's own work (its ceiling is measured against a "
                  "null server; no target).[/]")
    for row in rows:
        console.print(f"[dim]{row.figure.strip()}: {row.workload}[/]", highlight=False)
    if not same_results(ship, mlf):
        console.print(f"[bold red]search results differ:[/] Shipyard matched {ship.client.search.matched} "
                      f"runs ({ship.client.http.search.matched} over HTTP), MLflow {mlf.client.search.matched} "
                      f"({mlf.client.http.search.matched}), or a different set of runs")
    if mlf.populated.cached:
        console.print(f"[dim]MLflow's search corpus came from the cache in {t.CACHE_DIR}.[/]", highlight=False)


def write_json(path: Path, sizes: Sizes, quick: bool, ship: ServerResult, mlf: ServerResult,
               rows: Sequence[s.Row]) -> None:
    t.write_figures(path, quick=quick, sizes=asdict(sizes), meta={"search_filter": w.SEARCH_FILTER},
                    shipyard=asdict(ship), mlflow=asdict(mlf), rows=[asdict(row) for row in rows],
                    same_search_results=same_results(ship, mlf),
                    passed=all(row.passed is not False for row in rows))


# --- main ------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    # The client script's arguments, as server.py's run_phase passes them.
    parser.add_argument("--phase", choices=[CLIENT_PHASE], help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=Sizes.from_json, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.phase == CLIENT_PHASE:
        args.workdir.mkdir(parents=True, exist_ok=True)
        w.emit(client=run_client(args.url, args.sizes, args.workdir))
        return 0

    console = Console()
    sizes = Sizes.quick() if args.quick else Sizes()
    try:
        mlflow_python, _ = t.ensure_mlflow_venv(console, args.refresh_mlflow)
        check_client(console)
        with tempfile.TemporaryDirectory(prefix="shipyard-compat-bench-") as tmp:
            work = Path(tmp)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                ship = bench_server("shipyard", s.Side("compat-shipyard", Path(sys.executable),
                                                       HERE / "_server_shipyard.py", s.client_env(t.clean_env()),
                                                       work / "shipyard" / "server"),
                                    s.shipyard_server, sizes, progress, work / "shipyard")
                mlf = bench_server("mlflow", s.Side("compat-mlflow", mlflow_python, HERE / "_server_mlflow.py",
                                                    s.client_env(t.mlflow_env()), work / "mlflow" / "server"),
                                   lambda workdir, port: proxied(s.mlflow_server(mlflow_python, workdir, port)),
                                   sizes, progress, work / "mlflow")
    except t.BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2

    rows = build_rows(ship, mlf, sizes)
    render(console, rows, ship, mlf)
    if args.json:
        write_json(args.json, sizes, args.quick, ship, mlf, rows)
        console.print(f"figures written to {args.json}")
    if not same_results(ship, mlf) or ship.client.predictions_digest != mlf.client.predictions_digest:
        return 2
    return 0 if all(row.passed is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
