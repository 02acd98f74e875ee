"""Server benchmark: ``shipyard server`` against ``mlflow server``, over HTTP on this machine.

    .venv/bin/python benchmarks/server.py [--quick] [--json PATH] [--refresh-mlflow]

Each tool's server runs alone (Shipyard first, then MLflow, never both at once) on a free
127.0.0.1 port, with one worker, a fresh temporary folder and a SQLite backend, and is driven
by that tool's own client from a subprocess in the tool's own venv (``MlflowClient`` from
``.bench/mlflow-venv``; ``shipyard.Client`` with an ``http://`` tracking URI, i.e. ``RestStore``,
from this venv). Both serve and see the same data (``_workload.py``):

1. ``runs/search``: the filter ``metrics.m0 < 0.5 and params.p1 = '3'`` over 10,000 runs of one
   experiment, ``max_results=1000``, median of 5 after a warm-up; both must return the same runs.
   The corpus is written into each tool's SQLite file before its server starts (Shipyard with
   ``_shipyard_side.populate``; MLflow restored from the tracking benchmark's cache in
   ``.bench/cache/``, populated and cached by ``_mlflow_side.prepare_search`` when missing,
   which takes about 10 minutes for 10,000 runs).
2. ``runs/get``: 500 sequential ``get_run`` calls of one run of the corpus (5 params, 5 metrics)
   after 50 untimed ones; p50 (the target) and p95.
3. batch logging: 100,000 metrics into a fresh run in requests of 1,000 metrics (MLflow's
   maximum per ``log_batch``); the median of 3 runs. Every request count is checked against the
   server's own access log, so each side provably sent 1,000 metrics per request.

``--quick``: 10,000 metrics, 1,000 runs, 100 ``get_run`` calls. Targets: batch logging and
search at least 5x MLflow's speed; ``runs/get`` p50 at most half of MLflow's.

Both servers run with their defaults (access log on, to a file) except: MLflow without its
usage telemetry and without its background job runner (seven ``huey`` consumer processes
that serve no tracking request; left on they would only take CPU from MLflow's server on this
2-core machine), and ``--allowed-hosts`` set to 127.0.0.1 and localhost on both. Logs:
``.bench/logs/server-*.log``.

4. the cost of access control: Shipyard runs the same load again against ``shipyard server
   --auth``, as a member (editor) of the default project signed in with an API token
   (``SHIPYARD_TRACKING_TOKEN``), so every request resolves its token and the user's roles,
   goes through the project-scoped store, and every change is written to the audit log. The
   per-request medians of both runs are printed side by side with their difference. Then both
   servers run at once and ``runs/get`` goes to each in turn (:data:`PAIRED_CALLS` pairs, the
   order alternating), so that whatever else the machine does falls on both alike: the target,
   ``runs/get`` p50 under 1 ms slower with ``--auth``, is judged on these paired medians (two
   runs one after the other on a shared machine differ by more than that). ``--auth-only`` runs
   just this comparison (no MLflow).

Exits 0 when every target is met, 1 when one is not, 2 when the benchmark fails, the two
searches disagree, or a server's access log does not show the requests expected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import _server_common as c
import _workload as w
import httpx
import tracking as t
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
ALLOWED_HOSTS = ("127.0.0.1", "localhost")

BATCH_TARGET = 5.0  # Shipyard metrics/s / MLflow metrics/s
SEARCH_TARGET = 5.0  # MLflow time / Shipyard time
GET_TARGET = 2.0  # MLflow p50 / Shipyard p50: "at most half of MLflow's"
TIMES = "\N{MULTIPLICATION SIGN}"

STARTUP_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0
PREPARE_TIMEOUT_S = 3_600.0  # populating MLflow's 10,000 runs when the cache is missing: ~10 min
DRIVE_TIMEOUT_S = 1_800.0

# What each request looks like in the server's access log (uvicorn's format on both sides);
# ``{run_id}``: the run whose get_run calls were timed.
ACCESS_PATTERNS: dict[str, dict[str, str]] = {
    "shipyard": {
        "search": r'"POST /api/v1/runs/search HTTP/1\.1"',
        "get_run": r'"GET /api/v1/runs/{run_id} HTTP/1\.1"',
        "log_batch": r'"POST /api/v1/runs/[^/?" ]+/write HTTP/1\.1"',  # RunStore.write: one transaction
    },
    "mlflow": {
        "search": r'"POST /api/2\.0/mlflow/runs/search HTTP/1\.1"',
        "get_run": r'"GET /api/2\.0/mlflow/runs/get\?(?:[^" ]*&)?run_id={run_id}(?:&[^" ]*)? HTTP/1\.1"',
        "log_batch": r'"POST /api/2\.0/mlflow/runs/log-batch HTTP/1\.1"',
    },
}


# --- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    url: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def client_env(base: dict[str, str]) -> dict[str, str]:
    """Loopback only: no proxy may stand between a client and its server."""
    loopback = ",".join(ALLOWED_HOSTS)
    return {**base, "NO_PROXY": loopback, "no_proxy": loopback}


def shipyard_cli_works() -> bool:
    """``shipyard server`` is the command users run; older trees lack it (then: uvicorn directly)."""
    cli = Path(sys.executable).parent / "shipyard"
    try:
        probe = subprocess.run([str(cli), "server", "--help"], capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def shipyard_server(workdir: Path, port: int, *, auth: bool = False, db: Path | None = None) -> ServerSpec:
    """``shipyard server`` on ``db`` (default: the search corpus in ``workdir``)."""
    db, artifacts = db or workdir / w.SEARCH_DB, workdir / "artifacts"
    if shipyard_cli_works():
        cmd = [str(Path(sys.executable).parent / "shipyard"), "server", "--backend-store-uri", f"sqlite:///{db}",
               "--artifacts-destination", str(artifacts), "--host", HOST, "--port", str(port),
               "--workers", "1", "--allowed-hosts", ",".join(ALLOWED_HOSTS), *(["--auth"] if auth else [])]
        env = t.clean_env()
    else:
        cmd = [sys.executable, "-m", "uvicorn", "shipyard.server.app:app_from_environment", "--factory",
               "--host", HOST, "--port", str(port), "--workers", "1"]
        env = t.clean_env(SHIPYARD_TRACKING_URI=f"sqlite:///{db}", SHIPYARD_ARTIFACT_URI=str(artifacts),
                          SHIPYARD_SERVER_ALLOWED_HOSTS=",".join(ALLOWED_HOSTS))
    return ServerSpec("shipyard", cmd, client_env(env), workdir,
                      t.LOG_DIR / f"server-shipyard{'-auth' if auth else ''}.log", f"http://{HOST}:{port}")


def mlflow_server(python: Path, workdir: Path, port: int, *, db: Path | None = None) -> ServerSpec:
    """``mlflow server`` on ``db`` (default: the search corpus in ``workdir``)."""
    cmd = [str(python.parent / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{db or workdir / w.SEARCH_DB}",
           "--default-artifact-root", str(workdir / "mlartifacts"), "--host", HOST, "--port", str(port),
           "--workers", "1", "--allowed-hosts", ",".join(f"{h}:{port}" for h in ALLOWED_HOSTS)]
    env = t.mlflow_env()
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return ServerSpec("mlflow", cmd, client_env(env), workdir, t.LOG_DIR / "server-mlflow.log",
                      f"http://{HOST}:{port}")


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "".join(deque(path.open(errors="replace"), maxlen=lines))
    except OSError:
        return ""


@contextmanager
def running(spec: ServerSpec) -> Iterator[str]:
    """Start the server in its own process group, wait for ``/health``, yield its URL; stop the
    whole group (SIGTERM, then SIGKILL after a timeout) on the way out."""
    t.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with spec.log.open("w") as log:
        proc = subprocess.Popen(spec.cmd, cwd=spec.cwd, env=spec.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_healthy(spec, proc)
            yield spec.url
        finally:
            stop(proc)


def wait_healthy(spec: ServerSpec, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    with httpx.Client(trust_env=False, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise t.BenchError(f"the {spec.name} server exited ({proc.returncode}) before answering; "
                                   f"log: {spec.log}\n{log_tail(spec.log)}")
            try:
                if http.get(f"{spec.url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise t.BenchError(f"the {spec.name} server did not answer /health within {STARTUP_TIMEOUT_S:.0f} s; "
                       f"log: {spec.log}\n{log_tail(spec.log)}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the process group this benchmark started (its leader is ``proc``)."""
    def signal_group(sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    signal_group(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        signal_group(signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
    signal_group(signal.SIGKILL)  # anything of the group still left (e.g. a launcher's children)


def count_requests(log: Path, patterns: dict[str, str], run_id: str) -> dict[str, int]:
    text = log.read_text(errors="replace")
    return {kind: len(re.findall(pattern.replace("{run_id}", re.escape(run_id)), text))
            for kind, pattern in patterns.items()}


# --- the client halves -----------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    name: str  # "shipyard" | "mlflow"
    python: Path
    script: Path
    env: dict[str, str]
    workdir: Path


def run_phase(side: Side, phase: str, sizes: c.ServerSizes, progress: Progress, url: str | None = None,
              timeout_s: float = DRIVE_TIMEOUT_S) -> dict[str, Any]:
    """One phase of one half in a fresh subprocess (killed after ``timeout_s``); its stderr feeds
    the progress line and .bench/logs/server-NAME-PHASE.log; its last stdout line is the result."""
    side.workdir.mkdir(parents=True, exist_ok=True)
    t.LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = t.LOG_DIR / f"server-{side.name}-{phase}.log"
    cmd = [str(side.python), str(side.script), "--phase", phase, "--sizes", sizes.to_json(),
           "--workdir", str(side.workdir), "--cache-dir", str(t.CACHE_DIR), *(["--url", url] if url else [])]
    view = t.EventView(progress)
    tail: deque[str] = deque(maxlen=40)
    with tempfile.TemporaryFile("w+") as stdout, log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=side.workdir, env=side.env, stdout=stdout, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
        watchdog = threading.Timer(timeout_s, proc.kill)
        watchdog.start()
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                log.write(line)
                if line.startswith(w.EVENT_PREFIX):
                    view.handle(json.loads(line.removeprefix(w.EVENT_PREFIX)))
                else:
                    tail.append(line)
            rc = proc.wait()
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        stdout.seek(0)
        out = stdout.read()
    progress.remove_task(view.task)
    if rc:
        raise t.BenchError(f"the {side.name} {phase} phase failed (exit {rc}); full log: {log_path}\n"
                           + "".join(tail))
    results = [line for line in out.splitlines() if line.startswith("{")]
    if not results:
        raise t.BenchError(f"the {side.name} {phase} phase printed no figures; full log: {log_path}")
    parsed: dict[str, Any] = json.loads(results[-1])
    return parsed


@dataclass(frozen=True)
class ToolResult:
    tool: str
    version: str
    populated: w.Populated
    drive: c.DriveResult
    server_command: list[str]
    requests_seen: dict[str, int]  # in the server's access log
    requests_sent: dict[str, int] = field(default_factory=dict)  # what the client half reports

    @property
    def requests_match(self) -> bool:
        return self.requests_seen == self.requests_sent


def bench_tool(side: Side, spec_for: Callable[[Path, int], ServerSpec], sizes: c.ServerSizes,
               progress: Progress, sign_in: Callable[[Path], dict[str, str]] | None = None) -> ToolResult:
    """``sign_in`` (for a server with ``--auth``) prepares a user in the populated database and
    returns what the client half's environment needs to act as it."""
    prepared = run_phase(side, "prepare", sizes, progress, timeout_s=PREPARE_TIMEOUT_S)
    if sign_in is not None:
        side = replace(side, env={**side.env, **sign_in(side.workdir)})
    spec = spec_for(side.workdir, free_port())
    task = progress.add_task(f"starting {side.name} server on {spec.url}", total=None)
    with running(spec) as url:
        progress.remove_task(task)
        drove = c.DriveResult.from_dict(run_phase(side, "drive", sizes, progress, url=url)["drive"])
    return ToolResult(tool=prepared["tool"], version=prepared["version"],
                      populated=w.Populated(**prepared["populated"]), drive=drove, server_command=spec.cmd,
                      requests_seen=count_requests(spec.log, ACCESS_PATTERNS[side.name], drove.get_run.run_id),
                      requests_sent=asdict(drove.requests))


# --- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    shipyard: float
    mlflow: float
    ratio: float  # Shipyard speed / MLflow speed; for times MLflow time / Shipyard time
    target: str
    passed: bool | None  # None: for information, no target
    workload: str


def same_results(ship: ToolResult, mlf: ToolResult) -> bool:
    a, b = ship.drive.search, mlf.drive.search
    return a.matched == b.matched and a.matched_digest == b.matched_digest


def build_rows(ship: ToolResult, mlf: ToolResult, sizes: c.ServerSizes) -> list[Row]:
    sb, mb = ship.drive.batch, mlf.drive.batch
    ss, ms = ship.drive.search, mlf.drive.search
    sg, mg = ship.drive.get_run, mlf.drive.get_run
    batch_ratio = sb.per_second / mb.per_second
    search_ratio = ms.seconds / ss.seconds
    get_ratio = mg.p50_ms / sg.p50_ms
    return [
        Row("log_batch (HTTP)", "metrics/s", sb.per_second, mb.per_second, batch_ratio,
            f"≥ {BATCH_TARGET:g}{TIMES}", batch_ratio >= BATCH_TARGET,
            f"{sizes.batch_metrics:,} metrics into a fresh run in {sb.calls} requests of {sizes.batch_chunk:,} "
            f"(MLflow {mb.calls}), median of {sizes.batch_repeats} runs"),
        Row("runs/search (HTTP)", "ms", ss.seconds * 1000, ms.seconds * 1000, search_ratio,
            f"≥ {SEARCH_TARGET:g}{TIMES}", same_results(ship, mlf) and search_ratio >= SEARCH_TARGET,
            f"{w.SEARCH_FILTER!r} over {sizes.search_runs:,} runs, max_results={w.SEARCH_MAX_RESULTS}, "
            f"median of {sizes.search_repeats} after a warm-up; matched {ss.matched:,} (Shipyard) and "
            f"{ms.matched:,} (MLflow)"),
        Row("runs/get p50", "ms", sg.p50_ms, mg.p50_ms, get_ratio, f"≥ {GET_TARGET:g}{TIMES} (≤ ½ MLflow)",
            get_ratio >= GET_TARGET,
            f"{sizes.get_calls} sequential get_run calls of run {sg.run_name} after {sizes.get_warmup} "
            "untimed ones, one keep-alive connection"),
        Row("runs/get p95", "ms", sg.p95_ms, mg.p95_ms, mg.p95_ms / sg.p95_ms, "—", None,
            "the same calls"),
    ]


def fmt(value: float, unit: str) -> str:
    if unit != "ms":
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"


def render(console: Console, rows: Sequence[Row], ship: ToolResult, mlf: ToolResult) -> None:
    table = Table(title=f"Shipyard {ship.version} vs MLflow {mlf.version}: servers over HTTP on 127.0.0.1, "
                        f"SQLite, 1 worker, {os.cpu_count()} cores, Python {platform.python_version()}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("unit", "left"), ("Shipyard", "right"), ("MLflow", "right"),
        ("ratio", "right"), ("target", "left"), ("result", "center"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "[dim]info[/]"}
    for row in rows:
        table.add_row(row.figure, row.unit, fmt(row.shipyard, row.unit), fmt(row.mlflow, row.unit),
                      f"[bold]{row.ratio:,.1f}{TIMES}[/]", row.target, verdict[row.passed])
    console.print(table)
    console.print("[dim]ratio = Shipyard speed / MLflow speed (for times: MLflow time / Shipyard time); "
                  "every figure is client-side wall time through the tool's own client[/]")
    for row in rows:
        console.print(f"[dim]{row.figure}: {row.workload}[/]", highlight=False)
    for result in (ship, mlf):
        console.print(f"[dim]{result.tool} requests seen in the access log: {result.requests_seen} "
                      f"(expected {result.requests_sent})[/]", highlight=False)
        if not result.requests_match:
            console.print(f"[bold red]{result.tool}: the server's access log does not show the requests "
                          "the client half sent[/]")
    if not same_results(ship, mlf):
        console.print(f"[bold red]runs/search results differ:[/] Shipyard matched {ship.drive.search.matched} "
                      f"runs, MLflow {mlf.drive.search.matched} (or a different set of runs)")
    if mlf.populated.cached:
        console.print(f"[dim]MLflow's search corpus came from the cache in {t.CACHE_DIR}.[/]", highlight=False)


def write_json(path: Path, sizes: c.ServerSizes, quick: bool, ship: ToolResult, mlf: ToolResult,
               rows: Sequence[Row], auth: Sequence[dict[str, Any]] = ()) -> None:
    t.write_figures(path, quick=quick, sizes=asdict(sizes), meta={"search_filter": w.SEARCH_FILTER},
                    shipyard=asdict(ship), mlflow=asdict(mlf), rows=[asdict(row) for row in rows], auth=list(auth),
                    same_search_results=same_results(ship, mlf),
                    passed=all(row.passed is not False for row in rows))


# --- the cost of --auth ----------------------------------------------------------------------


def bench_member(workdir: Path) -> dict[str, str]:
    """An editor of the default project and an API token of it, made in the benchmark's database
    before its server starts (as ``shipyard users create`` and ``tokens create`` would)."""
    from shipyard.auth import ANONYMOUS
    from shipyard.auth.service import AuthService
    from shipyard.store.registry import open_store

    store = open_store(f"sqlite:///{workdir / w.SEARCH_DB}")
    try:
        auth = AuthService(store.auth, ANONYMOUS)
        auth.create_user("bench")
        auth.grant("default", "bench", "editor")
        _, secret = auth.create_token("server benchmark", user="bench")
    finally:
        store.close()
    return {"SHIPYARD_TRACKING_TOKEN": secret}


AUTH_TARGET_MS = 1.0  # runs/get p50 with --auth minus without
PAIRED_CALLS, PAIRED_WARMUP = 2_000, 100


@dataclass(frozen=True)
class AuthRow:
    figure: str
    without_ms: float  # per request, median
    with_ms: float

    @property
    def difference_ms(self) -> float:
        return self.with_ms - self.without_ms


def paired_get_run(work: Path, off: ToolResult, on: ToolResult, token: str, calls: int = PAIRED_CALLS) -> AuthRow:
    """Both servers at once, ``runs/get`` to each in turn (alternating which goes first): the
    median milliseconds per request of each, over the same minutes."""
    import statistics

    off_spec = shipyard_server(work / "shipyard", free_port())
    on_spec = shipyard_server(work / "shipyard-auth", free_port(), auth=True)
    times: dict[bool, list[float]] = {False: [], True: []}
    with running(off_spec) as off_url, running(on_spec) as on_url, \
            httpx.Client(trust_env=False, timeout=30.0) as http:
        targets = {False: (f"{off_url}/api/v1/runs/{off.drive.get_run.run_id}", {}),
                   True: (f"{on_url}/api/v1/runs/{on.drive.get_run.run_id}", {"Authorization": f"Bearer {token}"})}
        for i in range(PAIRED_WARMUP + calls):
            for auth in ((False, True) if i % 2 else (True, False)):
                url, headers = targets[auth]
                start = time.perf_counter()
                answer = http.get(url, headers=headers)
                elapsed = time.perf_counter() - start
                if answer.status_code != 200:
                    raise t.BenchError(f"runs/get answered {answer.status_code} ({'with' if auth else 'without'} "
                                       f"--auth): {answer.text[:300]}")
                if i >= PAIRED_WARMUP:
                    times[auth].append(elapsed * 1000)
    return AuthRow(f"runs/get p50, both servers at once ({calls:,} pairs)", statistics.median(times[False]),
                   statistics.median(times[True]))


def auth_rows(off: ToolResult, on: ToolResult, paired: AuthRow) -> list[AuthRow]:
    def batch_ms(result: ToolResult) -> float:
        batch = result.drive.batch
        return batch.seconds / batch.calls * 1000

    return [paired, AuthRow("runs/get p50, one server after the other", off.drive.get_run.p50_ms,
                            on.drive.get_run.p50_ms),
            AuthRow("runs/search (1,000 of 10,000)", off.drive.search.seconds * 1000, on.drive.search.seconds * 1000),
            AuthRow("log_batch (1,000 metrics, audited)", batch_ms(off), batch_ms(on))]


def auth_passed(rows: Sequence[AuthRow]) -> bool:
    return rows[0].difference_ms < AUTH_TARGET_MS


def render_auth(console: Console, rows: Sequence[AuthRow], on: ToolResult) -> None:
    table = Table(title="Shipyard without and with --auth: per-request medians over HTTP, 1 worker, SQLite")
    for name, justify in (("request", "left"), ("without", "right"), ("with --auth", "right"),
                          ("difference", "right"), ("target", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, row in enumerate(rows):
        target = f"< {AUTH_TARGET_MS:g} ms" if i == 0 else "—"
        color = ("green" if auth_passed(rows) else "red") if i == 0 else "white"
        table.add_row(row.figure, f"{row.without_ms:.3f} ms", f"{row.with_ms:.3f} ms",
                      f"[bold {color}]{row.difference_ms:+.3f} ms[/]", target)
    console.print(table)
    console.print("[dim]with --auth: an editor's API token on every request (token and roles read per request), "
                  "the project-scoped store, and an audit event written after each change[/]")
    if not on.requests_match:
        console.print(f"[bold red]shipyard --auth: the access log shows {on.requests_seen}, the client sent "
                      f"{on.requests_sent}[/]")


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    parser.add_argument("--auth-only", action="store_true",
                        help="only Shipyard without and with --auth (no MLflow)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    sizes = c.ServerSizes.quick() if args.quick else c.ServerSizes()
    mlf: ToolResult | None = None
    try:
        mlflow_python = None if args.auth_only else t.ensure_mlflow_venv(console, args.refresh_mlflow)[0]
        with tempfile.TemporaryDirectory(prefix="shipyard-server-bench-") as tmp:
            work = Path(tmp)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                def shipyard_side(folder: str) -> Side:
                    return Side("shipyard", Path(sys.executable), HERE / "_server_shipyard.py",
                                client_env(t.clean_env()), work / folder)

                member: dict[str, str] = {}

                def sign_in(workdir: Path) -> dict[str, str]:
                    member.update(bench_member(workdir))
                    return member

                ship = bench_tool(shipyard_side("shipyard"), shipyard_server, sizes, progress)
                ship_auth = bench_tool(shipyard_side("shipyard-auth"),
                                       lambda workdir, port: shipyard_server(workdir, port, auth=True), sizes,
                                       progress, sign_in=sign_in)
                task = progress.add_task("runs/get on both servers at once, in turn", total=None)
                paired = paired_get_run(work, ship, ship_auth, member["SHIPYARD_TRACKING_TOKEN"],
                                        PAIRED_CALLS // 4 if args.quick else PAIRED_CALLS)
                progress.remove_task(task)
                if mlflow_python is not None:
                    python = mlflow_python
                    mlf = bench_tool(Side("mlflow", python, HERE / "_server_mlflow.py",
                                          client_env(t.mlflow_env()), work / "mlflow"),
                                     lambda workdir, port: mlflow_server(python, workdir, port), sizes, progress)
    except t.BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2

    overhead = auth_rows(ship, ship_auth, paired)
    render_auth(console, overhead, ship_auth)
    auth_figures = [{**asdict(row), "difference_ms": row.difference_ms} for row in overhead]
    if mlf is None:
        if args.json:
            t.write_figures(args.json, quick=args.quick, sizes=asdict(sizes), shipyard=asdict(ship),
                            shipyard_auth=asdict(ship_auth), auth=auth_figures, passed=auth_passed(overhead))
            console.print(f"figures written to {args.json}")
        if not (ship.requests_match and ship_auth.requests_match):
            return 2
        return 0 if auth_passed(overhead) else 1
    rows = build_rows(ship, mlf, sizes)
    render(console, rows, ship, mlf)
    if args.json:
        write_json(args.json, sizes, args.quick, ship, mlf, rows, auth=auth_figures)
        console.print(f"figures written to {args.json}")
    if not same_results(ship, mlf) or not (ship.requests_match and mlf.requests_match and ship_auth.requests_match):
        return 2
    return 0 if all(row.passed is not False for row in rows) and auth_passed(overhead) else 1


if __name__ == "__main__":
    sys.exit(main())
