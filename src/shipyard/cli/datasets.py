"""``shipyard datasets``: versioned datasets, their schemas and profiles, snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client
from shipyard.entities import DatasetVersion

app = typer.Typer(
    help="List datasets and their versions, show schemas and profiles, compare versions, restore snapshots.\n\n"
         "A version is NAME@VERSION (NAME alone is the latest). Log datasets from code with "
         "shipyard.log_dataset(path_or_frame, name=..., context=...).\n\n"
         "Examples:\n"
         "  shipyard datasets list\n"
         "  shipyard datasets versions churn-train\n"
         "  shipyard datasets show churn-train@3\n"
         "  shipyard datasets diff churn-train@2 churn-train@3\n"
         "  shipyard datasets get churn-train@3 ./restored",
    no_args_is_help=True,
)

Ref = Annotated[str, typer.Argument(metavar="NAME@VERSION", show_default=False,
                                    help="A dataset version, e.g. churn-train@3 (NAME alone: the latest).")]


@app.command("list")
def list_datasets(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List datasets by name, with their latest version."""
    found = client(ctx).store.datasets.list_datasets()
    if as_json:
        render.print_json(found)
        return
    table = render.make_table("Name", "Latest", "Kind", "Rows", "Size", "Digest", "Logged")
    for d in found:
        table.add_row(Text(d.name, style="bold"), str(d.version), d.kind, _rows(d), render.format_size(d.size_bytes),
                      render.short_digest(d.digest), render.format_time(d.creation_time, compact=True))
    render.show(table)


@app.command()
def versions(ctx: typer.Context, name: Annotated[str, typer.Argument(metavar="NAME", show_default=False)],
             as_json: JsonOption = False) -> None:
    """List a dataset's versions, oldest first."""
    found = client(ctx).store.datasets.list_versions(name)
    if as_json:
        render.print_json(found)
        return
    table = render.make_table("Version", "Digest", "Rows", "Size", "Snapshot", "Source", "Logged", title=name)
    for d in found:
        table.add_row(str(d.version), render.short_digest(d.digest), _rows(d), render.format_size(d.size_bytes),
                      "yes" if d.snapshot_uri else "", d.source, render.format_time(d.creation_time, compact=True))
    render.show(table)


@app.command()
def show(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """Show a version: digest, source, snapshot, schema and the profile of every column."""
    d = client(ctx).get_dataset(ref)
    if as_json:
        render.print_json(d)
        return
    head = render.make_table("", "", title=f"Dataset {d.ref}")
    head.show_header = False
    for label, value in (("Digest", d.digest), ("Kind", d.kind), ("Source", d.source), ("Rows", _rows(d)),
                         ("Size", render.format_size(d.size_bytes)),
                         ("Snapshot", d.snapshot_uri or "none (the source is verified by digest when used)"),
                         ("Logged", render.format_time(d.creation_time, seconds=True))):
        head.add_row(Text(label, style="bold"), value)
    parts: list[Any] = [head]
    columns = d.profile.get("columns") if isinstance(d.profile, dict) else None
    if columns:
        table = render.make_table("Column", "Type", "Nulls", "Summary", title="Profile")
        for column in columns:
            table.add_row(str(column.get("name")), str(column.get("type")), str(column.get("nulls", "")),
                          _summary(column))
        parts.append(table)
    elif d.schema:
        table = render.make_table("Column", "Type", title="Schema")
        for column in d.schema:
            table.add_row(str(column.get("name")), str(column.get("type")))
        parts.append(table)
    render.show(render.stack(*parts))


@app.command()
def diff(ctx: typer.Context, old: Ref, new: Ref, as_json: JsonOption = False) -> None:
    """Compare two versions: schema changes, row counts, and how each column's profile moved."""
    from shipyard.data import diff_profiles, render_diff

    c = client(ctx)
    a, b = c.get_dataset(old), c.get_dataset(new)
    result = diff_profiles(a.profile, b.profile)
    if as_json:
        render.print_json(result)
        return
    table = render.make_table("Column", "Change", "Old", "New", "Shift", title=f"{a.ref} → {b.ref}")
    for row in render_diff(result):
        table.add_row(*(str(cell) for cell in row))
    notes = ["same content (same digest)" if a.digest == b.digest else None]
    render.show(render.with_notes(table, *notes))


@app.command()
def get(
    ctx: typer.Context, ref: Ref,
    dest: Annotated[Path, typer.Argument(metavar="DEST", show_default=False, help="Folder to restore into.")],
) -> None:
    """Restore a version's snapshot into DEST, byte for byte (its digest is checked)."""
    from shipyard.tracking.datasets import restore

    c = client(ctx)
    with render.spinner(f"Restoring {ref}"):
        folder = restore(c, c.get_dataset(ref), dest)
    render.info(f"Restored {ref} into {folder} (digest verified)")


def _rows(d: DatasetVersion) -> str:
    return render.MISSING if d.num_rows is None else f"{d.num_rows:,}"


def _summary(column: dict[str, Any]) -> str:
    if "mean" in column:
        return (f"min {render.format_number(column.get('min'))}  mean {render.format_number(column.get('mean'))}  "
                f"max {render.format_number(column.get('max'))}")
    if "top" in column:
        top = column.get("top") or []
        shown = ", ".join(f"{value} ({count})" for value, count in top[:3])
        return f"{column.get('distinct', '?')} distinct; top: {shown}"
    return ""
