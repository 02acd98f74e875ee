from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from starlette.responses import Response

from shipyard.entities import Metric, OrderBy, Param, RunFilter, RunInfo, RunQuery, RunStatus, RunTag
from shipyard.errors import InvalidInput
from shipyard.filters import check_comparison, parse_filter, parse_order_by
from shipyard.server import schemas
from shipyard.server.responses import json_response, tracking
from shipyard.server.routing import PrefixRouter
from shipyard.wire import history_to_wire, metric_to_wire, run_info_to_wire, run_to_wire

router = PrefixRouter(prefix="/api/v1/runs", tags=["runs"])
RunId = Annotated[str, Path(max_length=64)]


@router.post("", name="create_run", status_code=201, summary="Create a RUNNING run")
def create_run(body: schemas.CreateRun, request: Request) -> Response:
    run = tracking(request).create_run(body.experiment_id, body.run_name, start_time=body.start_time,
                                     tags=body.tags, parent_run_id=body.parent_run_id, user_id=body.user_id,
                                     source=body.source)
    return json_response(run_to_wire(run), 201)


@router.post("/{run_id}/write", name="write_run",
             summary="Create (optionally) and write a run's params, tags, metrics and status in one transaction")
def write_run(run_id: RunId, body: schemas.WriteRun, request: Request) -> Response:
    new = body.create
    create = None if new is None else RunInfo(
        run_id, new.experiment_id, new.run_name, RunStatus.RUNNING, new.start_time, parent_run_id=new.parent_run_id,
        user_id=new.user_id, source=new.source)
    info = tracking(request).write_run(run_id, create=create,
                             params=[(p.key, p.value) for p in body.params], tags=[(t.key, t.value) for t in body.tags],
                             metrics=[Metric(m.key, m.value, m.step, m.timestamp) for m in body.metrics],
                             status=body.status, end_time=body.end_time)
    return json_response(run_info_to_wire(info))


@router.post("/search", name="search_runs", summary="Search runs with a filter")
def search_runs(body: schemas.SearchRuns, request: Request) -> Response:
    if body.filter is not None and body.filter_string:
        raise InvalidInput("give either filter or filter_string, not both")
    if body.filter is not None:
        run_filter = RunFilter(tuple(check_comparison(c.kind, c.key, c.op, c.value) for c in body.filter))
    else:
        run_filter = parse_filter(body.filter_string)
    order_by = tuple(parse_order_by([o])[0] if isinstance(o, str) else OrderBy(o.kind, o.key, o.ascending)
                     for o in body.order_by)
    query = RunQuery(tuple(body.experiment_ids), run_filter, body.view, order_by, body.max_results,
                     body.page_token)
    page = tracking(request).search(query)
    return json_response({"runs": [run_to_wire(r) for r in page], "next_page_token": page.token})


@router.get("/{run_id}", name="get_run", summary="Get a run with params, tags and latest metrics")
def get_run(run_id: RunId, request: Request) -> Response:
    return json_response(run_to_wire(tracking(request).get_run(run_id)))


@router.patch("/{run_id}", name="update_run", summary="Change a run's status, end time or name")
def update_run(run_id: RunId, body: schemas.UpdateRun, request: Request) -> Response:
    info = tracking(request).update_run(run_id, status=body.status, run_name=body.run_name, end_time=body.end_time)
    return json_response(run_info_to_wire(info))


@router.delete("/{run_id}", name="delete_run", summary="Soft-delete a run")
def delete_run(run_id: RunId, request: Request) -> Response:
    tracking(request).delete_run(run_id)
    return json_response(None)


@router.post("/{run_id}/restore", name="restore_run", summary="Restore a deleted run")
def restore_run(run_id: RunId, request: Request) -> Response:
    tracking(request).restore_run(run_id)
    return json_response(None)


@router.post("/{run_id}/params", name="log_params", summary="Log params (immutable)")
def log_params(run_id: RunId, body: schemas.LogParams, request: Request) -> Response:
    tracking(request).log_batch(run_id, params=[Param(p.key, p.value) for p in body.params])
    return json_response(None)


@router.put("/{run_id}/tags", name="set_run_tags", summary="Set run tags")
def set_run_tags(run_id: RunId, body: schemas.RunTags, request: Request) -> Response:
    tracking(request).log_batch(run_id, tags=[RunTag(t.key, t.value) for t in body.tags])
    return json_response(None)


@router.delete("/{run_id}/tags/{key:path}", name="delete_run_tag", summary="Delete a run tag")
def delete_run_tag(run_id: RunId, key: str, request: Request) -> Response:
    tracking(request).delete_tag(run_id, key)
    return json_response(None)


@router.post("/{run_id}/metrics", name="log_metrics", summary="Log a batch of metric values")
def log_metrics(run_id: RunId, body: schemas.LogMetrics, request: Request) -> Response:
    tracking(request).log_batch(run_id, metrics=[Metric(m.key, m.value, m.step, m.timestamp) for m in body.metrics])
    return json_response(None)


@router.get("/{run_id}/metric-history/columns", name="get_metric_history_columns",
            summary="One metric's history as arrays (steps, values, timestamps), optionally thinned for a chart")
def get_metric_history_columns(run_id: RunId, request: Request, key: Annotated[str, Query(max_length=1000)],
                               max_points: Annotated[int | None, Query(ge=4, le=1_000_000)] = None) -> Response:
    history = tracking(request).get_metric_history_columns(run_id, key, max_points=max_points)
    return json_response(history_to_wire(history))


@router.get("/{run_id}/metric-history", name="get_metric_history", summary="Every value of one metric")
def get_metric_history(run_id: RunId, request: Request, key: Annotated[str, Query(max_length=1000)]) -> Response:
    history = tracking(request).get_metric_history(run_id, key)
    return json_response({"metrics": [metric_to_wire(m) for m in history]})
