"""The run's input datasets: where the code expects each one, and where its bytes will come from.

Every input is checked by digest before anything runs. A dataset read from a path inside the
repository (typically a git-ignored ``data/`` folder) must appear at the same relative path in the
worktree: it is copied there from the recorded location when that still hashes the same, restored
from its snapshot otherwise, or else taken from the checkout when the commit itself holds it (and
verified there). A dataset outside the repository is used where it is, after the same check; its
snapshot is restored there only when nothing is in the way (reproduce never overwrites data outside
its own worktree).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shipyard.entities import DatasetVersion
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.reproduce import git
from shipyard.reproduce.progress import Progress

__all__ = ["DataStep", "current_digest", "glob_root", "resolve_inputs"]

# What happens to a dataset before the re-run.
COPY = "copy"  # the recorded location hashes the same: copied into the worktree
RESTORE = "restore"  # restored from its snapshot
CHECKOUT = "checkout"  # changed on disk, but the commit holds it: checked out, then verified
USE = "use"  # outside the worktree, verified where it is
NONE = "none"  # an in-memory table the code builds itself: nothing to place


@dataclass(frozen=True)
class DataStep:
    """One input dataset and what reproduce does with it."""

    ref: str
    context: str
    kind: str
    digest: str  # what the run read
    source: str  # where the run read it (absolute path or glob)
    action: str  # copy | restore | checkout | use | none
    target: str  # where the re-run finds it: relative to the worktree when ``inside``, else absolute
    inside: bool
    found_digest: str | None = None  # what the recorded location hashes to now (None: missing)
    note: str = ""
    snapshot_uri: str | None = None


def glob_root(pattern: str) -> Path:
    """The leading folders of ``pattern`` without wildcards: where a glob's files are kept."""
    parts = pattern.split("/")
    static: list[str] = []
    for part in parts:
        if any(c in part for c in "*?["):
            break
        static.append(part)
    else:
        static = parts[:-1]
    return Path("/".join(static) or ("/" if pattern.startswith("/") else "."))


def current_digest(kind: str, location: str | os.PathLike[str]) -> str | None:
    """The digest ``location`` has now (as a ``kind`` dataset), or ``None`` when it is gone."""
    from shipyard.data import digest

    path = Path(location)
    try:
        if kind == "file":
            return digest.digest_file(path) if path.is_file() else None
        if kind == "folder":
            return digest.digest_folder(path).digest if path.is_dir() else None
        if kind == "glob":
            return digest.digest_glob(str(location)).digest
    except (NotFound, InvalidInput):  # unreadable, or a glob that matches nothing any more
        return None
    return None


def resolve_inputs(datasets: Sequence[tuple[DatasetVersion, str]], *, root: Path | None, commit: str | None,
                   checkout: bool, progress: Progress, recorded_root: Path | None = None) -> list[DataStep]:
    """A :class:`DataStep` per ``(version, context)``; ``Conflict`` naming the dataset, the expected
    and the found digest for data that changed (or vanished) and has no snapshot.

    ``root`` is the repository whose paths map into the worktree (``None``: no repository);
    with ``checkout`` the code runs in a worktree of ``commit``, else in the current tree.
    ``recorded_root`` is the checkout the run itself ran in: data read inside it keeps its place
    relative to it, also when ``root`` is another clone at another path.
    """
    steps = []
    for version, context in datasets:
        if version.kind == "table":
            steps.append(DataStep(version.ref, context, version.kind, version.digest, version.source, NONE,
                                  version.source, False, note="an in-memory table the code builds itself; "
                                  "checked only through the metrics"))
            continue
        with progress.step(f"Verifying {version.ref} ({version.source})"):
            steps.append(_resolve(version, context, root, commit, checkout, recorded_root))
    return steps


def _resolve(version: DatasetVersion, context: str, root: Path | None, commit: str | None,
             checkout: bool, recorded_root: Path | None) -> DataStep:
    location = glob_root(version.source) if version.kind == "glob" else Path(version.source)
    relative = None
    if root is not None:
        relative = (_relative(location, recorded_root) if recorded_root is not None else None) \
            or _relative(location, root)
    found = current_digest(version.kind, version.source)
    same = found == version.digest

    def step(action: str, target: str, inside: bool, note: str) -> DataStep:
        return DataStep(version.ref, context, version.kind, version.digest, version.source, action, target,
                        inside, found, note, version.snapshot_uri)

    if checkout and relative is not None:
        target = relative if version.kind != "glob" else _relative_pattern(version.source, location, relative)
        if same:
            return step(COPY, target, True, f"{version.source} has the recorded digest: copied")
        if version.snapshot_uri:
            return step(RESTORE, target, True, f"{_changed(found)}; restored from its snapshot")
        if commit is not None and root is not None and git.tracked(root, commit, relative):
            return step(CHECKOUT, target, True, f"{_changed(found)}, but the commit holds {relative}: "
                                                "verified after checkout")
        raise _changed_error(version, found)
    if same:
        return step(USE, version.source, False, "verified where it is")
    if version.snapshot_uri and not location.exists():
        return step(RESTORE, version.source, False, f"missing; restored from its snapshot to {location}")
    if version.snapshot_uri:
        raise Conflict(f"dataset {version.ref} changed since the run: expected {version.digest}, found "
                       f"{found or 'nothing'} at {version.source}. It has a snapshot, but restoring it would "
                       f"overwrite {location}, which is outside the worktree; restore it elsewhere with "
                       f"`shipyard datasets get {version.ref}` and put it back, or reproduce from the repository "
                       f"that holds it", dataset=version.ref, expected=version.digest, found=found)
    raise _changed_error(version, found)


def _changed(found: str | None) -> str:
    return f"changed on disk (now {found.rpartition(':')[2][:12]})" if found else "missing from its recorded location"


def _changed_error(version: DatasetVersion, found: str | None) -> Conflict:
    now = f"found {found}" if found else "found nothing (the path is gone)"
    return Conflict(f"dataset {version.ref} changed since the run: expected {version.digest}, {now} at "
                    f"{version.source}. It was logged without a snapshot, so the data the run read cannot be "
                    "restored: put the original data back at that path (log_dataset(..., snapshot=True) stores a "
                    "copy that reproduce restores by itself)", dataset=version.ref, expected=version.digest,
                    found=found)


def _relative(path: Path, root: Path) -> str | None:
    """``path`` relative to ``root`` (POSIX), also through symlinks; ``None`` outside or at ``root``."""
    pairs = [(path, root)]
    try:
        pairs.append((path.resolve(), root.resolve()))
    except (OSError, RuntimeError):
        pass
    for candidate, base in pairs:
        if candidate.is_absolute() and candidate.is_relative_to(base) and candidate != base:
            return candidate.relative_to(base).as_posix()
    return None


def _relative_pattern(pattern: str, location: Path, relative_root: str) -> str:
    rest = pattern[len(str(location)):].lstrip("/") if pattern.startswith(str(location)) else Path(pattern).name
    return f"{relative_root}/{rest}" if rest else relative_root
