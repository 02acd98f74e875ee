"""MLflow half of the server benchmark. Runs inside ``.bench/mlflow-venv`` (see server.py).

``prepare`` restores the tracking benchmark's cached search corpus (or populates it through
``_mlflow_side.prepare_search``, which caches it); ``drive`` uses ``MlflowClient`` against the
``mlflow server`` at ``--url``, with MLflow's default synchronous logging.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import _mlflow_side
import _server_common as c
import _workload as w
import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Run


def driver(url: str) -> c.Driver[Run]:
    client = MlflowClient(tracking_uri=url)

    def search_experiment_id() -> str:
        experiment = client.get_experiment_by_name(w.SEARCH_EXPERIMENT)
        assert experiment is not None, "the search experiment is missing"
        return str(experiment.experiment_id)

    @cache
    def batch_experiment_id() -> str:
        return str(client.create_experiment(c.BATCH_EXPERIMENT))

    def make_metrics(rows: Sequence[tuple[str, float, int, int]]) -> list[Metric]:
        return [Metric(key=k, value=v, timestamp=ts, step=s) for k, v, s, ts in rows]

    return c.Driver(
        tool="MLflow",
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
        populated = _mlflow_side.prepare_search(args.workdir, args.cache_dir, args.sizes.workload())
        w.emit(tool="mlflow", version=mlflow.__version__, populated=populated)
    else:
        assert args.url is not None
        w.emit(drive=c.drive(driver(args.url), args.sizes))


if __name__ == "__main__":
    main()
