"""Drift benchmark: Shipyard's drift against Evidently's data-drift report and a bare numpy floor, side by side.

    .venv/bin/python benchmarks/drift.py [--quick] [--json PATH] [--refresh-evidently]

Data: 20 numerical and 5 categorical columns, reference and current, at 100,000 and 1,000,000 rows
(``--quick``: 100,000 only), generated once with fixed seeds into ``.bench/drift/`` as Parquet.
Drift is injected in known columns (:data:`INJECTED`): a mean shift of 0.1 and of 0.05 reference
standard deviations, a 10 % wider spread, 5 % of values moved by 2 std, a Poisson count whose
rate goes from 2.0 to 2.1, shifted category shares, and a new category taking 1 % of the rows.
The other 18 columns are drawn from the same distributions in both (some with 2 % missing values).

Each tool runs in its own fresh process (so that each peak RSS is its own) on the same two pandas
DataFrames read from the Parquet files (reading is neither timed nor counted: on Linux the kernel's
high-water mark of the RSS is reset after reading, and Arrow's allocator hands back the memory it
kept from the conversion, so the peak is the comparison's, with the frames it holds; the whole
process's peak is printed beside it). Timed: the comparison from the two frames
to the list of drifted columns.

- ``shipyard``: ``shipyard.monitoring.drift(reference, current)`` with its defaults.
- ``shipyard, stored reference``: the same with a :func:`reference_profile` built beforehand
  (untimed), as a monitor holding its reference does; the reference frame is then let go, as a
  monitor never reads the training set again (the same for the floor's cached reference).
- ``floor``: the same statistics in bare numpy/scipy per column (sort, one ``searchsorted`` merge
  for KS and Wasserstein, decile PSI, pandas ``value_counts`` and the chi-square for categories,
  Bonferroni at 0.05): what a careful hand-written script costs; also with a cached reference.
- ``evidently``: ``Report([DataDriftPreset()])`` run on the two frames (its default per-column tests
  and its 50 %-of-columns dataset rule), in its own virtualenv ``.bench/evidently-venv`` created
  with pip on first use, with pandas < 3 (Evidently 0.7.23 does not import under pandas 3.1). If
  it cannot be installed or imported, the reason is printed and the rest still runs.

Targets at 1,000,000 rows: Shipyard at least 20x faster than Evidently, at most 1/3 of its peak
memory, and within 1.5x of the floor (with and without a stored reference). Accuracy is printed
beside: per tool, which injected columns it flagged and which clean ones. Exits 0 when every
target that could be measured is met, 1 when one is not, 2 when the benchmark itself fails.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / ".bench" / "drift"
NUMERICAL = [f"n{i:02d}" for i in range(20)]
CATEGORICAL = [f"c{i}" for i in range(5)]
INJECTED = {
    "n02": "mean +0.1 std", "n05": "std x1.1", "n09": "5% moved +2 std", "n13": "mean +0.05 std",
    "n17": "Poisson 2.0 -> 2.1", "c1": "shares shifted", "c3": "new category, 1% of rows",
}
SPEED_TARGET, MEMORY_TARGET, FLOOR_TARGET = 20.0, 1 / 3, 1.5
TOOLS = ("shipyard", "shipyard-profile", "floor", "floor-cached", "evidently")
LABELS = {"shipyard": "Shipyard", "shipyard-profile": "Shipyard, stored reference", "floor": "numpy floor",
          "floor-cached": "numpy floor, cached reference", "evidently": "Evidently"}


# -- data ------------------------------------------------------------------------------------------------


def generate(rows: int, current: bool) -> Any:
    """One side as an Arrow table; the same seeds give the same data on every machine."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng([rows, 2 if current else 1])
    cols: dict[str, Any] = {}
    for i, name in enumerate(NUMERICAL):
        kind = i % 4
        if name == "n17":
            cols[name] = rng.poisson(2.1 if current else 2.0, rows).astype(np.int64)
            continue
        base = (rng.normal(0, 1, rows) if kind == 0 else rng.lognormal(0, 0.6, rows) if kind == 1
                else rng.uniform(-2, 2, rows) if kind == 2 else rng.exponential(1.5, rows))
        std = {0: 1.0, 1: float(np.sqrt((np.exp(0.36) - 1) * np.exp(0.36))), 2: 4 / np.sqrt(12), 3: 1.5}[kind]
        if current and name == "n02":
            base = base + 0.1 * std
        elif current and name == "n13":
            base = base + 0.05 * std
        elif current and name == "n05":
            base = (base - base.mean()) * 1.1 + base.mean()
        elif current and name == "n09":
            moved = rng.random(rows) < 0.05
            base = np.where(moved, base + 2 * std, base)
        if i % 5 == 4:  # some columns miss 2 % of their values, in both
            base[rng.random(rows) < 0.02] = np.nan
        cols[name] = base
    shares = {"c0": [0.5, 0.3, 0.2], "c1": [0.4, 0.3, 0.2, 0.1], "c2": [0.25] * 4, "c3": [0.6, 0.4],
              "c4": list(np.full(200, 1 / 200))}
    for name, p in shares.items():
        labels = np.array([f"{name}_{k}" for k in range(len(p))], dtype=object)
        if current and name == "c1":
            p = [0.37, 0.3, 0.22, 0.11]
        values = labels[rng.choice(len(p), rows, p=p)]
        if current and name == "c3":
            values[rng.random(rows) < 0.01] = "c3_new"
        cols[name] = pa.array(values, type=pa.string())
    return pa.table(cols)


