"""MLflow 3's logged-model calls. A logged model's files are a folder of a Shipyard run: the
run that made it (named like the model; ``<name>-<id>`` when that folder is taken), or, for a
model logged outside any run, a run created to hold it, so every model file lives in a run
and Shipyard's loaders, registry sources and lineage work on it unchanged."""

from __future__ import annotations

import uuid

from fastapi import Depends, Request
from starlette.responses import Response

from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.entities import (
    LOGGED_MODEL_GRAMMAR,
    LifecycleStage,
    LoggedModel,
    LoggedModelDataset,
    LoggedModelQuery,
    OrderBy,
    Run,
    RunStatus,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.filters import parse_filter
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import max_results, ok
from shipyard.server.mlflow_compat.experiments import view_type
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client
from shipyard.server.routers.artifacts import file_response
from shipyard.tracking.client import Client

HOLDER_TAG = "shipyard.mlflow.logged_model"


def _folder(c: Client, run_id: str, name: str, model_id: str) -> str:
    """The run folder for the model's files: its name when free, else made unique by its id."""
    try:
        folder = normalize_artifact_path(name)
    except InvalidInput:
        return model_id
    taken = {m.artifact_path for m in c.store.logged_models.list_for_run(run_id)}
    try:
        c.artifacts.walk(run_id, folder)
        taken.add(folder)
    except NotFound:
        pass
    return folder if folder not in taken else f"{folder}-{model_id}"


def _run_here(c: Client, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return c.get_run(run_id)
    except NotFound:
        return None


def create_logged_model(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    experiment_id = p.required("experiment_id")
    model_id = f"m-{uuid.uuid4().hex}"
    name = p.str("name") or model_id
    tags = p.key_values("tags")
    source_run_id = p.str("source_run_id")
    run = _run_here(c, source_run_id)
    if run is not None:
        if run.info.experiment_id != experiment_id:
            raise InvalidInput(f"run {source_run_id} belongs to experiment {run.info.experiment_id}, "
                               f"not {experiment_id}")
        holder = run.info.run_id
    else:
        # No source run, or one that is not a run of this server: MLflow stores the id as given,
        # so Shipyard does too, and keeps the files in a run made for the model.
        run = c.create_run(experiment_id, name, tags={HOLDER_TAG: model_id})
        c.set_terminated(run.info.run_id, RunStatus.FINISHED)
        holder = run.info.run_id
    model = c.store.logged_models.create(LoggedModel(
        model_id=model_id, experiment_id=experiment_id, name=name, run_id=holder,
        artifact_path=_folder(c, holder, name, model_id), source_run_id=source_run_id,
        model_type=p.str("model_type", default="") or "", tags=tags, params=p.key_values("params")))
    return ok({"model": wire.logged_model(model)})


def live_logged_model(c: Client, model_id: str) -> LoggedModel:
    """A logged model MLflow still serves: a deleted one is gone for the client (``NotFound``),
    though Shipyard keeps its row for the run and the versions made from it."""
    model = c.store.logged_models.get(model_id)
    if model.lifecycle_stage is LifecycleStage.DELETED:
        raise NotFound(f"logged model '{model_id}' does not exist")
    return model


def get_logged_model(model_id: str, request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    allow_deleted = (p.str("allow_deleted") or "false").lower() == "true"  # how MLflow reads the flag
    model = c.store.logged_models.get(model_id) if allow_deleted else live_logged_model(c, model_id)
    return ok({"model": wire.logged_model(model)})


def finalize_logged_model(model_id: str, request: Request, p: Params = Depends(mlflow_params)) -> Response:
    raw = p.required("status")
    status = wire.LOGGED_MODEL_STATUS_IN.get(raw)
    if status is None:
        raise InvalidInput(f"Invalid value {raw!r} for parameter 'status': expected one of "
                           + ", ".join(wire.LOGGED_MODEL_STATUS_IN))
    model = client(request).store.logged_models.update(model_id, status=status,
                                                       status_message=p.str("status_message"))
    return ok({"model": wire.logged_model(model)})


def delete_logged_model(model_id: str, request: Request) -> Response:
    client(request).store.logged_models.delete(model_id)
    return ok()


def set_logged_model_tags(model_id: str, request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).store.logged_models.set_tags(model_id, p.key_values("tags"))
    return ok()


def delete_logged_model_tag(model_id: str, tag_key: str, request: Request) -> Response:
    client(request).store.logged_models.delete_tag(model_id, tag_key)
    return ok()


def log_logged_model_params(model_id: str, request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).store.logged_models.log_params(model_id, p.key_values("params"))
    return ok()


def _order_by(p: Params) -> tuple[OrderBy, ...]:
    orders = []
    for item in p.list("order_by"):
        field = item.get("field_name") if isinstance(item, dict) else None
        if not isinstance(field, str):
            raise InvalidInput(f"Invalid order_by {item!r}: expected {{\"field_name\": ..., \"ascending\": ...}}")
        key = dict(LOGGED_MODEL_GRAMMAR.aliases).get(field, field)
        if key not in LOGGED_MODEL_GRAMMAR.attributes:
            raise InvalidInput(f"ordering logged models by {field!r} is not supported; order by one of "
                               + ", ".join(sorted(LOGGED_MODEL_GRAMMAR.attributes)))
        orders.append(OrderBy("attribute", key, item.get("ascending", True) is not False))
    return tuple(orders)


def _datasets(p: Params) -> tuple[LoggedModelDataset, ...]:
    found = []
    for item in p.list("datasets"):
        given = Params(item if isinstance(item, dict) else {"datasets": item})
        found.append(LoggedModelDataset(given.required("dataset_name"), given.str("dataset_digest")))
    return tuple(found)


def search_logged_models(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    query = LoggedModelQuery(tuple(str(e) for e in p.list("experiment_ids")),
                             parse_filter(p.str("filter"), LOGGED_MODEL_GRAMMAR), _order_by(p),
                             view_type(p, "view_type"), max_results(p, 100), p.str("page_token"), _datasets(p))
    page = client(request).store.logged_models.search(query)
    return ok({"models": [wire.logged_model(m) for m in page.items], "next_page_token": page.next_page_token})


def download_logged_model_artifact(model_id: str, request: Request,
                                   p: Params = Depends(mlflow_params)) -> Response:
    """One file of a logged model (the route MLflow's UI and ``artifacts/files`` callers use)."""
    path = p.str("artifact_file_path")
    if not path:
        raise InvalidInput('Request must include the "artifact_file_path" query parameter.', rule="bad_request")
    clean = normalize_artifact_path(path)
    c = client(request)
    model = live_logged_model(c, model_id)
    return file_response(c.artifacts, model.run_id, "/".join(x for x in (model.artifact_path, clean) if x))


def list_logged_model_artifacts(model_id: str, request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    model = c.store.logged_models.get(model_id)
    sub = p.str("artifact_directory_path", default="") or ""
    folder = "/".join(x for x in (model.artifact_path, normalize_artifact_path(sub, allow_root=True)) if x)
    try:
        entries = c.artifacts.list(model.run_id, folder)
    except NotFound:
        entries = []
    base = model.artifact_path + "/"
    files = [wire.compact({"path": e.path.removeprefix(base), "is_dir": e.is_dir, "file_size": e.size})
             for e in entries]
    return ok({"root_uri": wire.logged_model_artifact_uri(model), "files": files})
