"""Data benchmark: Shipyard's dataset digests and profiles against sha256sum and DVC, side by side.

    .venv/bin/python benchmarks/data.py [--quick] [--json PATH] [--refresh-dvc] [--floor-only]

1. Folder hashing throughput: ``digest_folder`` (no cache, one thread per core) against
   ``sha256sum`` run once on all the files of a generated 1 GiB folder (200 files of 5 MiB of
   seeded random bytes, written once into ``.bench/data/`` and reused). The page cache cannot be
   dropped here (no root rights assumed), so both read warm files: every file is read once
   before the first timing. Median of 3; every file digest must equal ``sha256sum``'s. For
   reference, also: Shipyard on one thread, and ``openssl dgst -sha256`` (one process).
2. Re-hash of the unchanged folder with a :class:`DigestCache` (fresh database in a temporary
   folder, filled by earlier passes): median of 7; no file may be read. The same for 5,000
   files of 1 KiB in 50 subfolders ("thousands of files", with the same target) and, for
   reference, 10,000 in 100.
3. Like for like, a Parquet file: ``digest_file`` of the 5,000,000-row, 10-column frame written
   to Parquet (untimed), in a fresh interpreter, against ``dvc add data.parquet`` of the same file,
   each in a fresh ``dvc init --no-scm`` folder (wall time of the command), alternating, median of 3.
   DVC runs in its own virtualenv, ``.bench/dvc-venv``, created with pip from PyPI on first use,
   with its analytics off. For reference: ``describe_file`` (digest + profile, what logging the
   file does) in a fresh interpreter.
   The same frame in memory: ``describe_table`` (convert to Arrow, digest, profile) against the
   floor, ``pa.Table.from_pandas`` + the Arrow IPC stream fed to one SHA-256, in memory,
   alternating, median of 5 after a warm-up on a slice (``--floor-only``: this figure alone). For
   reference: both sides' process CPU time, and that figure against ``dvc add`` of the file (not
   like for like).
4. lineage ``explain`` of a registered model version in a store holding 100,000 edges
   (``_lineage_explain.py``; target under 50 ms).

Targets: hashing at least 0.8x sha256sum's throughput, cached re-hashes under 100 ms, the
Parquet file's digest at least 2x faster than ``dvc add`` of it, the DataFrame's digest + profile
within 1.3x of the floor. Exits 0 when every target is met, 1 when
one is not, 2 when the benchmark fails or a digest disagrees with sha256sum.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import _data_workload as dw
import tracking as t
from rich.console import Console, JustifyMethod
from rich.table import Table

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_DIR = ROOT / ".bench"
DATA_DIR = BENCH_DIR / "data"
LOG_DIR = BENCH_DIR / "logs"
DVC_VENV = BENCH_DIR / "dvc-venv"
DVC_READY = DVC_VENV / ".bench-ready"  # holds the installed DVC version

THROUGHPUT_TARGET = 0.8  # Shipyard MB/s / sha256sum MB/s
CACHED_TARGET_MS = 100.0
FRAME_TARGET = 2.0  # dvc add time / Shipyard digest time, on the same Parquet file
FLOOR_TARGET = 1.3  # DataFrame digest + profile time / the floor's (IPC + SHA-256 in memory)
FLOOR_REPEATS = 5  # the floor pair takes about a second: more pairs than the other figures, for a steadier median
TIMES = "\N{MULTIPLICATION SIGN}"


class BenchError(RuntimeError):
    """The benchmark itself could not run (as opposed to a target not being met)."""


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    shipyard: float
    peer: float | None
    peer_name: str
    ratio: float | None  # Shipyard speed / peer speed
    target: str
    passed: bool | None  # None: a reference figure without a target
    note: str


# --- helpers -------------------------------------------------------------------------------------


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples, result


def run(cmd: Sequence[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs)
    if done.returncode:
        raise BenchError(f"`{' '.join(map(str, cmd))}` failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done


def dvc_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "SHIPYARD_"))}
    return {**env, "DVC_NO_ANALYTICS": "1", "DVC_IGNORE_ISATTY": "1"}


def ensure_dvc_venv(console: Console, refresh: bool) -> tuple[Path, str]:
    """The ``dvc`` executable of ``.bench/dvc-venv`` and its version, installing DVC when needed."""
    python, dvc = DVC_VENV / "bin" / "python", DVC_VENV / "bin" / "dvc"
    if refresh or not DVC_READY.exists():
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = LOG_DIR / "dvc-venv.log"
        with console.status(f"Installing DVC from PyPI into {DVC_VENV.relative_to(ROOT)} (first run only; "
                            f"a few minutes; log: {log.relative_to(ROOT)})"), log.open("a") as sink:
            steps: list[list[str | Path]] = []
            if not python.exists():
                steps.append([sys.executable, "-m", "venv", DVC_VENV])
            steps += [[python, "-m", "pip", "install", "--upgrade", "pip"],
                      [python, "-m", "pip", "install", *(["--upgrade"] if refresh else []), "dvc"]]
            for cmd in steps:
                rc = subprocess.run([str(c) for c in cmd], stdout=sink, stderr=subprocess.STDOUT,
                                    check=False).returncode
                if rc:
                    raise BenchError(f"`{' '.join(map(str, cmd))}` failed (exit {rc}); see {log}")
        DVC_READY.write_text(run([dvc, "--version"], env=dvc_env()).stdout.strip())
        console.print(f"[green]✓[/] DVC {DVC_READY.read_text()} installed in {DVC_VENV}")
    return dvc, DVC_READY.read_text().strip()


def warm(files: Sequence[Path]) -> None:
    """Read every file once so that every tool reads from the page cache."""
    buffer = bytearray(dw.MIB)
    for path in files:
        with open(path, "rb", buffering=0) as stream:
            while stream.readinto(buffer):
                pass


def step(console: Console, text: str) -> None:
    console.print(f"  [green]✓[/] {text}", highlight=False)


# --- 1 and 2: files ------------------------------------------------------------------------------


def sha256sum_digests(files: Sequence[Path]) -> dict[str, str]:
    out = run(["sha256sum", *files]).stdout
    return {line[66:]: f"sha256:{line[:64]}" for line in out.splitlines()}


def openssl_digests(files: Sequence[Path]) -> dict[str, str]:
    out = run(["openssl", "dgst", "-sha256", "-r", *files]).stdout
    return {line[66:]: f"sha256:{line[:64]}" for line in out.splitlines()}


def hashing_rows(console: Console, sizes: dw.Sizes, work: Path) -> tuple[list[Row], list[str]]:
    from shipyard.data import DigestCache, digest_folder

    problems: list[str] = []
    folder = DATA_DIR / "big"
    with console.status(f"Generating {sizes.big_files} x {sizes.big_size // dw.MIB} MiB into {folder} (once)"):
        files, fresh = dw.ensure_folder(folder, sizes.big_files, sizes.big_size)
    total_mb = sum(p.stat().st_size for p in files) / 1e6
    with console.status(f"Warming the page cache: reading {total_mb:,.0f} MB once"):
        warm(files)
    step(console, f"{len(files)} files, {total_mb:,.0f} MB ({'generated now' if fresh else 'reused'}), read once")

    with console.status("sha256sum on all files"):
        peer_s, peer_samples, peer_digests = median_time(lambda: sha256sum_digests(files), sizes.repeats)
    step(console, f"sha256sum: {total_mb / peer_s:,.0f} MB/s")
    with console.status("openssl dgst -sha256 on all files"):
        ossl_s, _, ossl_digests = median_time(lambda: openssl_digests(files), sizes.repeats)
    with console.status("Shipyard digest_folder, no cache"):
        ship_s, ship_samples, result = median_time(lambda: digest_folder(folder), sizes.repeats)
    step(console, f"Shipyard digest_folder: {total_mb / ship_s:,.0f} MB/s")
    with console.status("Shipyard digest_folder, one thread"):
        one_s, _, _ = median_time(lambda: digest_folder(folder, workers=1), sizes.repeats)
    ours = {str(folder.resolve() / f.path): f.digest for f in result.files}
    if ours != {str(Path(k).resolve()): v for k, v in peer_digests.items()}:
        problems.append("Shipyard's file digests differ from sha256sum's")
    if ossl_digests.keys() != peer_digests.keys() or set(ossl_digests.values()) != set(peer_digests.values()):
        problems.append("openssl's file digests differ from sha256sum's")

    cached_rows = []
    folders = [(f"{total_mb:,.0f} MB folder ({len(files)} files)", f"{len(files)} files", folder, True)]
    for count, targeted in ((sizes.small_files, True), (sizes.many_files, False)):
        small = DATA_DIR / f"small-{count}"
        with console.status(f"Generating {count:,} files of {sizes.small_size} bytes into {small} (once)"):
            dw.ensure_folder(small, count, sizes.small_size, per_subfolder=100)
        folders.append((f"{count:,} files of 1 KiB in {count // 100} folders", f"{count:,} files", small, targeted))
    for label, short, path, targeted in folders:
        cache = DigestCache(work / f"digests-{path.name}.db")
        with console.status(f"Filling a digest cache for the {label}"):
            cold_s, _, cold = median_time(lambda path=path, cache=cache: digest_folder(path, cache=cache), 1)
            settled, passes = digest_folder(path, cache=cache), 0
            while settled.hashed and passes < 3:  # files written within the cache's racy window: read again
                time.sleep(2.1)
                settled, passes = digest_folder(path, cache=cache), passes + 1
        cached_s, cached_samples, cached = median_time(lambda path=path, cache=cache: digest_folder(path, cache=cache),
                                                       sizes.cached_repeats)
        cache.close()
        if cached.hashed or cached.digest != cold.digest:
            problems.append(f"the cached re-hash of the {label} read {cached.hashed} files or changed the digest")
        step(console, f"re-hash with the cache, {label}: {cached_s * 1000:,.1f} ms (first pass {cold_s:,.2f} s)")
        cached_rows.append(Row(
            f"re-hash with cache, {short}" if targeted else f"  {short} (reference)", "ms", cached_s * 1000, None, "",
            None, f"< {CACHED_TARGET_MS:g} ms" if targeted else "",
            cached_s * 1000 < CACHED_TARGET_MS if targeted else None,
            f"the unchanged {label}, digest_folder(cache=DigestCache(...)) after a filled cache: median of "
            f"{sizes.cached_repeats} "
            f"(min {min(cached_samples) * 1000:,.1f}, max {max(cached_samples) * 1000:,.1f}); no file read; "
            f"the first, uncached pass took {cold_s * 1000:,.0f} ms"))

    ratio = peer_s / ship_s
    rows = [
        Row(f"hash a folder, {len(files)} files", "MB/s", total_mb / ship_s,
            total_mb / peer_s, "sha256sum", ratio, f"≥ {THROUGHPUT_TARGET:g}{TIMES}", ratio >= THROUGHPUT_TARGET,
            f"{total_mb:,.0f} MB in {len(files)} files of {sizes.big_size // dw.MIB} MiB: digest_folder (no cache, "
            f"{os.cpu_count()} threads) vs one `sha256sum FILE...` process, warm page "
            f"cache, median of {sizes.repeats} (Shipyard {min(ship_samples):,.2f}-{max(ship_samples):,.2f} s, "
            f"sha256sum {min(peer_samples):,.2f}-{max(peer_samples):,.2f} s)"),
        Row("  one thread (reference)", "MB/s", total_mb / one_s, total_mb / peer_s, "sha256sum",
            peer_s / one_s, "", None, "digest_folder(workers=1)"),
        Row("  vs openssl (reference)", "MB/s", total_mb / ship_s, total_mb / ossl_s, "openssl",
            ossl_s / ship_s, "", None, "one `openssl dgst -sha256 -r FILE...` process (OpenSSL's SHA-256, the "
            "code Python's hashlib runs)"),
        *cached_rows,
    ]
    return rows, problems


# --- 3: a DataFrame ------------------------------------------------------------------------------


class _Sha256Sink:
    """A file-like object that hashes what is written to it: the floor's IPC stream never becomes one big buffer."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def floor_digest(frame: Any) -> tuple[str, int]:
    """The least any tool must do to fingerprint a DataFrame's data: convert it to Arrow, serialise
    it (IPC stream) and SHA-256 the bytes, in memory, with no profile and no normalisation. Returns the
    digest and the stream's size."""
    import pyarrow as pa

    return floor_digest_of_table(pa.Table.from_pandas(frame, preserve_index=False))


