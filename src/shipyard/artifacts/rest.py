"""``RestArtifactStore``: the ArtifactStore protocol through a Shipyard server's artifact proxy.

The server decides where bytes are stored (its own artifact store); this client only names a run
and an artifact path, so it needs no storage credentials. Both directions stream in 1 MiB chunks,
so memory stays flat whatever the file size:

* ``log_file`` hashes the file in a first streaming pass, then sends it with the digest in
  ``X-Shipyard-Digest``; the server refuses (400) a body that does not match, so a file that
  changed in between is never logged under the wrong digest.
* ``open`` and ``download`` check the bytes against the digest the server sends up front (and
  the one listed, for ``download``); ``ArtifactCorrupted`` when they differ or when the server
  cut the body short, which is how it aborts a download whose stored bytes failed its own check.

Requests, retries and errors follow :class:`~shipyard.store.rest.RestStore`: connect errors, 429
and 503 are retried with backoff (every artifact request is safe to repeat: uploads are ``PUT``
of one content to one path), and error bodies come back as the ``shipyard.errors`` class the
server raised.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import httpx

from shipyard.artifacts.cas import CasArtifactStore
from shipyard.artifacts.content import CHUNK, Pointer, VerifyingReader, check_run_id, corrupted, hash_file
from shipyard.artifacts.paths import new_artifact_path, normalize_artifact_path
from shipyard.entities import ArtifactEntry
from shipyard.errors import InvalidInput, ShipyardError, StoreUnavailable
from shipyard.store.http import API, BACKOFF, RETRY_STATUS, HttpClient, response_body, retry_after, segment, url_path
from shipyard.wire import artifact_from_wire

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["RestArtifactStore", "open_rest_store"]

DIGEST_HEADER = "X-Shipyard-Digest"
# The server answers an upload only once the whole file is stored (hashed, then copied into its
# store, possibly a multipart upload to S3), so waiting for that answer may take long.
_UPLOAD_READ_TIMEOUT = 3600.0


def _file_chunks(source: Path, hexdigest: str, size: int, path: str) -> Iterator[bytes]:
    """The file in 1 MiB chunks, exactly ``size`` bytes. The last chunk is held back until the
    file is known to still have the digest and size measured before sending; if it changed
    meanwhile, ``InvalidInput`` is raised instead, the body stays incomplete and nothing is logged."""
    digest = hashlib.sha256()
    sent = 0
    with open(source, "rb") as stream:
        while sent < size:
            chunk = stream.read(min(CHUNK, size - sent))
            if not chunk:
                break
            digest.update(chunk)
            sent += len(chunk)
            if sent < size:
                yield chunk
        unchanged = sent == size and not stream.read(1) and digest.hexdigest() == hexdigest
    if not unchanged:
        raise InvalidInput(f"{str(source)!r} changed while it was being logged as {path!r}; nothing logged",
                           path=path)
    if size:
        yield chunk


class _ResponseStream(io.RawIOBase):
    """A streamed ``httpx.Response`` as a raw binary stream; transport failures mid-body become
    Shipyard errors (a body cut short by the server is how it reports corruption)."""

    def __init__(self, response: httpx.Response, run_id: str, path: str, size: int) -> None:
        super().__init__()
        self._response = response
        self._chunks = response.iter_bytes(CHUNK)
        self._leftover = b""
        self._run_id, self._path, self._size, self._read = run_id, path, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if not self._leftover:
            try:
                self._leftover = next(self._chunks, b"")
            except httpx.RemoteProtocolError:
                raise corrupted(self._run_id, self._path,
                                 f"the server stopped sending after {self._read} of {self._size} bytes "
                                 "(it aborts downloads whose stored bytes fail their digest check)") from None
            except httpx.TransportError as err:
                raise StoreUnavailable(f"the download of {self._path!r} of run {self._run_id} was interrupted "
                                       f"after {self._read} of {self._size} bytes: {err}") from err
        n = min(len(view), len(self._leftover))
        view[:n] = self._leftover[:n]
        self._leftover = self._leftover[n:]
        self._read += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
        super().close()


class RestArtifactStore:
    """The artifacts of the Shipyard server at ``base_url`` (``http://host:port``).

    ``transport`` is an optional ``httpx`` transport (tests pass
    :class:`shipyard.testing.ASGITransport`); one passed in stays its owner's to close.
    ``token`` and ``project`` are sent as :class:`~shipyard.store.rest.RestStore` sends them.
    """

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None, *, timeout: float = 30.0,
                 retries: int = 5, token: str | None = None, project: str | None = None) -> None:
        self._http = HttpClient(base_url, transport, timeout, retries, token=token, project=project)
        self._owns_transport = transport is None
        self._timeout = timeout

    @property
    def uri(self) -> str:
        return self._http.base_url

    def __repr__(self) -> str:
        return f"RestArtifactStore({self.uri!r})"

    def close(self) -> None:
        """Release the connection pool (an injected transport is left to its owner)."""
        if self._owns_transport:
            self._http.close()

    # -- HTTP --------------------------------------------------------------------------------

    @staticmethod
    def _file_url(run_id: str, path: str) -> str:
        return f"{API}/runs/{segment(run_id, 'run')}/artifacts/{url_path(path)}"

    def _send(self, method: str, url: str, *, content: Callable[[], Any] | None = None,
              headers: dict[str, str] | None = None, stream: bool = False,
              timeout: httpx.Timeout | None = None) -> httpx.Response:
        """One request with RestStore's retry policy; every artifact request may be repeated, so a
        fresh body (``content()``) is sent on each attempt. Error responses raise their class."""
        client = self._http.client
        for attempt in range(self._http.retries + 1):
            last = attempt == self._http.retries
            request = client.build_request(method, url, content=content() if content else None, headers=headers,
                                           timeout=timeout or client.timeout)
            try:
                response = client.send(request, stream=stream)
            except httpx.TransportError as exc:
                if last:
                    raise StoreUnavailable(f"cannot reach the Shipyard server at {self.uri}: "
                                           f"{type(exc).__name__}: {exc}") from exc
                time.sleep(BACKOFF[attempt])
                continue
            if response.status_code in RETRY_STATUS and not last:
                response.close()
                time.sleep(retry_after(response) or BACKOFF[attempt])
                continue
            if not response.is_success:
                response.read()
                response.close()
                response_body(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _put(self, run_id: str, path: str, content: Callable[[], Any], size: int, hexdigest: str) -> ArtifactEntry:
        headers = {"content-type": "application/octet-stream", "content-length": str(size),
                   DIGEST_HEADER: f"sha256:{hexdigest}"}
        timeout = httpx.Timeout(self._timeout, read=max(self._timeout, _UPLOAD_READ_TIMEOUT))
        response = self._send("PUT", self._file_url(run_id, path), content=content, headers=headers,
                              timeout=timeout)
        return artifact_from_wire(response_body(response))

    # -- writing -----------------------------------------------------------------------------

    def log_file(self, run_id: str, local_path: Path, artifact_path: str) -> ArtifactEntry:
        """Upload a file as ``artifact_path``, streamed; the server verifies the digest on arrival."""
        run_id = check_run_id(run_id)
        path = new_artifact_path(artifact_path)
        source = Path(local_path)
        if not source.is_file():
            raise InvalidInput(f"cannot log {str(source)!r}: not an existing file", path=str(source))
        hexdigest, size = hash_file(source)
        return self._put(run_id, path, lambda: _file_chunks(source, hexdigest, size, path), size, hexdigest)

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactEntry:
        """Like :meth:`log_file` for bytes in memory."""
        run_id = check_run_id(run_id)
        path = new_artifact_path(artifact_path)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"artifact {path!r}: data must be bytes, not {type(data).__name__}", path=path)
        data = bytes(data)
        return self._put(run_id, path, lambda: data, len(data), hashlib.sha256(data).hexdigest())

    def delete(self, run_id: str, artifact_path: str) -> None:
        """Remove file or folder ``artifact_path`` from the run's tree (``NotFound`` when absent)."""
        path = normalize_artifact_path(artifact_path)
        self._send("DELETE", self._file_url(check_run_id(run_id), path)).close()

    # -- reading -----------------------------------------------------------------------------

    def _files(self, run_id: str, path: str, *, recursive: bool) -> builtins.list[ArtifactEntry]:
        body = self._http.call("GET", f"{API}/runs/{segment(run_id, 'run')}/artifacts",
                               params={"path": path, "recursive": "true" if recursive else "false"})
        return [artifact_from_wire(entry) for entry in body["files"]]

    def list(self, run_id: str, path: str = "") -> builtins.list[ArtifactEntry]:
        """Immediate children of folder ``path`` (``""`` = root). ``NotFound`` when ``path`` is
        a file or absent."""
        return self._files(check_run_id(run_id), normalize_artifact_path(path, allow_root=True), recursive=False)

    def walk(self, run_id: str, path: str = "") -> builtins.list[ArtifactEntry]:
        """Every file below folder ``path``, sorted; a file path yields just that file."""
        return self._files(check_run_id(run_id), normalize_artifact_path(path, allow_root=True), recursive=True)

    def _walk(self, run_id: str, path: str) -> tuple[bool, builtins.list[ArtifactEntry]]:
        """``(is_file, files)`` as :meth:`CasArtifactStore.download` expects it (a folder cannot
        hold a file whose path is the folder's own)."""
        files = self._files(run_id, path, recursive=True)
        return bool(path) and len(files) == 1 and files[0].path == path, files

    def _open_verified(self, run_id: str, path: str, pointer: Pointer | None = None) -> VerifyingReader:
        """Stream ``path``, checked against ``pointer`` (from a listing) or, without one, against
        the digest and size the server announces."""
        response = self._send("GET", self._file_url(run_id, path), stream=True)
        try:
            announced = response.headers.get(DIGEST_HEADER, "")
            length = response.headers.get("content-length", "")
            if not announced.startswith("sha256:") or not length.isdigit():
                raise ShipyardError(f"the server sent {path!r} of run {run_id} without its digest and size; "
                                    "it cannot be verified")
            sent = Pointer(announced.removeprefix("sha256:"), int(length))
            if pointer is not None and sent != pointer:
                raise corrupted(run_id, path, f"listed as {pointer.digest} ({pointer.size} bytes) but served "
                                               f"as {sent.digest} ({sent.size} bytes); if it was just re-logged, "
                                               "retry")
        except BaseException:
            response.close()
            raise
        # Blocking, so its read() returns bytes, never RawIOBase's None: it reads as a BinaryIO.
        stream = cast(BinaryIO, _ResponseStream(response, run_id, path, sent.size))
        return VerifyingReader(stream, sent, run_id, path)

    def open(self, run_id: str, artifact_path: str) -> BinaryIO:
        """A binary stream of the file; ``ArtifactCorrupted`` when, read to its end, the bytes do
        not match the digest. ``NotFound`` when there is no such file."""
        run_id = check_run_id(run_id)
        path = normalize_artifact_path(artifact_path)
        return io.BufferedReader(self._open_verified(run_id, path), buffer_size=CHUNK)

    # ``download`` is CasArtifactStore's own, not a copy: same layout (file -> dest/<name>,
    # folder -> dest/<name>/…), and each file goes to a temp name, is verified, then renamed.
    # It needs only ``_walk`` and ``_open_verified``, which this class provides over HTTP.
    download = CasArtifactStore.download
    _fetch = CasArtifactStore._fetch
    _make_dir = staticmethod(CasArtifactStore._make_dir)


def open_rest_store(uri: str) -> RestArtifactStore:
    """Registry factory: ``http(s)://host:port`` of a Shipyard server -> its artifact proxy."""
    return RestArtifactStore(uri)
