"""``shipyard config``: the resolved settings and where each value came from."""

from __future__ import annotations

from typing import Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, state
from shipyard.config import SETTINGS

app = typer.Typer(
    help="Show the resolved configuration.\n\n"
         "Each setting comes from a command-line option, else its SHIPYARD_* environment "
         "variable, else its default.\n\n"
         "Examples:\n"
         "  shipyard config show\n"
         "  SHIPYARD_TRACKING_URI=sqlite:///runs.db shipyard config show --json",
    no_args_is_help=True,
)

_SOURCE_STYLES = {"argument": "bold magenta", "env": "bold cyan", "default": "dim"}
# Shown only as set or not: terminals are shared, scrolled back and pasted into bug reports.
SECRET_SETTINGS = frozenset({"tracking_token", "server_oidc_client_secret"})


def _shown(name: str, value: object) -> object:
    return ("(set, hidden)" if value else "") if name in SECRET_SETTINGS else value


@app.command()
def show(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show every setting with its value, source and environment variable.

    The source is argument (a command-line option), env or default.
    """
    env_vars = {s.name: s.env_var for s in SETTINGS}
    rows: list[dict[str, Any]] = [
        {"name": name, "value": _shown(name, value), "source": source, "env_var": env_vars[name], "help": help_}
            for name, value, source, help_ in state(ctx).settings.describe()]
    if as_json:
        render.print_json(rows)
        return
    table = render.make_table("Setting", "Value", "Source")
    table.columns[1].overflow = "fold"
    for row in rows:
        name = Text(row["name"], style="bold")
        name.append(f"\n${row['env_var']}", style="dim")
        value = Text(str(row["value"]))
        value.append(f"\n{row['help']}", style="dim")
        table.add_row(name, value, Text(row["source"], style=_SOURCE_STYLES[row["source"]]))
    render.show(table)
