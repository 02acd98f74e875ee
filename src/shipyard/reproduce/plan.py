"""Read a run's record and decide, before anything runs, how to reproduce it.

The record comes from :func:`shipyard.lineage.explain` (commit, dirty flag, entry point, seed,
params, metrics, input datasets, package list) plus a few tags it does not carry (argv, remote,
Python version, whether the diff was cut). Everything that can be checked without side effects
is checked here, so a dry run reports the same problems a real run would: the commit is in the
repository, the stored diff applies on it, the entry point is in its tree, and every input
dataset still hashes the same or has a snapshot.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.entities import DatasetVersion, Node, NodeKind
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.reproduce import git
from shipyard.reproduce.environment import EnvironmentPlan, plan_environment
from shipyard.reproduce.inputs import DataStep, resolve_inputs
from shipyard.reproduce.progress import Progress

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.lineage import RunRecord
    from shipyard.models.registry import HasRegistry, RegistryService

__all__ = ["Plan", "StoreUris", "make_plan", "read_diff"]

REPRODUCES_ENV = "SHIPYARD_REPRODUCES"
SEED_ENV = "SHIPYARD_SEED"
_NO_SCRIPT = ("<interactive>", "<notebook>")
_UNTRACKED_HEADER = b"# Untracked files (names only, contents not stored):"


@dataclass(frozen=True)
class StoreUris:
    """Where the re-run tracks to: the store the record was read from. The edge that opened that
    store knows its URIs (the services do not), and the re-run is another process that opens it
    again."""

    tracking_uri: str
    artifact_uri: str


@dataclass(frozen=True)
class Plan:
    """Everything a reproduction will do; what ``--dry-run`` prints."""

    run_id: str
    run_name: str
    experiment_id: str
    checkout: bool  # False: the code is the current tree, not the recorded commit
    repo: str | None  # the repository the commit is checked out from (or the current tree's)
    commit: str | None
    diff_files: list[str]  # files the recorded uncommitted diff changes (empty: a clean tree)
    entry_point: str  # as recorded: relative to the folder the run started in
    workdir: str  # that folder, relative to the code root ("" = the root)
    command: list[str]  # python, script, args (the python is the environment's)
    env: dict[str, str]  # variables set for the re-run
    seed: str | None
    params: dict[str, str]
    metrics: dict[str, float]
    datasets: list[DataStep]
    environment: EnvironmentPlan
    warnings: list[str] = field(default_factory=list)


def make_plan(registry: RegistryService | HasRegistry, run_id: str, *, uris: StoreUris,
              repo: str | os.PathLike[str] | None = None, env: str = "current", checkout: bool = True,
              progress: Progress) -> Plan:
    """Read run ``run_id`` through ``registry`` (a ``RegistryService``, or a ``Client``'s) and
    plan its reproduction, tracking to ``uris``; raises ``NotFound`` for an unknown run and
    ``InvalidInput``/``Conflict`` (saying what is missing and what is still possible) when it
    cannot be reproduced."""
    from shipyard.lineage.explain import explain_ref
    from shipyard.models.registry import as_registry

    service = as_registry(registry)

    if not isinstance(run_id, str) or not run_id.strip():
        raise InvalidInput(f"run id must be a non-empty string, got {run_id!r}")
    run_id = run_id.strip()
    try:
        run = service.store.runs.get(run_id)
    except NotFound:
        raise NotFound(f"run {run_id!r} does not exist in {uris.tracking_uri}; list runs with "
                       "`shipyard runs list`") from None
    found = explain_ref(service, Node(NodeKind.RUN, run_id), depth=1)
    record = next(r for r in found.runs if r.run_id == run_id)
    tags = run.data.tags
    warnings: list[str] = []
    child_env = {**_store_env(uris), REPRODUCES_ENV: run_id, "PYTHONUNBUFFERED": "1"}

    root, commit, diff = _code(service.artifacts, record, tags, repo, checkout, warnings)
    entry_point, args = _entry_point(record, tags)
    workdir, script = (_locate(entry_point, root, commit, diff, warnings) if checkout
                       else _here(entry_point))
    environment = plan_environment(env, record.packages, tags.get("shipyard.env.python"))
    warnings += environment.warnings
    if diff is not None:
        warnings += _untracked_warning(diff)
    from shipyard.tracking.capture import GIT_ROOT_TAG

    recorded_root = Path(tags[GIT_ROOT_TAG]) if tags.get(GIT_ROOT_TAG) else None
    datasets = resolve_inputs(_inputs(record, found.datasets, warnings), root=root, commit=commit,
                              checkout=checkout, progress=progress,  # hashing comes last: it is the slow check
                              recorded_root=recorded_root)
    if record.seed is not None:
        child_env[SEED_ENV] = record.seed
    return Plan(run_id, run.info.run_name, run.info.experiment_id, checkout, None if root is None else str(root),
                commit, git.diff_paths(diff) if diff and _has_changes(diff) else [], entry_point, workdir,
                [environment.python, script, *args], child_env, record.seed, dict(record.params),
                dict(record.metrics), datasets, environment, warnings)


def _inputs(record: RunRecord, versions: list[DatasetVersion],
            warnings: list[str]) -> list[tuple[DatasetVersion, str]]:
    """Each input dataset version once (with its contexts joined), in the order recorded."""
    known = {v.ref: v for v in versions}
    contexts: dict[str, list[str]] = {}
    for ref, context in record.inputs:
        if ref not in known:
            warnings.append(f"input dataset {ref} is in the lineage graph but no longer in the store: not verified")
            continue
        seen = contexts.setdefault(ref, [])
        if context and context not in seen:
            seen.append(context)
    return [(known[ref], ", ".join(found)) for ref, found in contexts.items()]


def _code(artifacts: ArtifactStore, record: RunRecord, tags: Mapping[str, str], repo: str | os.PathLike[str] | None,
          checkout: bool, warnings: list[str]) -> tuple[Path | None, str | None, bytes | None]:
    """The repository, the commit to check out and the diff to apply on it."""
    start = Path(repo).expanduser() if repo is not None else Path.cwd()
    root = git.repo_root(start.resolve()) if start.exists() else None
    if not checkout:
        warnings.append(f"--no-checkout: the code is the current tree at {Path.cwd()}"
                        + (f", not the run's commit {record.commit[:12]}" if record.commit else "")
                        + (" (the run's uncommitted changes are not applied)" if record.dirty else ""))
        return root, None, None
    if record.commit is None:
        raise InvalidInput(f"run {record.run_id} cannot be checked out: no git commit was recorded (the run did not "
                           "start in a git repository, or capture_git was off); reproduce can still re-run the entry "
                           "point in the current tree with --no-checkout (SDK: checkout=False)")
    if repo is not None and not start.exists():
        raise InvalidInput(f"--repo {start} does not exist")
    if root is None:
        raise InvalidInput(f"{start} is not inside a git repository: run reproduce from a clone that holds commit "
                           f"{record.commit[:12]}{_remote(tags)} or pass --repo PATH")
    if not git.has_commit(root, record.commit):
        raise NotFound(f"commit {record.commit} of run {record.run_id} is not in the repository at {root}: fetch it "
                       f"(git fetch{_remote(tags, bare=True)}), or pass --repo PATH of a clone that has it",
                       commit=record.commit, repo=str(root))
    diff = None
    if record.dirty:
        if tags.get("shipyard.git.diff_truncated") == "true":
            raise Conflict(f"run {record.run_id} ran with uncommitted changes whose diff was cut when it was stored "
                           "(larger than capture_diff_max_bytes), so its exact code cannot be rebuilt; raise "
                           "SHIPYARD_CAPTURE_DIFF_MAX_BYTES for future runs, or use --no-checkout")
        diff = read_diff(artifacts, record.run_id)
        if diff is None:
            warnings.append("the run's tree had uncommitted changes but no diff was stored (capture_diff was off): "
                            f"reproducing the committed code of {record.commit[:12]} only")
        elif _has_changes(diff):  # else only untracked names: nothing to apply
            git.check_diff(root, record.commit, diff)
    return root, record.commit, diff


def _remote(tags: Mapping[str, str], *, bare: bool = False) -> str:
    remote = tags.get("shipyard.git.remote")
    if not remote:
        return ""
    return f" {remote}" if bare else f" (its remote was {remote})"


def read_diff(artifacts: ArtifactStore, run_id: str) -> bytes | None:
    """The uncommitted diff run ``run_id`` stored, or ``None`` when it stored none."""
    from shipyard.tracking.capture import DIFF_ARTIFACT

    try:
        with artifacts.open(run_id, DIFF_ARTIFACT) as stream:
            return stream.read()
    except NotFound:
        return None


def _has_changes(diff: bytes) -> bool:
    return any(line.startswith(b"diff --git ") for line in diff.splitlines())


def _untracked_warning(diff: bytes) -> list[str]:
    if _UNTRACKED_HEADER not in diff:
        return []
    names = [line[2:].decode("utf-8", errors="replace") for line in diff.split(_UNTRACKED_HEADER, 1)[1].splitlines()
             if line.startswith(b"# ")]
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return [f"the run's tree had untracked files whose contents were not stored: {shown}; if the code reads them, "
            "the re-run will not find them"] if names else []


def _entry_point(record: RunRecord, tags: Mapping[str, str]) -> tuple[str, list[str]]:
    from shipyard.tracking.capture import ARGV_MAX_CHARS

    entry_point = record.entry_point
    if not entry_point:
        raise InvalidInput(f"run {record.run_id} recorded no entry point (capture_system was off), so there is "
                           "nothing to re-run")
    if entry_point in _NO_SCRIPT:
        raise InvalidInput(f"run {record.run_id} was started from {entry_point.strip('<>')} code, not a script, so "
                           "there is no entry point to re-run; move the code into a script to make it reproducible")
    argv = tags.get("shipyard.source.argv", "")
    if len(argv) >= ARGV_MAX_CHARS and argv.endswith("..."):
        raise InvalidInput(f"the command line of run {record.run_id} was longer than {ARGV_MAX_CHARS} characters "
                           "and was cut when recorded, so it cannot be re-run exactly")
    try:
        return entry_point, shlex.split(argv)
    except ValueError as exc:
        raise InvalidInput(f"the recorded command line of run {record.run_id} cannot be parsed ({exc}): "
                           f"{argv!r}") from None


def _locate(entry_point: str, root: Path | None, commit: str | None, diff: bytes | None,
            warnings: list[str]) -> tuple[str, str]:
    """``(workdir, script)``: the folder the run started in (relative to the repository root, found
    from where the entry point lies in the commit's tree) and the script relative to it. The
    entry point was recorded relative to that folder, which itself was not recorded."""
    assert root is not None
    assert commit is not None
    files = set(git.tree_files(root, commit)) | set(git.diff_paths(diff or b""))
    path = Path(entry_point)
    if path.is_absolute():
        inside = _relative_to(path, root)
        if inside is None:
            raise InvalidInput(f"the entry point {entry_point} is outside the repository {root}, so the commit does "
                               "not hold its code; reproduce with --no-checkout to run it as it is now")
        if inside not in files:
            raise NotFound(f"the entry point {inside} is not in commit {commit[:12]}")
        return "", inside
    posix = path.as_posix()
    if posix in files:
        return "", posix
    below = sorted(f for f in files if f.endswith("/" + posix))
    if len(below) == 1:
        return below[0][: -len(posix) - 1], posix
    if len(below) > 1:
        raise InvalidInput(f"the entry point {posix} (recorded relative to the folder the run started in) matches "
                           f"several files of commit {commit[:12]}: {', '.join(below[:5])}; run reproduce with "
                           "--no-checkout from that folder instead")
    parts = path.parts
    for cut in range(1, len(parts)):  # the run started above the repository: `python repo/train.py`
        rest = Path(*parts[cut:]).as_posix()
        if rest in files:
            warnings.append(f"the run started outside the repository (entry point {posix}); the re-run starts "
                            "in the repository root")
            return "", rest
    raise NotFound(f"the entry point {posix} is not in commit {commit[:12]} of {root}")


def _here(entry_point: str) -> tuple[str, str]:
    path = Path(entry_point)
    if not (path if path.is_absolute() else Path.cwd() / path).is_file():
        raise NotFound(f"the entry point {entry_point} is not in the current folder {Path.cwd()}: --no-checkout runs "
                       "it from the folder the run started in, so run reproduce from there")
    return "", entry_point


def _relative_to(path: Path, root: Path) -> str | None:
    for candidate, base in ((path, root), (path.resolve(), root.resolve())):
        if candidate.is_relative_to(base):
            return candidate.relative_to(base).as_posix()
    return None


def _store_env(uris: StoreUris) -> dict[str, str]:
    """The tracking and artifact URIs, made absolute: the re-run starts in another folder."""
    tracking = uris.tracking_uri
    if tracking in ("sqlite://", "sqlite:///:memory:") or ":memory:" in tracking:
        raise InvalidInput("reproduce re-runs the code in another process, which cannot reach an in-memory store; "
                           "use a database file (sqlite:///path.db) or a server")
    return {"SHIPYARD_TRACKING_URI": _absolute(tracking),
            "SHIPYARD_ARTIFACT_URI": _absolute(uris.artifact_uri)}


def _absolute(uri: str) -> str:
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path, sep, query = uri[len("sqlite:///"):].partition("?")
        return f"sqlite:///{os.path.abspath(os.path.expanduser(path))}{sep}{query}"
    if "://" not in uri:
        return os.path.abspath(os.path.expanduser(uri))
    return uri

