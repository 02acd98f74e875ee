"""Creating, checking and upgrading the tracking schema.

A new, empty database is created at the newest schema directly from ``tables.metadata``
and stamped with the newest Alembic revision (the migrations produce the same schema; a
test proves it). A database at an older revision is never rebuilt: opening it raises
:class:`~shipyard.errors.SchemaOutOfDate` until ``shipyard db upgrade`` migrates it.
Checking the revision is one query; Alembic itself is imported only to upgrade.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from shipyard.clock import now_ms
from shipyard.entities import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import SchemaOutOfDate
from shipyard.store.sql import tables
from shipyard.store.sql.database import Database

if TYPE_CHECKING:
    from alembic.config import Config

# The newest migration in migrations/versions; tests/unit/test_migrations.py keeps it honest.
HEAD_REVISION = "0015"
MIGRATIONS = Path(__file__).parent / "migrations"


def current_revision(db: Database) -> str | None:
    """The stamped revision, or ``None`` for a database Shipyard has never touched."""
    with db.read() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def ensure_schema(db: Database) -> None:
    """Create the schema in an empty database, or check that an existing one is current."""
    revision = current_revision(db)
    if revision is None:
        _create(db)
        revision = current_revision(db)
    if revision != HEAD_REVISION:
        raise SchemaOutOfDate(
            f"the database {db.display_url} is at schema revision {revision} but this Shipyard "
            f"needs {HEAD_REVISION}; back it up, then run: shipyard db upgrade "
            f"--tracking-uri '{db.display_url}'"
        )


def _create(db: Database) -> None:
    with db.write() as conn:
        # Checked again inside the write lock: another process may have created it meanwhile.
        inspector = sa.inspect(conn)
        if inspector.has_table("alembic_version"):
            return
        if inspector.get_table_names():
            raise SchemaOutOfDate(
                f"the database {db.display_url} has tables but no Shipyard schema revision; "
                "point the tracking URI at an empty database or an existing Shipyard one"
            )
        tables.metadata.create_all(conn, checkfirst=False)  # no table exists (checked just above): no probes
        insert_default_experiment(conn)
        insert_default_project(conn)
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                             "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                     {"v": HEAD_REVISION})


def insert_default_experiment(conn: sa.Connection) -> None:

    now = now_ms()
    conn.execute(tables.experiments.insert().values(
        experiment_id=int(DEFAULT_EXPERIMENT_ID), name=DEFAULT_EXPERIMENT_NAME,
        lifecycle_stage="active", creation_time=now, last_update_time=now))


def insert_default_project(conn: sa.Connection) -> None:
    conn.execute(tables.projects.insert().values(
        name=DEFAULT_PROJECT, description="", creation_time=now_ms(), created_by=""))


def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(db)
    with db.schema_change() as conn:  # SQLite: foreign keys off, checked before commit (see 0007)
        command.upgrade(alembic_config(conn), revision)
    return before, current_revision(db)


def alembic_config(conn: sa.Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def upgrade_database(uri: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Open the database at ``uri`` without checking its revision and migrate it. A database
    Shipyard never touched is created at the newest schema. Returns (before, after)."""
    from shipyard.store.sql.engine import normalize_url

    db = Database(normalize_url(uri))
    try:
        before = current_revision(db)
        if before is None:
            _create(db)
            return None, current_revision(db)
        return upgrade(db, revision)
    finally:
        db.dispose()
