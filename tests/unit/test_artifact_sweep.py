"""Garbage collection of artifacts on local storage: removing a run's pointers, sweeping blobs."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from pathlib import Path

import pytest

from shipyard.artifacts import CasArtifactStore, LocalStorage
from shipyard.artifacts.sweep import SweepReport, remove_run_artifacts, sweep_blobs
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound

RUN_A = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
RUN_B = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
RUN_C = "cccccccccccccccccccccccccccccccc"
SHARED = b"shared between runs A and B"
UNIQUE = b"only run A has these bytes, and a few more of them"
HOUR = 3600


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> CasArtifactStore:
    return CasArtifactStore(LocalStorage(root))


def blob_path(root: Path, data: bytes) -> Path:
    hexdigest = hashlib.sha256(data).hexdigest()
    return root / "blobs" / "sha256" / hexdigest[:2] / hexdigest


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def deleted_run_a(store: CasArtifactStore, root: Path) -> CasArtifactStore:
    """Runs A and B share one file's content, A has a second one; A's tree is then removed."""
    store.log_bytes(RUN_A, SHARED, "data/shared.txt")
    store.log_bytes(RUN_A, UNIQUE, "model/unique.bin")
    store.log_bytes(RUN_B, SHARED, "copy.txt")
    assert remove_run_artifacts(store, RUN_A) == 2
    assert not (root / "runs" / RUN_A).exists()
    return store


def test_remove_run_artifacts(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes(RUN_A, b"x", "a/b/c.txt")
    store.log_bytes(RUN_A, b"y", "top.txt")
    store.log_bytes(RUN_B, b"x", "kept.txt")
    assert remove_run_artifacts(store, RUN_A) == 2
    assert store.walk(RUN_A) == []
    assert [e.path for e in store.walk(RUN_B)] == ["kept.txt"]
    assert len([p for p in (root / "blobs").rglob("*") if p.is_file()]) == 2  # content waits for the sweep
    assert remove_run_artifacts(store, RUN_A) == 0
    assert remove_run_artifacts(store, RUN_C) == 0  # never had artifacts
    with pytest.raises(InvalidInput, match="run id"):
        remove_run_artifacts(store, "../runs")


def test_sweep_frees_only_unreferenced_content(deleted_run_a: CasArtifactStore, root: Path) -> None:
    report = sweep_blobs(deleted_run_a, grace_seconds=0)
    assert report == SweepReport(blobs_seen=2, blobs_referenced=1, blobs_deleted=1, bytes_freed=len(UNIQUE),
                                 blobs_too_young=0, dry_run=False)
    assert not blob_path(root, UNIQUE).exists()
    assert blob_path(root, SHARED).exists()
    with deleted_run_a.open(RUN_B, "copy.txt") as stream:  # verified against the digest at the end
        assert stream.read() == SHARED

    again = sweep_blobs(deleted_run_a, grace_seconds=0)
    assert again == SweepReport(blobs_seen=1, blobs_referenced=1, blobs_deleted=0, bytes_freed=0,
                                blobs_too_young=0, dry_run=False)


def test_dry_run_deletes_nothing_and_reports_the_same(deleted_run_a: CasArtifactStore, root: Path) -> None:
    before = tree(root)
    dry = sweep_blobs(deleted_run_a, grace_seconds=0, dry_run=True)
    assert tree(root) == before
    assert dry.dry_run
    assert (dry.blobs_deleted, dry.bytes_freed) == (1, len(UNIQUE))
    real = sweep_blobs(deleted_run_a, grace_seconds=0)
    assert dry == dataclasses.replace(real, dry_run=True)


def test_young_unreferenced_content_is_kept(deleted_run_a: CasArtifactStore, root: Path) -> None:
    report = sweep_blobs(deleted_run_a)  # default grace: an hour; the blob was written just now
    assert (report.blobs_deleted, report.bytes_freed, report.blobs_too_young) == (0, 0, 1)
    assert blob_path(root, UNIQUE).exists()

    age(blob_path(root, UNIQUE), 2 * HOUR)
    report = sweep_blobs(deleted_run_a, grace_seconds=HOUR)
    assert (report.blobs_deleted, report.blobs_too_young) == (1, 0)


def test_corrupt_pointer_aborts_before_deleting(deleted_run_a: CasArtifactStore, root: Path) -> None:
    deleted_run_a.log_bytes(RUN_C, b"c", "fine.txt")
    bad = root / "runs" / RUN_C / "files" / "broken.txt"
    bad.write_bytes(b'{"digest": "sha256:not-hex", "size": 1}')
    before = tree(root)
    with pytest.raises(ArtifactCorrupted, match=re.escape(f"runs/{RUN_C}/files/broken.txt")):
        sweep_blobs(deleted_run_a, grace_seconds=0)
    assert tree(root) == before

    bad.write_bytes(b"\x00garbage")
    before = tree(root)
    with pytest.raises(ArtifactCorrupted, match=re.escape("broken.txt")):
        sweep_blobs(deleted_run_a, grace_seconds=0)
    assert tree(root) == before


def test_other_namespaces_keep_their_content(store: CasArtifactStore, root: Path) -> None:
    store.log_bytes("predictions", b"prediction rows", "deployment=d/hour=1/x.parquet")
    store.log_bytes("feedback", b"feedback rows", "deployment=d/hour=1/y.parquet")
    report = sweep_blobs(store, grace_seconds=0)
    assert (report.blobs_seen, report.blobs_referenced, report.blobs_deleted) == (2, 2, 0)
    with store.open("feedback", "deployment=d/hour=1/y.parquet") as stream:
        assert stream.read() == b"feedback rows"


def test_strays_in_blob_folders_are_left_alone(deleted_run_a: CasArtifactStore, root: Path) -> None:
    shard = blob_path(root, UNIQUE).parent
    strays = [shard / (".shipyard-tmp-" + "0" * 32), shard / "notes.txt", root / "blobs" / "sha256" / "x.txt"]
    for stray in strays:
        stray.write_bytes(b"interrupted write")
        age(stray, 2 * HOUR)
    report = sweep_blobs(deleted_run_a, grace_seconds=0)
    assert (report.blobs_seen, report.blobs_deleted) == (2, 1)
    assert all(stray.exists() for stray in strays)


def test_touch_makes_content_young(root: Path) -> None:
    storage = LocalStorage(root)
    storage.put_bytes("blobs/x", b"x")
    age(root / "blobs" / "x", 2 * HOUR)
    assert time.time() - storage.modified("blobs/x") > HOUR
    assert storage.touch("blobs/x")
    assert time.time() - storage.modified("blobs/x") < 60
    assert not storage.touch("blobs/missing")
    assert not storage.touch("blobs")  # a folder is not an object
    assert not (root / "blobs" / "missing").exists()
    for key in ("blobs/missing", "blobs"):
        with pytest.raises(NotFound, match=key):
            storage.modified(key)


def test_content_reused_during_a_sweep_survives(deleted_run_a: CasArtifactStore, root: Path) -> None:
    """Run C logs A's old content after the sweep has listed the pointers: the new pointer is not
    seen, but logging touched the blob, so the grace period spares it."""
    age(blob_path(root, UNIQUE), 2 * HOUR)
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        if not calls:
            deleted_run_a.log_bytes(RUN_C, UNIQUE, "reused.bin")
        calls.append((done, total))

    report = sweep_blobs(deleted_run_a, grace_seconds=HOUR, progress=progress)
    assert (report.blobs_deleted, report.blobs_too_young) == (0, 1)
    with deleted_run_a.open(RUN_C, "reused.bin") as stream:
        assert stream.read() == UNIQUE
    total = 1 + 2  # B's pointer and two blobs (C's pointer came after the listing)
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert {t for _, t in calls} == {total}


def test_sweep_of_an_empty_store(store: CasArtifactStore) -> None:
    assert sweep_blobs(store, grace_seconds=0) == SweepReport(0, 0, 0, 0, 0, False)


@pytest.mark.parametrize("grace", [-1, float("nan")])
def test_grace_must_not_be_negative(store: CasArtifactStore, grace: float) -> None:
    with pytest.raises(InvalidInput, match="grace"):
        sweep_blobs(store, grace_seconds=grace)


def test_needs_the_storage_itself() -> None:
    with pytest.raises(InvalidInput, match="not a Shipyard server"):
        sweep_blobs(object(), grace_seconds=0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="not a Shipyard server"):
        remove_run_artifacts(object(), RUN_A)  # type: ignore[arg-type]
