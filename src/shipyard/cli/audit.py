"""``shipyard audit``: read the append-only log of changes and refusals."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.access import OPERATOR_NOTE, auth_backend
from shipyard.clock import parse_time
from shipyard.entities.auth import AuditQuery

__all__ = ["app"]

app = typer.Typer(
    help="The audit log of changes and refused requests: list and export it.\n\n"
         "Every change made through the server, and every refused request (401, 403, 429), is recorded with "
         "who, when, what, the status, the client's address and the request id. Nothing can edit or delete it.\n\n"
         "Admins read every project's events, a project's owners that project's.\n\n"
         f"{OPERATOR_NOTE}\n\n"
         "Examples:\n"
         "  shipyard audit list --project churn --since 24h\n"
         "  shipyard audit list --user alice --action delete_run\n"
         "  shipyard audit list --since 2024-05-01 --limit 100000 --json > audit.jsonl",
    no_args_is_help=True,
)

_STATUS_STYLES = {2: "green", 3: "green", 4: "bold red", 5: "bold red"}


@app.command("list")
def list_events(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option("--project", metavar="PROJECT", show_default=False,
                                                help="Only this project's events.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="TIME", show_default=False,
                                              help="From this time on: a duration back from now (24h, 7d) or an "
                                                   "ISO time (2024-05-01T13:00Z).")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="TIME", show_default=False,
                                              help="Before this time, as --since.")] = None,
    user: Annotated[str | None, typer.Option("--user", metavar="NAME", show_default=False,
                                             help="Only what this user did.")] = None,
    obj: Annotated[str | None, typer.Option("--object", metavar="OBJECT", show_default=False,
                                            help="Only events about this object, e.g. run:3f2a… or model:churn.")]
        = None,
    action: Annotated[str | None, typer.Option("--action", metavar="ACTION", show_default=False,
                                               help="Only this action (a route's name), e.g. delete_run.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", metavar="N", min=1, help="At most N events, newest first.")]
        = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines (one event per line), for export.")]
        = False,
) -> None:
    """List audit events, newest first."""
    query = AuditQuery(project=project, principal=user, object=obj, action=action,
                       since=parse_time(since, field="--since"), until=parse_time(until, field="--until"),
                       limit=limit)
    backend = auth_backend(ctx)
    if as_json:
        for line in backend.audit_jsonl(query):
            sys.stdout.write(line if line.endswith("\n") else line + "\n")
        return
    events = backend.audit(query)
    table = render.make_table("Time", "Who", "Action", "Status", "Project", "Object", "Address", "Detail")
    for e in events:
        table.add_row(render.format_time(e.time, seconds=True), e.principal, e.action,
                      Text(str(e.status), style=_STATUS_STYLES.get(e.status // 100, "")), e.project or render.MISSING,
                      e.object or render.MISSING, e.address or render.MISSING, e.detail)
    render.show(render.with_notes(table, f"The latest {limit} events; narrow with --since, --project, --user"
                                  if len(events) == limit else None) if events else Text("No events match"))
