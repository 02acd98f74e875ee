"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/artifacts/…``) over the run artifact store.

The ``mlflow`` client addresses artifacts by the URIs this API hands out
(:mod:`~shipyard.server.mlflow_compat.wire`): ``<experiment>/<run_id>/artifacts/<path>`` for a
run's files and ``<experiment>/models/<model_id>/artifacts/<path>`` for a logged model's, which
Shipyard keeps as a folder of its run. Any other location is refused: the client never chooses
where bytes are stored. Paths go through the same normalisation, streaming and digest checks as
the native proxy (:mod:`shipyard.server.routers.artifacts`), whose helpers this reuses.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import ok
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client
from shipyard.server.routers.artifacts import file_entry, receive_to_file, require_run, verified_chunks
from shipyard.tracking.client import Client


@dataclass(frozen=True, slots=True)
class Location:
    """Where an MLflow artifact path lives: ``path`` inside run ``run_id``'s artifacts."""

    run_id: str
    path: str


def locate(shipyard: Client, raw: str) -> Location:
    """Map an MLflow artifact path to a run and a path in it (``NotFound`` for unknown runs and
    models, ``InvalidInput`` for anything that is not one of the two shapes or not safe)."""
    clean = normalize_artifact_path(raw, allow_root=True)
    parts = clean.split("/") if clean else []
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        model = shipyard.store.logged_models.get(parts[2])
        if model.experiment_id != parts[0]:
            raise NotFound(f"experiment {parts[0]} has no logged model {parts[2]}")
        return Location(model.run_id, "/".join([model.artifact_path, *parts[4:]]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        run = shipyard.store.runs.get(parts[1])
        if run.info.experiment_id != parts[0]:
            raise NotFound(f"experiment {parts[0]} has no run {parts[1]}")
        return Location(run.info.run_id, "/".join(parts[3:]))
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
    stream = shipyard.artifacts.open(where.run_id, where.path)
    try:
        entry = file_entry(shipyard.artifacts, where.run_id, where.path)
    except BaseException:
        stream.close()
        raise
    return StreamingResponse(verified_chunks(stream, where.run_id, where.path), media_type="application/octet-stream",
                             headers={"content-length": str(entry.size)})


async def upload_artifact(artifact_path: str, request: Request) -> Response:
    shipyard = client(request)
    where = await run_in_threadpool(locate, shipyard, artifact_path)
    if not where.path:
        raise InvalidInput("name the file to upload, not a run's or model's root")
    await run_in_threadpool(require_run, shipyard, where.run_id, writable=True)
    fd, name = tempfile.mkstemp(prefix="shipyard-upload-")
    spool = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            await receive_to_file(request, out, where.path)
        await run_in_threadpool(shipyard.artifacts.log_file, where.run_id, spool, where.path)
    finally:
        spool.unlink(missing_ok=True)
    return ok()


def delete_artifact(artifact_path: str, request: Request) -> Response:
    shipyard = client(request)
    where = locate(shipyard, artifact_path)
    require_run(shipyard, where.run_id, writable=True)
    shipyard.artifacts.delete(where.run_id, where.path)
    return ok()
