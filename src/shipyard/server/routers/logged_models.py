"""Logged models (MLflow 3's ``LoggedModel``) over the native API.

A thin adapter over ``client.store.logged_models`` (the
:class:`~shipyard.store.protocol.LoggedModelStore`), which checks ids, names, keys and values
itself; pydantic only bounds the request's size and types here. Filters are parsed here into
typed filters (a structured ``filter`` or a ``filter_string`` in MLflow's grammar).

Ids (``m-`` and hex digits) never contain ``/``, so ``{model_id}`` is one path segment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request
from pydantic import Field
from starlette.responses import Response

from shipyard.entities import (
    LOGGED_MODEL_GRAMMAR,
    LoggedModel,
    LoggedModelDataset,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    OrderBy,
    RunFilter,
    RunLink,
    RunLinkKind,
    ViewType,
)
from shipyard.errors import InvalidInput
from shipyard.filters import check_comparison, parse_filter
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.server.schemas import MAX_BATCH, Body, ComparisonIn, Count, Key, OrderByIn, Text, VersionNumber
from shipyard.store.protocol import LoggedModelStore
from shipyard.wire import decode_float, logged_model_to_wire, run_link_to_wire

router = PrefixRouter(prefix="/api/v1/logged-models", tags=["logged models"])
runs_router = PrefixRouter(prefix="/api/v1/runs", tags=["logged models"])

ModelId = Annotated[str, Path(max_length=64)]
RunId = Annotated[str, Path(max_length=64)]
KeyValues = Annotated[dict[Key, Text], Field(max_length=MAX_BATCH)]


class CreateLoggedModel(Body):
    """``model_id`` is chosen by the client (``m-`` and 32 lowercase hex digits); times of 0
    mean "when the server stores it"."""

    model_id: Key
    experiment_id: Key
    name: Text
    run_id: Key
    artifact_path: Text
    source_run_id: Key | None = None
    status: LoggedModelStatus = LoggedModelStatus.PENDING
    status_message: Text = ""
    model_type: Text = ""
    creation_time: Count = 0
    last_update_time: Count = 0
    tags: KeyValues = {}
    params: KeyValues = {}


class UpdateLoggedModel(Body):
    status: LoggedModelStatus | None = None
    status_message: Text | None = None


class LoggedModelTags(Body):
    tags: KeyValues


class LoggedModelParams(Body):
    params: KeyValues


class DatasetIn(Body):
    """A dataset the models must have a metric logged on (any digest when none is given)."""

    name: Annotated[str, Field(min_length=1, max_length=500)]
    digest: Annotated[str, Field(max_length=64)] | None = None


class SearchLoggedModels(Body):
    """A structured ``filter`` (what the SDK sends) or a ``filter_string`` in MLflow's grammar,
    not both; ``order_by`` takes attributes."""

    experiment_ids: Annotated[list[Key], Field(min_length=1, max_length=1000)]
    filter: Annotated[list[ComparisonIn], Field(max_length=100)] | None = None
    filter_string: Text | None = None
    order_by: Annotated[list[OrderByIn], Field(max_length=20)] = []
    view: ViewType = ViewType.ACTIVE_ONLY
    max_results: Annotated[int, Field(ge=1, le=10_000)] = 100
    page_token: Text | None = None
    datasets: Annotated[list[DatasetIn], Field(max_length=100)] = []


class LoggedModelMetricIn(Body):
    key: Key
    value: float | Literal["NaN", "Infinity", "-Infinity"]
    step: VersionNumber = 0
    timestamp: Count = 0
    run_id: Key
    dataset_name: Text = ""
    dataset_digest: Text = ""


class LoggedModelMetrics(Body):
    metrics: Annotated[list[LoggedModelMetricIn], Field(max_length=MAX_BATCH)]


class RunLinkIn(Body):
    run_id: Key
    kind: RunLinkKind
    ref: Key
    step: VersionNumber = 0
    tags: KeyValues = {}


class RunLinks(Body):
    links: Annotated[list[RunLinkIn], Field(max_length=MAX_BATCH)]


class QueryRunLinks(Body):
    run_ids: Annotated[list[Key], Field(max_length=MAX_BATCH)]


def _store(request: Request) -> LoggedModelStore:
    return client(request).store.logged_models


@router.post("", name="create_logged_model", status_code=201, summary="Create a logged model")
def create_logged_model(body: CreateLoggedModel, request: Request) -> Response:
    model = _store(request).create(LoggedModel(
        model_id=body.model_id, experiment_id=body.experiment_id, name=body.name, run_id=body.run_id,
        artifact_path=body.artifact_path, source_run_id=body.source_run_id, status=body.status,
        status_message=body.status_message, model_type=body.model_type, creation_time=body.creation_time,
        last_update_time=body.last_update_time, tags=body.tags, params=body.params))
    return json_response(logged_model_to_wire(model), 201)


@router.post("/search", name="search_logged_models",
             summary="Search the logged models of experiments (newest first unless ordered)")
def search_logged_models(body: SearchLoggedModels, request: Request) -> Response:
    if body.filter is not None and body.filter_string:
        raise InvalidInput("give either filter or filter_string, not both")
    if body.filter is not None:
        flt = RunFilter(tuple(check_comparison(c.kind, c.key, c.op, c.value, LOGGED_MODEL_GRAMMAR)
                              for c in body.filter))
    else:
        flt = parse_filter(body.filter_string, LOGGED_MODEL_GRAMMAR)
    query = LoggedModelQuery(tuple(body.experiment_ids), flt,
                             tuple(OrderBy(o.kind, o.key, o.ascending) for o in body.order_by), body.view,
                             body.max_results, body.page_token,
                             tuple(LoggedModelDataset(d.name, d.digest) for d in body.datasets))
    page = _store(request).search(query)
    return json_response({"logged_models": [logged_model_to_wire(m) for m in page.items],
                          "next_page_token": page.next_page_token})


@router.post("/run-links", name="add_run_links",
             summary="Record runs' model inputs and outputs and dataset-input tags (the first record is kept)")
def add_run_links(body: RunLinks, request: Request) -> Response:
    _store(request).add_run_links([RunLink(x.run_id, x.kind, x.ref, x.step, x.tags) for x in body.links])
    return json_response(None)


@router.post("/run-links/query", name="query_run_links", summary="Each run's links, in the order recorded")
def query_run_links(body: QueryRunLinks, request: Request) -> Response:
    found = _store(request).run_links(body.run_ids)
    return json_response({"links": {run_id: [run_link_to_wire(x) for x in links] for run_id, links in found.items()}})


@router.get("/{model_id}", name="get_logged_model", summary="Get a logged model (deleted ones too)")
def get_logged_model(model_id: ModelId, request: Request) -> Response:
    return json_response(logged_model_to_wire(_store(request).get(model_id)))


@router.patch("/{model_id}", name="update_logged_model", summary="Change a logged model's status")
def update_logged_model(model_id: ModelId, body: UpdateLoggedModel, request: Request) -> Response:
    model = _store(request).update(model_id, status=body.status, status_message=body.status_message)
    return json_response(logged_model_to_wire(model))


@router.delete("/{model_id}", name="delete_logged_model", summary="Soft-delete a logged model")
def delete_logged_model(model_id: ModelId, request: Request) -> Response:
    _store(request).delete(model_id)
    return json_response(None)


@router.patch("/{model_id}/tags", name="set_logged_model_tags", summary="Set logged model tags")
def set_logged_model_tags(model_id: ModelId, body: LoggedModelTags, request: Request) -> Response:
    _store(request).set_tags(model_id, body.tags)
    return json_response(None)


@router.delete("/{model_id}/tags/{key:path}", name="delete_logged_model_tag", summary="Delete a logged model tag")
def delete_logged_model_tag(model_id: ModelId, key: str, request: Request) -> Response:
    _store(request).delete_tag(model_id, key)
    return json_response(None)


@router.post("/{model_id}/params", name="log_logged_model_params", summary="Log logged model params (immutable)")
def log_logged_model_params(model_id: ModelId, body: LoggedModelParams, request: Request) -> Response:
    _store(request).log_params(model_id, body.params)
    return json_response(None)


@router.post("/{model_id}/metrics", name="log_logged_model_metrics",
             summary="Record metric values measured on a logged model")
def log_logged_model_metrics(model_id: ModelId, body: LoggedModelMetrics, request: Request) -> Response:
    _store(request).log_metrics(model_id, [
        LoggedModelMetric(m.key, decode_float(m.value), m.step, m.timestamp, m.run_id, m.dataset_name,
                          m.dataset_digest) for m in body.metrics])
    return json_response(None)


@runs_router.get("/{run_id}/logged-models", name="list_run_logged_models",
                 summary="The logged models a run produced, oldest first")
def list_run_logged_models(run_id: RunId, request: Request, view: ViewType = ViewType.ACTIVE_ONLY) -> Response:
    models = _store(request).list_for_run(run_id, view)
    return json_response({"logged_models": [logged_model_to_wire(m) for m in models]})
