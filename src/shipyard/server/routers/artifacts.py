"""The artifact proxy: list, download and upload a run's artifacts through the server.

The client never chooses where bytes are stored: every route reads or writes the server's own
artifact store (``client.artifacts``: a local folder, or ``s3://…`` through fsspec), and the URL
only names a run and an artifact path inside it.

Paths are made safe in one order: the framework percent-decodes the URL once, then
:func:`~shipyard.artifacts.normalize_artifact_path` canonicalises and validates (``..``, absolute
paths, backslashes, control characters, leftover escapes: 400); an upload's new name also goes
through :func:`~shipyard.artifacts.paths.new_artifact_path` (dots-only segments, ``;``, bytes that
were not UTF-8: 400). What it returns is contained by construction, and the storage layer checks
containment again below it.

Both directions stream, so a multi-gigabyte artifact never sits whole in the server's memory:

* **Upload** (``PUT``, ``application/octet-stream``): the body is hashed as it arrives and kept
  in memory up to 1 MiB, beyond that written to a temp file in 1 MiB writes; a digest that does
  not match ``X-Shipyard-Digest`` is a 400 and nothing is stored. Only a complete, verified body
  is logged.
* **Download** (``GET``): the blob is read through ``CasArtifactStore.open``, which checks the
  digest as it goes. The expected digest and size are sent up front (``X-Shipyard-Digest``,
  ``Content-Length``) so the client verifies too. A file of up to 1 MiB is read and verified
  before the answer starts, so a mismatch is a 500 ``ARTIFACT_CORRUPTED`` answer; a larger one
  streams, and on a mismatch the server stops before the last chunk and drops the connection.
  Either way a corrupt file is never delivered complete.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path as LocalPath
from typing import IO, Annotated, BinaryIO
from urllib.parse import quote

from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse

from shipyard.artifacts.paths import new_artifact_path, normalize_artifact_path
from shipyard.artifacts.protocol import ArtifactStore
from shipyard.entities import ArtifactEntry, LifecycleStage, RunInfo
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound, RunNotActive
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.tracking.artifact_rules import check_artifact_delete, check_artifact_write
from shipyard.tracking.client import Client
from shipyard.wire import artifact_to_wire

router = PrefixRouter(prefix="/api/v1/runs", tags=["artifacts"])
RunId = Annotated[str, Path(max_length=64)]
log = logging.getLogger("shipyard.server")

DIGEST_HEADER = "X-Shipyard-Digest"
OCTET_STREAM = "application/octet-stream"
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_CHUNK = 1 << 20


def require_run(shipyard: Client, run_id: str, *, writable: bool = False) -> None:
    """``NotFound`` for an unknown run; with ``writable``, ``RunNotActive`` for a deleted one."""
    info = shipyard.store.runs.get(run_id).info
    if writable:
        check_writable(info)


def check_writable(info: RunInfo) -> None:
    """``RunNotActive`` when the run's artifacts may not change (it is deleted)."""
    if info.lifecycle_stage is LifecycleStage.DELETED:
        raise RunNotActive(f"run '{info.run_id}' is deleted; restore it before changing its artifacts",
                           run_id=info.run_id)


@router.get("/{run_id}/artifacts", name="list_artifacts", summary="List a run's artifacts (one level or all)")
def list_artifacts(run_id: RunId, request: Request, path: Annotated[str, Query(max_length=4096)] = "",
                   recursive: bool = False) -> Response:
    folder = normalize_artifact_path(path, allow_root=True)
    shipyard = client(request)
    require_run(shipyard, run_id)
    store = shipyard.artifacts
    files = store.walk(run_id, folder) if recursive else store.list(run_id, folder)
    return json_response({"files": [artifact_to_wire(entry) for entry in files]})


def file_entry(store: ArtifactStore, run_id: str, path: str) -> ArtifactEntry:
    """The entry of file ``path`` (``walk`` of a file is that file alone, so this is cheap)."""
    found = store.walk(run_id, path)
    if len(found) != 1 or found[0].path != path or found[0].digest is None or found[0].size is None:
        raise NotFound(f"run {run_id} has no artifact file {path!r}", run_id=run_id, path=path)
    return found[0]


class DownloadAborted(Exception):
    """Raised mid-body on purpose: the only way an ASGI app can make the server drop a response
    whose headers are sent. Not a ``ShipyardError``, since no error response can follow."""


def verified_chunks(stream: BinaryIO, run_id: str, path: str) -> Iterator[bytes]:
    """The verified stream in 1 MiB pieces. ``ArtifactCorrupted`` surfaces here, before the last
    piece is sent; the connection is then dropped, so the client gets an incomplete body."""
    try:
        while chunk := stream.read(_CHUNK):
            yield chunk
    except ArtifactCorrupted as err:
        log.error("aborting the download of %r of run %s: %s", path, run_id, err.message)
        raise DownloadAborted(err.message) from err
    finally:
        stream.close()


