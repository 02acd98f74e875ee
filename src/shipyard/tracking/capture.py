"""What a run records about where it came from: git state, uncommitted diff, system, packages.

Everything here only *gathers* data and returns it as a :class:`Capture` (tags plus artifact
bytes); the caller logs them. Each part is switched by a setting
(``capture_git``, ``capture_diff``, ``capture_packages``, ``capture_system``) and none of it
ever raises: a missing ``git``, a folder that is not a repository or a slow command simply
leaves that part out.

Only the standard library is used, and the slower modules (``subprocess``,
``importlib.metadata``, ``platform``, ...) are imported inside the functions that need them so
importing this module stays cheap.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.auth import current_user

if TYPE_CHECKING:
    from shipyard.config import Settings

__all__ = [
    "ARGV_MAX_CHARS",
    "DIFF_ARTIFACT",
    "GIT_ROOT_TAG",
    "GIT_TIMEOUT_SECONDS",
    "REQUIREMENTS_ARTIFACT",
    "Capture",
    "capture_run_context",
    "strip_url_credentials",
]

DIFF_ARTIFACT = "_shipyard/git.diff"
GIT_ROOT_TAG = "shipyard.git.root"
REQUIREMENTS_ARTIFACT = "_shipyard/requirements.txt"
GIT_TIMEOUT_SECONDS = 5
ARGV_MAX_CHARS = 1000

NOTEBOOK = "<notebook>"
INTERACTIVE = "<interactive>"

# sys.argv[0] of a REPL (""), ``python -c`` ("-c"), ``python -`` ("-") and of ``python -m``
# while the module is still being located ("-m").
_INTERACTIVE_ARGV0 = frozenset({"", "-c", "-", "-m"})
# Launchers of an IPython/Jupyter kernel (Jupyter, VS Code, Colab): there is no user script.
_KERNEL_LAUNCHERS = frozenset({"ipykernel_launcher.py", "colab_kernel_launcher.py"})
# Interactive shells started through a console script.
_REPL_COMMANDS = frozenset({"ipython", "ipython3", "bpython", "ptpython", "jupyter-console"})


@dataclass(frozen=True)
class Capture:
    """What was gathered: ``tags`` to set on the run and ``artifacts`` (path -> bytes) to log."""

    tags: dict[str, str] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)


def capture_run_context(
    settings: Settings, *, cwd: Path | None = None, argv: list[str] | None = None
) -> Capture:
    """Gather the run's origin as switched on in ``settings``. Never raises.

    ``cwd`` is the folder the run was started from (default: the process's working folder);
    git is asked about the repository containing it and the entry point is shown relative to
    it. ``argv`` defaults to ``sys.argv``. The diff (``capture_diff``) is only taken when
    ``capture_git`` is on and the work tree is dirty.
    """
    tags: dict[str, str] = {}
    artifacts: dict[str, bytes] = {}
    if not (settings.capture_git or settings.capture_system or settings.capture_packages):
        return Capture(tags=tags, artifacts=artifacts)  # capture=False: a tuning loop's runs pay nothing
    if cwd is None:
        try:
            cwd = Path.cwd()
        except OSError:  # the working folder was deleted
            cwd = None
    if argv is None:
        argv = list(getattr(sys, "argv", None) or [])

    if settings.capture_git and cwd is not None:
        git_tags, diff = _capture_git(cwd, settings.capture_diff, settings.capture_diff_max_bytes)
        tags.update(git_tags)
        if diff is not None:
            artifacts[DIFF_ARTIFACT] = diff
    if settings.capture_system:
        tags.update(_capture_system(cwd, argv))
    if settings.capture_packages:
        requirements = installed_packages()
        if requirements:
            artifacts[REQUIREMENTS_ARTIFACT] = requirements
    return Capture(tags=tags, artifacts=artifacts)


# --------------------------------------------------------------------------------------- git


def _git(args: list[str], cwd: Path, stdin: bytes = b"") -> bytes | None:
    """stdout of ``git <args>`` run in ``cwd``, or ``None`` when git is missing, fails or is slow."""
    import subprocess

    env = {
        **os.environ,
        # Do not take .git/index.lock for a read-only status (would race the user's own git).
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_TERMINAL_PROMPT": "0",
    }
    command = ["git", "-c", "core.quotePath=false", "-c", "core.fsmonitor=false", *args]
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout


def _git_text(args: list[str], cwd: Path) -> str | None:
    out = _git(args, cwd)
    if out is None:
        return None
    text = out.decode("utf-8", errors="replace").strip()
    return text or None


def _capture_git(cwd: Path, want_diff: bool, max_bytes: int) -> tuple[dict[str, str], bytes | None]:
    head = _git_head(cwd)
    if head is None:  # not a repository, bare repository, or no git at all
        return {}, None
    root, commit, branch = head

    # The checkout's own folder: reproduce maps data read inside it into a worktree of any clone.
    tags: dict[str, str] = {GIT_ROOT_TAG: str(root)}
    if commit is not None:
        tags["shipyard.git.commit"] = commit
    if branch is not None:  # absent on a detached HEAD
        tags["shipyard.git.branch"] = branch
    remote = _git_text(["remote", "get-url", "origin"], root)
    if remote is not None:
        tags["shipyard.git.remote"] = strip_url_credentials(remote)

    status = _git(["status", "--porcelain", "--untracked-files=normal"], root)
    if status is None:
        return tags, None
    dirty = bool(status.strip())
    tags["shipyard.git.dirty"] = "true" if dirty else "false"
    if not (want_diff and dirty):
        return tags, None

    diff = _git_diff(root, commit)
    if diff is None:
        return tags, None
    content, cut = _cap(diff, max_bytes)
    if cut:
        tags["shipyard.git.diff_truncated"] = "true"
    return tags, content


def _git_head(cwd: Path) -> tuple[Path, str | None, str | None] | None:
    """``(checkout folder, commit, branch)``, or ``None`` outside a work tree. One ``git rev-parse`` answers all
    three (the branch as ``symbolic-ref --short`` words it, ``HEAD`` when detached); where it fails (no commit
    yet) each is asked for alone, as the branch may still be known."""
    out = _git(["rev-parse", "--show-toplevel", "HEAD^{commit}", "--abbrev-ref=loose", "HEAD", "--"], cwd)
    lines = out.decode("utf-8", errors="replace").split("\n") if out is not None else []
    if len(lines) >= 5 and lines[-2:] == ["--", ""] and lines[-4].strip() and lines[-3].strip():
        folder, branch = "\n".join(lines[:-4]).strip(), lines[-3].strip()
        if folder:
            return Path(folder), lines[-4].strip(), None if branch == "HEAD" else branch
    root_text = _git_text(["rev-parse", "--show-toplevel"], cwd)
    if root_text is None:
        return None
    root = Path(root_text)
    commit = _git_text(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], root)
    return root, commit, _git_text(["symbolic-ref", "--quiet", "--short", "HEAD"], root)


def _git_diff(root: Path, commit: str | None) -> bytes | None:
    """``git diff HEAD`` (tracked changes, staged or not) followed by the untracked file names."""
    base = commit or _empty_tree(root)  # a repository without commits diffs against nothing
    if base is None:
        return None
    diff = _git(["diff", "--no-color", "--no-ext-diff", "--no-textconv", "--binary", base, "--"], root)
    if diff is None:
        return None
    untracked = _git(["ls-files", "--others", "--exclude-standard"], root)
    names = [line for line in (untracked or b"").splitlines() if line]
    if names:
        if diff and not diff.endswith(b"\n"):
            diff += b"\n"
        diff += b"# Untracked files (names only, contents not stored):\n"
        diff += b"".join(b"# " + name + b"\n" for name in names)
    return diff


def _empty_tree(root: Path) -> str | None:
    return _git_text(["hash-object", "-t", "tree", "--stdin"], root)


def _cap(content: bytes, max_bytes: int) -> tuple[bytes, int]:
    """``content`` cut to ``max_bytes`` plus a closing note, and how many bytes were cut."""
    cut = len(content) - max_bytes
    if cut <= 0:
        return content, 0
    kept = content[:max_bytes]
    if not kept.endswith(b"\n"):
        kept += b"\n"
    note = f"# shipyard: diff truncated at {max_bytes} bytes, {cut} more bytes were cut\n"
    return kept + note.encode("ascii"), cut


def strip_url_credentials(url: str) -> str:
    """``url`` without a password or token: ``https://user:secret@host/r`` -> ``https://host/r``.

    A bare user name is kept for ssh (``ssh://git@host/r``, ``git@host:r``) where it is not a
    secret; for every other scheme any user info is dropped (``https://<token>@host`` is a
    credential too).
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme or "/" in scheme:
        return url  # scp-like (git@host:path) or a local path: no password possible
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    if "@" not in authority:
        return url
    userinfo, host = authority.rsplit("@", 1)
    if ":" not in userinfo and scheme.lower() in {"ssh", "git+ssh", "ssh+git"}:
        return url
    return f"{scheme}://{host}{tail}"


# ------------------------------------------------------------------------------------ system


def _capture_system(cwd: Path | None, argv: list[str]) -> dict[str, str]:
    import platform
    import socket

    tags: dict[str, str] = {}
    entry_point = _entry_point(argv[0] if argv else "", cwd)
    tags["shipyard.source.entry_point"] = entry_point
    if entry_point != NOTEBOOK:  # a kernel's argv is only its connection file
        tags["shipyard.source.argv"] = _join_argv(argv[1:])
    tags["shipyard.env.python"] = platform.python_version()
    try:
        tags["shipyard.env.platform"] = platform.platform()
    except Exception:
        tags["shipyard.env.platform"] = sys.platform
    try:
        tags["shipyard.env.hostname"] = socket.gethostname() or "unknown"
    except OSError:
        tags["shipyard.env.hostname"] = "unknown"
    tags["shipyard.user"] = current_user()
    return tags


def _entry_point(argv0: str, cwd: Path | None) -> str:
    if argv0 in _INTERACTIVE_ARGV0:
        return INTERACTIVE
    path = Path(argv0)
    if path.name in _KERNEL_LAUNCHERS or path.parts[-2:] in {
        ("ipykernel", "__main__.py"),
        ("ipykernel", "kernelapp.py"),
    }:
        return NOTEBOOK
    if path.name in _REPL_COMMANDS:
        return INTERACTIVE

    if not path.is_absolute():
        if cwd is None:
            return path.as_posix()
        path = cwd / path
    absolute = Path(os.path.normpath(path))
    if cwd is not None:
        base = Path(os.path.normpath(cwd))
        if absolute.is_relative_to(base):
            return absolute.relative_to(base).as_posix()
        resolved: Path | None
        resolved_base: Path | None
        try:  # the same folders seen through symlinks (/tmp vs /private/tmp)
            resolved, resolved_base = absolute.resolve(), base.resolve()
        except (OSError, RuntimeError):
            resolved = resolved_base = None
        if resolved is not None and resolved_base is not None and resolved.is_relative_to(resolved_base):
            return resolved.relative_to(resolved_base).as_posix()
    return str(absolute)


def _join_argv(args: list[str]) -> str:
    import shlex

    joined = shlex.join(str(arg) for arg in args)
    if len(joined) > ARGV_MAX_CHARS:
        joined = joined[: ARGV_MAX_CHARS - 3] + "..."
    return joined


# ---------------------------------------------------------------------------------- packages


@functools.lru_cache(maxsize=1)
def installed_packages() -> bytes:
    """``name==version`` lines of every installed distribution, sorted, one per name (when a name
    is installed twice on ``sys.path``, the one imported); see :mod:`shipyard.installed`."""
    from shipyard.installed import installed

    return installed().requirements
