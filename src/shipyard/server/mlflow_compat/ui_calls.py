"""The calls MLflow's own web UI makes beside the REST API, which scripts, dashboards and
MLflow's server tests make too: metric histories of many runs at once, a history sampled for
a chart, the datasets of experiments, and one artifact file uploaded or downloaded by a plain
query-string request (``/ajax-api/2.0/mlflow/upload-artifact``, ``/get-artifact``,
``/model-versions/get-artifact``). Each is a thin reading of the same domain calls as the rest
of the adapter, with MLflow's limits and messages.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shipyard.artifacts.paths import new_artifact_path, normalize_artifact_path
from shipyard.entities import Metric, RunQuery
from shipyard.entities.search import MAX_RUN_RESULTS
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import max_results, ok
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.mlflow_compat.runs import runs_json
from shipyard.server.responses import client, tracking
from shipyard.server.routers.artifacts import Upload, file_response
from shipyard.tracking.service import TrackingService

# MLflow's limits for these calls.
MAX_BULK_RUNS = 100
MAX_BULK_METRICS = 25_000
MAX_SAMPLED_POINTS = 2_500
DEFAULT_SAMPLED_POINTS = 320
MAX_DATASET_EXPERIMENTS = 20
MAX_DATASET_SUMMARIES = 1_000


def _history(c: TrackingService, run_id: str, key: str) -> list[Metric]:
    """A run's history of ``key``; a run this principal cannot see, or that is not there, has
    none (MLflow's bulk calls skip unknown runs rather than fail the whole request)."""
    try:
        return c.get_metric_history(run_id, key)
    except NotFound:
        return []


def _ids(p: Params, field: str, call: str, what: str, limit: int) -> list[str]:
    """The ids of a bulk call, at least one and at most ``limit``, refused in MLflow's words."""
    ids = p.strings(field)
    if not ids:
        raise InvalidInput(f"{call} request must specify at least one {what}.")
    if len(ids) > limit:
        raise InvalidInput(f"{call} request cannot specify more than {limit} {what}s. Received {len(ids)} {what}s.")
    return ids


def _row(m: Metric, run_id: str) -> dict[str, Any]:
    return {**wire.metric(m), "run_id": run_id}


def get_metric_history_bulk(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """Every value of one metric for up to 100 runs, by run id, then time, step and value."""
    run_ids = _ids(p, "run_id", "GetMetricHistoryBulk", "run_id", MAX_BULK_RUNS)
    key = p.str("metric_key")
    if not key:
        raise InvalidInput("GetMetricHistoryBulk request must specify a metric_key.")
    limit = max_results(p, MAX_BULK_METRICS, MAX_BULK_METRICS)
    c = tracking(request)
    rows = [_row(m, run_id) for run_id in sorted(set(run_ids))
            for m in sorted(_history(c, run_id, key), key=lambda m: (m.timestamp, m.step, m.value))]
    return ok({"metrics": rows[:limit]})


def _sampled_steps(histories: dict[str, list[Metric]], points: int) -> set[int]:
    """Evenly spaced steps over every run's steps, at most ``points`` of them, plus each run's
    last step, so every line of a chart reaches its end."""
    steps = sorted({m.step for history in histories.values() for m in history})
    stride = max(1, math.ceil(len(steps) / points))
    last = {max(m.step for m in history) for history in histories.values() if history}
    return set(steps[::stride]) | last


def get_metric_history_bulk_interval(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """One metric of up to 100 runs sampled for a chart (``max_results`` steps, within
    ``start_step``..``end_step`` when given): every value at a sampled step, run by run."""
    run_ids = list(dict.fromkeys(p.strings("run_ids", required=True)))
    if len(run_ids) > MAX_BULK_RUNS:
        raise InvalidInput(f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
                           f"Received {len(run_ids)} run_ids.")
    key = p.required("metric_key")
    points = p.int("max_results", default=DEFAULT_SAMPLED_POINTS)
    assert points is not None
    if not 1 <= points <= MAX_SAMPLED_POINTS:
        raise InvalidInput(f"max_results must be between 1 and {MAX_SAMPLED_POINTS}.")
    start, end = p.int("start_step"), p.int("end_step")
    if (start is None) != (end is None):
        raise InvalidInput("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"end_step must be greater than start_step. Found start_step={start} and "
                           f"end_step={end}.")
    c = tracking(request)
    histories = {run_id: [m for m in _history(c, run_id, key)
                          if start is None or end is None or start <= m.step <= end] for run_id in run_ids}
    chosen = _sampled_steps(histories, points)
    rows = [_row(m, run_id) for run_id, history in histories.items()
            for m in sorted(history, key=lambda m: (m.step, m.timestamp)) if m.step in chosen]
    return ok({"metrics": rows})


def search_datasets(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """The distinct datasets the runs of up to 20 experiments logged as inputs, with the
    context they were logged in."""
    experiment_ids = _ids(p, "experiment_ids", "SearchDatasets", "experiment_id", MAX_DATASET_EXPERIMENTS)
    c = tracking(request)
    summaries: dict[tuple[str, ...], dict[str, Any]] = {}
    for run in runs_json(c, c.search(RunQuery(tuple(experiment_ids), max_results=MAX_RUN_RESULTS))):
        for given in run["inputs"].get("dataset_inputs", []):
            context = next((t["value"] for t in given.get("tags", []) if t["key"] == wire.DATASET_CONTEXT_TAG), "")
            found = (run["info"]["experiment_id"], given["dataset"]["name"], given["dataset"].get("digest", ""),
                     context)
            summaries.setdefault(found, wire.compact(dict(zip(("experiment_id", "name", "digest", "context"),
                                                              found, strict=True))))
    return ok({"dataset_summaries": list(summaries.values())[:MAX_DATASET_SUMMARIES]})


async def upload_run_artifact(request: Request) -> Response:
    """One file of a run from a query-string request: ``?run_uuid=…&path=…`` and the bytes as
    the body. The same rules as every upload: a clean path, a run that is not deleted, no
    replacing a finished run's file."""
    query = request.query_params
    run_id = query.get("run_uuid") or query.get("run_id")
    if not run_id:
        raise InvalidInput("Request must specify run_uuid.")
    if not query.get("path"):
        raise InvalidInput("Request must specify path.")
    path = new_artifact_path(query["path"])
    shipyard = tracking(request)
    await run_in_threadpool(shipyard.check_artifact, run_id, path)
    upload = Upload()
    try:
        await upload.receive(request, path)
        if not upload.size:
            raise InvalidInput("Request must specify data.")
        await run_in_threadpool(upload.store, shipyard.artifacts, run_id, path)
    finally:
        upload.discard()
    return ok()


def get_run_artifact(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """One file of a run: ``/get-artifact?run_uuid=…&path=…``."""
    path = normalize_artifact_path(p.required("path"))
    c = tracking(request)
    run_id = p.required("run_id", aliases=("run_uuid",))
    c.get_run(run_id)
    return file_response(c.artifacts, run_id, path)


def get_model_version_artifact(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """One file of a registered version's package: ``/model-versions/get-artifact?name=…&version=…&path=…``
    (a version whose package lives elsewhere has no files here)."""
    path = normalize_artifact_path(p.required("path"))
    c = client(request)
    run_id, folder = c.model_source(f"models:/{p.required('name')}/{p.required('version')}")
    return file_response(c.artifacts, run_id, f"{folder}/{path}")
