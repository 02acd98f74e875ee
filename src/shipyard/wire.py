"""Entities to and from their JSON wire shape, shared by the server and RestStore (which must
not import each other).

Built by hand rather than through response models: a search page of a thousand runs is
encoded in one pass. JSON has no NaN or infinity, so non-finite metric values travel as the
strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (the spelling JavaScript and MLflow use).
"""

from __future__ import annotations

import json
import math
from typing import Any

from shipyard.entities import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunStatus,
)

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
            "creation_time": e.creation_time, "last_update_time": e.last_update_time, "tags": dict(e.tags)}


def experiment_from_wire(d: dict[str, Any]) -> Experiment:
    return Experiment(experiment_id=d["experiment_id"], name=d["name"],
                      lifecycle_stage=LifecycleStage(d["lifecycle_stage"]), creation_time=d["creation_time"],
                      last_update_time=d["last_update_time"], tags=d.get("tags") or {})


def metric_to_wire(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}


def metric_from_wire(d: dict[str, Any]) -> Metric:
    return Metric(d["key"], decode_float(d["value"]), d["step"], d["timestamp"])


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
