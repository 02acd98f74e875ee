"""When a run's artifact may be written: the one rule every way in (the SDK, the native
artifact API and MLflow's artifact proxy) applies before storing a file.

A deleted run takes no writes (restore it first). A finished run (FINISHED, FAILED or KILLED)
still takes *new* files, because evaluation after ``end_run`` is common and MLflow allows it,
but the files it already holds are its record: replacing one would change what a registered
version or a report points at without a trace, so it is a ``Conflict`` (409).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.entities import LifecycleStage
from shipyard.errors import Conflict, InvalidInput, NotFound, RunNotActive

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.store.protocol import Store

__all__ = ["check_artifact_delete", "check_artifact_write", "folder_files"]


def check_artifact_write(store: Store, artifacts: ArtifactStore, run_id: str, path: str) -> None:
    """Raise unless ``path`` (a normalised artifact path) may be written in run ``run_id``:
    ``NotFound`` for an unknown run, ``RunNotActive`` for a deleted one, ``Conflict`` (details
    ``rule="artifact_immutable"``) when a finished run already holds a file at ``path``."""
    info = store.runs.get(run_id).info
    if info.lifecycle_stage is LifecycleStage.DELETED:
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before changing its artifacts", run_id=run_id)
    if info.status.is_terminal and _holds_file(artifacts, run_id, path):
        raise Conflict(f"run '{run_id}' is {info.status.value} and already holds artifact {path!r}; a finished "
                       "run's recorded artifacts are immutable: store the new file under another path, or "
                       "in a new run", run_id=run_id, path=path, rule="artifact_immutable")


def folder_files(local_dir: str | os.PathLike[str]) -> list[Path]:
    """The files below ``local_dir`` to store as artifacts, sorted. ``InvalidInput`` when it is
    not a folder, or naming the first symbolic link inside it: a link can point anywhere
    (``~/.ssh``, ``/etc``), so none is followed and nothing is logged then."""
    root = Path(local_dir)
    if not root.is_dir():
        raise InvalidInput(f"cannot log artifacts from {str(local_dir)!r}: no such folder")
    files: list[Path] = []
    for folder, dirs, names in os.walk(root):  # followlinks=False: linked folders are listed, not entered
        for link in (Path(folder, name) for name in sorted(dirs + names)):
            if link.is_symlink():
                raise InvalidInput(f"cannot log artifacts from {str(local_dir)!r}: {str(link)!r} is a symbolic "
                                   "link; copy what it points to into the folder instead", path=str(link))
        files.extend(p for p in (Path(folder, name) for name in names) if p.is_file())
    return sorted(files)


def check_artifact_delete(store: Store, run_id: str) -> None:
    """Raise unless the artifacts of run ``run_id`` may be deleted: ``NotFound`` for an unknown
    run, ``RunNotActive`` for a deleted one, ``Conflict`` (``rule="artifact_immutable"``) for a
    finished one, whose files are its record (deleting one and uploading again would replace it)."""
    info = store.runs.get(run_id).info
    if info.lifecycle_stage is LifecycleStage.DELETED:
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before changing its artifacts", run_id=run_id)
    if info.status.is_terminal:
        raise Conflict(f"run '{run_id}' is {info.status.value}: a finished run's recorded artifacts are immutable, "
                       "so none is deleted; delete the run to remove them", run_id=run_id, rule="artifact_immutable")


def _holds_file(artifacts: ArtifactStore, run_id: str, path: str) -> bool:
    folder = path.rpartition("/")[0]
    try:
        entries = artifacts.list(run_id, folder)
    except NotFound:  # no such folder yet
        return False
    return any(e.path == path and not e.is_dir for e in entries)
