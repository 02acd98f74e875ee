"""Artifact storage in two layers.

``BlobStorage`` is byte level (put/get/list/exists of keys) and is all a new backend writes.
``ArtifactStore`` is what the tracking domain uses: run artifacts by path, content-addressed
(SHA-256) underneath so identical files are stored once, with a per-run manifest of
path -> digest and size. ``CasArtifactStore`` implements it once over any ``BlobStorage``;
a remote implementation (through the server) implements it over HTTP.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from shipyard.entities import ArtifactEntry

__all__ = ["ArtifactStore", "BlobStorage"]


class BlobStorage(Protocol):
    """Keys are ``/``-separated relative strings that the layer above has validated."""

    def put_file(self, key: str, source: Path) -> None:
        """Store a copy of ``source`` under ``key`` atomically (readers never see half a file)."""
        ...

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for reading. Raises ``NotFound`` naming the key."""
        ...

    def exists(self, key: str) -> bool: ...

    def modified(self, key: str) -> float:
        """When ``key`` was last written or touched, in POSIX seconds: garbage collection spares
        unreferenced objects younger than a grace period, because their pointer may still be on
        its way. Raises ``NotFound`` when ``key`` is not a stored object."""
        ...

    def touch(self, key: str) -> bool:
        """Whether ``key`` exists, marking it as just used if it does. A write that re-uses stored
        content calls this instead of :meth:`exists`, so a concurrent sweep sees the content as
        young and spares it. A back end that cannot update the time cheaply returns
        ``exists(key)`` and says so (that sweep race then stays open)."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """Immediate children of the folder ``prefix`` as ``(name, is_dir)``; nothing when absent."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        ...


class ArtifactStore(Protocol):
    def log_file(self, run_id: str, local_path: Path, artifact_path: str) -> ArtifactEntry:
        """Store a file as ``artifact_path`` of the run. Raises ``InvalidInput`` for an absolute
        path, ``..``, or a path that conflicts with an existing file or folder; nothing is
        written then."""
        ...

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactEntry:
        """Like :meth:`log_file` for bytes in memory."""
        ...

    def list(self, run_id: str, path: str = "") -> list[ArtifactEntry]:
        """Immediate children of folder ``path`` (``""`` = the run's root), sorted by path.
        Entry paths are relative to the run root. Raises ``NotFound`` when ``path`` is
        neither the root nor an existing folder."""
        ...

    def walk(self, run_id: str, path: str = "") -> builtins.list[ArtifactEntry]:
        """Every file below ``path`` (recursively), sorted by path."""
        ...

    def open(self, run_id: str, artifact_path: str) -> BinaryIO:
        """Read one file. The digest is checked as the stream is consumed to its end;
        ``ArtifactCorrupted`` is raised when it does not match. Raises ``NotFound``."""
        ...

    def delete(self, run_id: str, artifact_path: str) -> None:
        """Remove a file, or a folder and everything below it, from the run's tree. Raises
        ``NotFound`` when there is nothing at ``artifact_path``. Stored content is kept (other
        paths and runs may share it)."""
        ...

    def close(self) -> None:
        """Release connections held by the store (nothing for local storage)."""
        ...

    def download(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        """Copy a file or a whole folder (``""`` = everything) into folder ``dest``; returns the
        local path of what was downloaded. Every digest is verified before a file appears at
        its final name. Raises ``NotFound`` and ``ArtifactCorrupted``."""
        ...
