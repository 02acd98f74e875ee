"""``shipyard login``, ``logout`` and ``whoami``: sign in to a server once, for the CLI and the SDK.

``login`` sends the user name and password once, over Basic auth, to make an API token, and keeps
only that token, in ``~/.config/shipyard/credentials.json`` (see
:mod:`shipyard.auth.credentials`); the password is never written anywhere.
"""

from __future__ import annotations

import socket
from typing import Annotated

import typer
from rich.text import Text

from shipyard.auth.credentials import forget_token, save_token, stored_entry
from shipyard.cli import render
from shipyard.cli.access import (
    OPERATOR_NOTE,
    auth_backend,
    is_server,
    operator_principal,
    read_secret,
    remote_auth,
    server_url,
)
from shipyard.cli.context import JsonOption, state
from shipyard.clock import parse_duration
from shipyard.errors import InvalidInput, StoreUnavailable, Unauthenticated

__all__ = ["expires_in_ms", "login", "logout", "whoami"]

Url = Annotated[str | None, typer.Argument(
    metavar="[URL]", show_default=False,
    help="The server, e.g. http://shipyard.internal:5000 \\[default: the tracking URI].")]


def expires_in_ms(text: str, option: str = "--expires") -> int | None:
    """``90d`` → milliseconds; ``never`` → ``None``."""
    if text.strip().lower() == "never":
        return None
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise InvalidInput(f"{option} {text!r}: expected a duration such as 30d, 12h or 1w, or never")
    return int(seconds * 1000)


def login(
    ctx: typer.Context,
    url: Url = None,
    username: Annotated[str | None, typer.Option(
        "--username", "-u", metavar="NAME", show_default=False, help="Your user name \\[default: asked].")] = None,
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin instead of asking.")] = False,
    expires: Annotated[str, typer.Option(
        "--expires", metavar="DURATION", help="How long the token kept for this machine stays valid (or never).")]
        = "90d",
) -> None:
    """Sign in to a Shipyard server; the CLI and the SDK then act as you there.

    Asks for your user name and password (hidden), makes an API token with them and keeps only
    the token, in ~/.config/shipyard/credentials.json ($XDG_CONFIG_HOME/shipyard/…), readable by
    you alone. The password is never stored.

    Examples:
      shipyard login http://shipyard.internal:5000
      echo "$PASSWORD" | shipyard login https://shipyard.example.com -u ci --password-stdin
    """
    server = server_url(ctx, url)
    lifetime = expires_in_ms(expires)
    name = username or typer.prompt("Username")
    password = read_secret("Password", from_stdin=password_stdin)
    auth = remote_auth(server, basic=(name.strip(), password))
    try:
        token, secret = auth.create_token(f"shipyard login on {socket.gethostname()}"[:200],
                                          expires_in_ms=lifetime)
    finally:
        auth.close()
    path = save_token(server, secret, user=token.user, token_id=token.token_id, expires=token.expires)
    until = f", valid until {render.format_time(token.expires)}" if token.expires else ""
    render.info(Text.assemble("Signed in to ", (server, "bold"), " as ", (token.user, "bold"),
                              f"{until}; token {token.token_id} kept in {path}"))


def logout(ctx: typer.Context, url: Url = None) -> None:
    """Sign out of a server: revoke the token 'shipyard login' made, and forget it.

    Examples:
      shipyard logout
      shipyard logout http://shipyard.internal:5000
    """
    server = server_url(ctx, url)
    entry = stored_entry(server)
    if entry is None:
        render.info(f"Not signed in to {server}; nothing to do")
        return
    note = ""
    auth = remote_auth(server, token=entry.get("token"))
    try:
        auth.revoke_token(str(entry.get("token_id")))
    except Unauthenticated:
        pass  # expired or revoked already: the server accepts it no more, which is the point
    except StoreUnavailable as err:
        note = (f"; the server could not be reached ({err}), so the token stays valid until it expires: "
                f"revoke it later with: shipyard tokens revoke {entry.get('token_id')}")
    finally:
        auth.close()
    forget_token(server)
    render.info(f"Signed out of {server} (was {entry.get('user')}){note}")


def whoami(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Show who the CLI acts as on the tracking URI, with your projects and roles.

    Examples:
      shipyard whoami
      shipyard --tracking-uri http://shipyard.internal:5000 whoami --json
    """
    from shipyard.auth.wire import principal_to_wire

    uri = state(ctx).settings.tracking_uri
    server = is_server(uri)
    principal = auth_backend(ctx).whoami() if server else operator_principal()
    if as_json:
        render.print_json({**principal_to_wire(principal), "unrestricted": principal.unrestricted,
                           "server": uri.rstrip("/") if server else None})
        return
    if not server:
        render.info(Text.assemble((principal.name, "bold"), f" (operator of {uri}: every permission)"))
        render.info(Text(OPERATOR_NOTE, style="dim"))
        return
    if principal.anonymous:
        render.info(f"Not signed in: {uri} answers anyone (a server without --auth)")
        return
    what = "server admin" if principal.admin else "user"
    render.info(Text.assemble((principal.name, "bold"), f" ({what}) on {uri}"))
    if principal.scope:
        render.info(f"This token acts only in project {principal.scope[0]}, as {principal.scope[1].label} at most")
    if principal.grants:
        table = render.make_table("Project", "Role")
        for project, role in principal.grants:
            table.add_row(project, role.label)
        render.show(table)
