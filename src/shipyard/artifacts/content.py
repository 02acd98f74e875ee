"""Content addressing shared by the artifact stores and the sweep: blob keys, pointers, digests.

A run's artifact path holds a small JSON pointer (``{"digest": "sha256:<hex>", "size": N}``) to a
blob stored once under ``blobs/sha256/<2 hex>/<64 hex>``. Reading (:class:`VerifyingReader`),
uploading through a server and garbage collection must agree on what a valid pointer and a valid
run id are, so those rules live here once.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.errors import ArtifactCorrupted, InvalidInput
from shipyard.hashing import sha256_file

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["CHUNK", "HEX", "MAX_POINTER", "Pointer", "VerifyingReader", "blob_key", "check_run_id", "corrupted",
           "fingerprint", "hash_file", "hash_stream", "is_valid_name", "parse_pointer"]

CHUNK = 1 << 20
RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
HEX = re.compile(r"[0-9a-f]{64}")
MAX_POINTER = 4096


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidInput(
            f"invalid run id {run_id!r}: expected 1-64 characters from [A-Za-z0-9_-]", run_id=repr(run_id)
        )
    return run_id


def blob_key(hexdigest: str) -> str:
    return f"blobs/sha256/{hexdigest[:2]}/{hexdigest}"


def hash_stream(stream: BinaryIO) -> tuple[str, int]:
    """SHA-256 and size of a stream, read in 1 MiB chunks (never the whole file at once)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


@dataclass(frozen=True, slots=True)
class Pointer:
    """What a run's artifact path points to."""

    hexdigest: str
    size: int

    @property
    def digest(self) -> str:
        return f"sha256:{self.hexdigest}"

    def to_bytes(self) -> bytes:
        return json.dumps({"digest": self.digest, "size": self.size}, sort_keys=True).encode()


class VerifyingReader(io.RawIOBase):
    """Passes bytes through while hashing them; once the logged size is reached and at end of
    stream the digest and size must match the pointer, else ``ArtifactCorrupted``."""

    def __init__(self, raw: BinaryIO, pointer: Pointer, run_id: str, path: str) -> None:
        super().__init__()
        self._raw = raw
        self._pointer = pointer
        self._run_id = run_id
        self._path = path
        self._hash = hashlib.sha256()
        self._size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        view[: len(data)] = data
        self._hash.update(data)
        self._size += len(data)
        # Check once all expected bytes are in (a reader that stops at ``size`` is covered),
        # again at end of stream, and as soon as there are too many.
        if self._size >= self._pointer.size or (not data and len(view)):
            self._verify()
        return len(data)

    def _verify(self) -> None:
        actual = self._hash.hexdigest()
        if self._size != self._pointer.size or actual != self._pointer.hexdigest:
            raise corrupted(
                self._run_id,
                self._path,
                f"expected {self._pointer.digest} ({self._pointer.size} bytes), "
                f"read sha256:{actual} ({self._size} bytes so far)",
            )

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def is_valid_name(name: str) -> bool:
    """A stored child name must be one artifact path segment that normalises to itself."""
    try:
        return bool(name) and "/" not in name and normalize_artifact_path(name) == name
    except InvalidInput:
        return False


def hash_file(source: Path) -> tuple[str, int]:
    """SHA-256 and size of a local file, hashed by :func:`shipyard.hashing.sha256_file`."""
    try:
        hexdigest, size, _ = sha256_file(source)
    except OSError as err:
        raise InvalidInput(f"cannot read {str(source)!r}: {err.strerror or err}", path=str(source)) from None
    return hexdigest, size


def fingerprint(source: Path) -> tuple[int, int, int] | None:
    """What tells us a local file changed between hashing and copying (``None``: it is gone)."""
    try:
        st = source.stat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


def parse_pointer(raw: bytes) -> Pointer | None:
    """The pointer stored as ``raw`` (read up to ``MAX_POINTER + 1`` bytes), ``None`` when it is
    not one. Shared with the sweep, so reading and garbage collection agree on what a reference is."""
    try:
        doc = json.loads(raw)
        algo, _, hexdigest = doc["digest"].partition(":")
        size = doc["size"]
        if algo != "sha256" or not HEX.fullmatch(hexdigest) or type(size) is not int or size < 0:
            return None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return Pointer(hexdigest, size)


def corrupted(run_id: str, path: str, why: str) -> ArtifactCorrupted:
    return ArtifactCorrupted(
        f"artifact {path!r} of run {run_id} is corrupted: {why}", run_id=run_id, path=path
    )
