"""Versioned datasets over the native API: log a version by content digest, list, read.

A thin adapter over :class:`~shipyard.tracking.datasets.DatasetService` (``client.datasets``).
Everything in the body is checked before the service is called, so a refused request writes
nothing: the name with the SDK's rule (``check_dataset_name``, the model name rule), the digest
as ``sha256:<64 hex>`` (after a table recipe's tag, e.g. ``t2:``), the kind by the schema,
schema and profile as finite JSON of bounded size, and a snapshot as ``runs:/<run_id>/<path>`` of
a run of this server (the shape rule of
:func:`shipyard.models.sources.check_version_source`, then the run must exist; the canonical
form is recorded). The user recorded is the service's principal (the request's), never a user
the client claims.

Dataset names cannot contain ``/`` (see ``check_dataset_name``), so ``{name}`` is one path segment.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import Path, Request
from starlette.responses import Response

from shipyard.errors import InvalidInput
from shipyard.models.sources import check_version_source
from shipyard.server import schemas
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.datasets import DatasetService
from shipyard.wire import dataset_version_to_wire

router = PrefixRouter(prefix="/api/v1/datasets", tags=["datasets"])

DatasetName = Annotated[str, Path(max_length=1000)]
Version = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]

MAX_DATASET_JSON = 1_000_000  # characters of JSON, each for schema and profile
_DIGEST = re.compile(r"(?:t[0-9]+:)?sha256:[0-9a-f]{64}")  # a table digest names its recipe (t2:...)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SNAPSHOT = "runs:/<run_id>/<path> of a run of this server (e.g. runs:/3f2a.../_shipyard/datasets/<name>/v1)"


def _datasets(request: Request) -> DatasetService:
    return client(request).datasets


def _digest(value: str) -> str:
    if not _DIGEST.fullmatch(value):
        shown = value if len(value) <= 100 else f"{value[:100]}..."
        raise InvalidInput(f"digest {shown!r} is not valid: expected sha256:<64 lowercase hexadecimal digits>, "
                           "optionally after a table recipe tag such as t2:",
                           field="digest")
    return value


def _source(value: str) -> str:
    if not value.strip() or _CONTROL.search(value):
        raise InvalidInput("source must be a non-blank path or description without control characters",
                           field="source")
    return value


def _bounded_json(field: str, value: Any) -> None:
    try:
        size = len(json.dumps(value, allow_nan=False, ensure_ascii=False))
    except ValueError:
        raise InvalidInput(f"{field} holds a non-finite number (NaN or infinity), which JSON cannot carry; "
                           "record it as null", field=field) from None
    if size > MAX_DATASET_JSON:
        raise InvalidInput(f"{field} is {size} characters of JSON; at most {MAX_DATASET_JSON} are allowed",
                           field=field)


def _snapshot(store: Store, uri: str | None) -> str | None:
    """The canonical ``runs:/`` form of ``uri``, whose run must exist (``NotFound`` naming it)."""
    if uri is None:
        return None
    try:
        run_id, path = check_version_source(uri)
    except InvalidInput as err:
        # Its message speaks of model sources; keep the reason, say what a snapshot must be.
        reason = err.message.partition(" is refused: ")[2].partition("; a source must be")[0] or err.message
        shown = uri if len(uri) <= 200 else f"{uri[:200]}..."
        raise InvalidInput(f"snapshot_uri {shown!r} is refused: {reason}; a snapshot must be {_SNAPSHOT}",
                           field="snapshot_uri") from None
    store.runs.get(run_id)  # NotFound naming the run
    return f"runs:/{run_id}/{path}"


@router.post("/{name}/versions", name="log_dataset_version",
             summary="Log a dataset version by content digest: 201 when new, 200 when it existed")
def log_dataset_version(name: DatasetName, body: schemas.LogDatasetVersion, request: Request) -> Response:
    shipyard = client(request)
    rules.check_dataset_name(name)  # the service checks it too; here so a bad name is the error reported first
    digest, source = _digest(body.digest), _source(body.source)
    _bounded_json("schema", body.schema_)
    _bounded_json("profile", body.profile)
    snapshot_uri = _snapshot(shipyard.store, body.snapshot_uri)  # last: it reads the store
    version, created = shipyard.datasets.log_version(
        name, digest=digest, source=source, kind=body.kind, num_rows=body.num_rows, size_bytes=body.size_bytes,
        schema=body.schema_, profile=body.profile, snapshot_uri=snapshot_uri, project=body.project)
    return json_response({"dataset_version": dataset_version_to_wire(version), "created": created},
                         201 if created else 200)


@router.get("", name="list_datasets", summary="The latest version of every dataset (of the projects given), by name")
def list_datasets(request: Request, projects: schemas.ProjectsQuery = None) -> Response:
    found = _datasets(request).list_datasets(projects=projects)
    return json_response({"datasets": [dataset_version_to_wire(v) for v in found]})


@router.get("/{name}/versions", name="list_dataset_versions", summary="Every version of a dataset, oldest first")
def list_dataset_versions(name: DatasetName, request: Request) -> Response:
    versions = _datasets(request).list_versions(name)
    return json_response({"dataset_versions": [dataset_version_to_wire(v) for v in versions]})


@router.get("/{name}/versions/{version}", name="get_dataset_version", summary="Get a dataset version")
def get_dataset_version(name: DatasetName, version: Version, request: Request) -> Response:
    return json_response(dataset_version_to_wire(_datasets(request).get_version(name, version)))
