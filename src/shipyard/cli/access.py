"""What the access-control commands (users, tokens, projects, audit, login) act through.

On a SQL tracking URI they call :class:`~shipyard.auth.service.AuthService` on the database
itself, as an unrestricted *operator*: whoever can open the database can read and write every
row anyway, so the CLI does not pretend otherwise (this is how the first admin of a server can
also be made, or a locked-out one recovered). On an ``http(s)://`` URI they go through the
server's auth API (:class:`~shipyard.auth.remote.RemoteAuth`) as the user signed in with
``shipyard login`` or holding ``SHIPYARD_TRACKING_TOKEN``, and the server decides.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

from shipyard.auth.principal import Principal, current_user
from shipyard.cli.context import state
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.auth.remote import RemoteAuth
    from shipyard.auth.service import AuthService

__all__ = ["OPERATOR_NOTE", "auth_backend", "is_server", "on_database", "operator_principal", "read_secret",
           "remote_auth", "server_url"]

OPERATOR_NOTE = ("On a SQL tracking URI (sqlite:///…, postgresql://…) these commands change the database "
                 "directly as an unrestricted operator: whoever can open the database holds every key, so "
                 "protect its file or credentials. On an http(s):// tracking URI they go through the server "
                 "as the user signed in with 'shipyard login' (or SHIPYARD_TRACKING_TOKEN), and the server "
                 "checks what that user may do.")


def is_server(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def on_database(ctx: typer.Context) -> bool:
    """Whether the commands act on the database itself (as the operator), not through a server."""
    return not is_server(state(ctx).settings.tracking_uri)


def operator_principal() -> Principal:
    """The principal of direct database access: named after the login of the process (that name
    is what the audit log and ``created_by`` record), with every permission."""
    return Principal(current_user(), anonymous=False, admin=True, grants=None)


def server_url(ctx: typer.Context, url: str | None) -> str:
    """``url``, else the tracking URI when it is a server; ``InvalidInput`` otherwise."""
    chosen = url or state(ctx).settings.tracking_uri
    if not is_server(chosen):
        raise InvalidInput(f"{chosen!r} is not a server URL: give one, e.g. http://localhost:5000, or set "
                           "SHIPYARD_TRACKING_URI to it")
    return chosen.rstrip("/")


def remote_auth(url: str, *, token: str | None = None, basic: tuple[str, str] | None = None) -> RemoteAuth:
    """The auth API of the server at ``url``, as the holder of ``token`` or ``basic`` credentials."""
    from shipyard.auth.remote import RemoteAuth
    from shipyard.store.http import HttpClient

    return RemoteAuth(HttpClient(url, token=token, basic=basic))


def auth_backend(ctx: typer.Context) -> AuthService | RemoteAuth:
    """Users, tokens, projects and the audit log of the configured tracking URI (see above)."""
    settings = state(ctx).settings
    if is_server(settings.tracking_uri):
        from shipyard.auth.credentials import stored_token

        uri = settings.tracking_uri.rstrip("/")
        backend = remote_auth(uri, token=settings.tracking_token or stored_token(uri))
        ctx.call_on_close(backend.close)
        return backend
    from shipyard.auth.service import AuthService

    store: Any = state(ctx).client.store
    if not hasattr(store, "auth"):
        raise InvalidInput(f"the tracking store {settings.tracking_uri!r} keeps no users; use a SQL tracking URI "
                           "or a Shipyard server's http(s) URL")
    return AuthService(store.auth, operator_principal())


def read_secret(prompt: str, *, from_stdin: bool, confirm: bool = False) -> str:
    """A password: one line of stdin (``--password-stdin``, for scripts: never in argv, where
    other users of the machine can see it), or typed at a hidden prompt."""
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not secret:
        raise InvalidInput("the password is empty" + (": pipe it in on one line" if from_stdin else ""))
    return secret
