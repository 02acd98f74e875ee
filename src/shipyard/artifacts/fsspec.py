"""``FsspecStorage``: the byte-level ``BlobStorage`` over any fsspec file system.

One class serves ``s3://bucket/prefix`` (s3fs), ``gs://bucket/prefix`` (gcsfs, when installed) and
``memory://`` (tests), because fsspec already hides their differences; ``CasArtifactStore`` sits
on top exactly as it does on ``LocalStorage``.

Where credentials and endpoints come from: ``storage_options`` passed to the constructor win,
then the back end's own configuration. For S3 that is the standard AWS chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for MinIO, moto or
another S3-compatible server) plus fsspec's own ``FSSPEC_S3_*`` variables and config files. There
is deliberately no Shipyard setting for them: the AWS variables are what operators already set.

Guarantees, matching ``LocalStorage``:

* **Atomic writes.** On object stores a PUT is atomic per object, so a reader sees the old object
  or the new one. On other file systems the bytes go to a reserved temp name in the same folder
  first and are then moved over the final name.
* **Streaming.** ``put_file`` hands the path to ``fs.put_file`` (multipart upload on S3) and
  ``open`` returns fsspec's buffered, range-reading file: no object is ever read whole into memory.
* **A second wall.** Keys are checked here too (no ``..``, ``.``, empty or absolute segments, no
  backslash or NUL), so a bug in the layer above cannot address an object outside the prefix.
* **Fresh listings.** The directory-listing cache is off by default: other processes (server
  replicas, workers) write to the same prefix, and a stale listing would hide their artifacts.

Foreign errors (OS errors from fsspec, botocore errors) become ``shipyard.errors`` classes here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from shipyard.artifacts.cas import CasArtifactStore
from shipyard.artifacts.local import TMP_PREFIX, is_temp_name
from shipyard.artifacts.protocol import ArtifactStore
from shipyard.errors import InvalidInput, NotFound, ShipyardError, StoreUnavailable

__all__ = ["FsspecStorage", "open_fsspec_store"]

# Read-ahead block of ``open``: large enough for few round trips, small enough to stay lean.
_BLOCK = 8 << 20
# Protocols whose single-object write is atomic (a PUT replaces the object in one step).
_ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "memory", "az", "abfs", "abfss"})


def _check_key(key: str, *, allow_root: bool = False) -> str:
    """``key`` if it is a plain relative ``/``-path, else ``InvalidInput`` (never trust the caller)."""
    if not isinstance(key, str):
        raise InvalidInput(f"invalid storage key {key!r}: must be a string", key=repr(key))
    if key == "" and allow_root:
        return key
    segments = key.split("/")
    if "\x00" in key or "\\" in key or any(seg in ("", ".", "..") for seg in segments):
        raise InvalidInput(
            f"invalid storage key {key!r}: must be relative '/'-separated names without '.', '..', "
            "backslash or NUL",
            key=repr(key),
        )
    if any(is_temp_name(seg) for seg in segments):
        raise InvalidInput(f"invalid storage key {key!r}: the name is reserved for temp files", key=key)
    return key


class FsspecStorage:
    """``BlobStorage`` below ``url`` (``s3://bucket/prefix``, ``gs://…``, ``memory://…``).

    ``storage_options`` go to the fsspec file system (for S3, e.g. ``endpoint_url``, ``key``,
    ``secret``, ``client_kwargs``); see the module docstring for the environment variables used
    when they are not given. ``InvalidInput`` when the scheme's fsspec back end is not installed.
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        storage_options.setdefault("use_listings_cache", False)
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **storage_options)
        except ImportError as err:
            raise InvalidInput(f"cannot open artifact storage {url!r}: {err}", uri=url) from None
        except ValueError as err:
            raise InvalidInput(f"invalid artifact storage location {url!r}: {err}", uri=url) from None
        self.url = url
        self._root = root.rstrip("/")
        protocols = self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,)
        self._atomic_put = any(p in _ATOMIC_PUT for p in protocols)

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r})"

    def _path(self, key: str, *, allow_root: bool = False) -> str:
        key = _check_key(key, allow_root=allow_root)
        return f"{self._root}/{key}" if key else self._root

    @contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        """Foreign errors from a call on ``key`` -> Shipyard errors (``NotFound`` stays the caller's)."""
        try:
            yield
        except ShipyardError:
            raise
        except (ConnectionError, TimeoutError) as err:
            raise StoreUnavailable(
                f"artifact storage {self.url!r} is unreachable ({key!r}): {err}", key=key
            ) from err
        except (NotADirectoryError, IsADirectoryError, FileExistsError):
            raise InvalidInput(
                f"storage key {key!r} conflicts with an existing file or folder in {self.url!r}", key=key
            ) from None
        except Exception as err:  # boundary: botocore/gcsfs raise their own types
            raise ShipyardError(
                f"artifact storage {self.url!r} failed on {key!r}: {type(err).__name__}: {err}", key=key
            ) from err

    def _not_found(self, key: str) -> NotFound:
        return NotFound(f"no stored object {key!r} in {self.url!r}", key=key)

    # -- writing -------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path) -> None:
        """Copy the local file ``source`` to ``key`` (streamed by fsspec; multipart on S3)."""
        path = self._path(key)
        if not os.path.isfile(source):
            raise InvalidInput(f"cannot read {str(source)!r}: not an existing file", path=str(source))
        with self._translated(key):
            if self._atomic_put:
                self.fs.put_file(os.fspath(source), path)
                return
            tmp = self._temp_beside(path)
            try:
                self.fs.put_file(os.fspath(source), tmp)
                self.fs.mv(tmp, path)
            except BaseException:
                self._discard(tmp)
                raise

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (one PUT, or temp object + move)."""
        path = self._path(key)
        with self._translated(key):
            if self._atomic_put:
                self.fs.pipe_file(path, bytes(data))
                return
            tmp = self._temp_beside(path)
            try:
                self.fs.pipe_file(tmp, bytes(data))
                self.fs.mv(tmp, path)
            except BaseException:
                self._discard(tmp)
                raise

    def _temp_beside(self, path: str) -> str:
        """A reserved temp name in the folder of ``path``, which is created (real folders exist
        on these file systems, unlike on object stores)."""
        folder = path.rsplit("/", 1)[0]
        self.fs.makedirs(folder, exist_ok=True)
        return f"{folder}/{TMP_PREFIX}{os.urandom(16).hex()}"

    def _discard(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except Exception:  # best effort: the temp object may never have been created
            pass

    # -- reading -------------------------------------------------------------------------------

    def open(self, key: str) -> BinaryIO:
        """A buffered, range-reading stream of ``key``; ``NotFound`` naming it when it is not an
        object (absent, or a folder)."""
        path = self._path(key)
        with self._translated(key):
            try:
                stream = self.fs.open(path, "rb", block_size=_BLOCK)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise self._not_found(key) from None
            # s3fs opens a "folder" lazily; its details say what it really is.
            if getattr(stream, "details", {}).get("type", "file") != "file":
                stream.close()
                raise self._not_found(key)
        return stream  # type: ignore[no-any-return]  # the caller owns (and closes) the stream

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored object (a folder is not one)."""
        path = self._path(key)
        with self._translated(key):
            return bool(self.fs.isfile(path))

    def modified(self, key: str) -> float:
        """The object's last-modified time (S3 ``LastModified``, whole seconds); ``NotFound``
        when ``key`` is not an object. Read from ``info`` when it carries the time (one HEAD on
        S3, which also tells a folder from an object), else from ``fs.modified``. A datetime is
        aware on s3fs and fsspec's local and memory file systems; a naive one is taken as UTC,
        as object stores keep time."""
        path = self._path(key)
        with self._translated(key):
            try:
                info = self.fs.info(path)
                if info.get("type") != "file":
                    raise self._not_found(key)
                when = info.get("LastModified") or info.get("mtime") or self.fs.modified(path)
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise self._not_found(key) from None
        if isinstance(when, int | float):  # some back ends answer in POSIX seconds already
            return float(when)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return float(when.timestamp())

    def touch(self, key: str) -> bool:
        """Just :meth:`exists`: an object store cannot change ``LastModified`` without rewriting
        (or server-side copying) the whole object, which would cost as much as the upload that
        deduplication saved. Content re-used by a new write therefore keeps its old time, and a
        sweep running concurrently can still delete it; see :mod:`shipyard.artifacts.sweep`."""
        return self.exists(key)

    def list(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """Immediate children of folder ``prefix`` (``""`` = the root) as ``(name, is_dir)``,
        sorted by name, skipping temp objects. Nothing when the folder is absent or is an object.

        Not a generator on purpose: the key is checked, and the listing made, at the call."""
        path = self._path(prefix, allow_root=True)
        with self._translated(prefix):
            try:
                entries = self.fs.ls(path, detail=True)
            except (FileNotFoundError, NotADirectoryError):
                entries = []
        own = self.fs._strip_protocol(path).rstrip("/")
        children = set()
        for entry in entries:
            name = self.fs._strip_protocol(entry["name"]).rstrip("/")
            if name == own:  # listing an object (or a folder marker) returns the object itself
                continue
            base = name.rsplit("/", 1)[-1]
            if base and not is_temp_name(base):
                children.add((base, entry.get("type") == "directory"))
        return iter(sorted(children))

    def delete(self, key: str) -> None:
        """Remove ``key`` if present (object stores have no folders to prune)."""
        path = self._path(key)
        with self._translated(key):
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                pass


def open_fsspec_store(uri: str) -> ArtifactStore:
    """Registry factory: ``s3://``, ``gs://``, ``memory://`` URI -> ``CasArtifactStore(FsspecStorage)``."""
    return CasArtifactStore(FsspecStorage(uri))
