"""``shipyard pipeline``: run a pipeline, list and show its runs, draw its graph, drop cached outputs."""

from __future__ import annotations

import enum
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, parse_key_values, state

if TYPE_CHECKING:
    from shipyard.pipelines.runner import StepOutcome
    from shipyard.tracking.client import Client

app = typer.Typer(
    help="Run pipelines of @step functions: cached, tracked (a parent run, a child run per step), gated.\n\n"
         "TARGET is MODULE:NAME (importable from the working directory) or path/to/file.py:NAME.\n\n"
         "Examples:\n"
         "  shipyard pipeline run myproject.flows:churn --param lr=0.05\n"
         "  shipyard pipeline run flows.py:churn --no-cache --parallel 2\n"
         "  shipyard pipeline run flows.py:churn --executor ray --ray-address 10.0.0.5:6379\n"
         "  shipyard pipeline run flows.py:churn --resume 3f2a9c0e41d84b0c9d1f6a2b7c3e5d80\n"
         "  shipyard pipeline run flows.py:churn --register churn --promote-to staging\n"
         "  shipyard pipeline list\n"
         "  shipyard pipeline show 3f2a9c0e41d84b0c9d1f6a2b7c3e5d80\n"
         "  shipyard pipeline graph flows.py:churn --format mermaid",
    no_args_is_help=True,
)

Target = Annotated[str, typer.Argument(metavar="TARGET", show_default=False,
                                       help="MODULE:NAME or path/to/file.py:NAME of a @pipeline.")]
Params = Annotated[list[str] | None, typer.Option("--param", "-p", metavar="KEY=VALUE", show_default=False,
                                                  help="A pipeline parameter (repeat); converted by its annotation.")]
RunRef = Annotated[str, typer.Argument(metavar="RUN", show_default=False, help="A pipeline run id.")]

class Executor(enum.StrEnum):
    LOCAL = "local"
    RAY = "ray"


_MARK = {"executed": ("✓", "green"), "cached": ("↺", "cyan"), "resumed": ("↺", "cyan"), "failed": ("✗", "red"),
         "skipped": ("·", "dim")}


def _client(ctx: typer.Context) -> Client:
    """The SDK's own client on the configured store, so ``shipyard.log_metric`` inside a step reaches the step's run."""
    from shipyard.tracking import fluent

    settings = state(ctx).settings
    if settings.sources.get("artifact_uri", "default") != "default":
        os.environ["SHIPYARD_ARTIFACT_URI"] = settings.artifact_uri
    fluent.set_tracking_uri(settings.tracking_uri)
    return fluent.default_client()


def _print_outcome(outcome: StepOutcome) -> None:
    mark, style = _MARK.get(outcome.status, ("?", ""))
    line = Text(f"{mark} ", style=style)
    line.append(f"{outcome.call:<20} ", style="bold")
    line.append(f"{outcome.status:<9}")
    if outcome.status == "executed":
        line.append(f" {outcome.seconds:.2f}s")
        if outcome.attempts > 1:
            line.append(f" ({outcome.attempts} attempts)", style="yellow")
    elif outcome.cached_from:
        line.append(f" from run {outcome.cached_from[:8]}", style="dim")
    for gate in outcome.gates:
        line.append(f"  gate {gate.gate}: {'pass' if gate.passed else 'FAIL'}", style="green" if gate.passed else "red")
    if outcome.error:
        line.append(f"  {outcome.error}", style="red")
    render.info(line)


