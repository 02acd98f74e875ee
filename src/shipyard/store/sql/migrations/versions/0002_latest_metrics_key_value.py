"""Index latest metric values (and, on SQLite, params) by (key, value) for search filters.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"])
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_params_key_value", "params", ["key", "value"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_params_key_value", table_name="params")
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics")
