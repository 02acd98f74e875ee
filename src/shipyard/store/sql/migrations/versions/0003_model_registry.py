"""The model registry: registered models, versions, tags, aliases, protected aliases, history.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("model_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("description", sa.String(5000), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("last_version", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "registered_model_tags",
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(8000), nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.String(1000), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("description", sa.String(5000), nullable=False),
        sa.Column("card", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("approved_by", sa.String(256), nullable=True),
        sa.Column("approval_time", sa.BigInteger, nullable=True),
        sa.Column("approval_comment", sa.String(5000), nullable=True),
    )
    op.create_index("ix_model_versions_run", "model_versions", ["run_id"])
    op.create_table(
        "model_version_tags",
        sa.Column("model_id", BigId, primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(8000), nullable=False),
        sa.ForeignKeyConstraint(["model_id", "version"], ["model_versions.model_id", "model_versions.version"],
                                ondelete="CASCADE"),
    )
    op.create_table(
        "model_aliases",
        sa.Column("model_id", BigId, primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["model_id", "version"], ["model_versions.model_id", "model_versions.version"],
                                ondelete="CASCADE"),
    )
    op.create_table(
        "protected_aliases",
        sa.Column("model_id", BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("alias", sa.String(256), primary_key=True),
    )
    op.create_table(
        "registry_events",
        sa.Column("event_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("model_id", sa.BigInteger, nullable=False),
        sa.Column("model_name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=True),
        sa.Column("alias", sa.String(256), nullable=True),
        sa.Column("previous_version", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.String(5000), nullable=False),
    )
    op.create_index("ix_registry_events_model", "registry_events", ["model_id", "event_id"])


def downgrade() -> None:
    for table in ("registry_events", "protected_aliases", "model_aliases", "model_version_tags",
                  "model_versions", "registered_model_tags", "registered_models"):
        op.drop_table(table)
