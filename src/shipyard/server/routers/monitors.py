"""Monitors over the native API: definitions, the evaluation lease, evaluations and alerts.

A thin adapter over ``client.store.monitors`` (the
:class:`~shipyard.store.protocol.MonitorStore`); pydantic bounds each request's size and types.
The rules (what a valid definition is, when a window is due, how the alert state moves) are
:class:`~shipyard.monitoring.service.MonitorService`'s, which a client runs and whose results it
sends here, the way deployments' rollout rules reach the server as revisions. A lease someone
else holds answers ``{"acquired": false}``; recording a window that is not the monitor's next,
or without the lease, is ``409 CONFLICT``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import Field
from starlette.responses import Response

from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation, RetrainPolicy
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.server.schemas import Body, Key, ProjectsQuery, Text
from shipyard.store.protocol import MonitorStore
from shipyard.wire import alert_to_wire, evaluation_to_wire, monitor_to_wire

router = PrefixRouter(prefix="/api/v1/monitors", tags=["monitors"])

Name = Annotated[str, Path(max_length=1000)]
Whole = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Names = Annotated[list[Key], Field(max_length=10_000)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Bounds = Annotated[dict[Key, Finite], Field(max_length=100)]
Limit = Annotated[int | None, Query(ge=1, le=1_000_000)]


class RetrainSpec(Body):
    alias: Key = "production"
    margin: Finite = 0.0
    holdout: Finite = 0.3
    timeout_seconds: Whole = 3600


class MonitorSpec(Body):
    deployment: Key | None = None
    reference: Key = "training"
    current: Key | None = None
    window_seconds: Whole = 3600
    columns: Names = []
    tests: Annotated[dict[Key, Key], Field(max_length=10_000)] = {}
    alpha: Finite = 0.05
    metrics: Annotated[list[Key], Field(max_length=100)] = []
    minimums: Bounds = {}
    maximums: Bounds = {}
    actions: Annotated[list[Text], Field(max_length=20)] = []
    cooldown_seconds: Whole = 3600
    delay_seconds: Whole = 0
    retrain: RetrainSpec = RetrainSpec()
    reference_dataset: Key | None = None
    reference_key: Key | None = None
    output_reference_key: Key | None = None


class CreateMonitor(MonitorSpec):
    name: Text
    project: Key = DEFAULT_PROJECT
    state: AlertState = AlertState.OK
    state_since: Whole = 0
    next_window_start: Whole = 0


class SaveMonitor(MonitorSpec):
    revision: Whole


class LeaseIn(Body):
    owner: Key
    seconds: Finite


class EvaluationIn(Body):
    window_start: Whole
    window_end: Whole
    status: Key
    state: AlertState
    rows: Whole = 0
    labelled: Whole = 0
    dataset_drift: bool = False
    drifted_columns: Names = []
    scores: dict[Key, dict[Key, Any]] = {}
    metrics: dict[Key, Finite | None] = {}
    breaches: Annotated[list[Text], Field(max_length=1000)] = []
    message: Text = ""
    report: dict[Key, Any] = {}
    evaluation_time: Whole = 0


class RecordEvaluation(Body):
    owner: Key
    evaluation: EvaluationIn


class AlertIn(Body):
    time: Whole
    state: AlertState
    window_start: Whole
    action: Text
    status: Key
    attempts: Whole = 0
    detail: Text = ""
    payload: dict[Key, Any] = {}


def _store(request: Request) -> MonitorStore:
    return client(request).store.monitors


def _user(request: Request) -> str:
    name: str = request.state.principal.name
    return name


def _spec(body: MonitorSpec) -> dict[str, Any]:
    fields = body.model_dump()
    for key in ("columns", "metrics", "actions"):
        fields[key] = tuple(fields[key])
    fields["retrain"] = RetrainPolicy(**fields["retrain"])
    return {k: v for k, v in fields.items() if k in MonitorSpec.model_fields}


@router.post("", name="create_monitor", status_code=201, summary="Create a monitor (its revision 1)")
def create_monitor(body: CreateMonitor, request: Request) -> Response:
    monitor = Monitor(name=body.name, state=body.state, state_since=body.state_since,
                      next_window_start=body.next_window_start, project=body.project,
                      **_spec(body))
    return json_response(monitor_to_wire(_store(request).create(monitor, user=_user(request))), 201)


@router.get("", name="list_monitors", summary="List monitors by name (of one deployment, of the projects, if given)")
def list_monitors(request: Request, deployment: Annotated[str | None, Query(max_length=1000)] = None,
                  projects: ProjectsQuery = None) -> Response:
    found = _store(request).list(deployment, projects=projects)
    return json_response({"monitors": [monitor_to_wire(m) for m in found]})


@router.get("/{name}", name="get_monitor", summary="Get a monitor, with its alert state")
def get_monitor(name: Name, request: Request) -> Response:
    return json_response(monitor_to_wire(_store(request).get(name)))


@router.put("/{name}", name="save_monitor",
            summary="Write a monitor's definition (409 when `revision` is not the current one)")
def save_monitor(name: Name, body: SaveMonitor, request: Request) -> Response:
    store = _store(request)
    current = store.get(name)
    monitor = Monitor(name=name, state=current.state, next_window_start=current.next_window_start,
                      revision=body.revision, **_spec(body))
    return json_response(monitor_to_wire(store.save(monitor, user=_user(request))))


@router.delete("/{name}", name="delete_monitor", summary="Delete a monitor with its evaluations and alerts")
def delete_monitor(name: Name, request: Request) -> Response:
    _store(request).delete(name)
    return json_response(None)


@router.post("/{name}/lease", name="acquire_monitor_lease",
             summary="Take or extend the right to evaluate a monitor (`acquired` false: another runner holds it)")
def acquire_monitor_lease(name: Name, body: LeaseIn, request: Request) -> Response:
    return json_response({"acquired": _store(request).acquire_lease(name, body.owner, body.seconds)})


@router.delete("/{name}/lease", name="release_monitor_lease", summary="Give up a monitor's evaluation lease")
def release_monitor_lease(name: Name, request: Request,
                          owner: Annotated[str, Query(max_length=1000)]) -> Response:
    _store(request).release_lease(name, owner)
    return json_response(None)


@router.post("/{name}/evaluations", name="record_monitor_evaluation", status_code=201,
             summary="Record the evaluation of a monitor's next window (409 without the lease or out of order)")
def record_monitor_evaluation(name: Name, body: RecordEvaluation, request: Request) -> Response:
    e = body.evaluation
    evaluation = MonitorEvaluation(
        monitor=name, window_start=e.window_start, window_end=e.window_end, status=e.status, state=e.state,
        rows=e.rows, labelled=e.labelled, dataset_drift=e.dataset_drift, drifted_columns=tuple(e.drifted_columns),
        scores=e.scores, metrics={k: v for k, v in e.metrics.items() if v is not None}, breaches=tuple(e.breaches),
        message=e.message, report=e.report, evaluation_time=e.evaluation_time)
    return json_response(monitor_to_wire(_store(request).record_evaluation(evaluation, owner=body.owner)), 201)


@router.get("/{name}/evaluations", name="list_monitor_evaluations",
            summary="A monitor's evaluations in window order (the latest `limit`)")
def list_monitor_evaluations(name: Name, request: Request, limit: Limit = None,
                             since: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
                             with_report: bool = True) -> Response:
    found = _store(request).evaluations(name, limit=limit, since=since, with_report=with_report)
    return json_response({"evaluations": [evaluation_to_wire(e) for e in found]})


@router.post("/{name}/alerts", name="record_monitor_alert", status_code=201,
             summary="Record one alert notification and its delivery")
def record_monitor_alert(name: Name, body: AlertIn, request: Request) -> Response:
    alert = Alert(monitor=name, time=body.time, state=body.state, window_start=body.window_start, action=body.action,
                  status=body.status, attempts=body.attempts, detail=body.detail, payload=body.payload)
    return json_response(alert_to_wire(_store(request).record_alert(alert)), 201)


@router.get("/{name}/alerts", name="list_monitor_alerts",
            summary="A monitor's alerts, oldest first (the latest `limit`)")
def list_monitor_alerts(name: Name, request: Request, limit: Limit = None) -> Response:
    return json_response({"alerts": [alert_to_wire(a) for a in _store(request).alerts(name, limit=limit)]})
