"""``shipyard tune``: search hyperparameters with Optuna, each trial a child run, the best on the study's run."""

from __future__ import annotations

import enum
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, state

if TYPE_CHECKING:
    from shipyard.pipelines.trials import TrialOutcome
    from shipyard.pipelines.tune import TuneResult


class Direction(enum.StrEnum):
    MAXIMIZE = "maximize"
    MINIMIZE = "minimize"


class Sampler(enum.StrEnum):
    TPE = "tpe"
    RANDOM = "random"


class Pruner(enum.StrEnum):
    MEDIAN = "median"
    HYPERBAND = "hyperband"
    NONE = "none"


class Executor(enum.StrEnum):
    LOCAL = "local"
    RAY = "ray"


_STYLE = {"complete": "green", "pruned": "yellow", "failed": "red"}


def _print_trial(outcome: TrialOutcome) -> None:
    line = Text(f"trial {outcome.number:<4} ", style="bold")
    line.append(f"{outcome.state:<9}", style=_STYLE.get(outcome.state, ""))
    line.append(f" {render.format_number(outcome.value) if outcome.value is not None else '-':>10}")
    line.append("  " + ", ".join(f"{k}={render.format_number(v) if isinstance(v, float) else v}"
                                 for k, v in outcome.params.items()), style="dim")
    if outcome.error:
        line.append(f"  {outcome.error}", style="red")
    render.info(line)


def tune(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(metavar="OBJECTIVE", show_default=False,
                                          help="MODULE:NAME or path/to/file.py:NAME of the function to tune.")],
    space: Annotated[str, typer.Option("--space", "-s", metavar="FILE", show_default=False,
                                       help="The search space (YAML): name: {type: float|int|categorical, ...}.")],
    trials: Annotated[int, typer.Option("--trials", "-n", min=1, metavar="N", help="How many trials.")] = 20,
    direction: Annotated[Direction, typer.Option("--direction", "-d", case_sensitive=False,
                                                 help="Whether a higher value is better.")] = Direction.MAXIMIZE,
    metric: Annotated[str | None, typer.Option("--metric", "-m", metavar="NAME", show_default=False,
                                               help="The metric to optimize when the objective returns "
                                                    "several.")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-j", min=1, metavar="N",
                                          help="Workers sharing the study (processes, or Ray tasks).")] = 1,
    executor: Annotated[Executor, typer.Option("--executor", case_sensitive=False,
                                               help="local (processes here) or ray.")] = Executor.LOCAL,
    ray_address: Annotated[str | None, typer.Option("--ray-address", metavar="ADDRESS", show_default=False,
                                                    help="Ray cluster: HOST:PORT, ray://HOST:PORT or auto "
                                                         "\\[default: RAY_ADDRESS, else a new local Ray].")] = None,
    storage: Annotated[str | None, typer.Option("--storage", metavar="URL", show_default=False,
                                                help="Optuna storage the workers share \\[default: beside the "
                                                     "tracking database].")] = None,
    study: Annotated[str | None, typer.Option("--study", metavar="NAME", show_default=False,
                                              help="Study name; an existing study of that name in --storage "
                                                   "is continued \\[default: the study's run id].")] = None,
    sampler: Annotated[Sampler, typer.Option("--sampler", case_sensitive=False,
                                             help="tpe (Bayesian) or random.")] = Sampler.TPE,
    pruner: Annotated[Pruner, typer.Option("--pruner", case_sensitive=False,
                                           help="Stops trials that report worse values than earlier ones "
                                                "(objectives taking a `trial`).")] = Pruner.MEDIAN,
    seed: Annotated[int | None, typer.Option("--seed", min=0, show_default=False,
                                             help="Makes the sampling repeatable.")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", show_default=False,
                                                   help="Experiment of the runs \\[default: tune-<objective>].")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Tune hyperparameters: each trial is a child run; the best trial is recorded on the study's run.

    Examples:
      shipyard tune train.py:objective --space space.yaml --trials 50
      shipyard tune myproject.train:fit -s space.yaml -n 50 --parallel 4 --metric f1
      shipyard tune train.py:objective -s space.yaml -n 100 --parallel 8 --executor ray --ray-address auto
    """
    from shipyard.pipelines.trials import import_optuna
    from shipyard.pipelines.tune import tune as run_tune
    from shipyard.tracking import fluent

    settings = state(ctx).settings
    if settings.sources.get("artifact_uri", "default") != "default":
        os.environ["SHIPYARD_ARTIFACT_URI"] = settings.artifact_uri
    fluent.set_tracking_uri(settings.tracking_uri)
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial is ours to print
    result = run_tune(target, space, trials, direction.value, parallel, executor.value, metric=metric,
                      experiment=experiment, study_name=study, storage=storage, sampler=sampler.value,
                      pruner=pruner.value, seed=seed, ray_address=ray_address, client=fluent.default_client(),
                      on_trial=None if as_json else _print_trial)
    if as_json:
        render.print_json(_json(result))
        return
    assert result.best is not None
    table = render.make_table("", "Best trial", title=f"Study {result.study_name}")
    table.add_row("trial", f"{result.best.number} (run {result.best.run_id})")
    table.add_row(f"{result.metric} ({result.direction})", render.format_number(result.best_value))
    for name, value in result.best_params.items():
        table.add_row(name, render.format_number(value) if isinstance(value, float) else str(value))
    counts = result.counts
    render.show(render.with_notes(table, f"study run {result.run_id}: {counts['complete']} complete, "
                                         f"{counts['pruned']} pruned, {counts['failed']} failed in "
                                         f"{result.seconds:.1f}s"))


def _json(result: TuneResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "study": result.study_name, "direction": result.direction,
            "metric": result.metric, "best": None if result.best is None else
            {"trial": result.best.number, "run_id": result.best.run_id, "value": result.best.value,
             "params": result.best.params},
            "counts": result.counts,
            "trials": [{"trial": t.number, "run_id": t.run_id, "state": t.state, "value": t.value,
                        "params": t.params, "metrics": t.metrics, "error": t.error or None} for t in result.trials]}
