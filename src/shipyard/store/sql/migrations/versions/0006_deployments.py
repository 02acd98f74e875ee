"""Deployments and their history.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("environment", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
    )
    op.create_index("ix_deployments_environment", "deployments", ["environment", "name"])
    op.create_table(
        "deployment_events",
        sa.Column("event_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.Column("detail", sa.String(5000), nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.UniqueConstraint("name", "revision", name="uq_deployment_events_revision"),
    )


def downgrade() -> None:
    for table in ("deployment_events", "deployments"):
        op.drop_table(table)
