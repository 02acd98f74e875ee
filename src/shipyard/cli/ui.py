"""``shipyard ui``: the web UI on the embedded store, in one command.

It is ``shipyard server`` (one process, loopback by default) that also opens the browser at the UI
once the server answers. Against a tracking server (``SHIPYARD_TRACKING_URI=http://...``) there is
nothing to start: that server already serves the UI, so the command says where.
"""

from __future__ import annotations

import socket
import threading
import time
import webbrowser
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import launch, render
from shipyard.cli.context import state
from shipyard.cli.server import redact
from shipyard.errors import InvalidInput

__all__ = ["ui"]

STARTUP_SECONDS = 30


def _open_when_listening(host: str, port: int, url: str) -> None:
    """Open ``url`` in the browser as soon as the port accepts connections (or give up quietly)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.1)


def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", metavar="ADDRESS", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", metavar="PORT", min=1, max=65535, help="Port to listen on.")] = 5000,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser; just print the address.")]
    = False,
) -> None:
    """Open the web UI on the local store: runs, comparisons, models, lineage, deployments.

    Starts a server on the configured tracking store (default: ./.shipyard) and opens the browser.

    Stop it with Ctrl-C. A shared team server is 'shipyard server': its UI is at /.

    Examples:
      shipyard ui
      shipyard ui --port 8080 --no-browser
      shipyard --tracking-uri sqlite:///runs.db ui
    """
    launch.require_server_extra("jinja2", "markdown_it")
    settings = state(ctx).settings
    uri = settings.tracking_uri
    if uri.lower().startswith(("http://", "https://")):
        raise InvalidInput(f"the tracking URI is a server ({uri}): its UI is already there; open {uri.rstrip('/')}/ "
                           "in a browser, or pass --tracking-uri sqlite:///PATH for a local store")
    from shipyard.server import create_app
    from shipyard.tracking.client import Client

    client = Client(settings=settings)
    client.store  # noqa: B018 - open it now: a schema that is out of date stops here with one message
    app = create_app(settings, client=client)
    url = launch.listen_url(host, port) + "/"
    render.info(Text.assemble("Shipyard UI on ", (url, "bold green"), " · store ", (redact(uri), "bold"),
                              " · Ctrl-C to stop"))
    if not no_browser:
        threading.Thread(target=_open_when_listening, args=(host, port, url), name="open-browser",
                         daemon=True).start()
    try:
        launch.run(app, host=host, port=port)
    finally:
        client.close()
