"""``CasArtifactStore``: run artifacts, content-addressed, over any ``BlobStorage``.

Layout of the keys it writes::

    blobs/sha256/<first 2 hex>/<64 hex>        the bytes, stored once per distinct content
    runs/<run_id>/files/<artifact path>        a pointer: {"digest": "sha256:<hex>", "size": N}

Why one pointer object per artifact rather than one manifest file per run: writing a pointer is
a single atomic put, so concurrent writers of different paths never lose each other's entries
(a shared manifest would need read-modify-write and a lock that object stores do not offer).
The folder structure of the pointers *is* the run's tree, so listing a folder is listing keys.

Digests are checked on every read: ``open`` verifies while the stream is consumed, and
``download`` verifies each file before it appears at its final name.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from shipyard.artifacts.content import (
    CHUNK,
    MAX_POINTER,
    Pointer,
    VerifyingReader,
    blob_key,
    check_run_id,
    corrupted,
    fingerprint,
    hash_file,
    hash_stream,
    is_valid_name,
    parse_pointer,
)
from shipyard.artifacts.paths import new_artifact_path, normalize_artifact_path
from shipyard.artifacts.protocol import BlobStorage
from shipyard.entities import ArtifactEntry
from shipyard.errors import InvalidInput, NotFound, ShipyardError

if TYPE_CHECKING:
    pass

__all__ = ["CasArtifactStore"]

class CasArtifactStore:
    """``ArtifactStore`` over a ``BlobStorage``; see the module docstring for the layout."""

    def __init__(self, storage: BlobStorage) -> None:
        self._storage = storage

    def __repr__(self) -> str:
        return f"CasArtifactStore({self._storage!r})"

    @property
    def storage(self) -> BlobStorage:
        """The byte-level storage underneath (``shipyard gc`` sweeps it)."""
        return self._storage

    def close(self) -> None:
        """Nothing to release: byte-level storage opens what it needs per call."""

    # -- keys and pointers -------------------------------------------------------------------

    @staticmethod
    def _files_key(run_id: str, path: str) -> str:
        return f"runs/{run_id}/files/{path}" if path else f"runs/{run_id}/files"

    def _read_pointer(self, run_id: str, path: str) -> Pointer:
        try:
            stream = self._storage.open(self._files_key(run_id, path))
        except NotFound:
            raise NotFound(f"run {run_id} has no artifact {path!r}", run_id=run_id, path=path) from None
        with stream:
            raw = stream.read(MAX_POINTER + 1)
        pointer = parse_pointer(raw)
        if pointer is None:
            raise corrupted(run_id, path, "its manifest entry is unreadable")
        return pointer

    def _entry(self, run_id: str, path: str) -> ArtifactEntry:
        pointer = self._read_pointer(run_id, path)
        return ArtifactEntry(path=path, is_dir=False, size=pointer.size, digest=pointer.digest)

    def _children(self, run_id: str, path: str) -> builtins.list[ArtifactEntry]:
        entries = []
        for name, is_dir in self._storage.list(self._files_key(run_id, path)):
            child = f"{path}/{name}" if path else name
            if not is_valid_name(name):
                raise corrupted(run_id, child, "the stored name is not a valid artifact path")
            entries.append(ArtifactEntry(path=child, is_dir=True) if is_dir else self._entry(run_id, child))
        return sorted(entries, key=lambda entry: entry.path)

    # -- writing -----------------------------------------------------------------------------

    def _check_conflicts(self, run_id: str, path: str) -> None:
        """A file may not sit where a folder is, nor a folder where a file is. Checked before
        anything is written (object stores would happily keep both ``a`` and ``a/b``)."""
        segments = path.split("/")
        for depth in range(1, len(segments)):
            parent = "/".join(segments[:depth])
            if self._storage.exists(self._files_key(run_id, parent)):
                raise InvalidInput(
                    f"cannot log {path!r} in run {run_id}: {parent!r} is already a file",
                    run_id=run_id,
                    path=path,
                    conflict=parent,
                )
        if next(iter(self._storage.list(self._files_key(run_id, path))), None) is not None:
            raise InvalidInput(
                f"cannot log {path!r} in run {run_id}: {path + '/'!r} is already a folder",
                run_id=run_id,
                path=path,
                conflict=path + "/",
            )

    def _write_pointer(self, run_id: str, path: str, pointer: Pointer) -> ArtifactEntry:
        self._storage.put_bytes(self._files_key(run_id, path), pointer.to_bytes())
        return ArtifactEntry(path=path, is_dir=False, size=pointer.size, digest=pointer.digest)

    def log_file(self, run_id: str, local_path: Path, artifact_path: str) -> ArtifactEntry:
        """Store a file as ``artifact_path``; identical content is stored once. The file is hashed,
        then copied; if it changed meanwhile and the copy no longer matches, nothing is logged."""
        run_id = check_run_id(run_id)
        path = new_artifact_path(artifact_path)
        source = Path(local_path)
        if not source.is_file():
            raise InvalidInput(f"cannot log {str(source)!r}: not an existing file", path=str(source))
        self._check_conflicts(run_id, path)
        before = fingerprint(source)
        hexdigest, size = hash_file(source)
        key = blob_key(hexdigest)
        # ``touch``, not ``exists``: re-used content becomes young, so a concurrent sweep spares it.
        if not self._storage.touch(key):
            self._storage.put_file(key, source)
            if fingerprint(source) != before:
                # Rare: re-read what was stored, keep it only if it is what was hashed.
                with self._storage.open(key) as stored:
                    intact = hash_stream(stored) == (hexdigest, size)
                if not intact:
                    self._storage.delete(key)
                    raise InvalidInput(
                        f"{str(source)!r} changed while it was being logged as {path!r}; nothing logged",
                        path=path,
                    )
        return self._write_pointer(run_id, path, Pointer(hexdigest, size))

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str) -> ArtifactEntry:
        """Like :meth:`log_file` for bytes in memory."""
        run_id = check_run_id(run_id)
        path = new_artifact_path(artifact_path)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidInput(f"artifact {path!r}: data must be bytes, not {type(data).__name__}", path=path)
        data = bytes(data)
        self._check_conflicts(run_id, path)
        pointer = Pointer(hashlib.sha256(data).hexdigest(), len(data))
        key = blob_key(pointer.hexdigest)
        if not self._storage.touch(key):  # see log_file
            self._storage.put_bytes(key, data)
        return self._write_pointer(run_id, path, pointer)

    def delete(self, run_id: str, artifact_path: str) -> None:
        """Remove file or folder ``artifact_path`` from the run's tree (``NotFound`` when absent).
        Only pointers go: a blob may back other paths and runs, and is never rewritten."""
        run_id = check_run_id(run_id)
        path = normalize_artifact_path(artifact_path)
        for entry in self._walk(run_id, path)[1]:
            self._storage.delete(self._files_key(run_id, entry.path))

    # -- reading -----------------------------------------------------------------------------

    def list(self, run_id: str, path: str = "") -> builtins.list[ArtifactEntry]:
        """Immediate children of folder ``path`` (``""`` = root, empty when nothing is logged).
        ``NotFound`` when ``path`` is a file or absent."""
        run_id = check_run_id(run_id)
        path = normalize_artifact_path(path, allow_root=True)
        entries = self._children(run_id, path)
        if path and not entries:
            raise NotFound(f"run {run_id} has no artifact folder {path!r}", run_id=run_id, path=path)
        return entries

    def _walk(self, run_id: str, path: str) -> tuple[bool, builtins.list[ArtifactEntry]]:
        """``(is_file, files)``: the file itself, or every file below the folder."""
        if path and self._storage.exists(self._files_key(run_id, path)):
            return True, [self._entry(run_id, path)]
        files: builtins.list[ArtifactEntry] = []
        pending = [self.list(run_id, path)]
        while pending:
            for entry in pending.pop():
                if entry.is_dir:
                    pending.append(self._children(run_id, entry.path))
                else:
                    files.append(entry)
        return False, sorted(files, key=lambda entry: entry.path)

    def walk(self, run_id: str, path: str = "") -> builtins.list[ArtifactEntry]:
        """Every file below folder ``path``, sorted; a file path yields just that file.
        ``NotFound`` when ``path`` is neither."""
        return self._walk(check_run_id(run_id), normalize_artifact_path(path, allow_root=True))[1]

    def _open_verified(self, run_id: str, path: str, pointer: Pointer) -> VerifyingReader:
        try:
            raw = self._storage.open(blob_key(pointer.hexdigest))
        except NotFound:
            raise corrupted(run_id, path, f"its content {pointer.digest} is missing") from None
        return VerifyingReader(raw, pointer, run_id, path)

    def open(self, run_id: str, artifact_path: str) -> BinaryIO:
        """A binary stream of the file; ``ArtifactCorrupted`` when, read to its end, the bytes do
        not match the digest logged. ``NotFound`` when there is no such file."""
        run_id = check_run_id(run_id)
        path = normalize_artifact_path(artifact_path)
        reader = self._open_verified(run_id, path, self._read_pointer(run_id, path))
        return io.BufferedReader(reader, buffer_size=CHUNK)

    def download(self, run_id: str, artifact_path: str, dest: Path) -> Path:
        """Copy a file to ``dest/<basename>`` or a folder to ``dest/<basename>/…`` (``""``: the
        whole tree into ``dest``), returning that path. Each file is written to a temp name
        beside its target, verified, then renamed; a corrupted file never reaches its name."""
        run_id = check_run_id(run_id)
        path = normalize_artifact_path(artifact_path, allow_root=True)
        is_file, files = self._walk(run_id, path)
        base = Path(dest) / path.rsplit("/", 1)[-1] if path else Path(dest)
        if is_file:
            self._fetch(run_id, files[0], base)
            return base
        self._make_dir(base, path)
        for entry in files:
            self._fetch(run_id, entry, base / entry.path[len(path) :].lstrip("/"))
        return base

    @staticmethod
    def _make_dir(folder: Path, path: str) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInput(
                f"cannot download {path!r} to {str(folder)!r}: a file is in the way", path=path
            ) from None
        except OSError as err:
            raise ShipyardError(f"cannot create {str(folder)!r}: {err}", path=path) from err

    def _fetch(self, run_id: str, entry: ArtifactEntry, target: Path) -> None:
        if entry.digest is None or entry.size is None:  # cannot happen: walk yields files only
            raise ShipyardError(f"artifact {entry.path!r} has no digest to verify against")
        pointer = Pointer(entry.digest.removeprefix("sha256:"), entry.size)
        self._make_dir(target.parent, entry.path)
        tmp = target.parent / f".shipyard-download-{os.urandom(16).hex()}"
        try:
            with self._open_verified(run_id, entry.path, pointer) as src, open(tmp, "xb") as out:
                shutil.copyfileobj(src, out, CHUNK)
            os.replace(tmp, target)
        except BaseException as err:
            tmp.unlink(missing_ok=True)
            if isinstance(err, IsADirectoryError):
                raise InvalidInput(
                    f"cannot download {entry.path!r} to {str(target)!r}: a folder is in the way",
                    path=entry.path,
                ) from None
            if isinstance(err, OSError):
                raise ShipyardError(f"cannot download {entry.path!r} to {str(target)!r}: {err}") from err
            raise
