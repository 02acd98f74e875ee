"""Logged-model metrics and run links (MLflow 3's model metrics, run inputs and outputs).

- ``logged_model_metrics``: metric values logged with a model id, by model, key, time, step and run.
- ``run_links``: a run's model inputs and outputs and its dataset inputs' tags, as MLflow's client
  records them. Filled from what older stores already hold, so their runs report the same: a model
  made in a run (``logged_models.source_run_id``) becomes an output at step 0, and a model-input
  lineage edge (context ``mlflow.model_input:<id>``) a model input.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Spelled out so this migration never changes after release.
_MODEL_INPUT_CONTEXT = "mlflow.model_input:"


def upgrade() -> None:
    op.create_table(
        "logged_model_metrics",
        sa.Column("model_id", sa.String(34), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("timestamp", sa.BigInteger, primary_key=True),
        sa.Column("step", sa.BigInteger, primary_key=True),
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("dataset_name", sa.String(500), nullable=False),
        sa.Column("dataset_digest", sa.String(64), nullable=False),
    )
    links = op.create_table(
        "run_links",
        sa.Column("link_id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.UniqueConstraint("run_id", "kind", "ref", name="uq_run_links"),
    )
    conn = op.get_bind()
    runs = sa.table("runs", sa.column("run_id"))
    models = sa.table("logged_models", sa.column("model_id"), sa.column("source_run_id"),
                      sa.column("creation_time"))
    edges = sa.table("lineage_edges", sa.column("edge_id"), sa.column("target"), sa.column("relation"),
                     sa.column("context"))
    rows = []
    made = (sa.select(models.c.source_run_id, models.c.model_id)
            .where(models.c.source_run_id.in_(sa.select(runs.c.run_id)))
            .order_by(models.c.creation_time, models.c.model_id))
    for run_id, model_id in conn.execute(made):
        rows.append({"run_id": run_id, "kind": "model_output", "ref": model_id, "step": 0, "tags": "{}"})
    used = (sa.select(edges.c.target, edges.c.context)
            .where(edges.c.relation == "input", edges.c.context.like(_MODEL_INPUT_CONTEXT + "%"))
            .order_by(edges.c.edge_id))
    wanted: dict[tuple[str, str], None] = {}
    for target, context in conn.execute(used):
        wanted[(target.removeprefix("run:"), context.removeprefix(_MODEL_INPUT_CONTEXT))] = None
    candidates = sorted({run_id for run_id, _ in wanted})
    known: set[str] = set()
    for start in range(0, len(candidates), 500):
        chunk = candidates[start:start + 500]
        known.update(r for (r,) in conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.in_(chunk))))
    rows += [{"run_id": run_id, "kind": "model_input", "ref": model_id, "step": 0, "tags": "{}"}
             for run_id, model_id in wanted if run_id in known]
    if rows:
        op.bulk_insert(links, rows)


def downgrade() -> None:
    op.drop_table("run_links")
    op.drop_table("logged_model_metrics")
