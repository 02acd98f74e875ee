"""Datasets, their versions, and the lineage graph's edges.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(256), nullable=False, unique=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("dataset_id", BigId, sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("source", sa.String(2000), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("num_rows", sa.BigInteger, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("schema_json", sa.Text, nullable=False),
        sa.Column("profile_json", sa.Text, nullable=False),
        sa.Column("snapshot_uri", sa.String(1000), nullable=True),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.String(256), nullable=False),
        sa.UniqueConstraint("dataset_id", "digest", name="uq_dataset_versions_digest"),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("edge_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(300), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.Column("relation", sa.String(16), nullable=False),
        sa.Column("context", sa.String(256), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("source", "target", "relation", name="uq_lineage_edges"),
    )
    op.create_index("ix_lineage_edges_target", "lineage_edges", ["target"])


def downgrade() -> None:
    for table in ("lineage_edges", "dataset_versions", "datasets"):
        op.drop_table(table)
