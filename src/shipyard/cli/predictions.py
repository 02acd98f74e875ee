"""``shipyard predictions``: the prediction log of a deployment, exported for analysis."""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client

app = typer.Typer(
    help="Export what a deployment answered: every prediction's inputs, outputs, model version, latency and "
         "the ground truth sent back for it.\n\n"
         "Times are a duration back from now (30s, 15m, 1h, 2d, 1w) or an ISO time (2024-05-01T13:00Z; "
         "without an offset, UTC).\n\n"
         "Examples:\n"
         "  shipyard predictions export churn-api --since 1h --out last-hour.parquet\n"
         "  shipyard predictions export churn-api --since 2024-05-01 --until 2024-05-02 --format csv "
         "--out may-1.csv",
    no_args_is_help=True,
)

class ExportFormat(enum.StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


@app.command()
def export(
    ctx: typer.Context,
    deployment: Annotated[str, typer.Argument(metavar="DEPLOYMENT", show_default=False,
                                              help="The deployment whose predictions to export.")],
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", show_default=False,
                                      help="Where to write (replaced atomically when it exists).")],
    since: Annotated[str | None, typer.Option("--since", metavar="TIME", show_default=False,
                                              help="From this time on: 15m, 1h, 2d or an ISO time "
                                                   "\\[default: the start of the log]")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="TIME", show_default=False,
                                              help="Before this time: 15m, 1h, 2d or an ISO time "
                                                   "\\[default: now]")] = None,
    fmt: Annotated[ExportFormat | None, typer.Option("--format", "-f", case_sensitive=False, show_default=False,
                                                     help="parquet or csv \\[default: from the FILE suffix, "
                                                          "else parquet]")] = None,
    feedback: Annotated[bool, typer.Option("--feedback/--no-feedback",
                                           help="Join the latest ground truth sent for each prediction.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Write DEPLOYMENT's predictions between --since and --until to FILE as Parquet or CSV.

    An empty range still writes FILE (with every column, no rows) and warns on stderr, so a
    scheduled job reading FILE never finds it missing."""
    from shipyard.clock import parse_time
    from shipyard.predictions.reader import export_predictions

    start = parse_time(since)
    end = parse_time(until, field="until")
    chosen = fmt.value if fmt is not None else ("csv" if out.suffix.lower() == ".csv" else "parquet")
    with render.progress() as update:
        rows = export_predictions(client(ctx), deployment, out, since=start, until=end, fmt=chosen,
                                  with_feedback=feedback, progress=lambda done, total: update("reading the log", done,
                                                                                              total))
    if rows == 0:
        Console(file=sys.stderr, highlight=False, markup=False).print(
            Text(f"Warning: deployment {deployment!r} logged no predictions in that range; wrote an empty {chosen} "
                 f"file to {out}", style="yellow"), soft_wrap=True)
    if as_json:
        render.print_json({"deployment": deployment, "rows": rows, "format": chosen, "out": str(out),
                           "since": start, "until": end})
        return
    if rows:
        render.info(f"Exported {rows} predictions of {deployment} to {out} ({chosen})")
