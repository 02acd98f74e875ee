"""Projects on objects: experiments, registered models, datasets, deployments and monitors each
belong to one project; every existing row goes to ``default`` (made by 0012).

A column added NOT NULL with a server default is one ALTER TABLE on both dialects (SQLite fills
the default in without rewriting the table). Every step is guarded, so a migration stopped
halfway completes when run again.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Spelled out rather than imported, so this migration never changes after release.
_DEFAULT = "default"
# (table, index columns after project): lists come by name, experiments by id.
_TABLES = {
    "experiments": [],
    "registered_models": ["name"],
    "datasets": ["name"],
    "deployments": ["name"],
    "monitors": ["name"],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, after in _TABLES.items():
        if "project" not in {c["name"] for c in inspector.get_columns(table)}:
            op.add_column(table, sa.Column("project", sa.String(256), nullable=False, server_default=_DEFAULT))
        op.create_index(f"ix_{table}_project", table, ["project", *after], if_not_exists=True)


def downgrade() -> None:
    for table in _TABLES:
        op.drop_index(f"ix_{table}_project", table_name=table, if_exists=True)
        # In place on both dialects (SQLite since 3.35): a batch copy would lose the experiments'
        # AUTOINCREMENT (0007).
        op.execute(f"ALTER TABLE {table} DROP COLUMN project")
