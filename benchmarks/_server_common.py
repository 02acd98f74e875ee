"""The server benchmark's workload and measurements, shared by both client halves.

Standard library only (plus ``_workload``): imported by ``_server_shipyard.py`` (project venv)
and ``_server_mlflow.py`` (``.bench/mlflow-venv``). Each half supplies a :class:`Driver`, four
thin calls into its own client, and :func:`drive` times them the same way for both tools, so
the two halves differ only in which client library sends the requests.

Protocol: as ``_workload.py`` (``@@bench`` events on stderr, one JSON object as the last line
of stdout), with ``--phase prepare|drive --sizes JSON --workdir DIR [--cache-dir DIR] [--url URL]``.
``prepare`` writes the search corpus into ``WORKDIR/search.db`` before any server runs;
``drive`` talks to the server at ``--url``, which serves that database.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import _workload as w

R = TypeVar("R")  # a run as the tool's client returns it

PHASES = ("prepare", "drive")
BATCH_EXPERIMENT = "batch"
BATCH_KEY = "b0"  # checked after each batch: every key holds batch_metrics / BATCH_KEYS values


@dataclass(frozen=True)
class ServerSizes:
    batch_metrics: int = 100_000
    batch_chunk: int = 1_000  # metrics per HTTP request: MLflow's maximum per log_batch
    batch_repeats: int = 3  # fresh runs; the figure is the median
    search_runs: int = 10_000
    search_repeats: int = 5
    get_calls: int = 500
    get_warmup: int = 50  # at least 1

    @classmethod
    def quick(cls) -> ServerSizes:
        return cls(batch_metrics=10_000, search_runs=1_000, get_calls=100, get_warmup=20)

    def workload(self) -> w.Sizes:
        """The tracking benchmark's sizes with the same corpus and batch, so its data generation
        (and MLflow's cached corpus, keyed by ``search_runs``) are reused as they are."""
        return w.Sizes(batch_metrics=self.batch_metrics, search_runs=self.search_runs,
                       search_repeats=self.search_repeats)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServerSizes:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class Latency:
    calls: int
    warmup: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    run_name: str  # the run fetched, the same on both sides
    run_id: str

    @classmethod
    def of(cls, samples_s: Sequence[float], warmup: int, run_name: str, run_id: str) -> Latency:
        ms = [s * 1000 for s in samples_s]
        return cls(calls=len(ms), warmup=warmup, p50_ms=statistics.median(ms),
                   p95_ms=statistics.quantiles(ms, n=100, method="inclusive")[94],
                   mean_ms=statistics.fmean(ms), min_ms=min(ms), max_ms=max(ms), run_name=run_name,
                   run_id=run_id)


@dataclass(frozen=True)
class Requests:
    """How many HTTP requests of each kind the half sent, for the orchestrator to check against
    the server's access log (so hidden extra requests or a different chunking would show)."""

    search: int
    get_run: int  # of the run timed (MLflow's set_terminated gets the run it ends, too)
    log_batch: int


@dataclass(frozen=True)
class DriveResult:
    search: w.SearchResult
    get_run: Latency
    batch: w.Throughput
    requests: Requests

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriveResult:
        return cls(search=w.SearchResult(**raw["search"]), get_run=Latency(**raw["get_run"]),
                   batch=w.Throughput(**raw["batch"]), requests=Requests(**raw["requests"]))


@dataclass
class Driver(Generic[R]):
    """One tool's client, reduced to what the benchmark calls. Everything here goes over HTTP."""

    tool: str
    search_experiment_id: Callable[[], str]
    search: Callable[[str], Sequence[R]]  # experiment id -> runs matching SEARCH_FILTER
    run_name: Callable[[R], str]
    run_id: Callable[[R], str]
    get_run: Callable[[str], R]
    run_shape: Callable[[R], tuple[int, int]]  # (params, metrics) of a fetched run
    new_batch_run: Callable[[str], str]  # run name -> run id, in BATCH_EXPERIMENT
    make_metrics: Callable[[Sequence[tuple[str, float, int, int]]], list[Any]]
    log_batch: Callable[[str, Sequence[Any]], object]  # one call = one HTTP request
    end_run: Callable[[str], object]
    history_len: Callable[[str, str], int]  # run id, key -> values stored


def measure_search(d: Driver[R], sizes: ServerSizes) -> tuple[w.SearchResult, list[R]]:
    experiment_id = d.search_experiment_id()
    w.start(f"{d.tool}: runs/search over {sizes.search_runs:,} runs via HTTP, "
            f"median of {sizes.search_repeats}")
    median, samples, runs = w.timed_median(lambda: d.search(experiment_id), repeats=sizes.search_repeats)
    result = w.SearchResult(runs=sizes.search_runs, matched=len(runs),
                            matched_digest=w.names_digest([d.run_name(r) for r in runs]),
                            seconds=median, samples=samples)
    w.done(f"{median * 1000:,.1f} ms, {result.matched} runs matched")
    return result, list(runs)


def measure_get_run(d: Driver[R], sizes: ServerSizes, matched: Sequence[R]) -> Latency:
    """``get_run`` of one run of the corpus (the first matched, by name: the same run on both
    sides, with 5 params and 5 metrics): ``get_warmup`` untimed calls, then ``get_calls`` timed
    one by one."""
    if not matched:
        raise RuntimeError("the search matched no run, so there is no run to get")
    target = min(matched, key=d.run_name)
    run_id, name = d.run_id(target), d.run_name(target)
    w.start(f"{d.tool}: runs/get x {sizes.get_calls} sequential calls (after {sizes.get_warmup} untimed)")
    run = d.get_run(run_id)
    for _ in range(sizes.get_warmup - 1):
        d.get_run(run_id)
    assert d.run_shape(run) == (5, 5), f"{d.tool}: run {name} has {d.run_shape(run)} (params, metrics)"
    samples: list[float] = []
    for _ in range(sizes.get_calls):
        start = time.perf_counter()
        d.get_run(run_id)
        samples.append(time.perf_counter() - start)
    result = Latency.of(samples, sizes.get_warmup, name, run_id)
    w.done(f"p50 {result.p50_ms:.2f} ms, p95 {result.p95_ms:.2f} ms")
    return result


def measure_batch(d: Driver[R], sizes: ServerSizes) -> w.Throughput:
    """``batch_repeats`` fresh runs, each getting ``batch_metrics`` values in requests of
    ``batch_chunk``; timed from the first request to the last response."""
    metrics = d.make_metrics(w.batch_metrics(sizes.workload()))
    chunks = [metrics[i : i + sizes.batch_chunk] for i in range(0, len(metrics), sizes.batch_chunk)]
    expected = len(metrics) // w.BATCH_KEYS
    w.start(f"{d.tool}: log_batch of {len(metrics):,} metrics in {len(chunks)} requests, "
            f"{sizes.batch_repeats} runs", total=sizes.batch_repeats)
    samples: list[float] = []
    for repeat in range(sizes.batch_repeats):
        run_id = d.new_batch_run(f"batch-{repeat}")
        start = time.perf_counter()
        for chunk in chunks:
            d.log_batch(run_id, chunk)
        samples.append(time.perf_counter() - start)
        d.end_run(run_id)
        stored = d.history_len(run_id, BATCH_KEY)
        assert stored == expected, f"{d.tool} stored {stored} values of {BATCH_KEY}, expected {expected}"
        w.advance(repeat + 1, sizes.batch_repeats)
    result = w.Throughput.of(len(metrics), samples, calls=len(chunks),
                             note=f"{len(chunks)} requests of {sizes.batch_chunk:,}")
    w.done(f"{result.per_second:,.0f} metrics/s (median)")
    return result


def drive(d: Driver[R], sizes: ServerSizes) -> DriveResult:
    """Search first, in a fresh client process against a fresh server (as the tracking benchmark
    does, so neither heap has grown yet), then get_run, then the batch writes."""
    search, matched = measure_search(d, sizes)
    get_run = measure_get_run(d, sizes, matched)
    batch = measure_batch(d, sizes)
    requests = Requests(search=1 + sizes.search_repeats, get_run=sizes.get_warmup + sizes.get_calls,
                        log_batch=sizes.batch_repeats * batch.calls)
    return DriveResult(search=search, get_run=get_run, batch=batch, requests=requests)


@dataclass(frozen=True)
class SideArgs:
    phase: str
    sizes: ServerSizes
    workdir: Path
    cache_dir: Path | None
    url: str | None


def parse_args(argv: Sequence[str] | None = None) -> SideArgs:
    parser = argparse.ArgumentParser(description="One half of benchmarks/server.py.")
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("--sizes", type=ServerSizes.from_json, default=ServerSizes())
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--url", default=None, help="the server, for --phase drive")
    ns = parser.parse_args(argv)
    if ns.phase == "drive" and not ns.url:
        parser.error("--phase drive needs --url")
    ns.workdir.mkdir(parents=True, exist_ok=True)
    return SideArgs(phase=ns.phase, sizes=ns.sizes, workdir=ns.workdir, cache_dir=ns.cache_dir, url=ns.url)
