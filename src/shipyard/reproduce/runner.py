"""``reproduce(run_id)``: plan, prepare the workspace, re-run the entry point, compare.

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

from shipyard.errors import InvalidInput
from shipyard.reproduce.compare import FAIL, PASS, PLANNED, ReproductionResult, compare_metrics, compare_params
from shipyard.reproduce.plan import Plan, make_plan
from shipyard.reproduce.progress import PlainProgress, Progress
from shipyard.reproduce.workspace import Workspace

if TYPE_CHECKING:
    from shipyard.entities import Run
    from shipyard.tracking.client import Client

__all__ = ["reproduce"]

REPRODUCES_TAG = "shipyard.reproduces"
_TAIL_LINES = 20


def reproduce(run_id: str, *, tolerance: float = 0.02, env: str = "current", dry_run: bool = False,
              client: Client | None = None, repo: str | os.PathLike[str] | None = None, checkout: bool = True,
              progress: Progress | None = None) -> ReproductionResult:
    """Re-run run ``run_id`` from its recorded code, data, command line and seed, and compare metrics.

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
    if client is None:
        from shipyard.tracking.fluent import default_client

        client = default_client()
    progress = progress or PlainProgress()
    client.flush()
    with progress.step(f"Reading the record of run {run_id}"):
        plan = make_plan(client, run_id, repo=repo, env=env, checkout=checkout, progress=progress)
    for warning in plan.warnings:
        progress.warn(warning)
    if dry_run:
        return ReproductionResult(plan.run_id, None, PLANNED, float(tolerance), plan, warnings=list(plan.warnings))

    before = _reproductions(client, plan)
    with Workspace(plan, client, progress) as workspace:
        returncode, tail = _execute(plan, workspace, progress)
    with progress.step("Comparing metrics"):
        return _result(client, plan, float(tolerance), before, returncode, tail)


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


def _result(client: Client, plan: Plan, tolerance: float, before: set[str], returncode: int,
            tail: list[str]) -> ReproductionResult:
    warnings = list(plan.warnings)
    new = _reproductions(client, plan) - before
    run = _latest(client, new)
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


def _reproductions(client: Client, plan: Plan) -> set[str]:
    """Ids of the runs tagged as reproductions of the plan's run, in its experiment (where the
    re-run lands unless the code picks another) and, when none is there, in every experiment."""
    query = f"tags.`{REPRODUCES_TAG}` = '{plan.run_id}'"
    found = {r.info.run_id for r in _search(client, [plan.experiment_id], query)}
    if not found:
        others = [e.experiment_id for e in client.search_experiments() if e.experiment_id != plan.experiment_id]
        if others:
            found = {r.info.run_id for r in _search(client, others, query)}
    return found


def _search(client: Client, experiment_ids: list[str], query: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs(experiment_ids, query, max_results=1000, page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _latest(client: Client, run_ids: set[str]) -> Run | None:
    runs = [client.get_run(run_id) for run_id in run_ids]
    return max(runs, key=lambda r: r.info.start_time or 0, default=None)

