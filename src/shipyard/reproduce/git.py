"""The git commands reproduce needs: find the repository, check a commit and a diff, add and
remove a worktree. Every failure becomes a :mod:`shipyard.errors` error that says what to do.

Hooks are switched off (``core.hooksPath=/dev/null``): checking out an old commit into a temporary
worktree must not run the repository's ``post-checkout`` hook.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

from shipyard.errors import Conflict, InvalidInput, ShipyardError

__all__ = ["add_worktree", "apply_diff", "check_diff", "diff_paths", "has_commit", "remove_worktree",
           "repo_root", "run_git", "tracked", "tree_files"]

TIMEOUT_SECONDS = 300
_BASE = ["git", "-c", "core.quotePath=false", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
# What ``git apply`` prints for a hunk that no longer fits, a file that is gone, or one in the way.
_APPLY_ERRORS = (re.compile(r"^error: patch failed: (.+):\d+$"),
                 re.compile(r"^error: (.+): (?:patch does not apply|does not exist in index|No such file or "
                            r"directory|already exists in (?:index|working directory)|does not match index)$"))


def run_git(args: list[str], cwd: Path, *, stdin: bytes | None = None, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """``git <args>`` in ``cwd``; with ``check`` a non-zero exit raises ``ShipyardError`` with git's message."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        result = subprocess.run([*_BASE, *args], cwd=cwd, input=stdin, env=full_env, capture_output=True,
                                timeout=TIMEOUT_SECONDS, check=False)
    except FileNotFoundError:
        raise InvalidInput("git is not installed (or not on PATH): reproduce needs it to check out the run's "
                           "commit; install git, or reproduce in the current tree with --no-checkout") from None
    except subprocess.TimeoutExpired:
        raise ShipyardError(f"git {' '.join(args[:2])} did not finish in {TIMEOUT_SECONDS} s") from None
    if check and result.returncode != 0:
        raise ShipyardError(f"git {' '.join(args[:2])} failed in {cwd}: {_text(result.stderr)}")
    return result


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").strip()


def repo_root(path: Path) -> Path | None:
    """The top folder of the work tree holding ``path``, or ``None`` outside a repository."""
    if not path.is_dir():
        return None
    result = run_git(["rev-parse", "--show-toplevel"], path, check=False)
    if result.returncode != 0:
        return None
    return Path(_text(result.stdout))


def has_commit(root: Path, commit: str) -> bool:
    return run_git(["cat-file", "-e", f"{commit}^{{commit}}"], root, check=False).returncode == 0


def tree_files(root: Path, commit: str) -> list[str]:
    """Every file path (POSIX, relative to the repository root) in ``commit``."""
    out = run_git(["ls-tree", "-r", "-z", "--name-only", commit], root).stdout
    return [name.decode("utf-8", errors="surrogateescape") for name in out.split(b"\0") if name]


def tracked(root: Path, commit: str, path: str) -> bool:
    """Whether ``commit`` holds the file or folder ``path`` (relative to the repository root)."""
    out = run_git(["ls-tree", "--name-only", commit, "--", path], root, check=False)
    return out.returncode == 0 and bool(out.stdout.strip())


def diff_paths(diff: bytes) -> list[str]:
    """The files a diff creates, changes, renames or deletes (binary ones too), in order."""
    paths: list[str] = []
    for line in diff.splitlines():
        if line.startswith(b"diff --git a/"):
            names = line[len(b"diff --git a/"):].decode("utf-8", errors="replace")
            before, _, after = names.rpartition(" b/")
            for path in (before, after) if before != after else (after,):
                if path and path not in paths:
                    paths.append(path)
    return paths


def check_diff(root: Path, commit: str, diff: bytes) -> None:
    """Raise ``Conflict`` naming the files unless ``diff`` applies cleanly on ``commit``.

    Checked against a throw-away index holding ``commit``, so neither the user's work tree nor
    their index is touched and no worktree is needed yet (a dry run can tell).
    """
    with tempfile.TemporaryDirectory(prefix="shipyard-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(["read-tree", commit], root, env=env)
        result = run_git(["apply", "--cached", "--check", "-"], root, stdin=diff, env=env, check=False)
    if result.returncode != 0:
        raise _diff_conflict(commit, _text(result.stderr))


def apply_diff(worktree: Path, commit: str, diff: bytes) -> None:
    """Apply ``diff`` to the files of ``worktree`` (not its index, as the run's diff was taken)."""
    result = run_git(["apply", "--whitespace=nowarn", "-"], worktree, stdin=diff, check=False)
    if result.returncode != 0:
        raise _diff_conflict(commit, _text(result.stderr))


def _diff_conflict(commit: str, stderr: str) -> Conflict:
    files: list[str] = []
    for line in stderr.splitlines():
        for pattern in _APPLY_ERRORS:
            found = pattern.match(line.strip())
            if found and found.group(1) not in files:
                files.append(found.group(1))
    where = f" to {', '.join(files)}" if files else ""
    return Conflict(f"the run's uncommitted changes{where} no longer apply on commit {commit[:12]}: git says: "
                    f"{stderr or 'nothing'}. The stored diff (artifact _shipyard/git.diff) was taken against that "
                    "commit; if the repository's history was rewritten, reproduce from a clone that still has it",
                    files=files)


def add_worktree(root: Path, path: Path, commit: str) -> None:
    """Check ``commit`` out, detached, into the new folder ``path``."""
    run_git(["worktree", "add", "--detach", "--quiet", str(path), commit], root)


def remove_worktree(root: Path, path: Path) -> None:
    """Remove the worktree at ``path`` and git's record of it; never raises."""
    try:
        run_git(["worktree", "remove", "--force", "--force", str(path)], root, check=False)
        run_git(["worktree", "prune"], root, check=False)
    except ShipyardError:
        pass
