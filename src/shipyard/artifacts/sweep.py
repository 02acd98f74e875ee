"""Freeing the storage of deleted runs: drop their pointers, then sweep blobs nothing points to.

Pointers and blobs are separate because content is shared (see :mod:`shipyard.artifacts.cas`):
deleting a run can only drop its pointers, and a blob may go once no pointer anywhere under
``runs/`` names it. Every folder there counts, not just runs: the prediction log and feedback
namespaces use the run slot too, and nothing here knows which ids are runs.

The sweep is mark-and-sweep without a lock, so its order is what keeps concurrent writers safe:

1. **List the blobs first.** Content written after the listing is never a candidate.
2. **Then read every pointer.** A pointer that cannot be parsed might name any blob, so the
   sweep stops with ``ArtifactCorrupted`` before deleting anything.
3. **Spare young blobs.** A writer stores the blob before its pointer, so an unreferenced blob
   may be one whose pointer is not written yet. Candidates younger than ``grace_seconds`` stay;
   the age is read right before each delete. Writes that re-use existing content ``touch`` it,
   which makes it young again on local storage.

The race left open: object stores cannot touch (see ``FsspecStorage.touch``), so a write that
re-uses old content of a deleted run while a sweep runs can lose that content, and its new
pointer then reads as corrupted. On local storage the window is the instant between the age
check and the delete. Sweeping while such writes are quiet avoids both.
"""

from __future__ import annotations

import io
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from shipyard.artifacts.cas import CasArtifactStore
from shipyard.artifacts.content import HEX, MAX_POINTER, check_run_id, parse_pointer
from shipyard.artifacts.local import LocalStorage
from shipyard.artifacts.protocol import BlobStorage
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound

__all__ = ["SweepReport", "check_grace", "remove_run_artifacts", "sweep_blobs"]

