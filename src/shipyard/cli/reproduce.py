"""``shipyard reproduce RUN_ID``: re-run a run from its record and compare its metrics."""

from __future__ import annotations

import contextlib
import enum
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, Group, RenderableType
from rich.status import Status
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client

if TYPE_CHECKING:
    from shipyard.reproduce import Plan, ReproductionResult

FAILED_EXIT_CODE = 1


class Env(enum.StrEnum):
    CURRENT = "current"
    VENV = "venv"


def reproduce(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", show_default=False, help="The run to reproduce.")],
    tolerance: Annotated[float, typer.Option("--tolerance", min=0.0, help="Largest relative difference per metric "
                                             "that passes (0.02 = 2%).")] = 0.02,
    env: Annotated[Env, typer.Option("--env", case_sensitive=False, help="current: this Python environment; venv: a "
                                     "new virtualenv with the run's recorded package versions (pip).")] = Env.CURRENT,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan (after every check that changes "
                                          "nothing) and run nothing.")] = False,
    repo: Annotated[Path | None, typer.Option("--repo", metavar="PATH", show_default=False,
                                              help="The git repository holding the run's commit \\[default: the "
                                                   "current folder's].")] = None,
    no_checkout: Annotated[bool, typer.Option("--no-checkout", help="Run the entry point in the current tree "
                                              "instead of the run's commit (e.g. a run made outside git).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Re-run RUN_ID from its recorded commit, diff, data, command line and seed; compare its metrics.

    The run's commit is checked out into a temporary git worktree and its uncommitted diff applied.
    Every input dataset is put where the code expects it (verified by digest, or restored from its snapshot).
    The entry point runs as a new run linked to the original (tag shipyard.reproduces).
    Each metric is compared with PASS/FAIL against --tolerance; the exit status is 0 only when all pass.

    Examples:
      shipyard reproduce 3f2a9c0e41d84b0c9d1f6a2b7c3e5d80
      shipyard reproduce 3f2a9c0e... --tolerance 0.001 --env venv
      shipyard reproduce 3f2a9c0e... --dry-run
    """
    from shipyard.reproduce import reproduce as run_reproduce

    result = run_reproduce(run_id, tolerance=tolerance, env=env.value, dry_run=dry_run, client=client(ctx),
                           repo=repo, checkout=not no_checkout, progress=RichProgress())
    if as_json:
        render.print_json(result)
    elif dry_run:
        render.show(_plan_view(result.plan))
    else:
        render.show(_result_view(result))
    if not dry_run and not result.passed:
        raise typer.Exit(FAILED_EXIT_CODE)


class RichProgress:
    """Steps as a spinner on stderr (a line each when stderr is not a terminal); the re-run's
    output streams below it."""

    def __init__(self) -> None:
        self.console = Console(file=sys.stderr, highlight=False, markup=False)
        self._status: Status | None = None
        self._messages: list[str] = []

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        if not self.console.is_terminal:
            self.console.print(Text(f"… {message}", style="dim"), soft_wrap=True)
            yield
            return
        outer = self._status is None
        if outer:  # one live spinner at a time: a step inside another only changes its text
            self._status = self.console.status(message)
            self._status.start()
        else:
            assert self._status is not None
            self._status.update(message)
        self._messages.append(message)
        try:
            yield
        finally:
            self._messages.pop()
            if outer:
                assert self._status is not None
                self._status.stop()
                self._status = None
            elif self._status is not None:
                self._status.update(self._messages[-1])
        self.console.print(Text.assemble(("✓ ", "green"), message), soft_wrap=True)

    def output(self, line: str) -> None:
        self.console.print(Text(f"  │ {line}", style="dim"), soft_wrap=True)

    def warn(self, message: str) -> None:
        self.console.print(Text(f"Warning: {message}", style="yellow"), soft_wrap=True)


def _plan_view(plan: Plan) -> RenderableType:
    summary = render.make_table("", "", title=f"Plan: reproduce run {plan.run_id} ({plan.run_name})")
    summary.show_header = False
    if plan.checkout:
        code = f"commit {plan.commit} of {plan.repo}, in a temporary worktree"
        if plan.diff_files:
            code += f" + the run's uncommitted changes to {', '.join(plan.diff_files)}"
    else:
        code = f"the current tree ({plan.repo or Path.cwd()}), not checked out"
    environment = plan.environment
    env_text = ("this Python: " + environment.python if environment.kind == "current"
                else f"new virtualenv with the {len(environment.requirements)} recorded requirements:\n"
                + "\n".join(_shell(c) for c in environment.commands))
    rows = [("Code", code), ("Start in", plan.workdir or "the repository root"),
            ("Command", _shell(plan.command)), ("Environment", env_text),
            ("Variables", "\n".join(f"{k}={v}" for k, v in sorted(plan.env.items()))),
            ("Seed", plan.seed or "not recorded"),
            ("Params", ", ".join(f"{k}={v}" for k, v in sorted(plan.params.items())) or render.MISSING),
            ("Metrics", ", ".join(f"{k}={render.format_number(v)}" for k, v in sorted(plan.metrics.items()))
             or render.MISSING)]
    for label, value in rows:
        summary.add_row(Text(label, style="bold"), value)
    data = render.make_table("Dataset", "Context", "Digest", "Action", "Where the code finds it", title="Inputs")
    for step in plan.datasets:
        where = Text(step.target)
        if step.note:
            where.append(f"\n{step.note}", style="dim")
        data.add_row(step.ref, step.context, render.short_digest(step.digest), Text(step.action, style="bold"), where)
    parts = [summary, data if plan.datasets else Text("No input datasets recorded.", style="dim")]
    notes = [f"warning: {w}" for w in plan.warnings] + ["Dry run: nothing was checked out or run."]
    return render.with_notes(render.stack(*parts), *notes)


def _result_view(result: ReproductionResult) -> RenderableType:
    tolerance = _percent(result.tolerance)
    heading = Text(f"Run {result.original_run_id} reproduced as {result.reproduction_run_id or '(no run)'}",
                   style="bold")
    table = render.make_table("Metric", "Original", "Reproduced", "Abs Δ", "Rel Δ", "Result")
    for column in table.columns[1:5]:
        column.justify = "right"
    for row in result.metrics:
        verdict = Text("PASS", style="bold green") if row.passed else Text("FAIL", style="bold red")
        table.add_row(row.key, render.format_number(row.original, 6), render.format_number(row.reproduced, 6),
                      render.format_number(row.abs_delta, 3), _percent(row.rel_delta), verdict)
    for param in result.params:
        table.add_row(Text(f"param {param.key}", style="yellow"), param.original or render.MISSING,
                      param.reproduced or render.MISSING, "", "", Text("WARN", style="bold yellow"))
    passed = sum(row.passed for row in result.metrics)
    if result.passed:
        verdict = Text(f"PASS: all {passed} metric(s) within {tolerance} of the original", style="bold green")
    else:
        why = result.message or f"{len(result.metrics) - passed} of {len(result.metrics)} metric(s) differ by more " \
                                f"than {tolerance}"
        verdict = Text(f"FAIL: {why}", style="bold red")
    notes = [f"warning: {w}" for w in result.warnings]
    parts = [Group(heading, table)] if result.metrics or result.params else [heading]
    return render.with_notes(render.stack(*parts, verdict), *notes)


def _shell(command: list[str]) -> str:
    """``command`` as one would type it; the ``<workspace>`` placeholder is left unquoted."""
    return " ".join(part if re.fullmatch(r"[\w@%+=:,./<>-]+", part) else shlex.quote(part) for part in command)


def _percent(value: float | None) -> str:
    if value is None:
        return render.MISSING
    return f"{value * 100:.3g}%"
