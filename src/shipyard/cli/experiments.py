"""``shipyard experiments``: list, create, rename, delete and restore experiments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.console import RenderableType
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, View, ViewOption, client, parse_key_values
from shipyard.entities import Experiment, LifecycleStage

app = typer.Typer(
    help="Create, list, rename, delete and restore experiments.\n\n"
         "An experiment is given by its id or its name.\n\n"
         "Examples:\n"
         "  shipyard experiments create mnist --tag team=vision\n"
         "  shipyard experiments rename mnist mnist-v2\n"
         "  shipyard experiments list --view all --json",
    no_args_is_help=True,
)

IdOrName = Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="The experiment's id or name.",
                                         show_default=False)]


@app.command("list")
def list_experiments(ctx: typer.Context, view: ViewOption = View.ACTIVE, as_json: JsonOption = False) -> None:
    """List experiments, oldest first."""
    found = client(ctx).search_experiments(view.view_type)
    if as_json:
        render.print_json(found)
        return
    render.show(_table(found, show_stage=view is not View.ACTIVE))


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name no other experiment has.",
                                        show_default=False)],
    tag: Annotated[list[str] | None, typer.Option(
        "--tag", "-t", metavar="KEY=VALUE", help="Tag the experiment; repeat for more tags.")] = None,
) -> None:
    """Create an experiment and print its id."""
    tags = parse_key_values(tag, "--tag")
    experiment_id = client(ctx).create_experiment(name, tags=tags)
    render.info(Text.assemble("Created experiment ", (name, "bold"), f" with id {experiment_id}"))


@app.command()
def rename(
    ctx: typer.Context,
    experiment: IdOrName,
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME", help="The new name.", show_default=False)],
) -> None:
    """Give an experiment a new name."""
    c = client(ctx)
    found = c.resolve_experiment(experiment)
    c.rename_experiment(found.experiment_id, new_name)
    render.info(Text.assemble(f"Renamed experiment {found.experiment_id}: ", (found.name, "bold"),
                              " → ", (new_name, "bold")))


@app.command()
def delete(ctx: typer.Context, experiment: IdOrName) -> None:
    """Delete an experiment and hide its runs (undo with restore)."""
    c = client(ctx)
    found = c.resolve_experiment(experiment)
    c.delete_experiment(found.experiment_id)
    render.info(Text.assemble("Deleted experiment ", (found.name, "bold"), f" (id {found.experiment_id})"))


@app.command()
def restore(ctx: typer.Context, experiment: IdOrName) -> None:
    """Bring a deleted experiment and its runs back."""
    c = client(ctx)
    found = c.resolve_experiment(experiment)
    c.restore_experiment(found.experiment_id)
    render.info(Text.assemble("Restored experiment ", (found.name, "bold"), f" (id {found.experiment_id})"))


def _table(found: Sequence[Experiment], *, show_stage: bool) -> RenderableType:
    if not found:
        return Text("No experiments.", style="dim")
    headers = ["ID", "Name", *(["Stage"] if show_stage else []), "Created", "Updated", "Tags"]
    table = render.make_table(*headers)
    for e in found:
        stage = [Text(e.lifecycle_stage.value, style="red" if e.lifecycle_stage is LifecycleStage.DELETED
                      else "")] if show_stage else []
        tags = ", ".join(f"{k}={v}" for k, v in sorted(e.tags.items()))
        table.add_row(e.experiment_id, Text(e.name, style="bold"), *stage,
                      render.format_time(e.creation_time), render.format_time(e.last_update_time), tags)
    return table
