"""Models benchmark: log, register, alias, load and predict with Shipyard and with MLflow.

    .venv/bin/python benchmarks/models.py [--quick] [--json PATH] [--refresh-mlflow] [--profile]

Both tools work on local SQLite stores (tracking and registry in one database, a local artifact
folder) with the same scikit-learn pipeline: ``Pipeline(StandardScaler, LogisticRegression)``
fitted once per half, untimed, on 5,000 seeded rows of 20 features (``_models_workload.py``
defines the data, the pipeline and the timing loop once, for both halves).

1. Round trip, the median of 7 (``--quick``: 3), each in a fresh store and artifact folder,
   inside an active run, after one untimed warm-up round trip (imports, first-use costs):
   ``log_model(pipeline, "model", input_example=X[:5], registered_model_name="bench")``, set the
   alias ``champion`` on that version, ``load_model("models:/bench@champion")`` into a fresh
   folder, and the first ``predict`` on a 1,000-row DataFrame the pipeline was not trained on.
2. ``load_model("models:/bench@champion")`` alone: the median of 15 (``--quick``: 5) loads of
   one registered version after an untimed warm-up, each downloading into a new, empty folder
   (neither tool keeps loaded models in memory; each load is checked to have downloaded).

Every load's predictions must equal the pipeline's own, and both halves must have trained on
the same data and predict the same labels. Targets: Shipyard at least 3x faster on both.

Each tool runs with its defaults, in its own interpreter: Shipyard in this venv
(``_models_shipyard.py``), MLflow in ``.bench/mlflow-venv`` (``_models_mlflow.py``; the venv is
created by tracking.py's helper, and scikit-learn is added at this venv's version if missing),
with MLflow's usage telemetry off. ``--profile`` writes cProfile stats of the timed parts of
both halves to ``.bench/logs/profiles/`` (the figures of a profiled run are inflated).
Logs of each half: ``.bench/logs/models-*.log``.

Exits 0 when both targets are met, 1 when one is not, 2 when the benchmark fails or a tool
loads the wrong model or predicts something else.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import _models_workload as mw
import _workload as w
import tracking as t
from rich.console import Console, JustifyMethod
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

HERE = Path(__file__).resolve().parent
PROFILE_DIR = t.LOG_DIR / "profiles"
ROUND_TRIP_TARGET = 3.0  # MLflow time / Shipyard time
LOAD_TARGET = 3.0
TIMES = "\N{MULTIPLICATION SIGN}"
STEP_LABELS = {
    "log_model": "log_model + register",
    "set_alias": "set alias",
    "load_model": "load_model by alias",
    "predict": "first predict",
}


@dataclass(frozen=True)
class Row:
    operation: str
    shipyard_ms: float
    mlflow_ms: float
    ratio: float  # MLflow time / Shipyard time
    target: str  # "" for the parts of the round trip, which have none
    passed: bool | None
    shipyard_samples_ms: list[float]
    mlflow_samples_ms: list[float]


# --- the MLflow venv ---------------------------------------------------------------------------


def ensure_scikit_learn(console: Console, python: Path) -> None:
    """The MLflow venv gets scikit-learn with MLflow, normally; if not, install this venv's version."""
    probe = subprocess.run([str(python), "-c", "import sklearn"], capture_output=True, check=False)
    if probe.returncode == 0:
        return
    log = t.LOG_DIR / "mlflow-venv.log"
    try:
        wanted = f"scikit-learn=={version('scikit-learn')}"
    except PackageNotFoundError:
        wanted = "scikit-learn"
    with console.status(f"Installing {wanted} into {t.MLFLOW_VENV.relative_to(t.ROOT)}"):
        t.run_logged([python, "-m", "pip", "install", wanted], log)


# --- running one half --------------------------------------------------------------------------


@dataclass(frozen=True)
class Half:
    name: str
    python: Path
    script: Path
    env: dict[str, str]
    workdir: Path


