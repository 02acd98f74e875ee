"""``shipyard db``: the tracking database's schema revision and its migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import state

app = typer.Typer(
    help="Check and upgrade the tracking database's schema.\n\n"
         "Back the database up before upgrading it.\n\n"
         "Examples:\n"
         "  shipyard db current\n"
         "  shipyard db upgrade --tracking-uri postgresql://me@dbhost/shipyard",
    no_args_is_help=True,
)


@app.command()
def upgrade(
    ctx: typer.Context,
    tracking_uri: Annotated[str | None, typer.Option(
        "--tracking-uri", metavar="URI", show_default=False,
        help="The database to upgrade. \\[default: the global --tracking-uri]")] = None,
) -> None:
    """Migrate the database to the newest schema; prints the revision before → after.

    A database that does not exist yet is created at the newest schema.
    """
    from shipyard.store.sql.schema import upgrade_database

    uri = tracking_uri or state(ctx).settings.tracking_uri
    before, after = upgrade_database(uri)
    where = _display(uri)
    if before == after:
        render.info(f"{where} is already at the newest revision {after}; nothing to do.")
    else:
        render.info(Text.assemble(f"Upgraded {where}: ", (before or "new database", "bold"), " → ",
                                  (after or "none", "bold green")))


@app.command()
def current(ctx: typer.Context) -> None:
    """Print the database's schema revision and whether it is the newest."""
    from shipyard.store.sql.database import Database
    from shipyard.store.sql.engine import normalize_url
    from shipyard.store.sql.schema import HEAD_REVISION, current_revision

    uri = state(ctx).settings.tracking_uri
    url = normalize_url(uri)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).expanduser().exists():
        # Reading would create an empty file; say so instead.
        render.info(f"{_display(uri)}: no database yet (shipyard db upgrade creates it).")
        return
    db = Database(url)
    try:
        revision = current_revision(db)
    finally:
        db.dispose()
    if revision is None:
        render.info(f"{_display(uri)}: no Shipyard schema yet (shipyard db upgrade creates it); "
                    f"newest is {HEAD_REVISION}.")
    elif revision == HEAD_REVISION:
        render.info(Text.assemble(f"{_display(uri)}: revision ", (revision, "bold green"), " (newest)"))
    else:
        render.info(Text.assemble(f"{_display(uri)}: revision ", (revision, "bold yellow"),
                                  f"; newest is {HEAD_REVISION}: run shipyard db upgrade"))


def _display(uri: str) -> str:
    """The URI with any password hidden."""
    from shipyard.store.sql.engine import normalize_url

    try:
        return normalize_url(uri).render_as_string(hide_password=True)
    except Exception:
        return uri
