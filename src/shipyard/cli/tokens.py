"""``shipyard tokens``: API tokens for scripts, CI and the mlflow client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.access import OPERATOR_NOTE, auth_backend, on_database
from shipyard.cli.context import JsonOption
from shipyard.cli.login import expires_in_ms
from shipyard.clock import now_ms
from shipyard.entities.auth import Role
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.entities.auth import ApiToken

__all__ = ["app"]

app = typer.Typer(
    help="API tokens: create (the secret is shown once), list and revoke.\n\n"
         "A token acts as its user; with --project it acts only in that project, and with --role at most with "
         "that role there (the user's own role caps it too). Scripts send it as SHIPYARD_TRACKING_TOKEN, the "
         "mlflow client as MLFLOW_TRACKING_TOKEN. The server keeps only a hash of it.\n\n"
         f"{OPERATOR_NOTE}\n\n"
         "Examples:\n"
         "  shipyard tokens create --name laptop\n"
         "  shipyard tokens create --name ci --user ci-bot --expires 90d --project churn --role editor\n"
         "  shipyard tokens list\n"
         "  shipyard tokens revoke 3f2a9c0e41d84b0c",
    no_args_is_help=True,
)


def _state(token: ApiToken, now: int) -> Text:
    if token.revoked:
        return Text("revoked", style="dim")
    if token.expires is not None and token.expires <= now:
        return Text("expired", style="yellow")
    return Text("active", style="green")


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="What the token is for (laptop, ci, …).")],
    expires: Annotated[str, typer.Option("--expires", metavar="DURATION",
                                         help="Valid for this long, e.g. 30d, 12h, 1w, or never.")] = "90d",
    project: Annotated[str | None, typer.Option("--project", metavar="PROJECT", show_default=False,
                                                help="Act only in this project \\[default: every project of "
                                                     "the user].")] = None,
    role: Annotated[str | None, typer.Option("--role", metavar="ROLE", show_default=False,
                                             help="With --project: at most this role there (viewer, editor, "
                                                  "maintainer, owner).")] = None,
    user: Annotated[str | None, typer.Option("--user", metavar="NAME", show_default=False,
                                             help="Make it for this user or service account (admins) "
                                                  "\\[default: yourself].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create an API token and print its secret: once, copy it now."""
    if role is not None and project is None:
        raise InvalidInput("--role limits a token within one project: give --project too")
    chosen_role = Role.parse(role) if role is not None else None
    backend = auth_backend(ctx)
    if user is None and on_database(ctx):
        raise InvalidInput("on the database itself, name whose token this is: --user NAME (a user or service "
                           "account; see: shipyard users list)")
    token, secret = backend.create_token(name, user=user, expires_in_ms=expires_in_ms(expires),
                                                   project=project, role=chosen_role)
    if as_json:
        from shipyard.auth.wire import token_to_wire

        render.print_json({"token": token_to_wire(token), "secret": secret})
        return
    scope = f" in project {token.project}" + (f" as {token.role.label} at most" if token.role else "") \
        if token.project else ""
    until = f"until {render.format_time(token.expires)}" if token.expires else "with no expiry"
    render.info(Text.assemble("Created token ", (token.token_id, "bold"), f" ({token.name}) of {token.user}{scope}, "
                              f"valid {until}:"))
    render.info(Text(secret, style="bold"))
    render.info(Text("Copy it now: it is shown only this once (the server keeps only its hash). Use it as "
                     "SHIPYARD_TRACKING_TOKEN or MLFLOW_TRACKING_TOKEN.", style="yellow"))


@app.command("list")
def list_tokens(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", metavar="NAME", show_default=False,
                                             help="Only this user's tokens (admins) \\[default: yours].")] = None,
    all_users: Annotated[bool, typer.Option("--all", help="Every user's tokens (admins; the default on the "
                                                          "database itself).")] = False,
    as_json: JsonOption = False,
) -> None:
    """List API tokens (never their secrets), newest first, revoked and expired ones included."""
    backend = auth_backend(ctx)
    if user is None and not all_users and on_database(ctx):
        all_users = True  # the operator is no user: it has no tokens of its own
    tokens = backend.list_tokens(user, all_users=all_users)
    if as_json:
        from shipyard.auth.wire import token_to_wire

        render.print_json([token_to_wire(t) for t in tokens])
        return
    now = now_ms()
    table = render.make_table("Id", "Name", "User", "Kind", "Scope", "State", "Expires", "Last used")
    for t in tokens:
        scope = (t.project + (f" ({t.role.label})" if t.role else "")) if t.project else "all projects"
        table.add_row(Text(t.token_id, style="bold"), t.name, t.user, t.kind, scope, _state(t, now),
                      render.format_time(t.expires) if t.expires else "never", render.format_time(t.last_used))
    render.show(table if tokens else Text("No tokens; create one with: shipyard tokens create --name NAME"))


@app.command()
def revoke(ctx: typer.Context,
           token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (shipyard tokens list).",
                                                   show_default=False)]) -> None:
    """Revoke a token for good: requests with it are refused at once."""
    auth_backend(ctx).revoke_token(token_id)
    render.info(Text.assemble("Revoked token ", (token_id, "bold")))