def run_half(half: Half, sizes: mw.Sizes, progress: Progress, profile: bool) -> mw.SideResult:
    """Run one half in a fresh subprocess in its workdir; its stderr feeds the progress line and
    .bench/logs/models-NAME.log; its last stdout line is its figures."""
    half.workdir.mkdir(parents=True, exist_ok=True)
    t.LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = t.LOG_DIR / f"models-{half.name}.log"
    cmd = [str(half.python), str(half.script), "--sizes", sizes.to_json(), "--workdir", str(half.workdir),
           *(["--profile", str(PROFILE_DIR)] if profile else [])]
    view = t.EventView(progress)
    tail: deque[str] = deque(maxlen=40)
    with tempfile.TemporaryFile("w+") as stdout, log_path.open("w") as log:
        proc = subprocess.Popen(cmd, cwd=half.workdir, env=half.env, stdout=stdout, stderr=subprocess.PIPE,
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
        raise t.BenchError(f"the {half.name} half failed (exit {rc}); full log: {log_path}\n" + "".join(tail))
    results = [line for line in out.splitlines() if line.startswith("{")]
    if not results:
        raise t.BenchError(f"the {half.name} half printed no figures; full log: {log_path}")
    return mw.SideResult.from_dict(json.loads(results[-1]))


# --- figures -----------------------------------------------------------------------------------


def row(operation: str, ship: mw.Timing, mlf: mw.Timing, target: float | None) -> Row:
    ratio = mlf.seconds / ship.seconds
    return Row(operation, ship.seconds * 1000, mlf.seconds * 1000, ratio,
               f"≥ {target:g}{TIMES}" if target is not None else "",
               ratio >= target if target is not None else None,
               [s * 1000 for s in ship.samples], [s * 1000 for s in mlf.samples])


def build_rows(ship: mw.SideResult, mlf: mw.SideResult) -> list[Row]:
    return [
        *(row(f"  {STEP_LABELS[step]}", ship.steps[step], mlf.steps[step], None) for step in mw.STEPS),
        row("round trip", ship.round_trip, mlf.round_trip, ROUND_TRIP_TARGET),
        row("load_model by alias", ship.load, mlf.load, LOAD_TARGET),
    ]


def disagreements(ship: mw.SideResult, mlf: mw.SideResult) -> list[str]:
    problems = []
    if ship.data_digest != mlf.data_digest:
        problems.append(f"the halves generated different data ({ship.data_digest} vs {mlf.data_digest}): "
                        f"numpy {ship.libraries['numpy']} vs {mlf.libraries['numpy']}")
    if ship.predictions_digest != mlf.predictions_digest:
        problems.append(f"the halves predicted different labels ({ship.predictions_digest} vs "
                        f"{mlf.predictions_digest})")
    return problems


def spread(samples: Sequence[float]) -> str:
    return f"{min(samples):,.1f} to {max(samples):,.1f}"


def render(console: Console, rows: Sequence[Row], ship: mw.SideResult, mlf: mw.SideResult,
           sizes: mw.Sizes) -> None:
    table = Table(title=f"Shipyard {ship.version} vs MLflow {mlf.version}: models on SQLite, "
                        f"{os.cpu_count()} cores, Python {platform.python_version()}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("operation", "left"), ("Shipyard ms", "right"), ("MLflow ms", "right"), ("ratio", "right"),
        ("target", "left"), ("result", "center"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for r in rows:
        result = "" if r.passed is None else "[bold green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
        style = "dim" if r.passed is None else None
        table.add_row(r.operation, f"{r.shipyard_ms:,.1f}", f"{r.mlflow_ms:,.1f}", f"{r.ratio:,.1f}{TIMES}",
                      r.target, result, style=style)
    console.print(table)
    notes = [
        "ratio = MLflow time / Shipyard time; medians; the indented rows are the parts of the round trip",
        f"round trip: median of {sizes.round_trips}, each in a fresh SQLite store and artifact folder, after a "
        f"warm-up; spread (min to max, ms): Shipyard {spread(rows[-2].shipyard_samples_ms)}, "
        f"MLflow {spread(rows[-2].mlflow_samples_ms)}",
        f"first round trip in the process (the untimed warm-up, with each tool's first-use imports and one-time "
        f"work; MLflow imports mlflow.sklearn before it): Shipyard {ship.first_round_trip * 1000:,.0f} ms, "
        f"MLflow {mlf.first_round_trip * 1000:,.0f} ms",
        f"load_model: median of {sizes.loads} loads into fresh folders; spread (min to max, ms): Shipyard "
        f"{spread(rows[-1].shipyard_samples_ms)}, MLflow {spread(rows[-1].mlflow_samples_ms)}",
    ]
    for side in (ship, mlf):
        rec = side.recorded
        notes.append(f"{side.tool} package ({rec.format}): {', '.join(rec.files)}; requirements: "
                     f"{', '.join(rec.requirements) or 'none'}")
        notes.append(f"{side.tool} venv: " + ", ".join(f"{k} {v}" for k, v in side.libraries.items()))
    for note in notes:
        console.print(f"[dim]{note}[/]", highlight=False)
    if ship.libraries != mlf.libraries:
        console.print("[yellow]the two venvs hold different versions of the libraries above[/]")


def write_json(path: Path, sizes: mw.Sizes, quick: bool, ship: mw.SideResult, mlf: mw.SideResult,
               rows: Sequence[Row]) -> None:
    t.write_figures(path, quick=quick, sizes=asdict(sizes), shipyard=asdict(ship), mlflow=asdict(mlf),
                    rows=[asdict(r) for r in rows], passed=all(r.passed for r in rows if r.passed is not None))


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    parser.add_argument("--profile", action="store_true",
                        help=f"write cProfile stats of the timed parts to {PROFILE_DIR.relative_to(t.ROOT)}/")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    sizes = mw.Sizes.quick() if args.quick else mw.Sizes()
    try:
        mlflow_python, _ = t.ensure_mlflow_venv(console, args.refresh_mlflow)
        ensure_scikit_learn(console, mlflow_python)
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-models-") as tmp:
            work = Path(tmp)
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                       MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console, transient=True) as progress:
                ship = run_half(Half("shipyard", Path(sys.executable), HERE / "_models_shipyard.py",
                                     t.clean_env(), work / "shipyard"), sizes, progress, args.profile)
                mlf = run_half(Half("mlflow", mlflow_python, HERE / "_models_mlflow.py", t.mlflow_env(),
                                    work / "mlflow"), sizes, progress, args.profile)
    except t.BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2

    rows = build_rows(ship, mlf)
    render(console, rows, ship, mlf, sizes)
    if args.profile:
        console.print(f"cProfile stats of the timed parts: {PROFILE_DIR}/models-*.prof (figures inflated by "
                      "profiling); read with: python -m pstats FILE")
    if args.json:
        write_json(args.json, sizes, args.quick, ship, mlf, rows)
        console.print(f"figures written to {args.json}")
    problems = disagreements(ship, mlf)
    for problem in problems:
        console.print(f"[bold red]{problem}[/]")
    if problems:
        return 2
    return 0 if all(r.passed for r in rows if r.passed is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