def file_response(store: ArtifactStore, run_id: str, path: str) -> Response:
    """File ``path`` of run ``run_id`` with its digest and size up front: whole when it fits in
    one piece (read and verified before anything is sent, so a corrupt file is a proper error),
    otherwise streamed in verified pieces."""
    # Open first: a folder or missing path is NotFound here, before any walk. A path re-logged
    # between the two reads would make the client see a digest mismatch; it can simply retry.
    stream = store.open(run_id, path)
    try:
        entry = file_entry(store, run_id, path)
        name = quote(path.rsplit("/", 1)[-1], safe="")
        headers = {DIGEST_HEADER: str(entry.digest), "content-length": str(entry.size),
                   "content-disposition": f"attachment; filename*=UTF-8''{name}"}
        if entry.size is not None and entry.size <= _CHUNK:
            with stream:
                return Response(stream.read(), media_type=OCTET_STREAM, headers=headers)
    except BaseException:
        stream.close()
        raise
    return StreamingResponse(verified_chunks(stream, run_id, path), media_type=OCTET_STREAM, headers=headers)


@router.get("/{run_id}/artifacts/{path:path}", name="download_artifact", summary="Download one artifact file")
def download_artifact(run_id: RunId, path: str, request: Request) -> Response:
    clean = normalize_artifact_path(path)
    shipyard = client(request)
    require_run(shipyard, run_id)
    return file_response(shipyard.artifacts, run_id, clean)


def _expected_digest(request: Request) -> str | None:
    header = request.headers.get(DIGEST_HEADER)
    if header is None:
        return None
    match = _DIGEST.fullmatch(header.strip().lower())
    if match is None:
        raise InvalidInput(f"invalid {DIGEST_HEADER} header {header[:100]!r}: expected sha256:<64 hex digits>")
    return match.group(1)


def _check_media_type(request: Request) -> None:
    given = request.headers.get("content-type")
    if given is not None and given.split(";")[0].strip().lower() != OCTET_STREAM:
        raise HTTPException(415, f"send artifact bytes as {OCTET_STREAM}, not {given[:100]}")


class Upload:
    """A received body: kept in memory up to 1 MiB (most artifacts: one thread-pool call to
    store it), spooled to a temp file beyond that, so a large upload never sits in memory."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self.size = 0
        self._pending = bytearray()
        self._spool: IO[bytes] | None = None

    @property
    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def _write(self, data: bytes | bytearray) -> None:
        if self._spool is None:
            self._spool = tempfile.NamedTemporaryFile(prefix="shipyard-upload-", delete=False)  # noqa: SIM115
        self._spool.write(data)

    async def receive(self, request: Request, path: str) -> None:
        try:
            async for chunk in request.stream():
                self._digest.update(chunk)
                self._pending += chunk
                self.size += len(chunk)
                if len(self._pending) > _CHUNK:
                    data, self._pending = self._pending, bytearray()
                    await run_in_threadpool(self._write, data)
        except ClientDisconnect:
            raise InvalidInput(f"the upload of {path!r} was interrupted after {self.size} bytes; nothing stored",
                               path=path) from None

    def store(self, artifacts: ArtifactStore, run_id: str, path: str) -> ArtifactEntry:
        """Log the body as ``path`` of run ``run_id`` (call off the event loop)."""
        if self._spool is None:
            return artifacts.log_bytes(run_id, bytes(self._pending), path)
        self._write(self._pending)
        self._spool.close()
        return artifacts.log_file(run_id, LocalPath(self._spool.name), path)

    def discard(self) -> None:
        if self._spool is not None:
            self._spool.close()
            LocalPath(self._spool.name).unlink(missing_ok=True)


# The body is read as a stream, not parsed, so FastAPI cannot infer it; declare it for the schema.
_RAW_BODY = {"requestBody": {"required": True, "content": {OCTET_STREAM: {"schema": {"type": "string",
                                                                                     "format": "binary"}}}}}


@router.put("/{run_id}/artifacts/{path:path}", name="upload_artifact", summary="Upload one artifact file",
            openapi_extra=_RAW_BODY)
async def upload_artifact(run_id: RunId, path: str, request: Request) -> Response:
    clean = new_artifact_path(path)  # before the body is read; the artifact store checks it again
    expected = _expected_digest(request)
    _check_media_type(request)
    shipyard = client(request)
    await run_in_threadpool(check_artifact_write, shipyard.store, shipyard.artifacts, run_id, clean)
    upload = Upload()
    try:
        await upload.receive(request, clean)
        if expected is not None and upload.hexdigest != expected:
            raise InvalidInput(f"upload of {clean!r} does not match its {DIGEST_HEADER}: expected "
                               f"sha256:{expected}, received sha256:{upload.hexdigest} ({upload.size} bytes); "
                               "nothing stored", path=clean)
        entry = await run_in_threadpool(upload.store, shipyard.artifacts, run_id, clean)
    finally:
        upload.discard()
    return json_response(artifact_to_wire(entry))


@router.delete("/{run_id}/artifacts/{path:path}", name="delete_artifact",
               summary="Delete an artifact file or folder (its stored content is kept for other paths)")
def delete_artifact(run_id: RunId, path: str, request: Request) -> Response:
    clean = normalize_artifact_path(path)
    shipyard = client(request)
    check_artifact_delete(shipyard.store, run_id)
    shipyard.artifacts.delete(run_id, clean)
    return json_response(None)