def floor_digest_of_table(table: Any) -> tuple[str, int]:
    """The floor's second half: the Arrow table's IPC stream fed to one SHA-256."""
    import pyarrow as pa
    import pyarrow.ipc

    sink = _Sha256Sink()
    with pyarrow.ipc.new_stream(pa.PythonFile(sink, mode="w"), table.schema) as writer:
        writer.write_table(table)
    return sink.digest.hexdigest(), sink.size


def buffered_floor_digest(frame: Any) -> str:
    """The floor as one would first write it: the IPC stream into one in-memory buffer, then its SHA-256."""
    import pyarrow as pa
    import pyarrow.ipc

    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pyarrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def floor_rows(console: Console, sizes: dw.Sizes) -> tuple[list[Row], list[str], Any, float]:
    """DataFrame digest + profile against the floor: (rows, problems, the frame, Shipyard's median time)."""
    from shipyard.data import describe_table, digest_table, profile_table, recipe_of

    with console.status(f"Generating the {sizes.rows:,}-row DataFrame"):
        frame = dw.make_frame(sizes.rows)
        describe_table(frame.head(1000))  # warm-up: imports, first-use costs
        floor_digest(frame.head(1000))
    problems: list[str] = []
    ship_samples: list[float] = []
    floor_samples: list[float] = []
    buffered_samples: list[float] = []
    cpu: dict[str, list[float]] = {"shipyard": [], "floor": []}  # process CPU time: what a busy machine shares out
    repeats = max(sizes.repeats, FLOOR_REPEATS) if sizes.repeats > 1 else 1
    with console.status("Shipyard describe_table (digest + profile) and the floor, alternating"):
        for _ in range(repeats):  # alternating: this machine's speed drifts over minutes
            start, start_cpu = time.perf_counter(), time.process_time()
            digest, profile = describe_table(frame)  # what logging a DataFrame does
            ship_samples.append(time.perf_counter() - start)
            cpu["shipyard"].append(time.process_time() - start_cpu)
            start, start_cpu = time.perf_counter(), time.process_time()
            _, stream_size = floor_digest(frame)
            floor_samples.append(time.perf_counter() - start)
            cpu["floor"].append(time.process_time() - start_cpu)
            start = time.perf_counter()
            buffered_floor_digest(frame)
            buffered_samples.append(time.perf_counter() - start)
    ship_s, floor_s = statistics.median(ship_samples), statistics.median(floor_samples)
    buffered_s = statistics.median(buffered_samples)
    if (digest, profile) != (digest_table(frame), profile_table(frame)):
        problems.append("describe_table differs from digest_table + profile_table")
    step(console, f"Shipyard digest + profile of {sizes.rows:,} rows: {ship_s:,.2f} s; floor {floor_s:,.2f} s")
    ship_cpu, floor_cpu = statistics.median(cpu["shipyard"]), statistics.median(cpu["floor"])
    parts = cpu_parts(frame, repeats)
    ratios = sorted(floor / ship for ship, floor in zip(ship_samples, floor_samples, strict=True))
    rows = [
        Row("DataFrame digest + profile vs floor", "s", ship_s, floor_s, "IPC+SHA-256", floor_s / ship_s,
            f"≤ {FLOOR_TARGET:g}{TIMES} floor", ship_s <= FLOOR_TARGET * floor_s,
            f"{sizes.rows:,} rows x {len(profile['columns'])} columns: describe_table(frame) (to Arrow, then the "
            f"column digests and profiles as separate jobs on {os.cpu_count()} threads; digest recipe "
            f"{recipe_of(digest)}), median of {repeats} ({min(ship_samples):,.2f}-{max(ship_samples):,.2f} s), vs "
            f"the floor: pa.Table.from_pandas, the IPC stream of it ({stream_size / 1e6:,.0f} MB) fed to one "
            f"SHA-256, in memory ({min(floor_samples):,.2f}-{max(floor_samples):,.2f} s); alternating; ratio = "
            f"floor time / Shipyard time (per pair: {', '.join(f'{r:.2f}' for r in ratios)})"),
        Row("  process CPU time (reference)", "s", ship_cpu, floor_cpu, "IPC+SHA-256", floor_cpu / ship_cpu, "", None,
            "CPU seconds of the process, all threads, median: what the wall-time ratio tends to on a machine "
            "whose cores are all busy (the profile is work the floor does not do). Shipyard's parts, one at a "
            f"time on one thread, median: to_arrow {parts['to_arrow']:,.2f} s (describe_table's conversion, "
            f"float columns as they are: {parts['keeping_nan']:,.2f} s), digest_table "
            f"{parts['digest']:,.2f} s, profile_table {parts['profile']:,.2f} s; the floor's own parts: "
            f"pa.Table.from_pandas {parts['from_pandas']:,.2f} s, SHA-256 of its IPC stream "
            f"{parts['stream']:,.2f} s"),
        Row("  vs the floor through one buffer (reference)", "s", ship_s, buffered_s, "IPC+SHA-256",
            buffered_s / ship_s, "", None, "the floor with the IPC stream written into one pa.BufferOutputStream, "
            f"then hashed ({min(buffered_samples):,.2f}-{max(buffered_samples):,.2f} s)"),
    ]
    return rows, problems, frame, ship_s


