"""Reproduce a run: plan, prepare the workspace, re-run the entry point, compare.

Domain code (#14): :func:`reproduce_run` takes the registry service (its store, artifact store
and principal) and the store's URIs; :func:`shipyard.reproduce.reproduce` (:mod:`.sdk`) builds
them from a ``Client``, the fluent SDK's unless one is given.

The re-run is ``<python> <entry point> <recorded args>`` in the worktree, started in the folder
the original started in, tracking to the same store (``SHIPYARD_TRACKING_URI`` and
``SHIPYARD_ARTIFACT_URI`` made absolute). ``SHIPYARD_REPRODUCES=<original run id>`` makes the
first top-level run it starts (``shipyard.start_run``) the reproduction: tagged
``shipyard.reproduces`` and linked ``original -(reproduced)-> new`` in the lineage graph.

The seed is not injected: a script seeds itself (``shipyard.seed_everything(42)``) from its code
or its command line, and both are the recorded ones, so it gets the recorded seed again.
``SHIPYARD_SEED`` carries the recorded seed for scripts that take theirs from the environment;
a reproduction whose recorded seed differs from the original's is reported as a warning.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING

from shipyard.entities import RunQuery, ViewType
from shipyard.errors import InvalidInput
from shipyard.models.registry import as_registry
from shipyard.reproduce.compare import FAIL, PASS, PLANNED, ReproductionResult, compare_metrics, compare_params
from shipyard.reproduce.plan import Plan, StoreUris, make_plan
from shipyard.reproduce.progress import PlainProgress, Progress
from shipyard.reproduce.workspace import Workspace

if TYPE_CHECKING:
    from shipyard.entities import Run
    from shipyard.models.registry import HasRegistry, RegistryService
    from shipyard.store.protocol import Store

__all__ = ["reproduce_run"]

REPRODUCES_TAG = "shipyard.reproduces"
_TAIL_LINES = 20


def reproduce_run(registry: RegistryService | HasRegistry, run_id: str, *, uris: StoreUris,
                  tolerance: float = 0.02, env: str = "current", dry_run: bool = False,
                  repo: str | os.PathLike[str] | None = None, checkout: bool = True,
                  progress: Progress | None = None) -> ReproductionResult:
    """Re-run run ``run_id`` from its recorded code, data, command line and seed, and compare metrics.

    ``registry``: a ``RegistryService`` (or a ``Client``'s), whose store holds the run and whose
    artifact store its diff and its datasets' snapshots; ``uris``: that store's URIs, where the
    re-run (another process) tracks to. The other arguments are :func:`shipyard.reproduce.reproduce`'s.

    ``tolerance``: the largest relative difference per metric that passes. ``env``: ``current``
    (this interpreter) or ``venv`` (a new virtualenv with the run's recorded package versions,
    installed with pip). ``dry_run``: only plan (every check that needs no side effect still
    runs). ``repo``: the git repository holding the run's commit (default: the current folder's).
    ``checkout=False`` runs the entry point in the current tree instead of the recorded commit.
    ``progress``: where steps and the re-run's output go (default: plain lines on stderr).

    Raises ``NotFound`` (unknown run, commit not in the repository), ``InvalidInput`` (no commit
    or entry point recorded, bad arguments) and ``Conflict`` (the diff no longer applies, an
    input dataset changed and has no snapshot) before anything runs. A re-run that fails or
    does not match is a result with ``status == "fail"``, not an exception.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not tolerance >= 0:
        raise InvalidInput(f"tolerance must be a number >= 0 (a relative difference, 0.02 = 2%), got {tolerance!r}")
    service = as_registry(registry)  # a Client's queued metrics are written first
    progress = progress or PlainProgress()
    with progress.step(f"Reading the record of run {run_id}"):
        plan = make_plan(service, run_id, uris=uris, repo=repo, env=env, checkout=checkout, progress=progress)
    for warning in plan.warnings:
        progress.warn(warning)
    if dry_run:
        return ReproductionResult(plan.run_id, None, PLANNED, float(tolerance), plan, warnings=list(plan.warnings))

    before = _reproductions(service.store, plan)
    with Workspace(plan, service, progress) as workspace:
        returncode, tail = _execute(plan, workspace, progress)
    with progress.step("Comparing metrics"):
        return _result(service.store, plan, float(tolerance), before, returncode, tail)


