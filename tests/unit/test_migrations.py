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
from shipyard.store.sql import SqlStore
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
            assert "ix_latest_metrics_key_value" in {i["name"] for i in sa.inspect(conn).get_indexes("latest_metrics")}
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
