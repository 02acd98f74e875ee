"""MLflow's model registry calls over Shipyard's registry (the same versions, aliases and
history the native API and the SDK see).

MLflow's deprecated stages have no Shipyard counterpart (aliases replace them); a version's
stage is kept as the tag ``shipyard.mlflow.stage`` so the ``mlflow`` client can still read and
move it. A version registered from a logged model (``models:/m-…``) is stored with the run
folder that holds the model as its source, so Shipyard's loaders, gates and lineage use it as
any other version; the source MLflow sent is given back on the MLflow side.
"""

from __future__ import annotations

import dataclasses
import json

from fastapi import Depends, Request
from starlette.responses import Response

from shipyard.entities import (
    MODEL_GRAMMAR,
    VERSION_GRAMMAR,
    Comparison,
    Grammar,
    ModelVersion,
    Op,
    RegistryQuery,
    RunFilter,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.filters import parse_filter, parse_order_by
from shipyard.models.sources import EXTERNAL_TAG, plan_version_source
from shipyard.models.uri import copied_version
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.artifacts import locate
from shipyard.server.mlflow_compat.common import max_results, ok
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client
from shipyard.tracking import validation as rules
from shipyard.tracking.client import Client

STAGES = {s.lower(): s for s in ("None", "Staging", "Production", "Archived")}


def _version(p: Params) -> int:
    raw = p.required("version")
    if not str(raw).isdigit():
        raise InvalidInput(f"Parameter 'version' must be an integer, got '{raw}'.")  # MLflow's text
    return int(raw)


def _versions_of(c: Client, name: str) -> list[ModelVersion]:
    named = RunFilter((Comparison("attribute", "name", Op.EQ, name),))
    return list(c.store.models.search_versions(RegistryQuery(named, max_results=50_000)).items)


def _latest_per_stage(versions: list[ModelVersion], stages: list[str] | None = None) -> list[ModelVersion]:
    latest: dict[str, ModelVersion] = {}
    for v in versions:
        stage = v.tags.get(wire.STAGE_TAG, "None")
        if (stages is None or stage.lower() in stages) and (stage not in latest or v.version > latest[stage].version):
            latest[stage] = v
    return sorted(latest.values(), key=lambda v: v.version)


def _model_json(c: Client, name: str) -> dict[str, object]:
    return wire.registered_model(c.get_registered_model(name), _latest_per_stage(_versions_of(c, name)))


def create_registered_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    model = c.create_registered_model(p.required("name"), description=p.str("description", default="") or "",
                                      tags=p.key_values("tags"))
    return ok({"registered_model": wire.registered_model(model)})


def get_registered_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    return ok({"registered_model": _model_json(client(request), p.required("name"))})


def rename_registered_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    model = c.rename_registered_model(p.required("name"), p.required("new_name"))
    return ok({"registered_model": _model_json(c, model.name)})


def update_registered_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    name = p.required("name")
    c.update_registered_model(name, description=p.str("description", default="") or "")
    return ok({"registered_model": _model_json(c, name)})


def delete_registered_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).delete_registered_model(p.required("name"), force=True)
    return ok()


def _query(p: Params, grammar: Grammar, default_max: int) -> RegistryQuery:
    return RegistryQuery(parse_filter(p.str("filter"), grammar), max_results(p, default_max), p.str("page_token"),
                         parse_order_by(p.list("order_by"), grammar))


