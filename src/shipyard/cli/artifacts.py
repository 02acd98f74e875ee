"""``shipyard artifacts``: list and download the files a run stored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client

app = typer.Typer(
    help="List and download a run's artifacts.\n\n"
         "Artifacts are stored content-addressed; every download checks the SHA-256 digests.\n\n"
         "Examples:\n"
         "  shipyard artifacts list RUN_ID\n"
         "  shipyard artifacts list RUN_ID model\n"
         "  shipyard artifacts download RUN_ID model/weights.pt --dest ./out",
    no_args_is_help=True,
)

RunId = Annotated[str, typer.Argument(metavar="RUN_ID", help="The run's id.", show_default=False)]


@app.command("list")
def list_artifacts(
    ctx: typer.Context,
    run_id: RunId,
    path: Annotated[str, typer.Argument(
        metavar="PATH", help="A folder inside the run. \\[default: the top level]", show_default=False)] = "",
    as_json: JsonOption = False,
) -> None:
    """List the files and folders at one level of a run's artifacts."""
    entries = client(ctx).list_artifacts(run_id, path)
    if as_json:
        render.print_json(entries)
        return
    if not entries:
        render.info(Text(f"Run {run_id} has no artifacts{f' under {path!r}' if path else ''}.", style="dim"))
        return
    render.show(render.artifacts_table(entries))


@app.command()
def download(
    ctx: typer.Context,
    run_id: RunId,
    path: Annotated[str, typer.Argument(
        metavar="PATH", help="A file or folder inside the run. \\[default: everything]",
        show_default=False)] = "",
    dest: Annotated[Path | None, typer.Option(
        "--dest", "-d", metavar="DIR", file_okay=False, show_default=False,
        help="Folder to download into (created if missing). \\[default: a new temporary folder]")] = None,
) -> None:
    """Download a file or folder of a run and print where it went.

    Every file's SHA-256 digest is checked before it appears in the destination.
    """
    local = client(ctx).download_artifacts(run_id, path, dest)
    render.info(Text.assemble("Downloaded ", (path or "all artifacts", "bold"), f" of run {run_id} to ",
                              (str(Path(local).resolve()), "bold green")))
