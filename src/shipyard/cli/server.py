"""``shipyard server``: serve the tracking store over the native REST API, with uvicorn.

The settings are resolved once, here, then handed to every worker process through their
``SHIPYARD_*`` environment variables: uvicorn starts workers from an import string
(``shipyard.server.app:app_from_environment``), so the environment is the one channel that
reaches them all. The store is opened once before any worker starts, so an out-of-date schema
stops the command with one message (exit 6) instead of crashing every worker.
"""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import typer
from rich.text import Text

from shipyard.cli import launch, render
from shipyard.cli.context import setting_help, state
from shipyard.config import SETTINGS, Settings
from shipyard.errors import InvalidInput

__all__ = ["redact", "serve", "worker_environment"]

APP_FACTORY = "shipyard.server.app:app_from_environment"


def serve(
    ctx: typer.Context,
    backend_store_uri: Annotated[str | None, typer.Option(
        "--backend-store-uri", metavar="URI", show_default=False,
        help=setting_help("Tracking database, e.g. sqlite:///path/to.db or postgresql://user@host/db.",
                          "tracking_uri", via="the global --tracking-uri"))] = None,
    artifacts_destination: Annotated[str | None, typer.Option(
        "--artifacts-destination", metavar="URI", show_default=False,
        help=setting_help("Where artifact bytes go: a folder or s3://bucket/prefix.", "artifact_uri",
                          via="the global --artifact-uri", otherwise="beside the database"))] = None,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 5000,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, metavar="N", help="Server processes; each holds its own connection pool.")] = 1,
    allowed_hosts: Annotated[str | None, typer.Option(
        "--allowed-hosts", metavar="HOSTS", show_default=False,
        help=setting_help("Host header values answered, comma-separated (* for any).",
                          "server_allowed_hosts"))] = None,
    cors_origins: Annotated[str | None, typer.Option(
        "--cors-origins", metavar="ORIGINS", show_default=False,
        help=setting_help("Browser origins allowed to call the API, comma-separated.", "server_cors_origins",
                          otherwise="none: CORS off"))] = None,
    auth: Annotated[bool, typer.Option(
        "--auth", help=setting_help("Require sign-in: users, API tokens, per-project roles, an audit log.",
                                    "server_auth"))] = False,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help=setting_help("Allow a non-loopback --host without --auth (anyone who reaches "
                                        "the port may do anything).", "server_insecure"))] = False,
) -> None:
    """Run the Shipyard server: the REST API over a tracking store and an artifact store.

    Stop it with Ctrl-C. Clients log to it with SHIPYARD_TRACKING_URI=http://HOST:PORT.

    Examples:
      shipyard server
      shipyard server --backend-store-uri postgresql://shipyard@db/shipyard --workers 4
      shipyard server --auth --host 0.0.0.0 --allowed-hosts shipyard.internal,localhost

    Without --auth anyone who reaches the port may read, change and delete everything, so the
    server then listens on this machine only unless --insecure says that is meant.
    """
    launch.require_server_extra()
    overrides = {"tracking_uri": backend_store_uri, "artifact_uri": artifacts_destination,
                 "server_allowed_hosts": allowed_hosts, "server_cors_origins": cors_origins,
                 "server_auth": auth or None, "server_insecure": insecure or None}
    settings = state(ctx).settings.replace(**{k: v for k, v in overrides.items() if v is not None})
    launch.check_exposure(host, port, auth=settings.server_auth, insecure=settings.server_insecure, what="server",
                          risk="read, change and delete everything on this server")
    from shipyard.server.app import single_sign_on

    single_sign_on(settings)  # a wrong SHIPYARD_SERVER_OIDC_* setting stops here, not in every worker
    environment = worker_environment(settings)
    store, code = _check_store(Settings.resolve(env=environment))

    if not launch.is_loopback(host) and settings.sources.get("server_allowed_hosts", "default") == "default":
        render.info(Text(
            f"Warning: listening on {host}, but only requests with a Host header of "
            f"{settings.server_allowed_hosts.replace(',', ', ')} are answered (a defence against DNS "
            "rebinding); clients that use this machine's name or address get 400 INVALID_HOST. "
            "Allow them with --allowed-hosts NAME,ADDRESS (or SHIPYARD_SERVER_ALLOWED_HOSTS; * allows any).",
            style="yellow"))
    render.info(Text.assemble(
        "Shipyard server on ", (launch.listen_url(host, port), "bold green"),
        f" ({workers} worker{'s' if workers > 1 else ''})",
        " · store ", (store, "bold"), " · artifacts ", (redact(environment['SHIPYARD_ARTIFACT_URI']), "bold"),
        " · sign-in ", ("required", "bold green") if settings.server_auth else ("off", "bold yellow")))

    if code is not None:
        from shipyard.server.authentication import BOOTSTRAP_HASH_ENV, bootstrap_code_hash

        environment[BOOTSTRAP_HASH_ENV] = bootstrap_code_hash(code)
        _announce_bootstrap(code, launch.listen_url(host, port))
    # Read by app_from_environment in this process and in every worker, while they run.
    launch.run(APP_FACTORY, host=host, port=port, workers=workers, env=environment)


def worker_environment(settings: Settings) -> dict[str, str]:
    """Every setting as its ``SHIPYARD_*`` variable, so ``Settings.resolve()`` in a worker gives
    back ``settings``. The artifact location is the resolved one: a default that follows the
    database ("beside the .db file") would otherwise be lost once it arrives as a variable."""
    from shipyard.tracking.client import default_artifact_uri

    environment = {s.env_var: _text(getattr(settings, s.name)) for s in SETTINGS}
    environment["SHIPYARD_ARTIFACT_URI"] = default_artifact_uri(settings)
    return environment


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_store(settings: Settings) -> tuple[str, str | None]:
    """Open the store once (an empty database gets its schema now, before workers race to create
    it); raises ``SchemaOutOfDate`` for an old one. Returns the store's URI without password and,
    for a server with --auth and no user yet, a new one-time code that creates the first admin."""
    from shipyard.tracking.client import Client

    client = Client(settings=settings)
    try:
        store = client.store
        code = None
        if settings.server_auth:
            auth_store = getattr(store, "auth", None)
            if auth_store is None:
                raise InvalidInput(f"--auth needs a SQL tracking store that keeps users (sqlite:// or "
                                   f"postgresql://), not {redact(settings.tracking_uri)}")
            if auth_store.count_users() == 0:
                code = secrets.token_urlsafe(18)
    finally:
        client.close()
    return redact(settings.tracking_uri), code


def _announce_bootstrap(code: str, url: str) -> None:
    render.info(Text.assemble(
        "No user exists yet. Create the first admin with this one-time code (it works until the first user "
        "exists, and a restart prints a new one): ", (code, "bold magenta"), "\n  at ", (f"{url}/ui/setup", "bold"),
        ", or with ", ("shipyard users bootstrap", "bold"), f" against {url}"))


def redact(uri: str) -> str:
    """``uri`` with any password replaced by ``***`` (for logs and the startup line)."""
    parts = urlsplit(uri)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if not at or not colon:
        return uri
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))