def search_registered_models(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    page = c.store.models.search_models(_query(p, MODEL_GRAMMAR, 100))
    models = [wire.registered_model(m, _latest_per_stage(_versions_of(c, m.name))) for m in page.items]
    return ok({"registered_models": models, "next_page_token": page.next_page_token})


def get_latest_versions(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    name = p.required("name")
    c.get_registered_model(name)
    stages = [s.lower() for s in p.list("stages")] or None
    return ok({"model_versions": [wire.model_version(v) for v in _latest_per_stage(_versions_of(c, name), stages)]})


def set_registered_model_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).set_registered_model_tag(p.required("name"), p.required("key"), p.str("value", default=""))
    return ok()


def delete_registered_model_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    # MLflow deletes an absent tag of a model that exists as a no-op (the native API says 404).
    c, name, key = client(request), p.required("name"), rules.check_key("tag", p.required("key"))
    if key in c.store.models.get_model(name).tags:
        c.registry.delete_registered_model_tag(name, key)
    return ok()


def _stored_source(c: Client, source: str, model_id: str | None) -> str | None:
    """The ``runs:/<run>/<path>`` of the folder an MLflow source names when it is in this
    store (a logged model, or an ``mlflow-artifacts:/`` URI this server handed out); ``None``
    for a source the registry records as external."""
    if model_id or source.startswith("models:/m-"):
        try:
            model = c.store.logged_models.get(model_id or source.removeprefix("models:/"))
        except NotFound:
            return None
        return f"runs:/{model.run_id}/{model.artifact_path}"
    if source.startswith("mlflow-artifacts:/"):
        try:
            where = locate(c, source.removeprefix("mlflow-artifacts:").lstrip("/"))
        except (NotFound, InvalidInput):
            return None
        return f"runs:/{where.run_id}/{where.path}" if where.path else None
    return None


def create_model_version(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    name = p.required("name")
    c.get_registered_model(name)  # MLflow does not create the model here
    source = p.required("source")
    model_id = p.str("model_id")
    run_id = p.str("run_id")
    tags = p.key_values("tags")
    plan_version_source(c.store, c.artifacts, source)  # the registry's rule judges what the client sent
    tags[wire.SOURCE_TAG] = source
    if model_id:
        tags[wire.MODEL_ID_TAG] = model_id
    if run_id:
        tags[wire.RUN_ID_TAG] = run_id
    version = c.register_model(_stored_source(c, source, model_id) or source, name, run_id=run_id,
                               description=p.str("description", default="") or "", tags=tags)
    if model_id:
        _record_version_on_logged_model(c, model_id, version)
    return ok({"model_version": wire.model_version(version)})


def _record_version_on_logged_model(c: Client, model_id: str, version: ModelVersion) -> None:
    """MLflow lists a logged model's registered versions in its ``mlflow.modelVersions`` tag."""
    try:
        model = c.store.logged_models.get(model_id)
    except NotFound:
        return
    try:
        listed = json.loads(model.tags.get(wire.MODEL_VERSIONS_TAG, "[]"))
    except ValueError:
        listed = []
    listed = [*(x for x in listed if isinstance(x, dict)), {"name": version.name, "version": version.version}]
    c.store.logged_models.set_tags(model_id, {wire.MODEL_VERSIONS_TAG: json.dumps(listed)})


def get_model_version(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    return ok({"model_version": wire.model_version(client(request).get_model_version(p.required("name"), _version(p)))})


def update_model_version(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    name, version = p.required("name"), _version(p)
    description = p.str("description")
    if description is not None:
        c.update_model_version(name, version, description=description)
    return ok({"model_version": wire.model_version(c.get_model_version(name, version))})


def delete_model_version(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).delete_model_version(p.required("name"), _version(p), force=True)
    return ok()


def _given_run_ids(c: Client, query: RegistryQuery) -> RegistryQuery:
    """A version's ``run_id`` on the MLflow side is the one the client gave. Shipyard links a
    version to a run it holds (the ``run_id`` attribute) and keeps an id naming no run here as
    a hidden tag, so ``run_id = '<id>'`` of an absent run searches that tag."""
    comparisons = []
    for cmp in query.filter:
        if cmp.kind == "attribute" and cmp.key == "run_id" and cmp.op is Op.EQ and isinstance(cmp.value, str):
            try:
                c.store.runs.get(cmp.value)
            except NotFound:
                cmp = Comparison("tag", wire.RUN_ID_TAG, Op.EQ, cmp.value)
        comparisons.append(cmp)
    return dataclasses.replace(query, filter=RunFilter(tuple(comparisons)))


def search_model_versions(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    page = c.store.models.search_versions(_given_run_ids(c, _query(p, VERSION_GRAMMAR, 10_000)))
    return ok({"model_versions": [wire.model_version(v) for v in page.items], "next_page_token": page.next_page_token})


def get_model_version_download_uri(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    version = copied_version(c.store.models, c.get_model_version(p.required("name"), _version(p)))
    if version.tags.get(EXTERNAL_TAG) == "true" and version.run_id is None:
        return ok({"artifact_uri": version.tags.get(wire.SOURCE_TAG, version.source)})  # where it lives
    run_id, path = c.model_source(f"models:/{version.name}/{version.version}")
    run = c.get_run(run_id)
    return ok({"artifact_uri": wire.run_artifact_uri(run.info.experiment_id, run_id, path)})


def set_model_version_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).set_model_version_tag(p.required("name"), _version(p), p.required("key"),
                                          p.str("value", default=""))
    return ok()


def delete_model_version_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    # As for a model's tag: an absent tag of a version that exists is a no-op, as in MLflow.
    c, name, version = client(request), p.required("name"), _version(p)
    key = rules.check_key("tag", p.required("key"))
    if key in c.store.models.get_version(name, version).tags:
        c.registry.delete_model_version_tag(name, version, key)
    return ok()


def transition_model_version_stage(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    name, version = p.required("name"), _version(p)
    raw = p.required("stage")
    stage = STAGES.get(raw.lower())
    if stage is None:
        raise InvalidInput(f"Invalid Model Version stage: {raw}. Value must be one of None, Staging, Production, "
                           "Archived.")
    c.get_model_version(name, version)
    archive = str(p.raw("archive_existing_versions")).lower() == "true"
    if archive and stage in ("Staging", "Production"):
        for other in _versions_of(c, name):
            if other.version != version and other.tags.get(wire.STAGE_TAG) == stage:
                c.set_model_version_tag(name, other.version, wire.STAGE_TAG, "Archived")
    c.set_model_version_tag(name, version, wire.STAGE_TAG, stage)
    return ok({"model_version": wire.model_version(c.get_model_version(name, version))})


def set_registered_model_alias(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).set_alias(p.required("name"), p.required("alias"), _version(p))
    return ok()


def delete_registered_model_alias(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).delete_alias(p.required("name"), p.required("alias"))
    return ok()


def get_model_version_by_alias(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    version = client(request).store.models.get_version_by_alias(p.required("name"), p.required("alias"))
    return ok({"model_version": wire.model_version(version)})