def _execute(plan: Plan, workspace: Workspace, progress: Progress) -> tuple[int, list[str]]:
    command = [workspace.python, *plan.command[1:]]
    tail: list[str] = []
    with progress.step(f"Running {' '.join(plan.command[1:])} (in {plan.workdir or '.'} of the "
                       f"{'worktree' if plan.checkout else 'current tree'})"):
        try:
            with subprocess.Popen(command, cwd=workspace.workdir, env={**os.environ, **plan.env},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, errors="replace") as process:
                assert process.stdout is not None
                for line in process.stdout:
                    line = line.rstrip("\n")
                    progress.output(line)
                    tail = [*tail[-(_TAIL_LINES - 1):], line]
                returncode = process.wait()
        except OSError as exc:
            return 127, [f"could not start {command[0]}: {exc}"]
    return returncode, tail


def _result(store: Store, plan: Plan, tolerance: float, before: set[str], returncode: int,
            tail: list[str]) -> ReproductionResult:
    warnings = list(plan.warnings)
    new = _reproductions(store, plan) - before
    run = _latest(store, new)
    if run is None:
        why = (f"the entry point exited with status {returncode}" if returncode
               else "the entry point started no run (none is tagged shipyard.reproduces=" + plan.run_id + ")")
        message = why + (":\n" + "\n".join(tail) if tail and returncode else "")
        rows = compare_metrics(plan.metrics, {}, tolerance)
        return ReproductionResult(plan.run_id, None, FAIL, tolerance, plan, rows, [], warnings, returncode, message)
    rows = compare_metrics(plan.metrics, run.data.metrics, tolerance)
    params = compare_params(plan.params, run.data.params)
    if params:
        warnings.append(f"{len(params)} param(s) differ from the original's: "
                        + ", ".join(p.key for p in params))
    seed = run.data.tags.get("shipyard.seed")
    if plan.seed is not None and seed != plan.seed:
        warnings.append(f"the original was seeded with {plan.seed}, the reproduction with {seed or 'nothing'}")
    message = ""
    if returncode:
        message = f"the entry point exited with status {returncode}:\n" + "\n".join(tail)
    elif run.info.status.value != "FINISHED":
        message = f"the reproduction run ended {run.info.status.value}"
    elif not plan.metrics:
        message = "the original run logged no metrics, so there is nothing to compare"
    failed = message or not all(row.passed for row in rows)
    return ReproductionResult(plan.run_id, run.info.run_id, FAIL if failed else PASS, tolerance, plan, rows, params,
                              warnings, returncode, message)


def _reproductions(store: Store, plan: Plan) -> set[str]:
    """Ids of the runs tagged as reproductions of the plan's run, in its experiment (where the
    re-run lands unless the code picks another) and, when none is there, in every experiment."""
    query = f"tags.`{REPRODUCES_TAG}` = '{plan.run_id}'"
    found = {r.info.run_id for r in _search(store, [plan.experiment_id], query)}
    if not found:
        others = [e.experiment_id for e in store.experiments.list(ViewType.ACTIVE_ONLY)
                  if e.experiment_id != plan.experiment_id]
        if others:
            found = {r.info.run_id for r in _search(store, others, query)}
    return found


def _search(store: Store, experiment_ids: list[str], query: str) -> list[Run]:
    from shipyard.filters import parse_filter

    runs: list[Run] = []
    token = None
    while True:
        page = store.runs.search(RunQuery(tuple(experiment_ids), parse_filter(query), max_results=1000,
                                          page_token=token))
        runs += list(page.items)
        token = page.next_page_token
        if not token:
            return runs


def _latest(store: Store, run_ids: set[str]) -> Run | None:
    runs = [store.runs.get(run_id) for run_id in run_ids]
    return max(runs, key=lambda r: r.info.start_time or 0, default=None)