def ensure_data(rows: int) -> tuple[Path, Path]:
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    paths = DATA / f"reference-{rows}.parquet", DATA / f"current-{rows}.parquet"
    for path, current in zip(paths, (False, True), strict=True):
        if not path.exists():
            partial = path.with_suffix(".tmp")
            pq.write_table(generate(rows, current), partial)
            partial.rename(path)
    return paths


# -- the workers (each in its own process) --------------------------------------------------------------


def process_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def reset_peak() -> bool:
    """Lower the kernel's high-water mark of this process's RSS to its current RSS (Linux 4.0+), so
    that the peak read afterwards is the comparison's own and not the Parquet-to-pandas conversion's
    transient copy; False where that is not possible (the process peak is used then)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_mb("VmHWM") is not None


def _release_reader_memory() -> None:
    """Hand back to the OS what Arrow's allocator kept from converting the Parquet files to pandas
    (freed, but still resident: about 270 MB at 1,000,000 rows), the same in every tool's process."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def worker(tool: str, reference: Path, current: Path) -> dict[str, Any]:
    import pandas as pd

    ref, cur = pd.read_parquet(reference), pd.read_parquet(current)
    prepared = _prepare(tool, ref)
    if prepared is not None:  # a monitor holding a stored reference never holds the reference's rows
        ref = None
        gc.collect()
    read_peak = process_peak_mb()
    _release_reader_memory()
    resident = _status_mb("VmRSS") or read_peak
    exact = reset_peak()
    start, cpu = time.perf_counter(), time.process_time()
    flagged = _RUNNERS[tool](ref, cur, prepared)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = (_status_mb("VmHWM") if exact else None) or process_peak_mb()
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_mb": peak, "baseline_mb": resident,
            "process_peak_mb": max(read_peak, process_peak_mb(), peak), "peak_is_comparison": bool(exact),
            "flagged": sorted(flagged), "version": _version(tool)}


def _version(tool: str) -> str:
    from importlib.metadata import version

    return version("evidently") if tool == "evidently" else version("shipyard-mlops")


def _prepare(tool: str, ref: Any) -> Any:
    if tool == "shipyard-profile":
        from shipyard.monitoring import reference_profile

        return reference_profile(ref)
    if tool == "floor-cached":
        return _floor_reference(ref)
    if tool in ("shipyard", "floor"):
        import scipy.stats  # noqa: F401  (import time is not what is measured; Evidently imports before too)

        import shipyard.monitoring.detect  # noqa: F401
    if tool == "evidently":
        _evidently_imports()
    return None


