"""``shipyard runs``: list, show, compare, delete and restore runs."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli import render, run_views
from shipyard.cli.context import JsonOption, View, ViewOption, client
from shipyard.entities import DEFAULT_EXPERIMENT_ID

app = typer.Typer(
    help="List, inspect, compare, delete and restore runs.\n\n"
         "Filters use the MLflow search syntax: metrics.<key>, params.<key>, tags.<key> and run "
         "attributes (status, run_name, start_time...), joined with 'and'.\n\n"
         "Examples:\n"
         "  shipyard runs list -e mnist -f \"metrics.acc > 0.9 and params.lr = '0.01'\"\n"
         "  shipyard runs list -e mnist --order-by \"metrics.acc DESC\" -n 10\n"
         "  shipyard runs show RUN_ID\n"
         "  shipyard runs compare RUN_ID RUN_ID",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.", show_default=False)]


@app.command("list")
def list_runs(
    ctx: typer.Context,
    experiment: Annotated[list[str] | None, typer.Option(
        "--experiment", "-e", metavar="ID_OR_NAME", show_default=False,
        help="Search this experiment; repeat for several. \\[default: the Default experiment]")] = None,
    filter_string: Annotated[str, typer.Option(
        "--filter", "-f", metavar="TEXT", show_default=False,
        help="Keep runs matching, e.g. \"metrics.loss < 0.3 and params.depth = '6'\".")] = "",
    order_by: Annotated[list[str] | None, typer.Option(
        "--order-by", "-o", metavar="TEXT", show_default=False,
        help="Sort key, e.g. \"metrics.loss ASC\"; repeat for ties. \\[default: newest first]")] = None,
    max_results: Annotated[int, typer.Option(
        "--max-results", "-n", metavar="N", help="Show at most this many runs.")] = 100,
    view: ViewOption = View.ACTIVE,
    as_json: JsonOption = False,
) -> None:
    """List runs of one or more experiments, newest first."""
    c = client(ctx)
    experiments = ([c.resolve_experiment(e) for e in experiment] if experiment
                   else [c.get_experiment(DEFAULT_EXPERIMENT_ID)])
    found = c.search_runs([e.experiment_id for e in experiments], filter_string, view.view_type,
                          max_results, order_by or None)
    if as_json:
        render.print_json(list(found))
        return
    render.show(run_views.runs_table(found, experiments, width=render.stdout_console().width,
                                     truncated=found.token is not None))


@app.command()
def show(
    ctx: typer.Context,
    run_id: RunId,
    all_tags: Annotated[bool, typer.Option(
        "--all-tags", help="Also show the shipyard.* system tags (JSON always has every tag).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show one run: info, params, metrics and their history, tags, artifacts."""
    c = client(ctx)
    run = c.get_run(run_id)
    experiment = c.get_experiment(run.info.experiment_id)
    history = {key: c.get_metric_history(run_id, key) for key in sorted(run.data.latest_metrics)}
    artifacts = c.list_artifacts(run_id)
    if as_json:
        render.print_json({"run": run, "experiment": experiment, "metric_history": history,
                           "artifacts": artifacts})
        return
    render.show(run_views.run_detail(run, experiment, history, artifacts, all_tags=all_tags))


@app.command()
def compare(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(
        metavar="RUN_ID", help="Two or more run ids.", show_default=False)],
    diff_only: Annotated[bool, typer.Option("--diff-only", help="Hide keys equal in every run.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Compare the params and metrics of runs side by side; differences stand out."""
    if len(run_ids) < 2:
        raise typer.BadParameter("give at least two run ids to compare", param_hint="RUN_ID")
    c = client(ctx)
    runs = [c.get_run(run_id) for run_id in run_ids]
    rows = run_views.compare_rows(runs)
    if as_json:
        render.print_json(run_views.compare_json(runs, rows))
        return
    render.show(run_views.compare_table(runs, rows, diff_only=diff_only))


@app.command()
def delete(ctx: typer.Context, run_id: RunId) -> None:
    """Delete a run (undo with restore)."""
    client(ctx).delete_run(run_id)
    render.info(f"Deleted run {run_id}")


@app.command()
def restore(ctx: typer.Context, run_id: RunId) -> None:
    """Bring a deleted run back."""
    client(ctx).restore_run(run_id)
    render.info(f"Restored run {run_id}")
