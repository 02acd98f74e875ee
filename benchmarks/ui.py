"""Server time of the web UI's heaviest views, against the same views in ``mlflow server``'s UI.

    .venv/bin/python benchmarks/ui.py [--quick] [--sizes 10000,100000] [--repeats 15] [--no-mlflow]
                                      [--json PATH] [--refresh-mlflow]

Data: the scale benchmark's corpora (one experiment of N runs, each with 5 params, 5 metrics and
3 tags, plus one run, id ``f`` * 32, whose metric ``curve`` has 100,000 steps), written by bulk
SQL into each tool's own schema and cached under ``.bench/scale/`` (``_scale_corpus.py`` for
Shipyard, ``_scale_mlflow.py --prepare-only`` for MLflow, which runs in ``.bench/mlflow-venv``).

Each tool's server runs alone on a free 127.0.0.1 port (``shipyard server`` first, then ``mlflow
server``, one worker each, started and stopped by ``server.py``'s helpers; logs in
``.bench/logs/ui-*.log``) and serves that corpus. This process sends each view's request with
httpx over one keep-alive connection, as a browser would (``Accept-Encoding: gzip``), and times
it from sending to the last byte received: the server's time plus a loopback round trip. Each
figure is the median (and p90) of ``--repeats`` after one warm-up. The views, Shipyard's page
against the request MLflow's UI (3.x, read from its JavaScript bundle) makes for the same view:

  runs page          Shipyard GET /ui/experiments/ID?size=100 (the whole HTML page)
                     MLflow   POST /ajax-api/2.0/mlflow/runs/search, max_results=100 (its UI's page
                              size), order_by attributes.start_time DESC, run_view_type ACTIVE_ONLY
  filtered, sorted   the same with the filter metrics.acc > 0.99 and params.model = 'rf', sorted by
                     metrics.acc DESC (MLflow: order_by metrics.`acc` DESC)
  chart, 100k points Shipyard GET /api/v1/runs/RUN/metric-history/columns?key=curve&max_points=1000
                     (what its run and compare pages load: 4 points per bucket, extremes kept)
                     MLflow   GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval
                              ?run_ids=RUN&metric_key=curve&max_results=320 (its charts' sampled history)
  run page           Shipyard GET /ui/runs/RUN; MLflow GET /ajax-api/2.0/mlflow/runs/get?run_id=RUN

Both answers are checked: the runs views must name the same runs in the same order, and the
charts must start and end at the same step with the same last value. The ratio is MLflow's time
over Shipyard's. Targets from issue #18 (Shipyard alone): the runs page under 300 ms at 10,000
runs and under 1 s at 100,000. ``--quick``: 10,000 runs only, 5 repeats.

Exits 0 when every target is met, 1 when one is not, 2 when the benchmark fails or the two tools'
answers differ.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _scale_corpus as corpus
import _scale_data as data
import httpx
import scale
import server as srv
import tracking as t
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

HISTORY_RUN = "f" * 32
PAGE_SIZE = 100  # MLflow's UI loads its runs table 100 at a time; Shipyard's page offers the same size
ORDER = "metrics.acc DESC"
TARGETS_MS = {10_000: 300.0, 100_000: 1000.0}  # the runs page, Shipyard
TIMES = "\N{MULTIPLICATION SIGN}"
ROW = re.compile(r'<td><a href="/ui/runs/[0-9a-f]+" hx-boost="false">([^<]+)</a></td>')

Request = tuple[str, str, dict[str, Any] | None]  # method, path with query, JSON body
Answer = Callable[[httpx.Response], object]  # what the view shows, to compare the tools by


@dataclass(frozen=True)
class View:
    key: str
    label: str
    shipyard: Request
    mlflow: Request
    shipyard_answer: Answer
    mlflow_answer: Answer


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p90_ms: float
    kib: float  # the response body as sent (compressed when the server compresses)


# --- the views -------------------------------------------------------------------------------


def _page_names(response: httpx.Response) -> list[str]:
    return ROW.findall(response.text)


def _search_names(response: httpx.Response) -> list[str]:
    return [run["info"]["run_name"] for run in response.json().get("runs", [])]


def _columns_ends(response: httpx.Response) -> tuple[int, int, float, int]:
    body = response.json()
    return body["steps"][0], body["steps"][-1], body["values"][-1], len(body["steps"])


def _sampled_ends(response: httpx.Response) -> tuple[int, int, float, int]:
    points = sorted(response.json()["metrics"], key=lambda m: m["step"])
    return points[0]["step"], points[-1]["step"], points[-1]["value"], len(points)


def _run_name_in_page(response: httpx.Response) -> str:
    found = re.search(r"<h1>([^<]+?) <span", response.text)
    return found.group(1) if found else response.text[:200]


def _run_name(response: httpx.Response) -> str:
    return str(response.json()["run"]["info"]["run_name"])


def views(shipyard_experiment: str, mlflow_experiment: str) -> list[View]:
    api = "/ajax-api/2.0/mlflow"

    def search(filter_string: str, order_by: str) -> dict[str, Any]:
        return {"experiment_ids": [mlflow_experiment], "filter": filter_string, "run_view_type": "ACTIVE_ONLY",
                "max_results": PAGE_SIZE, "order_by": [order_by]}

    runs_page = f"/ui/experiments/{shipyard_experiment}"
    filtered = urlencode({"filter": data.FILTER, "order": ORDER, "size": PAGE_SIZE})
    chart = urlencode({"run_ids": HISTORY_RUN, "metric_key": data.HISTORY_KEY, "max_results": 320})
    return [
        View("runs", f"runs page, first {PAGE_SIZE} runs",
             ("GET", f"{runs_page}?size={PAGE_SIZE}", None),
             ("POST", f"{api}/runs/search", search("", "attributes.start_time DESC")), _page_names, _search_names),
        View("filtered", "runs page, filtered and sorted",
             ("GET", f"{runs_page}?{filtered}", None),
             ("POST", f"{api}/runs/search", search(data.FILTER, "metrics.`acc` DESC")), _page_names, _search_names),
        View("chart", f"chart of {data.HISTORY_STEPS:,} points",
             ("GET", f"/api/v1/runs/{HISTORY_RUN}/metric-history/columns?key={data.HISTORY_KEY}&max_points=1000",
              None),
             ("GET", f"{api}/metrics/get-history-bulk-interval?{chart}", None),
             lambda r: _columns_ends(r)[:3], lambda r: _sampled_ends(r)[:3]),
        View("run", "run page (the 100k-step run)",
             ("GET", f"/ui/runs/{HISTORY_RUN}", None), ("GET", f"{api}/runs/get?run_id={HISTORY_RUN}", None),
             _run_name_in_page, _run_name),
    ]


# --- measuring -------------------------------------------------------------------------------


def _send(http: httpx.Client, request: Request) -> httpx.Response:
    method, path, body = request
    response = http.request(method, path, json=body)
    if response.status_code != 200:
        raise t.BenchError(f"{method} {path} answered {response.status_code}: {response.text[:500]}")
    return response


def measure(http: httpx.Client, request: Request, answer: Answer, repeats: int) -> tuple[Timing, object]:
    first = _send(http, request)  # warm-up, and what the view shows
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _send(http, request)  # httpx reads the whole body before returning
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    kib = first.num_bytes_downloaded / 1024
    return Timing(statistics.median(times), times[int(0.9 * (len(times) - 1))], kib), answer(first)


@contextmanager
def serving(spec: srv.ServerSpec) -> Iterator[httpx.Client]:
    with srv.running(spec) as url, httpx.Client(base_url=url, timeout=120, trust_env=False) as http:
        yield http


def bench_tool(spec: srv.ServerSpec, tool: str, view_list: list[View], repeats: int,
               console: Console) -> dict[str, tuple[Timing, object]]:
    out = {}
    with serving(spec) as http:
        for view in view_list:
            request, answer = (view.shipyard, view.shipyard_answer) if tool == "shipyard" else \
                (view.mlflow, view.mlflow_answer)
            out[view.key] = measure(http, request, answer, repeats)
            console.log(f"{tool} · {view.label}: median {out[view.key][0].median_ms:,.1f} ms")
    return out


def shipyard_experiment_id(shipyard_db: Path) -> str:
    from shipyard.store.sql import SqlStore

    store = SqlStore(f"sqlite:///{shipyard_db}")
    try:
        found = store.experiments.get_by_name(corpus.EXPERIMENT)
        assert found is not None
        return found.experiment_id
    finally:
        store.close()


def mlflow_experiment_id(mlflow_db: Path) -> str:
    import sqlite3

    with sqlite3.connect(f"file:{mlflow_db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT experiment_id FROM experiments WHERE name = ?", (corpus.EXPERIMENT,)).fetchone()
    assert row is not None, f"no experiment {corpus.EXPERIMENT!r} in {mlflow_db}"
    return str(row[0])


def bench_size(n: int, repeats: int, mlflow_python: Path | None, work: Path, progress: Progress,
               console: Console) -> dict[str, Any]:
    task = progress.add_task(f"Shipyard corpus of {n:,} runs", total=n)
    shipyard_db = corpus.build_sqlite(scale.SCALE_DIR, n, lambda done, total: progress.update(task, completed=done))
    progress.remove_task(task)
    mlflow_db = None
    if mlflow_python is not None:
        task = progress.add_task(f"MLflow corpus of {n:,} runs (cached after the first run)", total=None)
        mlflow_db = Path(scale.mlflow_side(n, 1, writes=False, prepare_only=True)["path"])
        progress.remove_task(task)
    view_list = views(shipyard_experiment_id(shipyard_db), mlflow_experiment_id(mlflow_db) if mlflow_db else "0")
    for folder in (f"shipyard-{n}", f"mlflow-{n}"):
        (work / folder).mkdir()
    ship_spec = dataclasses.replace(srv.shipyard_server(work / f"shipyard-{n}", srv.free_port(), db=shipyard_db),
                                    log=t.LOG_DIR / f"ui-shipyard-{n}.log")
    result: dict[str, Any] = {"shipyard": bench_tool(ship_spec, "shipyard", view_list, repeats, console)}
    if mlflow_python is not None and mlflow_db is not None:
        ml_spec = dataclasses.replace(srv.mlflow_server(mlflow_python, work / f"mlflow-{n}", srv.free_port(),
                                                        db=mlflow_db), log=t.LOG_DIR / f"ui-mlflow-{n}.log")
        result["mlflow"] = bench_tool(ml_spec, "mlflow", view_list, repeats, console)
    result["views"] = view_list
    return result


# --- report ----------------------------------------------------------------------------------


def report(console: Console, results: dict[int, dict[str, Any]], versions: dict[str, str]) -> tuple[bool, bool]:
    """Print the table; (every target met, the tools agree)."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"Web UI server time: Shipyard {versions['shipyard']} vs MLflow {versions.get('mlflow', '—')} "
                        f"(ms, median of repeats \\[p90]; over loopback HTTP; load average {load} on "
                        f"{os.cpu_count()} cores)")
    for name, justify in (("runs", "right"), ("view", "left"), ("Shipyard", "right"), ("MLflow", "right"),
                          ("ratio", "right"), ("target", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    met, same = True, True
    for n, result in results.items():
        for view in result["views"]:
            ours, our_answer = result["shipyard"][view.key]
            if not our_answer:
                same = False
                console.print(f"[bold red]{n:,} runs · {view.label}: Shipyard showed nothing[/]")
            row = [f"{n:,}", view.label, f"{ours.median_ms:,.1f} [{ours.p90_ms:,.1f}]"]
            if "mlflow" in result:
                theirs, their_answer = result["mlflow"][view.key]
                row += [f"{theirs.median_ms:,.1f} [{theirs.p90_ms:,.1f}]",
                        f"[bold]{theirs.median_ms / ours.median_ms:,.1f}{TIMES}[/]"]
                if our_answer != their_answer:
                    same = False
                    console.print(f"[bold red]{n:,} runs · {view.label}: the tools disagree[/]\n"
                                  f"  Shipyard: {str(our_answer)[:300]}\n  MLflow:   {str(their_answer)[:300]}")
            else:
                row += ["—", "—"]
            target = TARGETS_MS.get(n) if view.key == "runs" else None
            if target is None:
                row.append("")
            else:
                passed = ours.median_ms < target
                met = met and passed
                row.append(f"< {target:,.0f} ms " + ("[green]PASS[/]" if passed else "[red]FAIL[/]"))
            table.add_row(*row)
    console.print(table)
    console.print("[dim]ratio = MLflow's time / Shipyard's time. Shipyard sends a whole HTML page (runs page, run "
                  "page); MLflow sends the JSON its UI renders in the browser. Response sizes (KiB as sent):[/]")
    for n, result in results.items():
        sizes = ", ".join(f"{v.key} {result['shipyard'][v.key][0].kib:,.0f}"
                          + (f"/{result['mlflow'][v.key][0].kib:,.0f}" if "mlflow" in result else "")
                          for v in result["views"])
        console.print(f"[dim]  {n:,} runs (Shipyard/MLflow): {sizes}[/]", highlight=False)
    return met, same


def to_json(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for n, result in results.items():
        out[str(n)] = {view.key: {"label": view.label, "shipyard_request": view.shipyard[:2],
                                  "mlflow_request": view.mlflow[:2],
                                  **{tool: dataclasses.asdict(result[tool][view.key][0])
                                     for tool in ("shipyard", "mlflow") if tool in result}}
                       for view in result["views"]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10,000 runs only, 5 repeats")
    parser.add_argument("--sizes", default="10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=None, help="timed requests per view (default 15; 5 quick)")
    parser.add_argument("--no-mlflow", action="store_true", help="Shipyard only")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    args = parser.parse_args(argv)
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = args.repeats or (5 if args.quick else 15)
    console = Console(width=None if sys.stdout.isatty() else 200)
    results: dict[int, dict[str, Any]] = {}
    from importlib.metadata import version

    versions = {"shipyard": version("shipyard-mlops")}
    try:
        mlflow_python = None
        if not args.no_mlflow:
            mlflow_python, versions["mlflow"] = t.ensure_mlflow_venv(console, args.refresh_mlflow)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with tempfile.TemporaryDirectory(prefix="shipyard-ui-bench-") as tmp, \
                Progress(*columns, console=console, transient=True) as progress:
            for n in sizes:
                results[n] = bench_size(n, repeats, mlflow_python, Path(tmp), progress, console)
    except (t.BenchError, RuntimeError) as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2
    met, same = report(console, results, versions)
    if args.json:
        t.write_figures(args.json, quick=args.quick, sizes={"runs": sizes, "repeats": repeats, "page": PAGE_SIZE},
                        meta={"filter": data.FILTER, "versions": versions, "load_average": os.getloadavg()},
                        results=to_json(results), targets_met=met, same_answers=same)
        console.print(f"figures written to {args.json}")
    if not same:
        return 2
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
