"""Shipyard half of the server benchmark. Runs in the project's venv, in a subprocess of
server.py like the MLflow half.

``prepare`` populates the search corpus with ``_shipyard_side.populate`` (the tracking
benchmark's code path, straight into SQLite); ``drive`` uses ``shipyard.Client`` against the
``shipyard server`` at ``--url``: an ``http://`` tracking URI, so every call goes through
``RestStore``, which sends a ``log_batch`` of 1,000 metrics as one request.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from importlib.metadata import version

import _server_common as c
import _shipyard_side
import _workload as w

import shipyard
from shipyard.entities import Metric, Run


def driver(url: str) -> c.Driver[Run]:
    client = shipyard.Client(tracking_uri=url)

    def search_experiment_id() -> str:
        experiment = client.get_experiment_by_name(w.SEARCH_EXPERIMENT)
        assert experiment is not None, "the search experiment is missing"
        return str(experiment.experiment_id)

    @cache
    def batch_experiment_id() -> str:
        return client.create_experiment(c.BATCH_EXPERIMENT)

    def make_metrics(rows: Sequence[tuple[str, float, int, int]]) -> list[Metric]:
        return [Metric(key=k, value=v, step=s, timestamp=ts) for k, v, s, ts in rows]

    return c.Driver(
        tool="Shipyard",
        search_experiment_id=search_experiment_id,
        search=lambda experiment_id: client.search_runs(
            [experiment_id], filter_string=w.SEARCH_FILTER, max_results=w.SEARCH_MAX_RESULTS),
        run_name=lambda run: run.info.run_name,
        run_id=lambda run: run.info.run_id,
        get_run=client.get_run,
        run_shape=lambda run: (len(run.data.params), len(run.data.metrics)),
        new_batch_run=lambda name: client.create_run(batch_experiment_id(), run_name=name).info.run_id,
        make_metrics=make_metrics,
        log_batch=lambda run_id, chunk: client.log_batch(run_id, metrics=chunk),
        end_run=client.set_terminated,
        history_len=lambda run_id, key: len(client.get_metric_history(run_id, key)),
    )


def main() -> None:
    args = c.parse_args()
    if args.phase == "prepare":
        populated = _shipyard_side.populate(args.workdir, str(args.workdir / "artifacts"), args.sizes.workload())
        w.emit(tool="shipyard", version=version("shipyard-mlops"), populated=populated)
    else:
        assert args.url is not None
        w.emit(drive=c.drive(driver(args.url), args.sizes))


if __name__ == "__main__":
    main()
