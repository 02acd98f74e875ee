"""The temporary folder a reproduction runs in: the worktree of the run's commit with its diff
applied, every input dataset placed where the code expects it, and the environment.

Use it as a context manager; the worktree (and git's record of it) and the folder are removed on
exit, also when a step failed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from shipyard.errors import Conflict
from shipyard.reproduce import git
from shipyard.reproduce.environment import build_environment
from shipyard.reproduce.inputs import CHECKOUT, COPY, RESTORE, DataStep, current_digest, glob_root
from shipyard.reproduce.plan import Plan, read_diff
from shipyard.reproduce.progress import Progress

if TYPE_CHECKING:
    from shipyard.models.registry import HasRegistry, RegistryService

__all__ = ["Workspace"]


class Workspace:
    """``with Workspace(plan, registry, progress) as ws:`` then run ``ws.python`` in ``ws.workdir``;
    ``registry`` (a ``RegistryService``, or a ``Client``'s) reads the run's diff and the datasets'
    snapshots."""

    def __init__(self, plan: Plan, registry: RegistryService | HasRegistry, progress: Progress) -> None:
        from shipyard.models.registry import as_registry

        self.plan = plan
        self.registry = as_registry(registry)
        self.progress = progress
        self.folder: Path | None = None
        self.worktree: Path | None = None
        self.code_root = Path.cwd()
        self.python = plan.environment.python

    @property
    def workdir(self) -> Path:
        return self.code_root / self.plan.workdir if self.plan.workdir else self.code_root

    def __enter__(self) -> Workspace:
        self.folder = Path(tempfile.mkdtemp(prefix="shipyard-reproduce-"))
        try:
            self._prepare(self.folder)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove the worktree and the temporary folder; never raises."""
        if self.worktree is not None and self.plan.repo is not None:
            with self.progress.step("Removing the temporary worktree"):
                git.remove_worktree(Path(self.plan.repo), self.worktree)
            self.worktree = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    # -- steps ---------------------------------------------------------------------------
    def _prepare(self, folder: Path) -> None:
        plan = self.plan
        if plan.checkout:
            assert plan.repo is not None
            assert plan.commit is not None
            worktree = folder / "worktree"
            with self.progress.step(f"Checking out {plan.commit[:12]} into a temporary worktree"):
                self.worktree = worktree  # set first: a half-made worktree is pruned too
                git.add_worktree(Path(plan.repo), worktree, plan.commit)
            if plan.diff_files:
                with self.progress.step(f"Applying the run's uncommitted changes ({len(plan.diff_files)} file(s))"):
                    diff = read_diff(self.registry.artifacts, plan.run_id)
                    assert diff is not None
                    git.apply_diff(worktree, plan.commit, diff)
            self.code_root = worktree
        for step in plan.datasets:
            self._place(step, folder)
        self.python = build_environment(plan.environment, folder, self.progress)

    def _place(self, step: DataStep, folder: Path) -> None:
        if step.action not in (COPY, RESTORE, CHECKOUT):
            return
        target = self.code_root / step.target if step.inside else Path(step.source)
        where = target if step.kind != "glob" else glob_root(str(target))
        if step.action == CHECKOUT:
            with self.progress.step(f"Verifying {step.ref} in the checkout ({step.target})"):
                found = current_digest(step.kind, target)
                if found != step.digest:
                    raise Conflict(f"dataset {step.ref} at {step.target} in commit {(self.plan.commit or '')[:12]} is "
                                   f"not what the run read: expected {step.digest}, found {found or 'nothing'}; it has "
                                   "no snapshot to restore", dataset=step.ref, expected=step.digest, found=found)
            return
        if step.action == COPY:
            with self.progress.step(f"Copying {step.ref} into the worktree ({step.target})"):
                _copy(step, glob_root(step.source) if step.kind == "glob" else Path(step.source), where)
            return
        with self.progress.step(f"Restoring {step.ref} from its snapshot to {where}"):
            if not step.inside:  # only planned when nothing is there: restore checks that again
                self._restore(step, where.parent if step.kind == "file" else where)
                return
            restored = self._restore(step, folder / "restored" / step.ref)
            _copy(step, restored, where, move=True)

    def _restore(self, step: DataStep, dest: Path) -> Path:
        from shipyard.tracking.datasets import DatasetService

        registry = self.registry
        datasets = DatasetService(registry.store, registry.artifacts, registry.principal)
        return datasets.restore(datasets.get(step.ref), dest)


def _copy(step: DataStep, source: Path, target: Path, *, move: bool = False) -> None:
    """Put the data at ``source`` (a file, a folder, or a glob's root) at ``target``."""
    transfer = shutil.move if move else shutil.copy2
    target.parent.mkdir(parents=True, exist_ok=True)
    if step.kind == "file":
        _remove(target)
        transfer(str(source), str(target))
    elif step.kind == "folder":
        _remove(target)
        if move:
            shutil.move(str(source), str(target))
        else:
            shutil.copytree(source, target)  # symlinks inside are followed, as the digest does
    else:  # glob: its files keep their paths below the root; other files there stay
        if move:
            names = [p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()]
        else:
            names = _glob_files(step.source)
        for name in names:
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            _remove(destination)
            transfer(str(source / name), str(destination))


def _glob_files(pattern: str) -> list[str]:
    from shipyard.data import digest

    return [f.path for f in digest.digest_glob(pattern).files]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
