"""Access control: users, API tokens, projects and their members, and the append-only audit log.

Revision ID: 0012
Revises: 0011
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# A migration is history: these statements are kept as they were, even if tables.py changes its own.
_REFUSAL = "audit_events is append-only: its rows cannot be changed or deleted"
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
    f"BEGIN SELECT RAISE(ABORT, '{_REFUSAL}'); END"
    for verb in ("UPDATE", "DELETE")
]
POSTGRESQL_TRIGGERS = [
    "CREATE OR REPLACE FUNCTION shipyard_audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{_REFUSAL}'; END $$",
    "CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION shipyard_audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION shipyard_audit_events_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(512), nullable=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("service", sa.Boolean, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("last_update_time", sa.BigInteger, nullable=False),
    )
    projects = op.create_table(
        "projects",
        sa.Column("name", sa.String(256), primary_key=True),
        sa.Column("description", sa.String(5000), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("project", sa.String(256), sa.ForeignKey("projects.name", ondelete="CASCADE"),
                  nullable=True),
        sa.Column("role", sa.Integer, nullable=True),
        sa.Column("secret_hash", sa.String(128), nullable=False),
        sa.Column("creation_time", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=True),
        sa.Column("last_used", sa.BigInteger, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )
    op.create_index("ix_api_tokens_user_name", "api_tokens", ["user_name", "creation_time"])
    op.create_table(
        "project_members",
        sa.Column("project", sa.String(256), sa.ForeignKey("projects.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role", sa.Integer, nullable=False),
    )
    op.create_index("ix_project_members_user_name", "project_members", ["user_name", "project"])
    op.create_table(
        "audit_events",
        sa.Column("event_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("time", sa.BigInteger, nullable=False),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("action", sa.String(256), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(2000), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("project", sa.String(256), nullable=True),
        sa.Column("object", sa.String(1000), nullable=True),
        sa.Column("address", sa.String(256), nullable=True),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("detail", sa.String(5000), nullable=False),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    op.create_index("ix_audit_events_project_time", "audit_events", ["project", "time"])
    op.create_index("ix_audit_events_principal_time", "audit_events", ["principal", "time"])
    op.create_index("ix_audit_events_object_time", "audit_events", ["object", "time"])
    dialect = op.get_bind().dialect.name
    for statement in {"sqlite": SQLITE_TRIGGERS, "postgresql": POSTGRESQL_TRIGGERS}.get(dialect, []):
        op.execute(statement)
    # Everything that already exists belongs to the default project (0013 adds the columns).
    op.bulk_insert(projects, [{"name": "default", "description": "", "created_by": "",
                               "creation_time": int(time.time() * 1000)}])


def downgrade() -> None:
    for table in ("audit_events", "project_members", "api_tokens", "projects", "users"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS shipyard_audit_events_append_only()")
