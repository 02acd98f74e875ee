"""Shipyard's entities in MLflow's JSON (proto3 style: empty fields are left out).

Identity maps one to one (integer-string experiment ids, 32-hex run ids, ``m-`` logged-model
ids); what MLflow keeps as reserved tags and Shipyard as attributes (run name, parent run) is
shown as those tags too, because the ``mlflow`` client reads them there.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import isfinite
from typing import Any

from shipyard.entities import (
    DatasetVersion,
    Experiment,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInfo,
)
from shipyard.models.sources import EXTERNAL_TAG
from shipyard.wire import encode_float

RUN_NAME_TAG = "mlflow.runName"
PARENT_RUN_TAG = "mlflow.parentRunId"
# Version tags Shipyard keeps for MLflow's sake, not shown as tags on the MLflow side.
STAGE_TAG = "shipyard.mlflow.stage"
SOURCE_TAG = "shipyard.mlflow.source"
MODEL_ID_TAG = "shipyard.mlflow.model_id"
RUN_ID_TAG = "shipyard.mlflow.run_id"  # the run_id MLflow sent, kept when it is not a run of this store
_HIDDEN_VERSION_TAGS = frozenset({STAGE_TAG, SOURCE_TAG, MODEL_ID_TAG, RUN_ID_TAG, EXTERNAL_TAG})
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
DATASET_CONTEXT_TAG = "mlflow.data.context"
# The context of a run -> run lineage edge that records a logged model used as the run's input.
MODEL_INPUT_CONTEXT = "mlflow.model_input:"
# An experiment's artifact_location as MLflow's client gave it (Shipyard stores every artifact in
# its own store; the location is recorded and shown, never written to).
ARTIFACT_LOCATION_TAG = "shipyard.mlflow.artifact_location"

LOGGED_MODEL_STATUS = {LoggedModelStatus.PENDING: "LOGGED_MODEL_PENDING",
                       LoggedModelStatus.READY: "LOGGED_MODEL_READY",
                       LoggedModelStatus.FAILED: "LOGGED_MODEL_UPLOAD_FAILED"}
LOGGED_MODEL_STATUS_IN = {v: k for k, v in LOGGED_MODEL_STATUS.items()}


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Leave out what proto3 JSON leaves out: unset and empty fields (zeros are kept)."""
    return {k: v for k, v in fields.items() if v is not None and v != "" and v != [] and v != {}}


def key_values(pairs: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in pairs.items()]


def experiment_artifact_location(experiment_id: str) -> str:
    return f"mlflow-artifacts:/{experiment_id}"


def run_artifact_uri(experiment_id: str, run_id: str, path: str = "") -> str:
    base = f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"
    return f"{base}/{path}" if path else base


def logged_model_artifact_uri(model: LoggedModel) -> str:
    return f"mlflow-artifacts:/{model.experiment_id}/models/{model.model_id}/artifacts"


def experiment(e: Experiment) -> dict[str, Any]:
    tags = {k: v for k, v in e.tags.items() if k != ARTIFACT_LOCATION_TAG}
    location = e.tags.get(ARTIFACT_LOCATION_TAG) or experiment_artifact_location(e.experiment_id)
    return compact({"experiment_id": e.experiment_id, "name": e.name, "artifact_location": location,
                    "lifecycle_stage": e.lifecycle_stage.value, "last_update_time": e.last_update_time,
                    "creation_time": e.creation_time, "tags": key_values(tags)})


