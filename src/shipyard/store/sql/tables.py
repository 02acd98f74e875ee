"""The tracking schema, declared once with SQLAlchemy Core for every dialect.

A latest metric value of NaN is stored as NULL: SQLite cannot store NaN (it turns it into NULL
anyway) and NULL also makes every comparison in a search false, as IEEE NaN does. In a history
chunk (``metric_chunks``) values are bytes, and NaN is the float NaN.
±inf are stored as they are (both SQLite and PostgreSQL keep them).
Alembic migrations in ``migrations/versions`` must produce exactly this schema; a test
compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

from shipyard.entities.auth import DEFAULT_PROJECT

metadata = sa.MetaData()


def project_column() -> sa.Column[str]:
    """The project an experiment, registered model, dataset, deployment or monitor belongs to
    (runs, versions and logged models follow theirs). Rows older than projects were given the
    default one by migration 0013; the server default keeps raw inserts working the same way."""
    return sa.Column("project", sa.String(256), nullable=False, server_default=DEFAULT_PROJECT)


# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere we want 64-bit ids.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

experiments = sa.Table(
    "experiments",
    metadata,
    sa.Column("experiment_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    project_column(),
    sa.Index("ix_experiments_project", "project"),
    # SQLite: an id is never handed out again once its row is gone (migration 0007).
    sqlite_autoincrement=True,
)

experiment_tags = sa.Table(
    "experiment_tags",
    metadata,
    sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("experiment_id", BigId, sa.ForeignKey("experiments.experiment_id", ondelete="CASCADE"),
              nullable=False),
    sa.Column("name", sa.String(250), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("start_time", sa.BigInteger, nullable=False),
    sa.Column("end_time", sa.BigInteger, nullable=True),
    sa.Column("lifecycle_stage", sa.String(20), nullable=False),
    sa.Column("parent_run_id", sa.String(32), nullable=True),
    sa.Column("user_id", sa.String(256), nullable=False),
    sa.Column("source", sa.String(1000), nullable=False),
    sa.Column("deleted_time", sa.BigInteger, nullable=True),
    sa.Index("ix_runs_parent", "parent_run_id"),
)
# In the order of a search's default (start_time DESC, run_id): a page of an experiment's newest
# runs is the first entries of one index range, on every dialect (start_time is never NULL).
sa.Index("ix_runs_experiment_stage_start_run", runs.c.experiment_id, runs.c.lifecycle_stage,
         runs.c.start_time.desc(), runs.c.run_id)

# A search term ``params.model = 'rf'`` or ``metrics.acc > 0.99`` is one range of a (key, value,
# run_id) index, read without touching the table. A PostgreSQL btree entry cannot hold a long
# value (about 2,700 bytes), so there the index covers values of at most this many characters;
# the search adds the same bound to a term whose literal fits under it (see store.sql.search).
INDEXED_VALUE_CHARS = 200

params = sa.Table(
    "params",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(6000), nullable=False),
)

run_tags = sa.Table(
    "run_tags",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

# On PostgreSQL these two indexes are partial (``WHERE length(value) <= INDEXED_VALUE_CHARS``). That clause
# is attached by use_postgresql() when the first PostgreSQL engine is made, not written here as
# ``postgresql_where=``: SQLAlchemy loads a dialect to check its keyword arguments, and SQLite stores would
# import the PostgreSQL dialect (19 modules, about 20 ms of a process's first store call) for nothing.
_PARTIAL_ON_POSTGRESQL = [
    (sa.Index(f"ix_{_table.name}_key_value_run", _table.c.key, _table.c.value, _table.c.run_id),
     sa.func.length(_table.c.value) <= INDEXED_VALUE_CHARS)
    for _table in (params, run_tags)
]


def use_postgresql() -> None:
    """Give the schema its PostgreSQL-only options, as ``postgresql_where=`` on each index would (idempotent;
    called before any PostgreSQL engine is used, so ``create_all`` and migrations compare the same schema)."""
    for index, where in _PARTIAL_ON_POSTGRESQL:
        index.dialect_options["postgresql"]["where"] = where

# A metric's history in chunks: one row per (run, key) and write, holding its ``n`` points as
# three little-endian arrays (int64 steps, float64 values with NaN as NaN, int64 timestamps), in
# the order they were logged; a (run, key)'s chunks in id order are its points in logged order
# (see store.sql.metric_rows and store.sql.history_columns). 100,000 points are then a handful of
# rows, not 100,000. ``vals``, not ``values``: that is an SQL keyword and a ColumnCollection method.
metric_chunks = sa.Table(
    "metric_chunks",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(250), nullable=False),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("steps", sa.LargeBinary, nullable=False),
    sa.Column("vals", sa.LargeBinary, nullable=False),
    sa.Column("timestamps", sa.LargeBinary, nullable=False),
    sa.Index("ix_metric_chunks_run_key_id", "run_id", "key", "id"),
)

latest_metrics = sa.Table(
    "latest_metrics",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.Double, nullable=True),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    # A metric term (or an order_by on a metric) reads one key's values in order, with the run
    # ids, from the index alone.
    sa.Index("ix_latest_metrics_key_value_run", "key", "value", "run_id"),
)

# -- model registry ---------------------------------------------------------------------
# Models are keyed by a surrogate id so a rename touches one row; versions, aliases and the
# history follow through the id.
registered_models = sa.Table(
    "registered_models",
    metadata,
    sa.Column("model_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("description", sa.String(5000), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    # Version numbers are never reused, even after the newest version is deleted.
    sa.Column("last_version", sa.BigInteger, nullable=False),
    project_column(),
    sa.Index("ix_registered_models_project", "project", "name"),
    # Ids are never reused (SQLite would reuse a deleted model's): the history is keyed by id.
    sqlite_autoincrement=True,
)

registered_model_tags = sa.Table(
    "registered_model_tags",
    metadata,
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
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
    sa.Index("ix_model_versions_run", "run_id"),
)

model_version_tags = sa.Table(
    "model_version_tags",
    metadata,
    sa.Column("model_id", BigId, primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
    sa.ForeignKeyConstraint(["model_id", "version"], ["model_versions.model_id", "model_versions.version"],
                            ondelete="CASCADE"),
)

model_aliases = sa.Table(
    "model_aliases",
    metadata,
    sa.Column("model_id", BigId, primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(["model_id", "version"], ["model_versions.model_id", "model_versions.version"],
                            ondelete="CASCADE"),
)

protected_aliases = sa.Table(
    "protected_aliases",
    metadata,
    sa.Column("model_id", BigId, sa.ForeignKey("registered_models.model_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("alias", sa.String(256), primary_key=True),
)

# No foreign key: the history of a model outlives the model (an audit trail).
registry_events = sa.Table(
    "registry_events",
    metadata,
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
    sa.Index("ix_registry_events_model", "model_id", "event_id"),
)

# -- datasets and lineage -----------------------------------------------------------------
datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("dataset_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(256), nullable=False, unique=True),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_version", sa.BigInteger, nullable=False),
    # The dataset's, set by its first version: its versions cannot end up in different projects.
    project_column(),
    sa.Index("ix_datasets_project", "project", "name"),
)

dataset_versions = sa.Table(
    "dataset_versions",
    metadata,
    sa.Column("dataset_id", BigId, sa.ForeignKey("datasets.dataset_id", ondelete="CASCADE"), primary_key=True),
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

# Nodes are "kind:id" strings (see entities.data.Node); both directions are walked by index.
lineage_edges = sa.Table(
    "lineage_edges",
    metadata,
    sa.Column("edge_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("relation", sa.String(16), nullable=False),
    sa.Column("context", sa.String(256), nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("source", "target", "relation", name="uq_lineage_edges"),
    sa.Index("ix_lineage_edges_target", "target"),
)

# -- logged models (MLflow 3's LoggedModel) -------------------------------------------------
# Keyed by the caller-chosen "m-<32 hex>" id. run_id and source_run_id name runs without a
# foreign key, as model_versions.run_id does: a model stays readable whatever becomes of its run.
logged_models = sa.Table(
    "logged_models",
    metadata,
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
    # Search scans one experiment's models in the default order; a run's outputs are listed
    # oldest first: each is one index range.
    sa.Index("ix_logged_models_experiment", "experiment_id", "lifecycle_stage", "creation_time"),
    sa.Index("ix_logged_models_source_run", "source_run_id", "creation_time"),
)

logged_model_tags = sa.Table(
    "logged_model_tags",
    metadata,
    sa.Column("model_id", sa.String(34), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(8000), nullable=False),
)

logged_model_params = sa.Table(
    "logged_model_params",
    metadata,
    sa.Column("model_id", sa.String(34), sa.ForeignKey("logged_models.model_id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("key", sa.String(250), primary_key=True),
    sa.Column("value", sa.String(6000), nullable=False),
)

# Metric values logged with a model id: the run keeps them in metrics as well; this is the
# model's own record. A value logged twice (same key, time, step and run) is kept once.
logged_model_metrics = sa.Table(
    "logged_model_metrics",
    metadata,
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

# A run's inputs and outputs as MLflow's client records them (models used and produced, and the
# tags of dataset inputs). ref names a model id or a dataset version without a foreign key: MLflow
# records what it is given, and a link outlives a deleted model.
run_links = sa.Table(
    "run_links",
    metadata,
    sa.Column("link_id", BigId, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("ref", sa.String(300), nullable=False),
    sa.Column("step", sa.BigInteger, nullable=False),
    sa.Column("tags", sa.Text, nullable=False),  # a JSON object
    sa.UniqueConstraint("run_id", "kind", "ref", name="uq_run_links"),
)

# -- deployments -----------------------------------------------------------------------------
# What a deployment serves (routes, shadows, batching, resources) is one JSON document in
# ``spec``: it is read and written whole, and never searched by its parts (the lineage edges
# answer "which deployments ran this version").
deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("environment", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.Column("spec", sa.Text, nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
    sa.Column("user_id", sa.String(256), nullable=False),
    project_column(),
    sa.Index("ix_deployments_environment", "environment", "name"),
    sa.Index("ix_deployments_project", "project", "name"),
)

# No foreign key: a deployment's history outlives it (an audit trail). ``state`` is the whole
# deployment right after the change, so a rollback can restore any revision.
deployment_events = sa.Table(
    "deployment_events",
    metadata,
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

# -- monitors --------------------------------------------------------------------------------
# The definition (what to watch, rules, actions, where the reference profiles are) is one JSON
# document in ``spec``, read and written whole. The alert state, the scheduling cursor and the
# lease are columns: they change with every evaluation, under conditional UPDATEs (the lease is
# taken only where it expired or is the taker's own, so one runner evaluates a monitor at a time).
monitors = sa.Table(
    "monitors",
    metadata,
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
    project_column(),
    sa.Index("ix_monitors_deployment", "deployment", "name"),
    sa.Index("ix_monitors_project", "project", "name"),
)

# One row per evaluated window: the unique (monitor, window_start) is the last word on "one
# evaluation per window", whatever happened to a lease.
monitor_evaluations = sa.Table(
    "monitor_evaluations",
    metadata,
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
    sa.Column("summary", sa.Text, nullable=False),  # JSON: drifted columns, scores, metrics, breaches, message
    sa.Column("report", sa.Text, nullable=False),  # JSON: the drift report, plot data included
    sa.UniqueConstraint("monitor", "window_start", name="uq_monitor_evaluations_window"),
)

monitor_alerts = sa.Table(
    "monitor_alerts",
    metadata,
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
    sa.Index("ix_monitor_alerts_monitor", "monitor", "alert_id"),
)

# -- access control --------------------------------------------------------------------------
# Secrets are never stored: a password as its argon2 hash, a token as the SHA-256 of its secret.
# The user columns are ``user_name``, not ``user``: unquoted ``user`` is CURRENT_USER in PostgreSQL,
# so a hand-written ``WHERE user = 'bob'`` would silently compare the wrong thing.
users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("password_hash", sa.String(512), nullable=True),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("service", sa.Boolean, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("last_update_time", sa.BigInteger, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(256), primary_key=True),
    sa.Column("description", sa.String(5000), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_id", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("project", sa.String(256), sa.ForeignKey("projects.name", ondelete="CASCADE"), nullable=True),
    sa.Column("role", sa.Integer, nullable=True),
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=True),
    sa.Column("last_used", sa.BigInteger, nullable=True),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Index("ix_api_tokens_user_name", "user_name", "creation_time"),
)

project_members = sa.Table(
    "project_members",
    metadata,
    sa.Column("project", sa.String(256), sa.ForeignKey("projects.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("role", sa.Integer, nullable=False),
    sa.Index("ix_project_members_user_name", "user_name", "project"),
)

# A user signed in through an OpenID Connect provider: the provider's (issuer, subject) pair names
# the person for good (an e-mail address or user name there may change hands), so it is the key.
user_identities = sa.Table(
    "user_identities",
    metadata,
    sa.Column("issuer", sa.String(512), primary_key=True),
    sa.Column("subject", sa.String(256), primary_key=True),
    sa.Column("user_name", sa.String(256), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    sa.Column("creation_time", sa.BigInteger, nullable=False),
    sa.Index("ix_user_identities_user_name", "user_name"),
)

# No foreign keys: an event outlives what it names, and a refusal may name a project that never existed.
audit_events = sa.Table(
    "audit_events",
    metadata,
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
    sa.Index("ix_audit_events_time", "time"),
    sa.Index("ix_audit_events_project_time", "project", "time"),
    sa.Index("ix_audit_events_principal_time", "principal", "time"),
    sa.Index("ix_audit_events_object_time", "object", "time"),
)

# Append-only even for someone with SQL access to the database: the triggers refuse UPDATE and
# DELETE (and TRUNCATE on PostgreSQL). Migration 0012 creates the same triggers on upgraded
# databases. A later migration that rebuilds this table (SQLite batch mode) must recreate them.
_AUDIT_REFUSAL = "audit_events is append-only: its rows cannot be changed or deleted"
for _verb in ("UPDATE", "DELETE"):
    sa.event.listen(audit_events, "after_create", sa.DDL(  # type: ignore[no-untyped-call]  # DDL() is unannotated
        f"CREATE TRIGGER audit_events_no_{_verb.lower()} BEFORE {_verb} ON audit_events "
        f"BEGIN SELECT RAISE(ABORT, '{_AUDIT_REFUSAL}'); END").execute_if(dialect="sqlite"))
for _statement in (
    "CREATE OR REPLACE FUNCTION shipyard_audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{_AUDIT_REFUSAL}'; END $$",
    "CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION shipyard_audit_events_append_only()",
    "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION shipyard_audit_events_append_only()",
):
    sa.event.listen(audit_events, "after_create",
                    sa.DDL(_statement).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]
