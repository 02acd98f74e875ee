"""Shipyard half of the tracking benchmark. Runs in the project's venv, in a subprocess of
tracking.py like the MLflow half, so both pay the same process costs and neither shares the
orchestrator's interpreter.
"""

from __future__ import annotations

import time
from importlib.metadata import version
from pathlib import Path

import _workload as w

import shipyard
from shipyard.entities import Metric, Param
from shipyard.errors import InvalidInput
from shipyard.tracking.fluent import default_client  # the client the timed log_metric calls went through

FALLBACK_CHUNK = 10_000  # used only if Shipyard refuses the batch as one call


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


def bench_single(uri: str, artifact_uri: str, sizes: w.Sizes) -> w.Throughput:
    calls = w.single_calls(sizes)
    keys = sorted({key for key, _, _ in calls})
    w.start(f"Shipyard: {len(calls):,} log_metric calls, {sizes.single_repeats} runs")
    shipyard.set_tracking_uri(uri)
    shipyard.set_experiment("single")
    client = shipyard.Client(tracking_uri=uri, artifact_uri=artifact_uri)

    def one_run() -> float:
        with shipyard.start_run(capture=False) as run:
            start = time.perf_counter()
            for key, value, step in calls:
                shipyard.log_metric(key, value, step=step)
            shipyard.flush()
            seconds = time.perf_counter() - start
        stored = sum(len(client.get_metric_history(run.info.run_id, key)) for key in keys)
        assert stored == len(calls), f"Shipyard stored {stored} of {len(calls)} metric values"
        return seconds

    result = w.Throughput.of(len(calls), [one_run() for _ in range(sizes.single_repeats)], calls=len(calls))
    w.done(f"{result.per_second:,.0f} calls/s (median)")
    return result


def bench_batch(uri: str, artifact_uri: str, sizes: w.Sizes) -> w.Throughput:
    metrics = [Metric(key=k, value=v, step=s, timestamp=ts) for k, v, s, ts in w.batch_metrics(sizes)]
    client = shipyard.Client(tracking_uri=uri, artifact_uri=artifact_uri)
    experiment_id = client.create_experiment("batch")

    def attempt(chunk: int) -> tuple[str, float, int]:
        chunks = [metrics[i : i + chunk] for i in range(0, len(metrics), chunk)]
        run_id = client.create_run(experiment_id, run_name=f"batch-{chunk}").info.run_id
        start = time.perf_counter()
        for part in chunks:
            client.log_batch(run_id, metrics=part)
        seconds = time.perf_counter() - start
        client.set_terminated(run_id)
        return run_id, seconds, len(chunks)

    w.start(f"Shipyard: log_batch of {len(metrics):,} metrics in one call")
    note = "one call"
    try:
        run_id, seconds, calls = attempt(len(metrics))
    except InvalidInput as exc:  # a batch limit: fall back to chunks, on a fresh run
        note = f"chunks of {FALLBACK_CHUNK:,} (one call refused: {exc})"
        run_id, seconds, calls = attempt(FALLBACK_CHUNK)
    stored = len(client.get_metric_history(run_id, "b0"))
    expected = len(metrics) // w.BATCH_KEYS
    assert stored == expected, f"Shipyard stored {stored} values of b0, expected {expected}"
    result = w.Throughput.of(len(metrics), [seconds], calls=calls, note=note)
    w.done(f"{result.per_second:,.0f} metrics/s ({note})")
    return result


def populate(workdir: Path, artifact_uri: str, sizes: w.Sizes) -> w.Populated:
    """``search.db`` in the workdir, created the same way as MLflow's: one log_batch per run."""
    corpus = w.search_corpus(sizes)
    client = shipyard.Client(tracking_uri=sqlite_uri(workdir / w.SEARCH_DB), artifact_uri=artifact_uri)
    experiment_id = client.create_experiment(w.SEARCH_EXPERIMENT)
    w.start(f"Shipyard: populating {len(corpus):,} runs", total=len(corpus))
    start = time.perf_counter()
    for i, spec in enumerate(corpus):
        run_id = client.create_run(experiment_id, run_name=spec.name).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(key=k, value=v, step=0, timestamp=w.BASE_TIMESTAMP_MS + i)
                     for k, v in spec.metrics.items()],
            params=[Param(k, v) for k, v in spec.params.items()],
        )
        client.set_terminated(run_id)
        if (i + 1) % 100 == 0:
            w.advance(i + 1, len(corpus))
    seconds = time.perf_counter() - start
    client.close()
    w.done(f"{len(corpus):,} runs in {seconds:,.0f} s")
    return w.Populated(len(corpus), seconds=seconds)


def bench_search(workdir: Path, artifact_uri: str, sizes: w.Sizes) -> w.SearchResult:
    client = shipyard.Client(tracking_uri=sqlite_uri(workdir / w.SEARCH_DB), artifact_uri=artifact_uri)
    experiment = client.get_experiment_by_name(w.SEARCH_EXPERIMENT)
    assert experiment is not None, "the search experiment is missing"
    return w.measure_search(
        "Shipyard",
        lambda: client.search_runs(
            [experiment.experiment_id], filter_string=w.SEARCH_FILTER, max_results=w.SEARCH_MAX_RESULTS
        ),
        lambda run: run.info.run_name,
        sizes,
    )


def main() -> None:
    args = w.parse_args()
    artifact_uri = str(args.workdir / "artifacts")
    if args.phase == "write":
        uri = sqlite_uri(args.workdir / "shipyard.db")
        w.emit(tool="shipyard", version=version("shipyard-mlops"),
               single=bench_single(uri, artifact_uri, args.sizes),
               batch=bench_batch(uri, artifact_uri, args.sizes),
               populated=populate(args.workdir, artifact_uri, args.sizes),
               durability=w.sqlite_durability(default_client().store.db.engine))
    else:
        w.emit(search=bench_search(args.workdir, artifact_uri, args.sizes))


if __name__ == "__main__":
    main()
