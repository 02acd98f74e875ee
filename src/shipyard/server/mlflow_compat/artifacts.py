"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/…``) over the run artifact store.

The ``mlflow`` client addresses artifacts by the URIs this API hands out
(:mod:`~shipyard.server.mlflow_compat.wire`): ``<experiment>/<run_id>/artifacts/<path>`` for a
run's files and ``<experiment>/models/<model_id>/artifacts/<path>`` for a logged model's, which
Shipyard keeps as a folder of its run. Any other location is refused: the client never chooses
where bytes are stored. Paths go through the same normalisation, streaming and digest checks as
the native proxy (:mod:`shipyard.server.routers.artifacts`), whose helpers this reuses.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shipyard.artifacts.paths import new_artifact_path, normalize_artifact_path
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import ok
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client
from shipyard.server.routers.artifacts import Upload, check_writable, file_response, require_run
from shipyard.tracking.artifact_rules import check_artifact_delete, check_artifact_write
from shipyard.tracking.client import Client


@dataclass(frozen=True, slots=True)
class Location:
    """Where an MLflow artifact path lives: ``path`` inside run ``run_id``'s artifacts."""

    run_id: str
    path: str


def locate(shipyard: Client, raw: str, *, writable: bool = False) -> Location:
    """Map an MLflow artifact path to a run and a path in it (``NotFound`` for unknown runs and
    models, ``InvalidInput`` for anything that is not one of the two shapes or not safe; with
    ``writable``, ``RunNotActive`` when the run is deleted)."""
    clean = normalize_artifact_path(raw, allow_root=True)
    parts = clean.split("/") if clean else []
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        model = shipyard.store.logged_models.get(parts[2])
        if model.experiment_id != parts[0]:
            raise NotFound(f"experiment {parts[0]} has no logged model {parts[2]}")
        if writable:
            require_run(shipyard, model.run_id, writable=True)
        return Location(model.run_id, "/".join([model.artifact_path, *parts[4:]]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        info = shipyard.store.runs.get(parts[1]).info
        if info.experiment_id != parts[0]:
            raise NotFound(f"experiment {parts[0]} has no run {parts[1]}")
        if writable:
            check_writable(info)
        return Location(info.run_id, "/".join(parts[3:]))
    raise InvalidInput(f"artifact path {raw!r} is not one this server hands out: expected "
                       "<experiment_id>/<run_id>/artifacts/<path> or "
                       "<experiment_id>/models/<model_id>/artifacts/<path>")


def list_artifacts(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    shipyard = client(request)
    where = locate(shipyard, p.str("path", default="") or "")
    try:
        entries = shipyard.artifacts.list(where.run_id, where.path)
    except NotFound:
        entries = []  # MLflow lists an absent folder (and a file) as empty
    prefix = f"{where.path}/" if where.path else ""
    files = [wire.compact({"path": e.path.removeprefix(prefix), "is_dir": e.is_dir, "file_size": e.size})
             for e in entries]
    return ok({"files": files})


def download_artifact(artifact_path: str, request: Request) -> Response:
    shipyard = client(request)
    where = locate(shipyard, artifact_path)
    if not where.path:
        raise InvalidInput("name a file to download, not a run's or model's root")
    return file_response(shipyard.artifacts, where.run_id, where.path)


async def upload_artifact(artifact_path: str, request: Request) -> Response:
    shipyard = client(request)
    where = await run_in_threadpool(locate, shipyard, artifact_path, writable=True)
    if not where.path:
        raise InvalidInput("name the file to upload, not a run's or model's root")
    new_artifact_path(where.path)  # refuse a bad name before the body is read
    await run_in_threadpool(check_artifact_write, shipyard.store, shipyard.artifacts, where.run_id, where.path)
    upload = Upload()
    try:
        await upload.receive(request, where.path)
        await run_in_threadpool(upload.store, shipyard.artifacts, where.run_id, where.path)
    finally:
        upload.discard()
    return ok()


def delete_artifact(artifact_path: str, request: Request) -> Response:
    shipyard = client(request)
    where = locate(shipyard, artifact_path, writable=True)
    check_artifact_delete(shipyard.store, where.run_id)
    shipyard.artifacts.delete(where.run_id, where.path)
    return ok()
