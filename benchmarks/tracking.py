"""Tracking benchmark: Shipyard against MLflow, side by side on this machine, in one run.

    .venv/bin/python benchmarks/tracking.py [--quick] [--json PATH] [--refresh-mlflow] [--no-cache]

Both tools track to SQLite in fresh temporary folders and run the same workload (defined once in
``_workload.py``):

1. ``log_metric``: 2,000 single calls inside one active run, timed until the data is committed
   to SQLite (Shipyard includes ``shipyard.flush()``; MLflow logs synchronously, its default);
   the median of 3 such runs. Each tool commits under its own SQLite settings, which the output
   states as each side's connection reports them (``PRAGMA journal_mode`` and ``synchronous``).
2. ``log_batch``: 100,000 metrics into one run (MLflow in chunks of its maximum, 1,000 per call;
   Shipyard in one call).
3. ``search_runs`` with a filter over 10,000 runs of one experiment (3 fresh processes per tool,
   alternating between the tools, 5 timed searches each after a warm-up; the median of all 15;
   ``max_results=1000``); both must return the same runs.
4. ``import`` wall time in a fresh interpreter, median of 15 after a warm-up, alternating.

Neither half runs in this process: ``_shipyard_side.py`` runs in this interpreter's venv and
``_mlflow_side.py`` in ``.bench/mlflow-venv``, which is created with the current MLflow from PyPI
on first use and reused after. Each half runs a ``write`` phase (figures 1 and 2, then
populating the search corpus), then the halves' ``search`` phases alternate, each in a fresh
interpreter: on a shared machine whose speed drifts over minutes, both tools then meet the same
drift. Populating MLflow's corpus is slow, so its database is cached in ``.bench/cache/``
keyed by MLflow version and sizes (``--no-cache`` rebuilds it). MLflow runs with its defaults,
less its usage telemetry (no network here). Logs of each phase: ``.bench/logs/``.

Exits 0 when every row meets its target, 1 when one does not, 2 when the benchmark fails or the
two searches disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import _workload as w
from rich.console import Console, JustifyMethod
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_DIR = ROOT / ".bench"
MLFLOW_VENV = BENCH_DIR / "mlflow-venv"
MLFLOW_READY = MLFLOW_VENV / ".bench-ready"  # holds the installed MLflow version
CACHE_DIR = BENCH_DIR / "cache"
LOG_DIR = BENCH_DIR / "logs"

SINGLE_TARGET = 100.0  # Shipyard speed / MLflow speed
BATCH_TARGET = 10.0
SEARCH_TARGET = 10.0
SEARCH_ROUNDS = 3  # fresh search processes per tool, alternating between the tools
IMPORT_TARGET_MS = 150.0
TIMES = "\N{MULTIPLICATION SIGN}"


class BenchError(RuntimeError):
    """The benchmark itself could not run (as opposed to a target not being met)."""


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    shipyard: float
    mlflow: float
    ratio: float  # Shipyard speed / MLflow speed
    target: str
    passed: bool
    workload: str  # what exactly was measured, printed under the table


@dataclass(frozen=True)
class ImportTimes:
    shipyard_s: list[float]
    mlflow_s: list[float]


# --- environment -----------------------------------------------------------------------------


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any MLFLOW_* / SHIPYARD_* setting, plus ``extra``.
    Bytecode caching stays on (PYTHONDONTWRITEBYTECODE dropped): pip compiles an installed
    package's bytecode, so MLflow's is always cached, while this editable checkout would
    otherwise be compiled from source in every process (~40 ms of each start here)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "SHIPYARD_")) and k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def mlflow_env() -> dict[str, str]:
    """MLflow's defaults, less its usage telemetry: this machine has no network, and a background
    sender retrying would only add noise to MLflow's figures."""
    return clean_env(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")


def run_logged(cmd: Sequence[str | Path], log: Path) -> None:
    with log.open("a") as sink:
        rc = subprocess.run([str(c) for c in cmd], stdout=sink, stderr=subprocess.STDOUT,
                            check=False).returncode
    if rc:
        raise BenchError(f"`{' '.join(map(str, cmd))}` failed (exit {rc}); see {log}")


def ensure_mlflow_venv(console: Console, refresh: bool) -> tuple[Path, str]:
    """The python of ``.bench/mlflow-venv`` and its MLflow version, installing it when needed."""
    python = MLFLOW_VENV / "bin" / "python"
    if refresh or not MLFLOW_READY.exists():
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / "mlflow-venv.log"
        log.write_text("")
        with console.status(f"Installing MLflow from PyPI into {MLFLOW_VENV.relative_to(ROOT)} "
                            f"(first run only; a few minutes; log: {log.relative_to(ROOT)})"):
            if not python.exists():
                run_logged([sys.executable, "-m", "venv", MLFLOW_VENV], log)
            run_logged([python, "-m", "pip", "install", "--upgrade", "pip"], log)
            run_logged([python, "-m", "pip", "install", *(["--upgrade"] if refresh else []), "mlflow"], log)
            probe = subprocess.run([python, "-c", "import mlflow; print(mlflow.__version__)"],
                                   capture_output=True, text=True, check=False)
            if probe.returncode:
                raise BenchError(f"MLflow does not import in {MLFLOW_VENV}:\n{probe.stderr}")
            MLFLOW_READY.write_text(probe.stdout.strip())
        console.print(f"[green]✓[/] MLflow {MLFLOW_READY.read_text()} installed in {MLFLOW_VENV}")
    return python, MLFLOW_READY.read_text().strip()


# --- running one half ------------------------------------------------------------------------


class EventView:
    """Shows a side script's ``@@bench`` events on one rich progress line."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task("starting…", total=None)
        self.label = ""

    def handle(self, raw: dict[str, Any]) -> None:
        kind = raw["event"]
        if kind == "start":
            self.label = raw["label"]
            self.progress.reset(self.task, description=self.label, total=raw.get("total"), completed=0)
        elif kind == "advance":
            self.progress.update(self.task, completed=raw["done"], total=raw["total"])
        elif kind == "done":
            self.progress.console.print(f"  [green]✓[/] {self.label}: {raw['summary']}")


@dataclass(frozen=True)
class Side:
    """One tool's half: the interpreter and script that run it, its environment and folder."""

    name: str
    python: Path
    script: Path
    env: dict[str, str]
    workdir: Path


def run_phase(side: Side, phase: str, sizes: w.Sizes, progress: Progress) -> dict[str, Any]:
    """Run one phase of one half in a fresh subprocess; its stderr feeds the progress line and
    .bench/logs/NAME-PHASE.log; its last stdout line is the phase's figures."""
    side.workdir.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{side.name}-{phase}.log"
    cmd = [str(side.python), str(side.script), "--phase", phase, "--sizes", sizes.to_json(),
           "--workdir", str(side.workdir), "--cache-dir", str(CACHE_DIR)]
    view = EventView(progress)
    tail: deque[str] = deque(maxlen=40)
    with tempfile.TemporaryFile("w+") as stdout, log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=side.workdir, env=side.env, stdout=stdout, stderr=subprocess.PIPE,
                                text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            if line.startswith(w.EVENT_PREFIX):
                view.handle(json.loads(line.removeprefix(w.EVENT_PREFIX)))
            else:
                tail.append(line)
        rc = proc.wait()
        stdout.seek(0)
        out = stdout.read()
    progress.remove_task(view.task)
    if rc:
        raise BenchError(f"the {side.name} {phase} phase failed (exit {rc}); full log: {log_path}\n"
                         + "".join(tail))
    results = [line for line in out.splitlines() if line.startswith("{")]
    if not results:
        raise BenchError(f"the {side.name} {phase} phase printed no figures; full log: {log_path}")
    parsed: dict[str, Any] = json.loads(results[-1])
    return parsed


def run_sides(sides: Sequence[Side], sizes: w.Sizes, progress: Progress) -> list[w.SideResult]:
    """Both tools' write phases, then their search phases in alternation, SEARCH_ROUNDS times:
    a shared machine speeds up and slows down over minutes, and alternating lets both tools
    meet the same phases of it (the search figure is the median over every round's samples)."""
    written = [run_phase(side, "write", sizes, progress) for side in sides]
    rounds: list[list[dict[str, Any]]] = [[] for _ in sides]
    for _ in range(SEARCH_ROUNDS):
        for found, side in zip(rounds, sides, strict=True):
            found.append(run_phase(side, "search", sizes, progress)["search"])
    return [w.SideResult.from_dict({**raw, "search": merge_searches(found)})
            for raw, found in zip(written, rounds, strict=True)]


def merge_searches(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One search result from several fresh-process rounds, which must all find the same runs."""
    first = rounds[0]
    if any((r["matched"], r["matched_digest"]) != (first["matched"], first["matched_digest"]) for r in rounds):
        raise BenchError("the search rounds of one tool matched different runs")
    samples = [sample for r in rounds for sample in r["samples"]]
    return {**first, "samples": samples, "seconds": statistics.median(samples)}


def time_imports(commands: Sequence[tuple[Path, str, dict[str, str]]], repeats: int, cwd: Path) -> list[list[float]]:
    """Wall times of ``python -c "import MODULE"`` for each (python, module, env), alternating
    between them, after one untimed warm-up each (bytecode, page cache)."""

    def once(python: Path, module: str, env: dict[str, str]) -> float:
        cmd = [str(python), "-c", f"import {module}"]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode:
            raise BenchError(f"`{' '.join(cmd)}` failed:\n{done.stderr.decode()}")
        return elapsed

    for command in commands:
        once(*command)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeats):
        for found, command in zip(times, commands, strict=True):
            found.append(once(*command))
    return times


# --- figures ---------------------------------------------------------------------------------


def build_rows(ship: w.SideResult, mlf: w.SideResult, imports: ImportTimes, sizes: w.Sizes) -> list[Row]:
    single_ratio = ship.single.per_second / mlf.single.per_second
    batch_ratio = ship.batch.per_second / mlf.batch.per_second
    search_ratio = mlf.search.seconds / ship.search.seconds
    ship_import_ms = statistics.median(imports.shipyard_s) * 1000
    mlf_import_ms = statistics.median(imports.mlflow_s) * 1000
    return [
        Row("log_metric", "calls/s", ship.single.per_second, mlf.single.per_second, single_ratio,
            f"≥ {SINGLE_TARGET:g}{TIMES}", single_ratio >= SINGLE_TARGET,
            f"{sizes.single_calls:,} single calls over {sizes.single_keys} keys in one active run, timed "
            "until committed (Shipyard through shipyard.flush(); MLflow logs synchronously) under each "
            f"tool's SQLite settings: Shipyard {durability(ship)}, MLflow {durability(mlf)}; median of "
            f"{sizes.single_repeats} runs"),
        Row("log_batch", "metrics/s", ship.batch.per_second, mlf.batch.per_second, batch_ratio,
            f"≥ {BATCH_TARGET:g}{TIMES}", batch_ratio >= BATCH_TARGET,
            f"{sizes.batch_metrics:,} metrics into one run: Shipyard {ship.batch.note}, "
            f"MLflow {mlf.batch.calls:,} calls ({mlf.batch.note})"),
        Row("search_runs", "ms", ship.search.seconds * 1000, mlf.search.seconds * 1000, search_ratio,
            f"≥ {SEARCH_TARGET:g}{TIMES}", same_results(ship, mlf) and search_ratio >= SEARCH_TARGET,
            f"{w.SEARCH_FILTER!r} over {sizes.search_runs:,} runs, max_results={w.SEARCH_MAX_RESULTS}, "
            f"median of {SEARCH_ROUNDS} fresh processes x {sizes.search_repeats} searches after a warm-up, "
            f"alternating between the tools; matched {ship.search.matched:,} "
            f"(Shipyard) and {mlf.search.matched:,} (MLflow)"),
        Row("import", "ms", ship_import_ms, mlf_import_ms, mlf_import_ms / ship_import_ms,
            f"< {IMPORT_TARGET_MS:g} ms", ship_import_ms < IMPORT_TARGET_MS,
            f'python -c "import shipyard" / "import mlflow", each in its venv: median of '
            f"{sizes.import_repeats} fresh interpreters after a warm-up, alternating (target on Shipyard's "
            "time)"),
    ]


def durability(side: w.SideResult) -> str:
    """``journal_mode=WAL, synchronous=NORMAL``: what that side's commits survive."""
    return ", ".join(f"{key}={value}" for key, value in side.durability.items())


def same_results(ship: w.SideResult, mlf: w.SideResult) -> bool:
    """Both searches returned the same number of runs, and the same runs by name."""
    a, b = ship.search, mlf.search
    return a.matched == b.matched and a.matched_digest == b.matched_digest


def fmt(value: float, unit: str) -> str:
    return f"{value:,.1f}" if unit == "ms" else f"{value:,.0f}"


def render(console: Console, rows: Sequence[Row], ship: w.SideResult, mlf: w.SideResult) -> None:
    table = Table(title=f"Shipyard {ship.version} vs MLflow {mlf.version}: tracking on SQLite, "
                        f"{os.cpu_count()} cores, Python {platform.python_version()}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("unit", "left"), ("Shipyard", "right"), ("MLflow", "right"),
        ("ratio", "right"), ("target", "left"), ("result", "center"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in rows:
        table.add_row(row.figure, row.unit, fmt(row.shipyard, row.unit), fmt(row.mlflow, row.unit),
                      f"[bold]{row.ratio:,.1f}{TIMES}[/]", row.target,
                      "[bold green]PASS[/]" if row.passed else "[bold red]FAIL[/]")
    console.print(table)
    console.print("[dim]ratio = Shipyard speed / MLflow speed (for times: MLflow time / Shipyard time)[/]")
    for row in rows:
        console.print(f"[dim]{row.figure}: {row.workload}[/]", highlight=False)
    if not same_results(ship, mlf):
        console.print(f"[bold red]search_runs results differ:[/] Shipyard matched {ship.search.matched} "
                      f"runs, MLflow {mlf.search.matched} (or a different set of runs)")
    if mlf.populated.cached:
        console.print(f"[dim]MLflow's search corpus came from the cache in {CACHE_DIR} "
                      "(--no-cache rebuilds it).[/]", highlight=False)


def write_figures(path: Path, *, quick: bool, sizes: dict[str, Any], meta: dict[str, Any] | None = None,
                  **figures: Any) -> None:
    """Write a benchmark's ``figures`` to ``path`` as JSON, under a ``meta`` section saying when,
    at which sizes and on what machine they were measured (plus the benchmark's own ``meta``)."""
    about = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick, "sizes": sizes,
             "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
             **(meta or {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": about, **figures}, indent=2) + "\n")


def write_json(path: Path, sizes: w.Sizes, quick: bool, ship: w.SideResult, mlf: w.SideResult,
               imports: ImportTimes, rows: Sequence[Row]) -> None:
    write_figures(path, quick=quick, sizes=asdict(sizes), meta={"search_filter": w.SEARCH_FILTER},
                  shipyard=asdict(ship), mlflow=asdict(mlf), imports=asdict(imports),
                  rows=[asdict(row) for row in rows], passed=all(row.passed for row in rows))


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    parser.add_argument("--no-cache", action="store_true",
                        help="populate MLflow's search corpus afresh instead of reusing .bench/cache")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    sizes = w.Sizes.quick() if args.quick else w.Sizes()
    try:
        mlflow_python, mlflow_version = ensure_mlflow_venv(console, args.refresh_mlflow)
        if args.no_cache:
            (CACHE_DIR / f"{w.cache_key(mlflow_version, sizes)}.db").unlink(missing_ok=True)
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp:
            work = Path(tmp)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                ship_dir = work / "shipyard"
                ship, mlf = run_sides([
                    Side("shipyard", Path(sys.executable), HERE / "_shipyard_side.py",
                         clean_env(SHIPYARD_ARTIFACT_URI=str(ship_dir / "artifacts")), ship_dir),
                    Side("mlflow", mlflow_python, HERE / "_mlflow_side.py", mlflow_env(), work / "mlflow"),
                ], sizes, progress)
                task = progress.add_task(f"import time: {sizes.import_repeats} fresh interpreters each, alternating")
                ship_imports, mlflow_imports = time_imports(
                    [(Path(sys.executable), "shipyard", clean_env()), (mlflow_python, "mlflow", mlflow_env())],
                    sizes.import_repeats, work)
                imports = ImportTimes(shipyard_s=ship_imports, mlflow_s=mlflow_imports)
                progress.remove_task(task)
    except BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2

    rows = build_rows(ship, mlf, imports, sizes)
    render(console, rows, ship, mlf)
    if args.json:
        write_json(args.json, sizes, args.quick, ship, mlf, imports, rows)
        console.print(f"figures written to {args.json}")
    if not same_results(ship, mlf):
        return 2
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
