"""``shipyard users``: people and service accounts of a server with ``--auth``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.access import OPERATOR_NOTE, auth_backend, is_server, read_secret, remote_auth, server_url
from shipyard.cli.context import JsonOption, state
from shipyard.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(
    help="Users and service accounts: create, list, disable, enable, set a password, make an admin, link a "
         "single sign-on identity, and make the first admin.\n\n"
         "A person signs in with a password (at least 12 characters, not a common one); a service account "
         "(--service, for CI) has no password and acts through the API tokens an admin makes for it. Disabling "
         "a user refuses its tokens at once.\n\n"
         f"{OPERATOR_NOTE}\n\n"
         "Examples:\n"
         "  shipyard users bootstrap http://localhost:5000 --code CODE --name admin\n"
         "  shipyard users create alice --email alice@example.com\n"
         "  shipyard users create ci-bot --service\n"
         "  shipyard users list\n"
         "  shipyard users disable alice\n"
         "  shipyard users set-admin alice\n"
         "  shipyard users link alice --subject 248289761001",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The user's name.", show_default=False)]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from the first line of stdin instead of asking.")]


@app.command()
def create(
    ctx: typer.Context, name: Name,
    email: Annotated[str, typer.Option("--email", metavar="ADDRESS", help="The user's e-mail address.")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="A server admin: users, projects, every project's "
                                                        "data and audit log.")] = False,
    service: Annotated[bool, typer.Option("--service", help="A service account (for CI): no password, acts "
                                                            "through API tokens only.")] = False,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create user NAME; a person's password is asked for (twice), a service account has none."""
    password = None if service else read_secret("Password", from_stdin=password_stdin, confirm=True)
    user = auth_backend(ctx).create_user(name, email=email, password=password, admin=admin, service=service)
    kind = "service account" if user.service else ("admin" if user.admin else "user")
    render.info(Text.assemble(f"Created {kind} ", (user.name, "bold")))
    if user.service:
        render.info(f"Make its token with: shipyard tokens create --user {user.name} --name ci --project PROJECT "
                    "--role editor")


@app.command("list")
def list_users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List users and service accounts."""
    users = auth_backend(ctx).list_users()
    if as_json:
        from shipyard.auth.wire import user_to_wire

        render.print_json([user_to_wire(u) for u in users])
        return
    table = render.make_table("Name", "Kind", "E-mail", "State", "Created")
    for u in users:
        kind = "service" if u.service else ("admin" if u.admin else "user")
        table.add_row(Text(u.name, style="bold"), kind, u.email or render.MISSING,
                      Text("disabled", style="yellow") if u.disabled else "active", render.format_time(u.creation_time))
    render.show(table if users else Text("No users yet; a server's first admin is made with: shipyard users "
                                         "bootstrap URL --code CODE"))


@app.command()
def disable(ctx: typer.Context, name: Name) -> None:
    """Disable a user: its sign-ins and tokens are refused from now on (nothing is deleted)."""
    auth_backend(ctx).disable_user(name)
    render.info(Text.assemble("Disabled ", (name, "bold"), "; its tokens are refused from now on"))


@app.command()
def enable(ctx: typer.Context, name: Name) -> None:
    """Enable a disabled user again (its unexpired, unrevoked tokens work again)."""
    auth_backend(ctx).enable_user(name)
    render.info(Text.assemble("Enabled ", (name, "bold")))


@app.command("set-admin")
def set_admin(
    ctx: typer.Context, name: Name,
    revoke: Annotated[bool, typer.Option("--revoke", help="Make NAME an ordinary user again instead.")] = False,
) -> None:
    """Make an existing user a server admin (or, with --revoke, an ordinary user again).

    The last enabled admin cannot be revoked: make another admin first."""
    auth_backend(ctx).set_admin(name, not revoke)
    render.info(Text.assemble((name, "bold"), " is an ordinary user now" if revoke else " is a server admin now"))


Subject = Annotated[str, typer.Option("--subject", metavar="SUB", show_default=False,
                                      help="The person's `sub` claim at the provider (its admin console shows it).")]
Issuer = Annotated[str | None, typer.Option("--issuer", metavar="URL", show_default=False,
                                            help="The provider's issuer, as its discovery document names it "
                                                 "\\[default: the server's SHIPYARD_SERVER_OIDC_ISSUER].")]


def _identity_backend(ctx: typer.Context, issuer: str | None) -> tuple[Any, str | None]:
    backend = auth_backend(ctx)
    settings = state(ctx).settings
    if issuer is None and not is_server(settings.tracking_uri):  # a server fills in its own provider
        issuer = settings.server_oidc_issuer.strip() or None
        if issuer is None:
            raise InvalidInput("give --issuer: no single sign-on provider is set (SHIPYARD_SERVER_OIDC_ISSUER)",
                               field="issuer")
    return backend, issuer


@app.command()
def link(ctx: typer.Context, name: Name, subject: Subject, issuer: Issuer = None) -> None:
    """Link an existing user to a single sign-on identity: signing in through it is signing in as NAME.

    For a person whose password account is older than single sign-on (unlinked, signing in is refused or
    makes a second user).

    The identity is the provider's subject, never a name or e-mail address (those can change hands)."""
    backend, issuer = _identity_backend(ctx, issuer)
    backend.link_identity(name, issuer=issuer, subject=subject)
    render.info(Text.assemble("Linked ", (name, "bold"), f" to subject {subject!r}"))


@app.command()
def unlink(ctx: typer.Context, name: Name, subject: Subject, issuer: Issuer = None) -> None:
    """Unlink a user from a single sign-on identity; the user, its password and tokens stay."""
    backend, issuer = _identity_backend(ctx, issuer)
    backend.unlink_identity(name, issuer=issuer, subject=subject)
    render.info(Text.assemble("Unlinked ", (name, "bold"), f" from subject {subject!r}"))


@app.command("set-password")
def set_password(ctx: typer.Context, name: Name, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (asked twice): anyone's as an admin, or your own, after your current one.

    With --password-stdin, changing your own password reads the current one from the first line
    and the new one from the second."""
    backend = auth_backend(ctx)
    me = backend.whoami()
    current = None
    if me.name == name and not me.admin:  # a stolen token alone must not take over the account
        current = read_secret("Current password", from_stdin=password_stdin)
    password = read_secret("New password", from_stdin=password_stdin, confirm=True)
    backend.set_password(name, password, current=current)
    render.info(Text.assemble("Set the password of ", (name, "bold")))


@app.command()
def bootstrap(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Argument(metavar="[URL]", show_default=False,
                                              help="The server \\[default: the tracking URI].")] = None,
    code: Annotated[str, typer.Option("--code", metavar="CODE", prompt="One-time code",
                                      help="The one-time code 'shipyard server --auth' printed when it started.")]
        = "",
    name: Annotated[str, typer.Option("--name", metavar="NAME", prompt="Admin user name",
                                      help="The first admin's user name.")] = "",
    email: Annotated[str, typer.Option("--email", metavar="ADDRESS", help="Its e-mail address.")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Make the first admin of a new server with --auth, with the one-time code it printed.

    Works once: while the server has no user at all. Then sign in with 'shipyard login URL'.
    The same is possible in a browser at URL/ui/setup.
    """
    server = server_url(ctx, url)
    password = read_secret("Password", from_stdin=password_stdin, confirm=True)
    auth = remote_auth(server)
    try:
        user = auth.bootstrap(name, password, email=email, code=code.strip())
    finally:
        auth.close()
    render.info(Text.assemble("Created the first admin ", (user.name, "bold"), f" of {server}; sign in with: "
                              f"shipyard login {server}"))
