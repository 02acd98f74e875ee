"""Migration 0012 (access control) upgrades a store keeping its data; the audit log is append-only
in a migrated database exactly as in a new one, and ``shipyard gc`` never touches it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from shipyard.entities.auth import DEFAULT_PROJECT, AuditEvent, AuditQuery, Role, User
from shipyard.errors import SchemaOutOfDate
from shipyard.store.sql import SqlStore
from shipyard.store.sql.database import Database
from shipyard.store.sql.engine import normalize_url
from shipyard.store.sql.schema import HEAD_REVISION, alembic_config, upgrade_database

_EVENT = AuditEvent(time=1, principal="ana", action="delete_run", method="DELETE", path="/api/v1/runs/r1",
                    status=200, project=DEFAULT_PROJECT, object="run:r1")


def _fill_a_0011_store(uri: str) -> None:
    """What Shipyard 0011 wrote: an experiment with a run and a metric, a model, a monitor."""
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0011")
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                             "last_update_time) VALUES (7, 'old', 'active', 1, 1)"))
        conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, lifecycle_stage, "
                             "user_id, source) VALUES ('r1', 7, 'n', 'FINISHED', 1, 'active', 'ana', '')"))
        conn.execute(sa.text("INSERT INTO latest_metrics (run_id, key, value, step, timestamp) "
                             "VALUES ('r1', 'acc', 0.9, 0, 1)"))
        conn.execute(sa.text("INSERT INTO registered_models (model_id, name, description, creation_time, "
                             "last_update_time, last_version) VALUES (1, 'churn', '', 1, 1, 0)"))
        conn.execute(sa.text(
            "INSERT INTO monitors (name, deployment, spec, state, state_since, next_window_start, "
            "last_evaluation_time, lease_owner, lease_expires, revision, creation_time, last_update_time, user_id) "
            "VALUES ('churn-drift', NULL, '{}', 'OK', 1, 1, NULL, '', 0, 1, 1, 1, 'ana')"))
    db.dispose()


def _check_upgraded_from_0011(uri: str) -> None:
    with pytest.raises(SchemaOutOfDate, match="revision 0011"):
        SqlStore(uri)
    before = int(time.time() * 1000)
    assert upgrade_database(uri) == ("0011", HEAD_REVISION)
    store = SqlStore(uri)
    try:
        assert store.runs.get("r1").data.metrics == {"acc": 0.9}
        assert store.experiments.get("7").name == "old"
        assert store.models.get_model("churn").name == "churn"
        assert store.monitors.get("churn-drift").name == "churn-drift"
        default = store.auth.get_project(DEFAULT_PROJECT)
        assert default.creation_time >= before
        assert [p.name for p in store.auth.list_projects()] == [DEFAULT_PROJECT]
        assert store.auth.count_users() == 0
        store.auth.create_user(User("ana", admin=True), password_hash="h")
        store.auth.set_member(DEFAULT_PROJECT, "ana", Role.OWNER)
        assert [m.role for m in store.auth.grants("ana")] == [Role.OWNER]
        store.auth.record_audit([_EVENT])
        _assert_append_only(store)
    finally:
        store.close()


def _assert_append_only(store: SqlStore) -> None:
    for statement in ("UPDATE audit_events SET principal = 'mallory'", "DELETE FROM audit_events"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), store.db.engine.begin() as conn:
            conn.execute(sa.text(statement))
    assert [e.principal for e in store.auth.audit(AuditQuery())] == ["ana"]


def _sqlite_triggers(path: Path) -> dict[str, str]:
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.connect() as conn:
        found = dict(conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all())
    engine.dispose()
    return found


def test_a_0011_store_is_upgraded_keeping_its_data_and_gets_the_default_project(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'v11.db'}"
    _fill_a_0011_store(uri)
    _check_upgraded_from_0011(uri)


def test_migrated_and_new_sqlite_stores_have_the_same_audit_triggers(tmp_path: Path) -> None:
    migrated = tmp_path / "migrated.db"
    _fill_a_0011_store(f"sqlite:///{migrated}")
    upgrade_database(f"sqlite:///{migrated}")
    SqlStore(f"sqlite:///{tmp_path / 'new.db'}").close()
    triggers = _sqlite_triggers(migrated)
    assert set(triggers) == {"audit_events_no_update", "audit_events_no_delete"}
    assert triggers == _sqlite_triggers(tmp_path / "new.db")


def test_0012_downgrades_to_0011(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'down.db'}"
    _fill_a_0011_store(uri)
    upgrade_database(uri, "0012")
    db = Database(normalize_url(uri))
    with db.schema_change() as conn:
        command.downgrade(alembic_config(conn), "0011")
    with db.read() as conn:
        names = set(sa.inspect(conn).get_table_names())
    db.dispose()
    assert not names & {"users", "api_tokens", "projects", "project_members", "audit_events"}
    assert _sqlite_triggers(tmp_path / "down.db") == {}
    assert upgrade_database(uri) == ("0011", HEAD_REVISION)


@pytest.mark.postgres
def test_a_0011_store_is_upgraded_on_postgres(own_postgres_uri: str) -> None:
    _fill_a_0011_store(own_postgres_uri)
    _check_upgraded_from_0011(own_postgres_uri)
    engine = sa.create_engine(normalize_url(own_postgres_uri))
    with engine.connect() as conn:
        triggers = set(conn.execute(sa.text(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal")).scalars())
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            conn.execute(sa.text("TRUNCATE audit_events"))
    engine.dispose()
    assert triggers == {"audit_events_no_update_or_delete", "audit_events_no_truncate"}


def test_gc_purges_runs_but_never_touches_the_audit_log(tmp_path: Path) -> None:
    import shipyard
    from shipyard.tracking.gc import collect_garbage

    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'gc.db'}", artifact_uri=str(tmp_path / "art"))
    try:
        experiment = client.create_experiment("gc")
        doomed = client.create_run(experiment).info.run_id
        client.set_terminated(doomed)
        client.delete_run(doomed)
        client.delete_experiment(experiment)
        store = client.store
        assert isinstance(store, SqlStore)
        store.auth.record_audit([_EVENT, AuditEvent(time=2, principal="ana", action="delete_experiment",
                                                    method="DELETE", path=f"/api/v1/experiments/{experiment}",
                                                    status=200, object=f"experiment:{experiment}")])
        report = collect_garbage(client, cutoff_ms=int(time.time() * 1000), grace_seconds=0)
        assert report.runs_purged == (doomed,)
        assert [e.action for e in store.auth.audit(AuditQuery())] == ["delete_experiment", "delete_run"]
    finally:
        client.close()
