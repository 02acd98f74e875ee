"""Entities to and from their JSON wire shape, shared by the server and RestStore (which must
not import each other).

Built by hand rather than through response models: a search page of a thousand runs is
encoded in one pass. JSON has no NaN or infinity, so non-finite metric values travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spelling JavaScript and MLflow use).
"""

from __future__ import annotations

import json
import math
from array import array
from typing import Any

from shipyard.entities import (
    Approval,
    ArtifactEntry,
    Batching,
    DatasetVersion,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Edge,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelStatus,
    Metric,
    ModelRef,
    ModelVersion,
    Node,
    RegisteredModel,
    RegistryEvent,
    Relation,
    Resources,
    Route,
    Run,
    RunData,
    RunInfo,
    RunLink,
    RunLinkKind,
    RunStatus,
    VersionStatus,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation, RetrainPolicy

_SPECIAL = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode_float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def decode_float(value: float | str) -> float:
    return _SPECIAL[value] if isinstance(value, str) else float(value)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()


def experiment_to_wire(e: Experiment) -> dict[str, Any]:
    return {"experiment_id": e.experiment_id, "name": e.name, "lifecycle_stage": e.lifecycle_stage.value,
            "creation_time": e.creation_time, "last_update_time": e.last_update_time, "tags": dict(e.tags),
            "project": e.project}


def experiment_from_wire(d: dict[str, Any]) -> Experiment:
    return Experiment(experiment_id=d["experiment_id"], name=d["name"],
                      lifecycle_stage=LifecycleStage(d["lifecycle_stage"]), creation_time=d["creation_time"],
                      last_update_time=d["last_update_time"], tags=d.get("tags") or {},
                      project=d.get("project", DEFAULT_PROJECT))


def metric_to_wire(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}


def metric_from_wire(d: dict[str, Any]) -> Metric:
    return Metric(d["key"], decode_float(d["value"]), d["step"], d["timestamp"])


def history_to_wire(h: MetricHistory) -> dict[str, Any]:
    """Columns as JSON arrays; NaN and infinities spelled as in :func:`encode_float`."""
    values: list[Any] = h.values.tolist()
    if not all(map(math.isfinite, values)):
        values = [encode_float(v) for v in values]
    return {"key": h.key, "steps": h.steps.tolist(), "values": values, "timestamps": h.timestamps.tolist()}


def history_from_wire(d: dict[str, Any]) -> MetricHistory:
    values = d["values"]
    if any(isinstance(v, str) for v in values):
        values = [decode_float(v) for v in values]
    return MetricHistory(d["key"], array("q", d["steps"]), array("d", values), array("q", d["timestamps"]))


def run_info_to_wire(i: RunInfo) -> dict[str, Any]:
    return {"run_id": i.run_id, "experiment_id": i.experiment_id, "run_name": i.run_name,
            "status": i.status.value, "start_time": i.start_time, "end_time": i.end_time,
            "lifecycle_stage": i.lifecycle_stage.value, "parent_run_id": i.parent_run_id,
            "user_id": i.user_id, "source": i.source}


def run_info_from_wire(d: dict[str, Any]) -> RunInfo:
    return RunInfo(run_id=d["run_id"], experiment_id=d["experiment_id"], run_name=d["run_name"],
                   status=RunStatus(d["status"]), start_time=d["start_time"], end_time=d["end_time"],
                   lifecycle_stage=LifecycleStage(d["lifecycle_stage"]), parent_run_id=d["parent_run_id"],
                   user_id=d["user_id"], source=d["source"])


def run_to_wire(r: Run) -> dict[str, Any]:
    return {"info": run_info_to_wire(r.info),
            "data": {"params": dict(r.data.params), "tags": dict(r.data.tags),
                     "metrics": [metric_to_wire(m) for m in r.data.latest_metrics.values()]}}


def run_from_wire(d: dict[str, Any]) -> Run:
    latest = {m["key"]: metric_from_wire(m) for m in d["data"]["metrics"]}
    return Run(run_info_from_wire(d["info"]),
               RunData(params=d["data"]["params"], tags=d["data"]["tags"], latest_metrics=latest))


def artifact_to_wire(a: ArtifactEntry) -> dict[str, Any]:
    return {"path": a.path, "is_dir": a.is_dir, "size": a.size, "digest": a.digest}


def artifact_from_wire(d: dict[str, Any]) -> ArtifactEntry:
    return ArtifactEntry(d["path"], d["is_dir"], d.get("size"), d.get("digest"))


def registered_model_to_wire(m: RegisteredModel) -> dict[str, Any]:
    return {"name": m.name, "description": m.description, "creation_time": m.creation_time,
            "last_update_time": m.last_update_time, "tags": dict(m.tags), "aliases": dict(m.aliases),
            "latest_version": m.latest_version, "protected_aliases": list(m.protected_aliases), "project": m.project}


def registered_model_from_wire(d: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(name=d["name"], description=d["description"], creation_time=d["creation_time"],
                           last_update_time=d["last_update_time"], tags=d.get("tags") or {},
                           aliases=d.get("aliases") or {}, latest_version=d.get("latest_version"),
                           protected_aliases=tuple(d.get("protected_aliases") or ()),
                           project=d.get("project", DEFAULT_PROJECT))


def approval_to_wire(a: Approval | None) -> dict[str, Any] | None:
    return None if a is None else {"user": a.user, "timestamp": a.timestamp, "comment": a.comment}


def approval_from_wire(d: dict[str, Any] | None) -> Approval | None:
    return None if d is None else Approval(d["user"], d["timestamp"], d.get("comment", ""))


def model_version_to_wire(v: ModelVersion) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "source": v.source, "run_id": v.run_id,
            "status": v.status.value, "description": v.description, "creation_time": v.creation_time,
            "last_update_time": v.last_update_time, "tags": dict(v.tags), "aliases": list(v.aliases),
            "approval": approval_to_wire(v.approval), "card": v.card}


def model_version_from_wire(d: dict[str, Any]) -> ModelVersion:
    return ModelVersion(name=d["name"], version=d["version"], source=d["source"], run_id=d.get("run_id"),
                        status=VersionStatus(d["status"]), description=d["description"],
                        creation_time=d["creation_time"], last_update_time=d["last_update_time"],
                        tags=d.get("tags") or {}, aliases=tuple(d.get("aliases") or ()),
                        approval=approval_from_wire(d.get("approval")), card=d.get("card", ""))


def registry_event_to_wire(e: RegistryEvent) -> dict[str, Any]:
    return {"name": e.name, "kind": e.kind, "timestamp": e.timestamp, "user": e.user, "version": e.version,
            "alias": e.alias, "previous_version": e.previous_version, "detail": e.detail}


def registry_event_from_wire(d: dict[str, Any]) -> RegistryEvent:
    return RegistryEvent(name=d["name"], kind=d["kind"], timestamp=d["timestamp"], user=d.get("user", ""),
                         version=d.get("version"), alias=d.get("alias"),
                         previous_version=d.get("previous_version"), detail=d.get("detail", ""))


def dataset_version_to_wire(v: DatasetVersion) -> dict[str, Any]:
    return {"name": v.name, "version": v.version, "digest": v.digest, "source": v.source, "kind": v.kind,
            "num_rows": v.num_rows, "size_bytes": v.size_bytes, "schema": [dict(c) for c in v.schema],
            "profile": dict(v.profile), "snapshot_uri": v.snapshot_uri, "creation_time": v.creation_time,
            "user": v.user, "project": v.project}


def dataset_version_from_wire(d: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(name=d["name"], version=d["version"], digest=d["digest"], source=d["source"],
                          kind=d["kind"], num_rows=d.get("num_rows"), size_bytes=d.get("size_bytes"),
                          schema=tuple(d.get("schema") or ()), profile=d.get("profile") or {},
                          snapshot_uri=d.get("snapshot_uri"), creation_time=d.get("creation_time", 0),
                          user=d.get("user", ""), project=d.get("project", DEFAULT_PROJECT))


def edge_to_wire(e: Edge) -> dict[str, Any]:
    """Nodes travel as their ``kind:id`` strings."""
    return {"source": str(e.source), "target": str(e.target), "relation": e.relation.value, "context": e.context,
            "timestamp": e.timestamp}


def edge_from_wire(d: dict[str, Any]) -> Edge:
    return Edge(Node.parse(d["source"]), Node.parse(d["target"]), Relation(d["relation"]), d.get("context", ""),
                d.get("timestamp", 0))


def logged_model_to_wire(m: LoggedModel) -> dict[str, Any]:
    return {"model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name, "run_id": m.run_id,
            "artifact_path": m.artifact_path, "source_run_id": m.source_run_id, "status": m.status.value,
            "status_message": m.status_message, "model_type": m.model_type, "creation_time": m.creation_time,
            "last_update_time": m.last_update_time, "lifecycle_stage": m.lifecycle_stage.value,
            "tags": dict(m.tags), "params": dict(m.params),
            "metrics": [logged_model_metric_to_wire(x) for x in m.metrics]}


def logged_model_metric_to_wire(m: LoggedModelMetric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp,
            "run_id": m.run_id, "dataset_name": m.dataset_name, "dataset_digest": m.dataset_digest}


def logged_model_metric_from_wire(d: dict[str, Any]) -> LoggedModelMetric:
    return LoggedModelMetric(d["key"], decode_float(d["value"]), d.get("step", 0), d.get("timestamp", 0),
                             d.get("run_id", ""), d.get("dataset_name", ""), d.get("dataset_digest", ""))


def run_link_to_wire(link: RunLink) -> dict[str, Any]:
    return {"run_id": link.run_id, "kind": str(link.kind), "ref": link.ref, "step": link.step,
            "tags": dict(link.tags)}


def run_link_from_wire(d: dict[str, Any]) -> RunLink:
    return RunLink(d["run_id"], RunLinkKind(d["kind"]), d["ref"], d.get("step", 0), d.get("tags") or {})


def logged_model_from_wire(d: dict[str, Any]) -> LoggedModel:
    return LoggedModel(model_id=d["model_id"], experiment_id=d["experiment_id"], name=d["name"], run_id=d["run_id"],
                       artifact_path=d["artifact_path"], source_run_id=d.get("source_run_id"),
                       status=LoggedModelStatus(d["status"]), status_message=d.get("status_message", ""),
                       model_type=d.get("model_type", ""), creation_time=d["creation_time"],
                       last_update_time=d["last_update_time"],
                       lifecycle_stage=LifecycleStage(d["lifecycle_stage"]), tags=d.get("tags") or {},
                       params=d.get("params") or {},
                       metrics=tuple(logged_model_metric_from_wire(x) for x in d.get("metrics") or ()))


def deployment_spec_to_wire(d: Deployment) -> dict[str, Any]:
    """What a deployment serves and how: routes, shadows, batching and resources."""
    return {"routes": [{"model": r.model, "version": r.version, "weight": r.weight} for r in d.routes],
            "shadows": [{"model": s.model, "version": s.version} for s in d.shadows],
            "batching": {"max_batch_size": d.batching.max_batch_size, "max_wait_ms": d.batching.max_wait_ms},
            "resources": {"replicas": d.resources.replicas, "cpu": d.resources.cpu, "memory": d.resources.memory}}


def deployment_to_wire(d: Deployment) -> dict[str, Any]:
    return {"name": d.name, "environment": d.environment, **deployment_spec_to_wire(d), "status": d.status.value,
            "revision": d.revision, "creation_time": d.creation_time, "last_update_time": d.last_update_time,
            "user": d.user, "project": d.project}


def deployment_from_wire(d: dict[str, Any]) -> Deployment:
    batching, resources = d.get("batching") or {}, d.get("resources") or {}
    return Deployment(
        name=d["name"], environment=d["environment"],
        routes=tuple(Route(r["model"], r["version"], r["weight"]) for r in d["routes"]),
        shadows=tuple(ModelRef(s["model"], s["version"]) for s in d.get("shadows") or ()),
        batching=Batching(**batching), resources=Resources(**resources),
        status=DeploymentStatus(d.get("status", DeploymentStatus.ACTIVE.value)), revision=d.get("revision", 0),
        creation_time=d.get("creation_time", 0), last_update_time=d.get("last_update_time", 0),
        user=d.get("user", ""), project=d.get("project", DEFAULT_PROJECT))


def deployment_event_to_wire(e: DeploymentEvent) -> dict[str, Any]:
    return {"name": e.name, "revision": e.revision, "kind": e.kind, "timestamp": e.timestamp, "user": e.user,
            "detail": e.detail, "deployment": deployment_to_wire(e.deployment)}


def deployment_event_from_wire(d: dict[str, Any]) -> DeploymentEvent:
    return DeploymentEvent(name=d["name"], revision=d["revision"], kind=d["kind"], timestamp=d["timestamp"],
                           user=d.get("user", ""), deployment=deployment_from_wire(d["deployment"]),
                           detail=d.get("detail", ""))


def monitor_spec_to_wire(m: Monitor) -> dict[str, Any]:
    """A monitor's definition: what it watches, its rules and actions, where its references are."""
    return {"deployment": m.deployment, "reference": m.reference, "current": m.current,
            "window_seconds": m.window_seconds, "columns": list(m.columns), "tests": dict(m.tests), "alpha": m.alpha,
            "metrics": list(m.metrics), "minimums": dict(m.minimums), "maximums": dict(m.maximums),
            "actions": list(m.actions), "cooldown_seconds": m.cooldown_seconds, "delay_seconds": m.delay_seconds,
            "retrain": {"alias": m.retrain.alias, "margin": m.retrain.margin, "holdout": m.retrain.holdout,
                        "timeout_seconds": m.retrain.timeout_seconds},
            "reference_dataset": m.reference_dataset, "reference_key": m.reference_key,
            "output_reference_key": m.output_reference_key}


def monitor_to_wire(m: Monitor) -> dict[str, Any]:
    return {"name": m.name, **monitor_spec_to_wire(m), "state": m.state.value, "state_since": m.state_since,
            "next_window_start": m.next_window_start, "last_evaluation_time": m.last_evaluation_time,
            "revision": m.revision, "creation_time": m.creation_time, "last_update_time": m.last_update_time,
            "user": m.user, "project": m.project}


def _retrain_policy(d: Any) -> RetrainPolicy:
    known = RetrainPolicy.__dataclass_fields__  # a newer peer's extra fields are not an error
    return RetrainPolicy(**{k: v for k, v in (d or {}).items() if k in known})


def monitor_from_wire(d: dict[str, Any]) -> Monitor:
    return Monitor(
        name=d["name"], deployment=d.get("deployment"), reference=d.get("reference", "training"),
        current=d.get("current"), window_seconds=d.get("window_seconds", 3600), columns=tuple(d.get("columns") or ()),
        tests=dict(d.get("tests") or {}), alpha=d.get("alpha", 0.05), metrics=tuple(d.get("metrics") or ()),
        minimums=dict(d.get("minimums") or {}), maximums=dict(d.get("maximums") or {}),
        actions=tuple(d.get("actions") or ()), cooldown_seconds=d.get("cooldown_seconds", 3600),
        delay_seconds=d.get("delay_seconds", 0), retrain=_retrain_policy(d.get("retrain")),
        reference_dataset=d.get("reference_dataset"), reference_key=d.get("reference_key"),
        output_reference_key=d.get("output_reference_key"), state=AlertState(d.get("state", "OK")),
        state_since=d.get("state_since", 0), next_window_start=d.get("next_window_start", 0),
        last_evaluation_time=d.get("last_evaluation_time"), revision=d.get("revision", 0),
        creation_time=d.get("creation_time", 0), last_update_time=d.get("last_update_time", 0),
        user=d.get("user", ""), project=d.get("project", DEFAULT_PROJECT))


def evaluation_summary_to_wire(e: MonitorEvaluation) -> dict[str, Any]:
    """The small part of an evaluation: what changed, the scores and metrics, the rules broken."""
    return {"drifted_columns": list(e.drifted_columns), "scores": {k: dict(v) for k, v in e.scores.items()},
            "metrics": dict(e.metrics), "breaches": list(e.breaches), "message": e.message}


def evaluation_to_wire(e: MonitorEvaluation) -> dict[str, Any]:
    return {"monitor": e.monitor, "window_start": e.window_start, "window_end": e.window_end, "status": e.status,
            "state": e.state.value, "rows": e.rows, "labelled": e.labelled, "dataset_drift": e.dataset_drift,
            **evaluation_summary_to_wire(e), "report": dict(e.report), "evaluation_time": e.evaluation_time,
            "evaluation_id": e.evaluation_id}


def evaluation_from_wire(d: dict[str, Any]) -> MonitorEvaluation:
    return MonitorEvaluation(
        monitor=d["monitor"], window_start=d["window_start"], window_end=d["window_end"], status=d["status"],
        state=AlertState(d["state"]), rows=d.get("rows", 0), labelled=d.get("labelled", 0),
        dataset_drift=bool(d.get("dataset_drift", False)), drifted_columns=tuple(d.get("drifted_columns") or ()),
        scores=dict(d.get("scores") or {}), metrics=dict(d.get("metrics") or {}),
        breaches=tuple(d.get("breaches") or ()), message=d.get("message", ""), report=dict(d.get("report") or {}),
        evaluation_time=d.get("evaluation_time", 0), evaluation_id=d.get("evaluation_id", 0))


def alert_to_wire(a: Alert) -> dict[str, Any]:
    return {"monitor": a.monitor, "time": a.time, "state": a.state.value, "window_start": a.window_start,
            "action": a.action, "status": a.status, "attempts": a.attempts, "detail": a.detail,
            "payload": dict(a.payload), "alert_id": a.alert_id}


def alert_from_wire(d: dict[str, Any]) -> Alert:
    return Alert(monitor=d["monitor"], time=d["time"], state=AlertState(d["state"]), window_start=d["window_start"],
                 action=d["action"], status=d["status"], attempts=d.get("attempts", 0), detail=d.get("detail", ""),
                 payload=dict(d.get("payload") or {}), alert_id=d.get("alert_id", 0))
