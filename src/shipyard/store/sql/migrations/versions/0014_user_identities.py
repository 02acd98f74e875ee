"""Single sign-on: the OpenID Connect identities (issuer, subject) linked to users.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_identities",
        sa.Column("issuer", sa.String(512), primary_key=True),
        sa.Column("subject", sa.String(256), primary_key=True),
        sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_user_identities_user_name", "user_identities", ["user_name"])


def downgrade() -> None:
    op.drop_table("user_identities")