def cpu_parts(frame: Any, repeats: int) -> dict[str, float]:
    """Process CPU seconds (median) of each part of describe_table and of the floor, one at a time."""
    import pyarrow as pa

    from shipyard.data import digest_table, profile_table, to_arrow
    from shipyard.data.tables import to_arrow_keeping_nan

    table, table_for_floor = to_arrow(frame), pa.Table.from_pandas(frame, preserve_index=False)
    jobs: dict[str, Callable[[], Any]] = {
        "to_arrow": lambda: to_arrow(frame),
        "keeping_nan": lambda: to_arrow_keeping_nan(frame),
        "digest": lambda: digest_table(table, workers=1),
        "profile": lambda: profile_table(table, workers=1),
        "from_pandas": lambda: pa.Table.from_pandas(frame, preserve_index=False),
        "stream": lambda: floor_digest_of_table(table_for_floor),
    }
    out = {}
    for name, job in jobs.items():
        samples = []
        for _ in range(repeats):
            start = time.process_time()
            job()
            samples.append(time.process_time() - start)
        out[name] = statistics.median(samples)
    return out


def frame_rows(console: Console, sizes: dw.Sizes, work: Path, dvc: Path) -> tuple[list[Row], list[str]]:
    rows, problems, frame, ship_s = floor_rows(console, sizes)

    parquet = work / "data.parquet"
    with console.status("Writing the frame to Parquet (untimed)"):
        start = time.perf_counter()
        frame.to_parquet(parquet)
        write_s = time.perf_counter() - start
    size_mb = parquet.stat().st_size / 1e6

    digest_code = "import sys; from shipyard.data import digest_file; digest_file(sys.argv[1])"
    describe_code = "import sys; from shipyard.data import describe_file; describe_file(sys.argv[1])"
    run([sys.executable, "-c", describe_code, parquet])  # warm-up (bytecode, page cache)
    dvc_samples: list[float] = []
    file_samples: list[float] = []
    both_samples: list[float] = []
    with console.status(f"dvc add data.parquet ({size_mb:,.0f} MB), each in a fresh repository, and Shipyard on "
                        "the same file in a fresh interpreter, alternating"):
        for i in range(sizes.repeats):
            repo = work / f"dvc-{i}"
            repo.mkdir()
            run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=dvc_env())
            run([dvc, "config", "core.analytics", "false"], cwd=repo, env=dvc_env())
            shutil.copyfile(parquet, repo / "data.parquet")
            start = time.perf_counter()
            run([dvc, "add", "-q", "data.parquet"], cwd=repo, env=dvc_env())
            dvc_samples.append(time.perf_counter() - start)
            if "md5:" not in (repo / "data.parquet.dvc").read_text():
                raise BenchError(f"dvc add wrote no digest in {repo / 'data.parquet.dvc'}")
            shutil.rmtree(repo)
            start = time.perf_counter()
            run([sys.executable, "-c", digest_code, parquet])
            file_samples.append(time.perf_counter() - start)
            start = time.perf_counter()
            run([sys.executable, "-c", describe_code, parquet])
            both_samples.append(time.perf_counter() - start)
    dvc_s, file_s, both_s = (statistics.median(s) for s in (dvc_samples, file_samples, both_samples))
    step(console, f"dvc add: {dvc_s:,.2f} s; Shipyard digest of the file {file_s:,.2f} s, digest + profile "
                  f"{both_s:,.2f} s (fresh interpreters)")
    start = time.perf_counter()
    run([DVC_VENV / "bin" / "dvc", "--version"], env=dvc_env())
    dvc_start_s = time.perf_counter() - start

    spread = f"median of {sizes.repeats}"
    dvc_note = (f"`dvc add data.parquet` ({size_mb:,.0f} MB, written in {write_s:,.1f} s, untimed) in a fresh "
                f"`dvc init --no-scm` folder, wall time ({min(dvc_samples):,.2f}-{max(dvc_samples):,.2f} s; "
                f"`dvc --version` alone: {dvc_start_s:,.2f} s)")
    return [
        Row("Parquet file digest vs dvc add", "s", file_s, dvc_s, "dvc add", dvc_s / file_s,
            f"≥ {FRAME_TARGET:g}{TIMES}", dvc_s / file_s >= FRAME_TARGET,
            f"`python -c` digest_file(data.parquet) in a fresh interpreter (imports included), {spread} "
            f"({min(file_samples):,.2f}-{max(file_samples):,.2f} s), vs {dvc_note}; alternating"),
        Row("  the same file, digest + profile (reference)", "s", both_s, dvc_s, "dvc add", dvc_s / both_s, "", None,
            f"`python -c` describe_file(data.parquet) in a fresh interpreter: what log_dataset does with the file "
            f"(DVC does not read the table), {spread} ({min(both_samples):,.2f}-{max(both_samples):,.2f} s)"),
        Row("  the DataFrame vs dvc add of its file (reference)", "s", ship_s, dvc_s, "dvc add", dvc_s / ship_s, "",
            None, "not like for like: in memory against a command reading a file"),
        *rows,
    ], problems


