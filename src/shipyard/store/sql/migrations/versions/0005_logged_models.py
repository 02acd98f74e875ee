"""Logged models (MLflow 3's LoggedModel), their tags and params.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logged_models",
        sa.Column("model_id", sa.String(34), primary_key=True),
        sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("artifact_path", sa.String(1000), nullable=False),
        sa.Column("source_run_id", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_message", sa.String(5000), nullable=False),
        sa.Column("model_type", sa.String(256), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    )
    op.create_index("ix_logged_models_experiment", "logged_models",
                    ["experiment_id", "lifecycle_stage", "creation_time"])
    op.create_index("ix_logged_models_source_run", "logged_models", ["source_run_id", "creation_time"])
    op.create_table(
        "logged_model_tags",
        sa.Column("model_id", sa.String(34), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(8000), nullable=False),
    )
    op.create_table(
        "logged_model_params",
        sa.Column("model_id", sa.String(34), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.String(6000), nullable=False),
    )


def downgrade() -> None:
    for table in ("logged_model_params", "logged_model_tags", "logged_models"):
        op.drop_table(table)