_BLOBS = "blobs/sha256"
# Remote storage answers one object per round trip; a few requests in flight hide the latency
# without crowding the connection pool (s3fs keeps about ten connections).
_WORKERS = 16

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What a sweep found. ``blobs_referenced`` and ``blobs_too_young`` count blobs among
    ``blobs_seen``; with ``dry_run`` the deleted counts are what a real sweep would delete."""

    blobs_seen: int
    blobs_referenced: int
    blobs_deleted: int
    bytes_freed: int
    blobs_too_young: int
    dry_run: bool


def _storage_of(artifacts: CasArtifactStore) -> BlobStorage:
    if not isinstance(artifacts, CasArtifactStore):
        raise InvalidInput(
            f"cannot collect garbage through {artifacts!r}: it needs the artifact storage itself "
            "(a local folder or s3://…), not a Shipyard server"
        )
    return artifacts.storage


@contextmanager
def _pool(storage: BlobStorage) -> Iterator[Executor | None]:
    """Threads for remote storage only: local calls are system calls, threads would only add
    overhead. On an error, queued calls are cancelled rather than waited for."""
    if isinstance(storage, LocalStorage):
        yield None
        return
    pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="shipyard-sweep")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _each(pool: Executor | None, fn: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[_R]:
    """``fn`` over ``items``, results in order on the caller's thread. Unlike ``Executor.map``,
    only a window of calls is queued: a store with millions of pointers would otherwise hold a
    future for each at once."""
    if pool is None:
        yield from map(fn, items)
        return
    window: deque[Future[_R]] = deque()
    for item in items:
        window.append(pool.submit(fn, item))
        if len(window) >= 4 * _WORKERS:
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def _object_keys(storage: BlobStorage, prefix: str, pool: Executor | None) -> list[str]:
    """Every object below folder ``prefix``, one folder level per round of listings."""
    keys: list[str] = []
    folders = [prefix]
    while folders:
        level, folders = folders, []
        for folder, children in _each(pool, lambda folder: (folder, list(storage.list(folder))), level):
            for name, is_dir in children:
                (folders if is_dir else keys).append(f"{folder}/{name}")
    return keys


def _blob_keys(storage: BlobStorage, pool: Executor | None) -> list[str]:
    """Keys shaped as the CAS writes them; anything else in ``blobs/`` is not ours to delete."""
    shards = [name for name, is_dir in storage.list(_BLOBS) if is_dir and len(name) == 2]
    listings = _each(pool, lambda shard: (shard, list(storage.list(f"{_BLOBS}/{shard}"))), shards)
    return [
        f"{_BLOBS}/{shard}/{name}"
        for shard, children in listings
        for name, is_dir in children
        if not is_dir and HEX.fullmatch(name) and name[:2] == shard
    ]


def _referenced_digest(storage: BlobStorage, key: str) -> str | None:
    """The hex digest the pointer at ``key`` names; ``None`` if it was deleted meanwhile (it
    references nothing any more)."""
    try:
        with storage.open(key) as stream:
            raw = stream.read(MAX_POINTER + 1)
    except NotFound:
        return None
    pointer = parse_pointer(raw)
    if pointer is None:
        raise ArtifactCorrupted(
            f"cannot sweep artifact storage: {key!r} is not a readable artifact pointer, so the "
            "content it references is unknown; nothing was deleted. Repair or remove it first.",
            key=key,
        )
    return pointer.hexdigest


def check_grace(grace_seconds: float) -> None:
    """``InvalidInput`` unless the grace period is zero or more seconds (NaN included). Callers
    that delete anything before sweeping check it first."""
    if not grace_seconds >= 0:
        raise InvalidInput(f"grace period must be zero or more seconds, not {grace_seconds!r}")


def remove_run_artifacts(artifacts: CasArtifactStore, run_id: str) -> int:
    """Delete every pointer of the run's tree and return how many (0 when it has none). The
    pointers are not parsed: a corrupted one must not keep a deleted run's tree alive. The
    content stays until :func:`sweep_blobs` finds it unreferenced."""
    storage = _storage_of(artifacts)
    run_id = check_run_id(run_id)
    with _pool(storage) as pool:
        keys = _object_keys(storage, f"runs/{run_id}/files", pool)
        for _ in _each(pool, storage.delete, keys):
            pass
    return len(keys)


def sweep_blobs(
    artifacts: CasArtifactStore,
    *,
    grace_seconds: float = 3600,
    dry_run: bool = False,
    ignoring_runs: Collection[str] = (),
    progress: Callable[[int, int], None] | None = None,
) -> SweepReport:
    """Delete blobs that no pointer references and that are older than ``grace_seconds``; see
    the module docstring for why in this order. ``progress(done, total)`` is called on the
    caller's thread after each pointer read and each blob judged (``total`` = pointers + blobs,
    fixed once both are listed). The pointers of ``ignoring_runs`` do not count as references: a
    dry run of a purge sees what removing those runs would free. Raises ``ArtifactCorrupted``
    naming an unreadable pointer, before anything is deleted, and ``InvalidInput`` for a
    negative grace."""
    storage = _storage_of(artifacts)
    check_grace(grace_seconds)
    tick = progress or (lambda done, total: None)

    with _pool(storage) as pool:
        blobs = _blob_keys(storage, pool)  # first: anything stored later is out of this sweep
        pointers = _object_keys(storage, "runs", pool)
        if ignoring_runs:
            ignored = set(ignoring_runs)
            pointers = [key for key in pointers if key.split("/", 2)[1] not in ignored]
        total = len(blobs) + len(pointers)
        referenced: set[str] = set()
        done = 0
        for hexdigest in _each(pool, lambda key: _referenced_digest(storage, key), pointers):
            if hexdigest is not None:
                referenced.add(hexdigest)
            done += 1
            tick(done, total)

        candidates = [key for key in blobs if key.rsplit("/", 1)[1] not in referenced]
        done += len(blobs) - len(candidates)
        if blobs and len(candidates) < len(blobs):
            tick(done, total)

        def judge(key: str) -> tuple[str, int]:
            """("delete", size), ("young", 0), or ("gone", 0) when another sweep was faster."""
            try:
                with storage.open(key) as stream:
                    size = stream.seek(0, io.SEEK_END)
                if time.time() - storage.modified(key) < grace_seconds:
                    return "young", 0
            except NotFound:
                return "gone", 0
            if not dry_run:
                storage.delete(key)
            return "delete", size

        deleted = freed = young = 0
        for outcome, size in _each(pool, judge, candidates):
            deleted += outcome == "delete"
            freed += size
            young += outcome == "young"
            done += 1
            tick(done, total)

    return SweepReport(
        blobs_seen=len(blobs),
        blobs_referenced=len(blobs) - len(candidates),
        blobs_deleted=deleted,
        bytes_freed=freed,
        blobs_too_young=young,
        dry_run=dry_run,
    )
