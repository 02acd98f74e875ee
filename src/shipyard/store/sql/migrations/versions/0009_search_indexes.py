"""Search indexes for stores of a million runs.

- ``runs (experiment_id, lifecycle_stage, start_time DESC, run_id)``: a page in the default order
  (newest first, ties by run id) is the head of one index range; replaces the index without the
  direction and the run id.
- ``params`` and ``run_tags (key, value, run_id)``; on PostgreSQL only over values of at most 200
  characters (a btree entry cannot hold a long one); replaces SQLite's ``params (key, value)``.
- ``latest_metrics (key, value, run_id)``: replaces ``(key, value)``, so a metric term yields its
  run ids from the index alone.

Every step is guarded (``IF [NOT] EXISTS``) and new indexes are built before old ones go, so a
migration stopped halfway (a killed process, a lost connection) completes when run again and a
store is never left without an index to search with.

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None

# Must equal tables.INDEXED_VALUE_CHARS; spelled out so this migration never changes after release.
_SHORT_VALUE = sa.text("length(value) <= 200")
_RUNS_ORDER: list[str | sa.TextClause] = ["experiment_id", "lifecycle_stage", sa.text("start_time DESC"), "run_id"]


def upgrade() -> None:
    op.create_index("ix_runs_experiment_stage_start_run", "runs", _RUNS_ORDER, if_not_exists=True)
    for table in ("params", "run_tags"):
        op.create_index(f"ix_{table}_key_value_run", table, ["key", "value", "run_id"],
                        postgresql_where=_SHORT_VALUE, if_not_exists=True)
    op.create_index("ix_latest_metrics_key_value_run", "latest_metrics", ["key", "value", "run_id"],
                    if_not_exists=True)
    op.drop_index("ix_runs_experiment_stage_start", table_name="runs", if_exists=True)
    op.drop_index("ix_params_key_value", table_name="params", if_exists=True)
    op.drop_index("ix_latest_metrics_key_value", table_name="latest_metrics", if_exists=True)


def downgrade() -> None:
    op.create_index("ix_latest_metrics_key_value", "latest_metrics", ["key", "value"], if_not_exists=True)
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_params_key_value", "params", ["key", "value"], if_not_exists=True)
    op.create_index("ix_runs_experiment_stage_start", "runs", ["experiment_id", "lifecycle_stage", "start_time"],
                    if_not_exists=True)
    op.drop_index("ix_latest_metrics_key_value_run", table_name="latest_metrics", if_exists=True)
    for table in ("run_tags", "params"):
        op.drop_index(f"ix_{table}_key_value_run", table_name=table, if_exists=True)
    op.drop_index("ix_runs_experiment_stage_start_run", table_name="runs", if_exists=True)
