"""The Alembic migrations produce exactly the schema of tables.py, and old stores are upgraded."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from shipyard.errors import SchemaOutOfDate
from shipyard.store.sql import SqlStore, tables
from shipyard.store.sql.database import Database
from shipyard.store.sql.engine import normalize_url
from shipyard.store.sql.schema import HEAD_REVISION, alembic_config, upgrade_database
from shipyard.store.sql.tables import metadata


def _db(tmp_path: Path, name: str = "m.db") -> Database:
    return Database(normalize_url(f"sqlite:///{tmp_path / name}"))


def test_head_revision_constant_matches_the_scripts(tmp_path: Path) -> None:
    db = _db(tmp_path)
    with db.write() as conn:
        assert ScriptDirectory.from_config(alembic_config(conn)).get_current_head() == HEAD_REVISION
    db.dispose()


def _other_dialect_only(diff: tuple, dialect: str) -> bool:
    """An index declared with ``ddl_if(dialect=...)`` for another dialect: alembic's comparison
    does not know ``ddl_if`` and reports it as missing."""
    if diff[0] not in ("add_index", "remove_index"):
        return False
    declared = {ix.name: ix for table in metadata.tables.values() for ix in table.indexes}
    ddl_if = getattr(declared.get(diff[1].name), "_ddl_if", None)  # alembic reports a copy
    return ddl_if is not None and ddl_if.dialect not in (None, dialect)


def _migrated_schema_diff(uri: str) -> list:
    _, after = upgrade_database(uri)
    assert after == HEAD_REVISION
    engine = sa.create_engine(normalize_url(uri))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return [d for d in diff if not _other_dialect_only(d, engine.dialect.name)]


def test_migrations_match_tables_on_sqlite(tmp_path: Path) -> None:
    # Migrate a database that upgrade_database did not create via metadata: run alembic itself.
    db = _db(tmp_path)
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "head")
    db.dispose()
    assert _migrated_schema_diff(f"sqlite:///{tmp_path / 'm.db'}") == []


@pytest.mark.postgres
def test_migrations_match_tables_on_postgres(postgres_uri: str) -> None:
    import uuid

    admin = sa.create_engine(normalize_url(postgres_uri), isolation_level="AUTOCOMMIT")
    schema_db = f"shipyard_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{schema_db}"')
    uri = postgres_uri.rsplit("/", 1)[0] + f"/{schema_db}"
    try:
        db = Database(normalize_url(uri))
        with db.write() as conn:
            command.upgrade(alembic_config(conn), "head")
        db.dispose()
        assert _migrated_schema_diff(uri) == []
        store = SqlStore(uri)
        assert store.experiments.get("0").name == "Default"
        store.close()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{schema_db}" WITH (FORCE)')
        admin.dispose()


def test_a_sqlite_store_never_loads_the_postgresql_dialect(tmp_path: Path) -> None:
    # The PostgreSQL-only index options are attached when a PostgreSQL engine is made (tables.use_postgresql).
    import subprocess
    import sys

    code = ("import sys\nimport shipyard\n"
            f"client = shipyard.Client({'sqlite:///' + str(tmp_path / 's.db')!r})\n"
            "run = client.create_run('0', tags={'t': 'v'})\n"
            "assert [r.info.run_id for r in client.search_runs(['0'], \"tags.t = 'v'\")] == [run.info.run_id]\n"
            "client.close()\n"
            "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.postgresql')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.postgres
def test_a_new_postgres_store_has_the_partial_search_indexes(own_postgres_uri: str) -> None:
    store = SqlStore(own_postgres_uri)  # an empty database: created from tables.metadata
    try:
        with store.db.read() as conn:
            rows = conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE :n"),
                                {"n": "ix_%_key_value_run"}).all()
    finally:
        store.close()
    found = {str(name): str(definition) for name, definition in rows}
    for name in ("ix_params_key_value_run", "ix_run_tags_key_value_run"):
        assert found[name].endswith(f"WHERE (length((value)::text) <= {tables.INDEXED_VALUE_CHARS})"), found[name]
    assert "WHERE" not in found["ix_latest_metrics_key_value_run"]


def test_old_store_is_refused_then_upgraded_without_losing_data(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    store = SqlStore(uri)
    exp = store.experiments.create("kept")
    store.runs.create(exp.experiment_id, run_name="r", start_time=1)
    store.close()
    # Pretend an older Shipyard wrote it: the revision differs from what this version needs.
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'base-older'"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="shipyard db upgrade"):
        SqlStore(uri)
    # The refused open changed nothing.
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar() == 1
    engine.dispose()


def test_upgrade_from_empty_and_foreign_database(tmp_path: Path) -> None:
    assert upgrade_database(f"sqlite:///{tmp_path / 'fresh.db'}") == (None, HEAD_REVISION)
    foreign = tmp_path / "foreign.db"
    engine = sa.create_engine(f"sqlite:///{foreign}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE something (x INTEGER)"))
    engine.dispose()
    with pytest.raises(SchemaOutOfDate, match="no Shipyard schema"):
        SqlStore(f"sqlite:///{foreign}")


def test_upgrade_creates_the_folder_of_a_new_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}"
    assert upgrade_database(uri) == (None, HEAD_REVISION)
    assert (tmp_path / "not" / "yet" / "there.db").is_file()


def test_a_0001_store_is_refused_then_upgraded_to_head_keeping_its_data(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'v1.db'}"
    db = _db(tmp_path, "v1.db")
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0001")  # what Shipyard 0001 created
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                             "last_update_time) VALUES (7, 'old', 'active', 1, 1)"))
        conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, "
                             "lifecycle_stage, user_id, source) VALUES ('r1', 7, 'n', 'FINISHED', 1, 'active', "
                             "'', '')"))
        conn.execute(sa.text("INSERT INTO latest_metrics VALUES ('r1', 'acc', 0.9, 0, 1)"))
    db.dispose()
    with pytest.raises(SchemaOutOfDate, match="revision 0001"):
        SqlStore(uri)
    assert upgrade_database(uri) == ("0001", HEAD_REVISION)
    store = SqlStore(uri)
    try:
        assert store.runs.get("r1").data.metrics == {"acc": 0.9}
        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            indexes = {i["name"] for i in sa.inspect(conn).get_indexes("latest_metrics")}
            assert "ix_latest_metrics_key_value_run" in indexes
        engine.dispose()
    finally:
        store.close()


def _fill_a_0004_store(uri: str) -> None:
    """What Shipyard 0004 wrote: an experiment, a run, a registered model and a dataset."""
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0004")
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                             "last_update_time) VALUES (7, 'old', 'active', 1, 1)"))
        conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, "
                             "lifecycle_stage, user_id, source) VALUES ('r1', 7, 'n', 'FINISHED', 1, 'active', "
                             "'', '')"))
        conn.execute(sa.text("INSERT INTO registered_models (model_id, name, description, creation_time, "
                             "last_update_time, last_version) VALUES (1, 'churn', '', 1, 1, 0)"))
        conn.execute(sa.text("INSERT INTO datasets (dataset_id, name, creation_time, last_version) "
                             "VALUES (1, 'train', 1, 0)"))
    db.dispose()


def _check_upgraded_from_0004(uri: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="revision 0004"):
        SqlStore(uri)
    assert upgrade_database(uri) == ("0004", HEAD_REVISION)
    store = SqlStore(uri)
    try:
        assert store.runs.get("r1").info.run_name == "n"
        assert store.models.get_model("churn").name == "churn"
        assert store.experiments.get("7").name == "old"
        from shipyard.entities import LoggedModel

        made = store.logged_models.create(LoggedModel("m-" + "0" * 32, "7", "model", "r1", "model",
                                                      source_run_id="r1", tags={"t": "1"}, params={"p": "2"}))
        assert store.logged_models.list_for_run("r1") == [made]
    finally:
        store.close()
    engine = sa.create_engine(normalize_url(uri))
    with engine.connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("logged_models")}
        assert conn.execute(sa.text("SELECT count(*) FROM datasets")).scalar() == 1
    engine.dispose()
    assert {"ix_logged_models_experiment", "ix_logged_models_source_run"} <= indexes


def test_a_0004_store_is_upgraded_to_0005_keeping_its_data(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'v4.db'}"
    _fill_a_0004_store(uri)
    _check_upgraded_from_0004(uri)


@pytest.mark.postgres
def test_a_0004_store_is_upgraded_to_0005_on_postgres(postgres_uri: str) -> None:
    import uuid

    admin = sa.create_engine(normalize_url(postgres_uri), isolation_level="AUTOCOMMIT")
    name = f"shipyard_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        uri = postgres_uri.rsplit("/", 1)[0] + f"/{name}"
        _fill_a_0004_store(uri)
        _check_upgraded_from_0004(uri)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_0005_store_is_upgraded_to_0006_and_deploys_its_versions(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'v5.db'}"
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0005")
        conn.execute(sa.text("INSERT INTO registered_models (model_id, name, description, creation_time, "
                             "last_update_time, last_version) VALUES (1, 'churn', '', 1, 1, 1)"))
        conn.execute(sa.text("INSERT INTO model_versions (model_id, version, source, run_id, status, description, "
                             "card, creation_time, last_update_time) VALUES (1, 1, 'runs:/r1/model', NULL, 'READY', "
                             "'', '', 1, 1)"))
    db.dispose()
    with pytest.raises(SchemaOutOfDate, match="revision 0005"):
        SqlStore(uri)
    assert upgrade_database(uri) == ("0005", HEAD_REVISION)
    from shipyard.entities import Deployment, Route

    store = SqlStore(uri)
    try:
        made = store.deployments.create(Deployment("churn-api", "production", (Route("churn", 1, 100),)))
        assert [e.deployment for e in store.deployments.history("churn-api")] == [made]
    finally:
        store.close()
    engine = sa.create_engine(uri)
    with engine.connect() as conn:
        assert "ix_deployments_environment" in {i["name"] for i in sa.inspect(conn).get_indexes("deployments")}
    engine.dispose()


def _fill_a_0006_store(uri: str) -> dict[str, int]:
    """What Shipyard 0006 wrote: experiments with tags, runs with params, a logged model, ids
    handed out by the database."""
    db = Database(normalize_url(uri))
    ids = {}
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0006")
        for name in ("kept", "newest"):
            ids[name] = conn.execute(tables.experiments.insert().values(
                name=name, lifecycle_stage="active", creation_time=1, last_update_time=1)).inserted_primary_key[0]
        conn.execute(tables.experiment_tags.insert().values(experiment_id=ids["kept"], key="team", value="ml"))
        conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, lifecycle_stage, "
                             "user_id, source) VALUES ('r1', :e, 'n', 'FINISHED', 1, 'active', '', '')"),
                     {"e": ids["kept"]})
        conn.execute(sa.text("INSERT INTO params VALUES ('r1', 'lr', '0.1')"))
        conn.execute(sa.text("INSERT INTO logged_models (model_id, experiment_id, name, run_id, artifact_path, "
                             "source_run_id, status, status_message, model_type, creation_time, last_update_time, "
                             "lifecycle_stage) VALUES ('m-1', :e, 'model', 'r1', 'model', 'r1', 'READY', '', '', 1, "
                             "1, 'active')"), {"e": ids["kept"]})
    db.dispose()
    return ids


def _check_0007_keeps_data_and_never_reuses_ids(uri: str, ids: dict[str, int]) -> None:
    assert upgrade_database(uri, "0007") == ("0006", "0007")
    engine = sa.create_engine(normalize_url(uri))
    try:
        with engine.begin() as conn:
            names = dict(conn.execute(sa.text("SELECT experiment_id, name FROM experiments")).all())
            assert names == {0: "Default", ids["kept"]: "kept", ids["newest"]: "newest"}
            assert conn.execute(sa.text("SELECT value FROM experiment_tags")).scalar() == "ml"
            assert conn.execute(sa.text("SELECT experiment_id FROM runs WHERE run_id = 'r1'")).scalar() == ids["kept"]
            assert conn.execute(sa.text("SELECT value FROM params WHERE run_id = 'r1'")).scalar() == "0.1"
            assert conn.execute(sa.text("SELECT count(*) FROM logged_models")).scalar() == 1
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
                sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'experiments'")).scalar()
                assert "AUTOINCREMENT" in sql.upper()
            # The newest experiment hard-deleted (as gc may now do): its id is never handed out again.
            conn.execute(sa.text("DELETE FROM experiments WHERE experiment_id = :e"), {"e": ids["newest"]})
            again = conn.execute(tables.experiments.insert().values(
                name="later", lifecycle_stage="active", creation_time=2, last_update_time=2)).inserted_primary_key[0]
            assert again > ids["newest"]
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # names stay unique
                conn.execute(tables.experiments.insert().values(
                    name="kept", lifecycle_stage="active", creation_time=2, last_update_time=2))
    finally:
        engine.dispose()


def test_0007_gives_sqlite_experiments_ids_that_are_never_reused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'v6.db'}"
    _check_0007_keeps_data_and_never_reuses_ids(uri, _fill_a_0006_store(uri))


@pytest.mark.postgres
def test_0007_on_postgres_keeps_data_and_never_reuses_ids(postgres_uri: str) -> None:
    import uuid

    admin = sa.create_engine(normalize_url(postgres_uri), isolation_level="AUTOCOMMIT")
    name = f"shipyard_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        uri = postgres_uri.rsplit("/", 1)[0] + f"/{name}"
        _check_0007_keeps_data_and_never_reuses_ids(uri, _fill_a_0006_store(uri))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_a_fresh_sqlite_store_never_reuses_an_experiment_id(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    store = SqlStore(uri)
    newest = store.experiments.create("newest").experiment_id
    store.close()
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM experiments WHERE experiment_id = :e"), {"e": int(newest)})
    engine.dispose()
    store = SqlStore(uri)
    try:
        assert int(store.experiments.create("later").experiment_id) > int(newest)
    finally:
        store.close()


def _check_0010_links_what_older_stores_hold(uri: str) -> None:
    """A 0009 store's model made in a run becomes that run's output, a model-input lineage edge
    the run's model input (an edge to a run no longer there is left out), and model metrics can
    be recorded."""
    ids = _fill_a_0006_store(uri)
    assert upgrade_database(uri, "0009") == ("0006", "0009")
    engine = sa.create_engine(normalize_url(uri))
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, lifecycle_stage, "
                             "user_id, source) VALUES ('r2', :e, 'n2', 'FINISHED', 2, 'active', '', '')"),
                     {"e": ids["kept"]})
        for target in ("run:r2", "run:gone"):
            conn.execute(sa.text("INSERT INTO lineage_edges (source, target, relation, context, timestamp) VALUES "
                                 "('run:r1', :t, 'input', 'mlflow.model_input:m-1', 3)"), {"t": target})
    engine.dispose()
    assert upgrade_database(uri) == ("0009", HEAD_REVISION)
    from shipyard.entities import LoggedModelMetric, RunLinkKind

    store = SqlStore(uri)
    try:
        links = store.logged_models.run_links(["r1", "r2"])
        assert [(x.kind, x.ref, x.step) for x in links["r1"]] == [(RunLinkKind.MODEL_OUTPUT, "m-1", 0)]
        assert [(x.kind, x.ref) for x in links["r2"]] == [(RunLinkKind.MODEL_INPUT, "m-1")]
        store.logged_models.log_metrics("m-1", [LoggedModelMetric("acc", 0.5, 0, 10, "r1")])
        assert [(m.key, m.value) for m in store.logged_models.get("m-1").metrics] == [("acc", 0.5)]
    finally:
        store.close()


def test_0010_links_what_a_sqlite_store_holds(tmp_path: Path) -> None:
    _check_0010_links_what_older_stores_hold(f"sqlite:///{tmp_path / 'v9.db'}")


@pytest.mark.postgres
def test_0010_links_what_a_postgres_store_holds(postgres_uri: str) -> None:
    import uuid

    admin = sa.create_engine(normalize_url(postgres_uri), isolation_level="AUTOCOMMIT")
    name = f"shipyard_mig_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        _check_0010_links_what_older_stores_hold(postgres_uri.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# Rows of 0014's one-row-per-point ``metrics``: (run, key, value, step, timestamp) in id order,
# with NaN (stored as NULL), infinities, duplicate points, steps out of order and int64 extremes.
_POINTS_0014 = [
    ("r1", "loss", 0.5, 3, 30), ("r1", "loss", None, 1, 10), ("r1", "loss", 0.5, 3, 30), ("r1", "acc", 0.9, 0, 1),
    ("r1", "loss", float("inf"), 3, 20), ("r1", "loss", float("-inf"), -(2**63), 2**63 - 1),
    ("r1", "loss", 0.25, 2**63 - 1, -(2**63)), ("r1", "loss", 0.75, 3, 30), ("r2", "loss", 1.0, 0, 0),
]


def _fill_a_0014_store_with_metric_rows(uri: str) -> None:
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0014")
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                             "last_update_time) VALUES (7, 'old', 'active', 1, 1)"))
        for run_id in ("r1", "r2"):
            conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, lifecycle_stage, "
                                 "user_id, source) VALUES (:r, 7, 'n', 'FINISHED', 1, 'active', '', '')"),
                         {"r": run_id})
        for run_id, key, value, step, timestamp in _POINTS_0014:
            conn.execute(sa.text("INSERT INTO metrics (run_id, key, value, step, timestamp) "
                                 "VALUES (:r, :k, :v, :s, :t)"),
                         {"r": run_id, "k": key, "v": value, "s": step, "t": timestamp})
    db.dispose()


def _check_0015_moves_metric_rows_into_chunks(uri: str) -> None:
    import math

    from shipyard.entities import Metric

    _fill_a_0014_store_with_metric_rows(uri)
    assert upgrade_database(uri) == ("0014", HEAD_REVISION)
    store = SqlStore(uri)
    try:
        for run_id, key in (("r1", "loss"), ("r1", "acc"), ("r2", "loss")):
            # What reads returned from the rows: by step, then timestamp, then id; NULL as NaN.
            rows = [(s, t, i, v) for i, (r, k, v, s, t) in enumerate(_POINTS_0014) if (r, k) == (run_id, key)]
            expected = [(s, t, repr(math.nan if v is None else v)) for s, t, _i, v in sorted(rows)]
            assert [(m.step, m.timestamp, repr(m.value)) for m in store.metrics.history(run_id, key)] == expected
            columns = store.metrics.history_columns(run_id, key)
            assert list(zip(columns.steps, columns.timestamps, map(repr, columns.values), strict=True)) == expected
        store.metrics.log("r1", [Metric("loss", 0.1, 3, 30)])  # joins the moved chunk: it is small
        assert [m.value for m in store.metrics.history("r1", "loss") if m.step == 3][-1] == 0.1
    finally:
        store.close()
    engine = sa.create_engine(normalize_url(uri))
    with engine.connect() as conn:
        assert not sa.inspect(conn).has_table("metrics")
        assert conn.execute(sa.text("SELECT count(*) FROM metric_chunks")).scalar() == 3
    engine.dispose()
    # And back: one row per point again, the points of each (run, key) in the chunks' order.
    db = Database(normalize_url(uri))
    with db.schema_change() as conn:
        command.downgrade(alembic_config(conn), "0014")
        back = conn.execute(sa.text("SELECT run_id, key, value, step, timestamp FROM metrics ORDER BY id")).all()
    db.dispose()
    assert len(back) == len(_POINTS_0014) + 1
    assert sorted(map(repr, back)) == sorted(map(repr, [*_POINTS_0014, ("r1", "loss", 0.1, 3, 30)]))


def test_0015_moves_a_sqlite_stores_metric_rows_into_chunks(tmp_path: Path) -> None:
    _check_0015_moves_metric_rows_into_chunks(f"sqlite:///{tmp_path / 'v14.db'}")


@pytest.mark.postgres
def test_0015_moves_a_postgres_stores_metric_rows_into_chunks(own_postgres_uri: str) -> None:
    _check_0015_moves_metric_rows_into_chunks(own_postgres_uri)