def _run_shipyard(ref: Any, cur: Any, prepared: Any) -> list[str]:
    from shipyard.monitoring import drift

    return drift(prepared if prepared is not None else ref, cur).drifted_columns


def _floor_reference(ref: Any) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    for name in NUMERICAL:
        values = ref[name].to_numpy(dtype=np.float64)
        values = np.sort(values[np.isfinite(values)])
        out[name] = values
    for name in CATEGORICAL:
        out[name] = ref[name].value_counts()
    return out


def _run_floor(ref: Any, cur: Any, prepared: Any) -> list[str]:
    """KS (asymptotic), Wasserstein, decile PSI per numerical column; chi-square and PSI per categorical
    one; Bonferroni over the 25 p-values. No checks, no report: the least work giving the same answer."""
    import numpy as np
    import pandas as pd
    from scipy import special, stats

    reference = prepared if prepared is not None else _floor_reference(ref)
    p_values: dict[str, float] = {}
    for name in NUMERICAL:
        a = reference[name]
        b = cur[name].to_numpy(dtype=np.float64)
        b = np.sort(b[np.isfinite(b)])
        n, m = len(a), len(b)
        pos = np.searchsorted(a, b, side="right") + np.arange(m)  # b's places in the merged sample
        from_a = np.ones(n + m, dtype=bool)
        from_a[pos] = False
        merged = np.empty(n + m)
        merged[pos] = b
        merged[from_a] = a
        count_a = np.cumsum(from_a)
        gap = np.abs(count_a / n - (np.arange(1, n + m + 1) - count_a) / m)[:-1]
        deltas = np.diff(merged)
        d = gap[deltas > 0].max()
        _wasserstein = np.dot(gap, deltas) / a.std()
        edges = a[(np.arange(1, 10) * (n - 1)) // 10]
        pa_ = np.diff(np.r_[0, np.searchsorted(a, edges, "right"), n]) / n
        pb_ = np.diff(np.r_[0, np.searchsorted(b, edges, "right"), m]) / m
        _psi = np.sum((np.maximum(pb_, 1e-4) - np.maximum(pa_, 1e-4)) * np.log(np.maximum(pb_, 1e-4) /
                                                                               np.maximum(pa_, 1e-4)))
        en = n * m / (n + m)
        p_values[name] = float(special.kolmogorov(np.sqrt(en) * d))
    for name in CATEGORICAL:
        counts = pd.concat([reference[name], cur[name].value_counts()], axis=1).fillna(0).to_numpy().T
        p_values[name] = float(stats.chi2_contingency(counts, correction=False).pvalue)
    level = 0.05 / len(p_values)
    return [name for name, p in p_values.items() if p < level]


def _evidently_imports() -> Any:
    try:  # Evidently 0.7 and later
        from evidently import Report
        from evidently.presets import DataDriftPreset
        return Report, DataDriftPreset, True
    except ImportError:  # the legacy API
        from evidently.metric_preset import DataDriftPreset
        from evidently.report import Report
        return Report, DataDriftPreset, False


def _run_evidently(ref: Any, cur: Any, prepared: Any) -> list[str]:
    report_class, preset, modern = _evidently_imports()
    report = report_class([preset()])
    if modern:
        snapshot = report.run(current_data=cur, reference_data=ref)
        flagged = []
        for metric in snapshot.dict()["metrics"]:
            name = str(metric.get("metric_name", metric.get("metric_id", "")))
            value = metric.get("value")
            config = metric.get("config", {})
            threshold = config.get("threshold")
            column = config.get("column")
            method = str(config.get("method", ""))
            if name.startswith("ValueDrift") and column is not None and isinstance(value, int | float):
                # p-value tests drift below the threshold, distance tests at or above it
                is_p_value = "p_value" in method or "test" in method.lower()
                drifted = value < threshold if is_p_value else value >= threshold
                if drifted:
                    flagged.append(column)
        return flagged
    report.run(reference_data=ref, current_data=cur)
    for metric in report.as_dict()["metrics"]:
        by_column = metric.get("result", {}).get("drift_by_columns")
        if by_column:
            return [name for name, result in by_column.items() if result.get("drift_detected")]
    return []


_RUNNERS = {"shipyard": _run_shipyard, "shipyard-profile": _run_shipyard, "floor": _run_floor,
            "floor-cached": _run_floor, "evidently": _run_evidently}


# -- the driver ----------------------------------------------------------------------------------------------


def run_tool(tool: str, python: Path, paths: tuple[Path, Path]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")} if tool != "evidently" else dict(os.environ)
    done = subprocess.run([str(python), str(Path(__file__)), "--worker", tool, str(paths[0]), str(paths[1])],
                          capture_output=True, text=True, check=False, env=env)
    if done.returncode:
        return {"error": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def ensure_evidently(console: Any, refresh: bool) -> tuple[Path | None, str]:
    """The Python of ``.bench/evidently-venv`` with Evidently importable, or None and the reason."""
    from data import BENCH_DIR, LOG_DIR, BenchError  # the data benchmark's folders and error

    venv = BENCH_DIR / "evidently-venv"
    python, ready = venv / "bin" / "python", venv / ".bench-ready"
    if refresh or not ready.exists():
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / "evidently-venv.log"
        steps: list[list[str]] = []
        if not python.exists():
            steps.append([sys.executable, "-m", "venv", str(venv)])
        steps += [[str(python), "-m", "pip", "install", "--upgrade", "pip"],
                  # pandas < 3: Evidently 0.7.23 fails to import under pandas 3.1 (it imports
                  # pandas.core.dtypes.common.infer_dtype_from_object, which pandas 3 removed)
                  [str(python), "-m", "pip", "install", *(["--upgrade"] if refresh else []), "evidently",
                   "pandas<3", "pyarrow"]]
        try:
            with console.status(f"Installing Evidently into {venv} (first run only; log: {log})"), \
                    log.open("a") as sink:
                for cmd in steps:
                    if subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT, check=False).returncode:
                        raise BenchError(f"`{' '.join(cmd)}` failed; see {log}")
        except BenchError as exc:
            return None, str(exc)
    probe = subprocess.run([str(python), "-c", "import evidently, importlib.metadata as m; "
                            "print(m.version('evidently'), 'with pandas', m.version('pandas'))"],
                           capture_output=True, text=True, check=False)
    if probe.returncode:
        return None, "Evidently does not import: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    ready.write_text(probe.stdout.strip())
    return python, probe.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100,000 rows only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-evidently", action="store_true", help="upgrade Evidently in its virtualenv first")
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "REFERENCE", "CURRENT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]), Path(args.worker[2]))))
        return 0

    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=160)
    sizes = [100_000] if args.quick else [100_000, 1_000_000]
    evidently_python, evidently_note = ensure_evidently(console, args.refresh_evidently)
    if evidently_python is None:
        console.print(f"[yellow]Evidently skipped:[/] {evidently_note}")
    results: dict[int, dict[str, dict[str, Any]]] = {}
    for rows in sizes:
        with console.status(f"Generating {rows:,} rows (once, into {DATA})"):
            paths = ensure_data(rows)
        results[rows] = {}
        for tool in TOOLS:
            python = evidently_python if tool == "evidently" else Path(sys.executable)
            if python is None:
                results[rows][tool] = {"error": evidently_note}
                continue
            with console.status(f"{LABELS[tool]} on {rows:,} rows"):
                results[rows][tool] = run_tool(tool, python, paths)
            got = results[rows][tool]
            console.print(f"  [green]✓[/] {LABELS[tool]}, {rows:,} rows: " + (
                f"{got['seconds']:.2f} s, peak {got['peak_mb']:,.0f} MB" if "seconds" in got else got["error"]),
                highlight=False)
    passed = render(console, results, evidently_note)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "passed": passed, "injected": INJECTED}, indent=2))
    return 0 if passed is not False else 1