@app.command("run")
def run_command(
    ctx: typer.Context,
    target: Target,
    param: Params = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Execute every step; reuse nothing.")] = False,
    rerun: Annotated[list[str] | None, typer.Option("--rerun", metavar="STEP", show_default=False,
                                                    help="Execute this step even if cached (repeat).")] = None,
    resume: Annotated[str | None, typer.Option("--resume", metavar="RUN", show_default=False,
                                               help="Continue this failed pipeline run where it stopped.")] = None,
    parallel: Annotated[int, typer.Option("--parallel", "-j", min=1, metavar="N",
                                          help="Run up to N independent steps at once, each in a process.")] = 1,
    executor: Annotated[Executor, typer.Option("--executor", case_sensitive=False,
                                               help="local (this machine) or ray (each step a Ray task).")]
    = Executor.LOCAL,
    ray_address: Annotated[str | None, typer.Option("--ray-address", metavar="ADDRESS", show_default=False,
                                                    help="Ray cluster: HOST:PORT, ray://HOST:PORT or auto "
                                                         "\\[default: RAY_ADDRESS, else a new local Ray].")] = None,
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", show_default=False,
                                                   help="Experiment of the runs \\[default: the pipeline's name].")]
    = None,
    register: Annotated[str | None, typer.Option("--register", metavar="MODEL", show_default=False,
                                                 help="Register the model a step produced, once every gate "
                                                      "passed.")] = None,
    promote_to: Annotated[str | None, typer.Option("--promote-to", metavar="ALIAS", show_default=False,
                                                   help="Then move ALIAS to it through the registry's gates.")]
    = None,
    model_step: Annotated[str | None, typer.Option("--model-step", metavar="STEP", show_default=False,
                                                   help="Which step's model to register, when several "
                                                        "produce one.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Run a pipeline: cached steps are reused, the rest executed; a failing step or gate exits non-zero."""
    from shipyard.errors import StepFailed
    from shipyard.pipelines.dsl import load_pipeline, parse_params

    flow = load_pipeline(target)
    values = parse_params(flow, parse_key_values(param, "--param"))
    client = _client(ctx)
    try:
        result = flow.run(**values, cache=not no_cache, rerun=tuple(rerun or ()), resume=resume, parallel=parallel,
                          executor=executor.value, ray_address=ray_address, experiment=experiment, register=register,
                          promote_to=promote_to, model_step=model_step, client=client,
                          on_step=None if as_json else _print_outcome)
    except StepFailed as err:  # the step's own traceback (from wherever it ran), then the one-line error
        if err.details.get("traceback"):
            Console(file=sys.stderr, highlight=False, markup=False).print(
                Text(str(err.details["traceback"]).rstrip(), style="dim"), soft_wrap=True)
        raise
    if as_json:
        render.print_json(_run_json(result))
        return
    done = Text(f"pipeline {result.pipeline} finished: run {result.run_id} ", style="bold")
    done.append(f"({len(result.executed)} executed, {len(result.cached)} from cache)")
    render.info(done)
    if result.model_version is not None:
        render.info(f"registered {result.model_version.name} version {result.model_version.version}")
    if result.promotion is not None:
        verdict = "promoted" if result.promotion.promoted else "NOT promoted"
        render.info(f"{verdict} to {result.promotion.alias}: " + "; ".join(
            f"{g.gate} {'pass' if g.passed else 'FAIL'} ({g.reason})" for g in result.promotion.gates))
        if not result.promotion.promoted:
            raise typer.Exit(1)


def _run_json(result: Any) -> dict[str, Any]:
    return {"run_id": result.run_id, "pipeline": result.pipeline, "status": result.status, "params": result.params,
            "steps": [{"step": o.call, "status": o.status, "run_id": o.run_id, "cached_from": o.cached_from,
                       "seconds": round(o.seconds, 4), "metrics": o.metrics,
                       "gates": [{"gate": g.gate, "value": g.candidate, "passed": g.passed} for g in o.gates]}
                      for o in result.steps.values()],
            "model_version": None if result.model_version is None else
            {"name": result.model_version.name, "version": result.model_version.version},
            "promoted": None if result.promotion is None else result.promotion.promoted}


@app.command("list")
def list_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--pipeline", metavar="NAME", show_default=False,
                                             help="Only runs of this pipeline.")] = None,
    max_results: Annotated[int, typer.Option("--max", min=1, max=1000, help="How many runs.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Pipeline runs, newest first."""
    from shipyard.pipelines.records import list_pipeline_runs

    runs = list_pipeline_runs(state(ctx).client, pipeline=name, max_results=max_results)
    if as_json:
        render.print_json(runs)
        return
    table = render.make_table("Run", "Pipeline", "Status", "Started", "Duration", "Steps", "Params",
                              title="Pipeline runs")
    for r in runs:
        params = ", ".join(f"{k}={v}" for k, v in r.params.items())
        table.add_row(r.run_id, r.pipeline, render.status_text(r.status), render.format_time(r.start_time),
                      render.format_duration(r.start_time, r.end_time, running=r.status == "RUNNING"), str(r.steps),
                      params if len(params) <= 60 else params[:57] + "...")
    render.show(render.with_notes(table, None if runs else "no pipeline runs yet: shipyard pipeline run MODULE:NAME"))


@app.command("show")
def show_command(ctx: typer.Context, run_id: RunRef, as_json: JsonOption = False) -> None:
    """The steps of a pipeline run: status, duration, cache origin, metrics."""
    from shipyard.pipelines.records import pipeline_run, status_of, step_runs

    client = state(ctx).client
    summary = pipeline_run(client, run_id)
    steps = step_runs(client, run_id)
    rows: list[dict[str, Any]] = [
        {"step": r.data.tags.get("shipyard.pipeline.step", ""), "status": status_of(r), "run_id": r.info.run_id,
             "start_time": r.info.start_time, "end_time": r.info.end_time,
             "cached_from": r.data.tags.get("shipyard.pipeline.cached_from"), "metrics": dict(r.data.metrics),
             "error": r.data.tags.get("shipyard.error")} for r in steps]
    if as_json:
        render.print_json({"run": summary, "steps": rows})
        return
    table = render.make_table("Step", "Status", "Run", "Duration", "From", "Metrics",
                              title=f"Pipeline {summary.pipeline} · run {summary.run_id} · {summary.status}")
    for row in rows:
        metrics = ", ".join(f"{k}={render.format_number(v)}" for k, v in sorted(row["metrics"].items()))
        table.add_row(row["step"], Text(row["status"], style=_MARK.get(row["status"], ("", ""))[1]), row["run_id"][:8],
                      render.format_duration(row["start_time"], row["end_time"]),
                      (row["cached_from"] or "")[:8], metrics or (row["error"] or ""))
    params = ", ".join(f"{k}={v}" for k, v in summary.params.items())
    render.show(render.with_notes(table, f"params: {params}" if params else None))


class Format(enum.StrEnum):
    TEXT = "text"
    MERMAID = "mermaid"
    DOT = "dot"


@app.command("graph")
def graph_command(
    target: Target,
    param: Params = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", case_sensitive=False,
                                        help="text (for people), mermaid or dot (Graphviz).")] = Format.TEXT,
) -> None:
    """Draw the pipeline's steps and what flows between them, without running anything."""
    from shipyard.pipelines.dsl import load_pipeline, parse_params

    flow = load_pipeline(target)
    graph = flow.graph(**parse_params(flow, parse_key_values(param, "--param")))
    text = {Format.TEXT: graph.to_text, Format.MERMAID: graph.to_mermaid, Format.DOT: graph.to_dot}[fmt]()
    sys.stdout.write(text)


@app.command("invalidate")
def invalidate_command(
    ctx: typer.Context,
    target: Target,
    step_name: Annotated[str, typer.Option("--step", metavar="STEP", show_default=False,
                                           help="The step whose cached outputs must not be reused.")],
    experiment: Annotated[str | None, typer.Option("--experiment", "-e", show_default=False,
                                                   help="Experiment of the runs \\[default: the pipeline's name].")]
    = None,
) -> None:
    """Stop a step's cached outputs from being reused (its runs and artifacts stay as history)."""
    from shipyard.errors import InvalidInput
    from shipyard.pipelines.dsl import load_pipeline
    from shipyard.pipelines.records import invalidate

    flow = load_pipeline(target)
    names = {call.step.name for call in flow.graph().calls.values()} | set(flow.graph().calls)
    if step_name not in names:
        raise InvalidInput(f"pipeline {flow.name!r} has no step {step_name!r}; its steps: {', '.join(sorted(names))}")
    count = invalidate(state(ctx).client, flow.name, step_name, experiment=experiment)
    render.info(f"{count} cached output set{'s' if count != 1 else ''} of {flow.name}.{step_name} will not be reused")
