"""``shipyard gc``: permanently remove deleted runs and free their storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.tracking.gc import GcReport


def gc(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="AGE",
        help="Purge runs deleted at least this long ago (30s, 15m, 1h, 2d, 1w) or before this ISO time. "
             "0s purges everything deleted.")] = "30d",
    grace: Annotated[str, typer.Option(
        "--grace", metavar="AGE",
        help="Free only blobs written at least this long ago: a younger one may belong to a write still "
             "under way. 0s when nothing else writes to the store.")] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would go; change nothing.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Permanently remove deleted runs and free the artifact storage nothing references any more.

    Deleting a run or an experiment only marks it (restore brings it back); gc cannot be undone.
    It purges runs deleted before --older-than, and all runs of experiments deleted before it.
    A deleted run that a registered model version or a live logged model needs is kept, and gc says why.
    A deleted experiment goes too once it has no run left (its id is never given to another one).
    gc works on the database and the artifact storage themselves: on a team server, give it the server's
    --tracking-uri and --artifact-uri.

    Examples:
      shipyard gc --dry-run
      shipyard gc --older-than 7d
      shipyard gc --older-than 0s --grace 0s     # a laptop store nobody else writes to
    """
    from shipyard.clock import parse_duration, parse_time
    from shipyard.tracking.gc import collect_garbage

    cutoff = cast(int, parse_time(older_than, field="older-than"))  # a str never parses to None
    grace_seconds = parse_duration(grace)
    if grace_seconds is None:
        raise InvalidInput(f"grace: expected a duration (0s, 15m, 1h, 2d), got {grace!r}")
    with render.progress() as update:
        report = collect_garbage(client(ctx), cutoff_ms=cutoff, grace_seconds=grace_seconds, dry_run=dry_run,
                                 progress=update)
    if as_json:
        render.print_json(report)
        return
    _print(report)


def _print(report: GcReport) -> None:
    would = "Would purge" if report.dry_run else "Purged"
    sweep = report.sweep
    render.info(Text.assemble(
        f"{would} ", (f"{len(report.runs_purged)} runs", "bold"),
        f", {len(report.logged_models_purged)} logged models and {len(report.experiments_purged)} deleted experiments"
        + ("" if report.dry_run else f" ({report.artifact_files_removed} artifact files)")))
    freed = "would free" if report.dry_run else "freed"
    render.info(Text.assemble(
        f"Blobs: {sweep.blobs_seen} stored, {sweep.blobs_referenced} in use, ",
        (f"{sweep.blobs_deleted} {freed} ({render.format_size(sweep.bytes_freed)})", "bold green"),
        f", {sweep.blobs_too_young} younger than the grace period kept"))
    if report.kept:
        table = render.make_table("Run", "Why it stays", title="Deleted, but still needed")
        for run_id, why in sorted(report.kept.items()):
            table.add_row(run_id, why)
        render.show(table)