def _injected_text(flagged: set[str]) -> str:
    missed = sorted(INJECTED.keys() - flagged)
    return f"{len(INJECTED) - len(missed)}/{len(INJECTED)}" + (f", missed {', '.join(missed)}" if missed else "")


def render(console: Any, results: dict[int, dict[str, dict[str, Any]]], evidently_version: str) -> bool | None:
    from rich.table import Table

    table = Table(title=f"Drift: 20 numerical + 5 categorical columns (Evidently: {evidently_version})")
    for name in ("rows", "tool", "time s", "CPU s", "peak MB", "resident MB", "process peak MB", "vs Evidently",
                 "memory vs Evidently", "process peak vs Evidently", "vs floor", "injected flagged", "clean flagged"):
        table.add_column(name, justify="right" if name not in ("tool", "injected flagged", "clean flagged")
                         else "left")
    verdicts: list[bool] = []
    for rows, tools in results.items():
        peer, floor = tools.get("evidently", {}), tools.get("floor", {})
        for tool, got in tools.items():
            if "seconds" not in got:
                table.add_row(f"{rows:,}", LABELS[tool], *["—"] * 5, *[""] * 4, got.get("error", ""), "")
                continue
            flagged = set(got["flagged"])
            speed = peer["seconds"] / got["seconds"] if "seconds" in peer else None
            memory = got["peak_mb"] / peer["peak_mb"] if "peak_mb" in peer else None
            process_memory = (got["process_peak_mb"] / peer["process_peak_mb"]
                              if "process_peak_mb" in peer and "process_peak_mb" in got else None)
            base = tools["floor-cached"] if tool == "shipyard-profile" else floor
            vs_floor = got["seconds"] / base["seconds"] if tool.startswith("shipyard") and "seconds" in base else None
            if rows == 1_000_000 and tool.startswith("shipyard"):
                if speed is not None and tool == "shipyard":
                    verdicts += [speed >= SPEED_TARGET, memory is not None and memory <= MEMORY_TARGET]
                if vs_floor is not None:
                    verdicts.append(vs_floor <= FLOOR_TARGET)
            table.add_row(
                f"{rows:,}", LABELS[tool], f"{got['seconds']:.2f}", f"{got['cpu_seconds']:.2f}",
                f"{got['peak_mb']:,.0f}", f"{got['baseline_mb']:,.0f}", f"{got.get('process_peak_mb', 0):,.0f}",
                f"{speed:.1f}x" if speed and tool != "evidently" else "",
                f"{memory:.2f}" if memory and tool != "evidently" else "",
                f"{process_memory:.2f}" if process_memory and tool != "evidently" else "",
                f"{vs_floor:.2f}x" if vs_floor else "",
                _injected_text(flagged),
                ", ".join(sorted(flagged - INJECTED.keys())) or "none")
    console.print(table)
    console.print("[dim]time: wall time of the comparison only (frames already in memory), CPU s: its process time "
                  "(steadier than wall time on a shared machine); peak MB: the peak RSS during the comparison (the two "
                  "frames held in memory included; the kernel's high-water mark is reset after reading them), "
                  "resident MB: the RSS before the comparison, process peak MB: the whole process's peak (reading "
                  "the Parquet files into pandas makes a transient second copy of the data). vs Evidently: "
                  "Evidently's time / this tool's; memory: this peak / Evidently's (the target), process peak: the "
                  "same with whole-process peaks. vs floor: this time / the floor's (the stored-reference run against "
                  "the cached-reference floor). Targets at 1,000,000 rows: >= 20x, <= 0.33, <= 1.5x.[/]")
    console.print("[dim]injected: " + "; ".join(f"{k} {v}" for k, v in INJECTED.items()) + "[/]", highlight=False)
    load = os.getloadavg()
    console.print(f"[dim]load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}[/]", highlight=False)
    if not verdicts:
        return None
    console.print("[bold green]targets met[/]" if all(verdicts) else "[bold red]a target was missed[/]")
    return all(verdicts)


if __name__ == "__main__":
    sys.exit(main())