def metric(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": encode_float(m.value), "timestamp": m.timestamp, "step": m.step}


def run_info(i: RunInfo) -> dict[str, Any]:
    return compact({"run_uuid": i.run_id, "run_id": i.run_id, "experiment_id": i.experiment_id,
                    "run_name": i.run_name, "user_id": i.user_id, "status": i.status.value,
                    "start_time": i.start_time, "end_time": i.end_time,
                    "artifact_uri": run_artifact_uri(i.experiment_id, i.run_id),
                    "lifecycle_stage": i.lifecycle_stage.value})


def run_tags(r: Run) -> dict[str, str]:
    tags = dict(r.data.tags)
    tags.setdefault(RUN_NAME_TAG, r.info.run_name)
    if r.info.parent_run_id:
        tags.setdefault(PARENT_RUN_TAG, r.info.parent_run_id)
    return tags


def dataset_input(version: DatasetVersion, tags: Mapping[str, str]) -> dict[str, Any]:
    """A Shipyard dataset version as MLflow's DatasetInput; fields MLflow sent are kept under
    ``profile["mlflow"]`` and given back as they came."""
    sent = version.profile.get("mlflow", {}) if isinstance(version.profile, Mapping) else {}
    dataset = compact({"name": version.name, "digest": sent.get("digest") or version.digest,
                       "source_type": sent.get("source_type") or version.kind, "source": version.source,
                       "schema": sent.get("schema"), "profile": sent.get("profile")})
    return compact({"tags": key_values(tags), "dataset": dataset})


def run(r: Run, *, datasets: Iterable[tuple[DatasetVersion, Mapping[str, str]]] = (),
        outputs: Iterable[tuple[str, int]] = (), model_inputs: Iterable[str] = ()) -> dict[str, Any]:
    """What :func:`compact` would make of each part, with the empty lists left out as they are
    built: a search page is up to a thousand of these."""
    data: dict[str, Any] = {}
    if r.data.latest_metrics:
        data["metrics"] = [{"key": m.key, "value": m.value if isfinite(m.value) else encode_float(m.value),
                            "timestamp": m.timestamp, "step": m.step} for m in r.data.latest_metrics.values()]
    if r.data.params:
        data["params"] = [{"key": k, "value": v} for k, v in r.data.params.items()]
    tags = run_tags(r)
    if tags:
        data["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    inputs: dict[str, Any] = {}
    dataset_inputs = [dataset_input(v, t) for v, t in datasets]
    if dataset_inputs:
        inputs["dataset_inputs"] = dataset_inputs
    used = [{"model_id": m} for m in model_inputs]
    if used:
        inputs["model_inputs"] = used
    produced = [{"model_id": m, "step": step} for m, step in outputs]
    return {"info": run_info(r.info), "data": data, "inputs": inputs,
            "outputs": {"model_outputs": produced} if produced else {}}


def version_tags(v: ModelVersion) -> dict[str, str]:
    return {k: val for k, val in v.tags.items() if k not in _HIDDEN_VERSION_TAGS}


def model_version(v: ModelVersion) -> dict[str, Any]:
    fields = compact({"name": v.name, "version": str(v.version), "creation_timestamp": v.creation_time,
                      "last_updated_timestamp": v.last_update_time, "current_stage": v.tags.get(STAGE_TAG, "None"),
                      "source": v.tags.get(SOURCE_TAG, v.source), "run_id": v.run_id or v.tags.get(RUN_ID_TAG),
                      "status": v.status.value, "tags": key_values(version_tags(v)), "aliases": list(v.aliases),
                      "model_id": v.tags.get(MODEL_ID_TAG)})
    # Sent even when empty: MLflow's server does, and its client reads an absent one as None.
    return {**fields, "description": v.description}


def registered_model(m: RegisteredModel, latest: Iterable[ModelVersion] = ()) -> dict[str, Any]:
    return compact({"name": m.name, "creation_timestamp": m.creation_time,
                    "last_updated_timestamp": m.last_update_time, "description": m.description,
                    "latest_versions": [model_version(v) for v in latest], "tags": key_values(m.tags),
                    "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(m.aliases.items())]})


def logged_model(m: LoggedModel) -> dict[str, Any]:
    info = compact({"model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
                    "creation_timestamp_ms": m.creation_time, "last_updated_timestamp_ms": m.last_update_time,
                    "artifact_uri": logged_model_artifact_uri(m), "status": LOGGED_MODEL_STATUS[m.status],
                    "status_message": m.status_message, "model_type": m.model_type,
                    "source_run_id": m.source_run_id, "tags": key_values(m.tags)})
    metrics = [compact({**metric(Metric(x.key, x.value, x.step, x.timestamp)), "run_id": x.run_id,
                        "dataset_name": x.dataset_name, "dataset_digest": x.dataset_digest,
                        "model_id": m.model_id}) for x in m.metrics]
    return {"info": info, "data": compact({"params": key_values(m.params), "metrics": metrics})}