# --- 4: lineage -----------------------------------------------------------------------


def lineage_rows(console: Console, sizes: dw.Sizes, work: Path) -> list[Row]:
    """``explain`` of a registered model version in a store holding 100,000 lineage edges
    (``_lineage_explain.py``): median of 15 after a warm-up, in this interpreter."""
    import _lineage_explain as le

    with console.status(f"lineage: building {le.EDGES:,} edges and explaining a model version"):
        measured = le.measure()
    median = measured["median_ms"]
    return [Row(f"lineage explain, {le.EDGES:,} edges", "ms", median, None, "", None,
                f"< {le.TARGET_MS:.0f} ms", median < le.TARGET_MS,
                f"spread {measured['min_ms']:.1f}-{measured['max_ms']:.1f} ms; graph built in "
                f"{measured['build_s']:.1f} s")]


# --- output --------------------------------------------------------------------------------------


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if unit == "MB/s" else f"{value:,.1f}" if unit == "ms" else f"{value:,.2f}"


def render(console: Console, rows: Sequence[Row], dvc_version: str) -> None:
    import pyarrow

    from shipyard import __version__

    table = Table(title=f"Shipyard {__version__} data layer vs sha256sum / DVC {dvc_version}: "
                        f"{os.cpu_count()} cores, Python {platform.python_version()}, pyarrow {pyarrow.__version__}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("unit", "left"), ("Shipyard", "right"), ("peer", "right"), ("", "left"),
        ("ratio", "right"), ("target", "left"), ("result", "center"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for r in rows:
        result = "" if r.passed is None else "[bold green]PASS[/]" if r.passed else "[bold red]FAIL[/]"
        table.add_row(r.figure, r.unit, fmt(r.shipyard, r.unit), fmt(r.peer, r.unit), r.peer_name,
                      f"{r.ratio:,.2f}{TIMES}" if r.ratio is not None else "", r.target, result,
                      style="dim" if r.passed is None else None)
    console.print(table)
    console.print("[dim]ratio = Shipyard speed / peer speed (for times: peer time / Shipyard time)[/]")
    for r in rows:
        console.print(f"[dim]{r.figure.strip()}: {r.note}[/]", highlight=False)
    load = os.getloadavg()
    console.print(f"[dim]load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}[/]", highlight=False)


def write_json(path: Path, sizes: dw.Sizes, quick: bool, rows: Sequence[Row], dvc_version: str) -> None:
    t.write_figures(path, quick=quick, sizes=dw.to_json(sizes), meta={"dvc": dvc_version, "loadavg": os.getloadavg()},
                    rows=[asdict(r) for r in rows], passed=all(r.passed for r in rows if r.passed is not None))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer repeats, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-dvc", action="store_true",
                        help="upgrade DVC in .bench/dvc-venv to the current release first")
    parser.add_argument("--floor-only", action="store_true",
                        help="only the DataFrame digest + profile against the floor (no files, no DVC)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=120)
    sizes = dw.Sizes.quick() if args.quick else dw.Sizes()
    for tool in ("sha256sum", "openssl"):
        if shutil.which(tool) is None:
            console.print(f"[bold red]benchmark failed:[/] `{tool}` is not on PATH")
            return 2
    load = os.getloadavg()
    console.print(f"[dim]load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}[/]", highlight=False)
    try:
        if args.floor_only:
            dvc_version = "(not run)"
            rows, problems, _, _ = floor_rows(console, sizes)
        else:
            dvc, dvc_version = ensure_dvc_venv(console, args.refresh_dvc)
            with tempfile.TemporaryDirectory(prefix="shipyard-bench-data-") as tmp:
                work = Path(tmp)
                rows, problems = hashing_rows(console, sizes, work)
                more, more_problems = frame_rows(console, sizes, work, dvc)
                rows += more + lineage_rows(console, sizes, work)
                problems += more_problems
    except BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2
    render(console, rows, dvc_version)
    if args.json:
        write_json(args.json, sizes, args.quick, rows, dvc_version)
        console.print(f"figures written to {args.json}")
    for problem in problems:
        console.print(f"[bold red]{problem}[/]")
    if problems:
        return 2
    return 0 if all(r.passed for r in rows if r.passed is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
