"""The workload both halves of the tracking benchmark run, and the wire protocol between them.

Standard library only: it is imported by ``_shipyard_side.py`` (project venv) and by
``_mlflow_side.py`` (MLflow's own venv under ``.bench/``). Keeping the data generation here
guarantees both tools log and search exactly the same values.

Protocol: a side script takes ``--phase write|search --sizes JSON --workdir DIR [--cache-dir DIR]``,
reports what it is doing as ``@@bench {json}`` lines on stderr (never inside a timed section),
and prints one JSON object of its figures as the last line of stdout. ``write`` times single and
batch logging, then populates the search corpus (``search.db`` in the workdir); ``search`` times
the search in a fresh interpreter, so the figure does not depend on what the process did before
(MLflow's search time is dominated by garbage collection over its heap, which populating in the
same process grows; a corpus restored from the cache would not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

EVENT_PREFIX = "@@bench "
# Bump when the generated data changes: it keys the cached, populated MLflow database.
WORKLOAD_VERSION = 1
SEED = 20_240_601
BASE_TIMESTAMP_MS = 1_700_000_000_000
SEARCH_EXPERIMENT = "search"
SEARCH_FILTER = "metrics.m0 < 0.5 and params.p1 = '3'"
SEARCH_MAX_RESULTS = 1_000
PARAM_CHOICES = 7  # P(p1 = '3') = 1/7 and P(m0 < 0.5) = 1/2: the filter matches about 7 %.
BATCH_KEYS = 100
PHASES = ("write", "search")
SEARCH_DB = "search.db"


@dataclass(frozen=True)
class Sizes:
    single_calls: int = 2_000
    single_keys: int = 10
    single_repeats: int = 3  # fresh runs; the figure is the median
    batch_metrics: int = 100_000
    search_runs: int = 10_000
    search_repeats: int = 5
    import_repeats: int = 15

    @classmethod
    def quick(cls) -> Sizes:
        return cls(single_calls=500, batch_metrics=10_000, search_runs=1_000,
                   search_repeats=3, import_repeats=5)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Sizes:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class RunSpec:
    """One run of the search corpus: its name, five params and five metrics."""

    name: str
    params: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class Throughput:
    count: int  # items per measurement
    seconds: float  # median of ``samples``
    per_second: float
    samples: list[float]
    calls: int = 1  # API calls per measurement
    note: str = ""

    @classmethod
    def of(cls, count: int, samples: Sequence[float], calls: int = 1, note: str = "") -> Throughput:
        seconds = statistics.median(samples)
        return cls(count=count, seconds=seconds, per_second=count / seconds, samples=list(samples),
                   calls=calls, note=note)


@dataclass(frozen=True)
class Populated:
    runs: int
    seconds: float | None  # None when restored from the cache
    cached: bool = False


@dataclass(frozen=True)
class SearchResult:
    runs: int
    matched: int
    matched_digest: str
    seconds: float
    samples: list[float]


@dataclass(frozen=True)
class SideResult:
    tool: str
    version: str
    single: Throughput
    batch: Throughput
    populated: Populated
    search: SearchResult
    durability: dict[str, str]  # the SQLite settings a commit ran under (see sqlite_durability)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SideResult:
        return cls(
            tool=raw["tool"],
            version=raw["version"],
            single=Throughput(**raw["single"]),
            batch=Throughput(**raw["batch"]),
            populated=Populated(**raw["populated"]),
            search=SearchResult(**raw["search"]),
            durability=dict(raw["durability"]),
        )


_SYNCHRONOUS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def sqlite_durability(engine: Any) -> dict[str, str]:
    """What a commit of this SQLAlchemy engine survives: its journal mode and ``synchronous``
    level, asked of a connection the engine configures as it configured the timed ones (both
    are per connection; WAL is also kept in the file). Under WAL, NORMAL survives a process
    crash but may lose the last commits to a power cut; FULL survives both."""
    with engine.connect() as conn:
        journal = str(conn.exec_driver_sql("PRAGMA journal_mode").scalar())
        level = int(conn.exec_driver_sql("PRAGMA synchronous").scalar())
    return {"journal_mode": journal.upper(), "synchronous": _SYNCHRONOUS.get(level, str(level))}


# --- the data --------------------------------------------------------------------------------


def single_calls(sizes: Sizes) -> list[tuple[str, float, int]]:
    """(key, value, step) of each single ``log_metric`` call."""
    return [(f"m{i % sizes.single_keys}", i / sizes.single_calls, i) for i in range(sizes.single_calls)]


def batch_metrics(sizes: Sizes) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp_ms) of the batch: ``BATCH_KEYS`` keys, every (key, step) unique."""
    return [
        (f"b{i % BATCH_KEYS}", (i % 997) / 997, i // BATCH_KEYS, BASE_TIMESTAMP_MS + i)
        for i in range(sizes.batch_metrics)
    ]


def search_corpus(sizes: Sizes) -> list[RunSpec]:
    """The runs to search, drawn from a fixed seed so both tools hold identical data."""
    rng = random.Random(SEED)
    return [
        RunSpec(
            name=f"run-{i:05d}",
            params={f"p{j}": str(rng.randrange(PARAM_CHOICES)) for j in range(5)},
            metrics={f"m{j}": rng.random() for j in range(5)},
        )
        for i in range(sizes.search_runs)
    ]


def names_digest(names: Sequence[str]) -> str:
    """Order-independent digest of the matched run names, to check both tools agree."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def cache_key(tool_version: str, sizes: Sizes) -> str:
    return f"mlflow-{tool_version}-runs{sizes.search_runs}-seed{SEED}-w{WORKLOAD_VERSION}"


# --- timing and reporting --------------------------------------------------------------------


def timed_median(fn: Callable[[], T], repeats: int, warmup: int = 1) -> tuple[float, list[float], T]:
    """Median wall time of ``repeats`` calls after ``warmup`` untimed ones; the last result."""
    result = fn()
    for _ in range(warmup - 1):
        result = fn()
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples, result


def event(kind: str, **payload: Any) -> None:
    """Tell the orchestrator what is happening (stderr; never call it inside a timed section)."""
    sys.stderr.write(EVENT_PREFIX + json.dumps({"event": kind, **payload}) + "\n")
    sys.stderr.flush()


def start(label: str, total: int | None = None) -> None:
    event("start", label=label, total=total)


def advance(done: int, total: int) -> None:
    event("advance", done=done, total=total)


def done(summary: str) -> None:
    event("done", summary=summary)


@dataclass(frozen=True)
class SideArgs:
    phase: str
    sizes: Sizes
    workdir: Path
    cache_dir: Path | None


def parse_args(argv: Sequence[str] | None = None) -> SideArgs:
    parser = argparse.ArgumentParser(description="One half of benchmarks/tracking.py.")
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("--sizes", type=Sizes.from_json, default=Sizes())
    parser.add_argument("--workdir", type=Path, required=True, help="fresh; the same for both phases")
    parser.add_argument("--cache-dir", type=Path, default=None)
    ns = parser.parse_args(argv)
    ns.workdir.mkdir(parents=True, exist_ok=True)
    return SideArgs(phase=ns.phase, sizes=ns.sizes, workdir=ns.workdir, cache_dir=ns.cache_dir)


def emit(**parts: Any) -> None:
    """Print one phase's figures (dataclasses or plain values) as the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(parts, default=asdict), flush=True)


def measure_search(tool: str, search: Callable[[], Sequence[Any]], run_name: Callable[[Any], str],
                   sizes: Sizes) -> SearchResult:
    """Time ``search`` (median after a warm-up) and describe what it matched, the same way for
    both tools so their results can be compared run for run."""
    start(f"{tool}: search_runs over {sizes.search_runs:,} runs (fresh process)")
    median, samples, runs = timed_median(search, repeats=sizes.search_repeats)
    result = SearchResult(
        runs=sizes.search_runs,
        matched=len(runs),
        matched_digest=names_digest([run_name(r) for r in runs]),
        seconds=median,
        samples=samples,
    )
    done(f"{median * 1000:,.1f} ms, {result.matched} runs matched")
    return result
