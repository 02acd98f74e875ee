"""Monitors, their evaluations (one per window) and their alerts.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("deployment", sa.String(256), nullable=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since", sa.BigInteger, nullable=False),
        sa.Column("next_window_start", sa.BigInteger, nullable=False),
        sa.Column("last_evaluation_time", sa.BigInteger, nullable=True),
        sa.Column("lease_owner", sa.String(256), nullable=False),
        sa.Column("lease_expires", sa.BigInteger, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
    )
    op.create_index("ix_monitors_deployment", "monitors", ["deployment", "name"])
    op.create_table(
        "monitor_evaluations",
        sa.Column("evaluation_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(256), sa.ForeignKey("monitors.name", ondelete="CASCADE"), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("evaluation_time", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("labelled", sa.BigInteger, nullable=False),
        sa.Column("dataset_drift", sa.Boolean, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
        sa.UniqueConstraint("monitor", "window_start", name="uq_monitor_evaluations_window"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("alert_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(256), sa.ForeignKey("monitors.name", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("detail", sa.String(5000), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_index("ix_monitor_alerts_monitor", "monitor_alerts", ["monitor", "alert_id"])


def downgrade() -> None:
    for table in ("monitor_alerts", "monitor_evaluations", "monitors"):
        op.drop_table(table)
