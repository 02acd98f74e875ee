"""Migration 0009 (search indexes): on a store with data it builds exactly the indexes a fresh
store has, on SQLite and PostgreSQL, and a run stopped halfway completes when run again."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from shipyard.entities import Comparison, Op, OrderBy, RunFilter, RunQuery
from shipyard.store.sql import SqlStore
from shipyard.store.sql.database import Database
from shipyard.store.sql.engine import normalize_url
from shipyard.store.sql.schema import HEAD_REVISION, alembic_config, upgrade_database

_TABLES = ("runs", "params", "run_tags", "latest_metrics")


def _indexes(uri: str) -> dict[str, str]:
    """Index name -> its definition as the database reports it (whitespace and quotes normalised)."""
    engine = sa.create_engine(normalize_url(uri))
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                        "AND tbl_name IN ('runs', 'params', 'run_tags', 'latest_metrics')")).all()
        else:
            rows = conn.execute(sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                        "AND tablename = ANY(:t)"), {"t": list(_TABLES)}).all()
    engine.dispose()
    return {name: re.sub(r"\s+", " ", sql.replace('"', "")).strip().lower() for name, sql in rows}


def _before_0009() -> str:
    db = Database(normalize_url("sqlite://"))
    with db.write() as conn:
        previous = ScriptDirectory.from_config(alembic_config(conn)).get_revision("0009").down_revision
    db.dispose()
    assert isinstance(previous, str)
    return previous


def _old_store_with_runs(uri: str, runs: int = 50) -> None:
    """A store at the revision before 0009 holding runs with params, tags and metrics."""
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), _before_0009())
        conn.execute(sa.text("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, "
                             "last_update_time) VALUES (7, 'old', 'active', 1, 1)"))
        for i in range(runs):
            rid = f"{i:032x}"
            conn.execute(sa.text("INSERT INTO runs (run_id, experiment_id, name, status, start_time, lifecycle_stage, "
                                 "user_id, source) VALUES (:r, 7, :n, 'FINISHED', :t, 'active', '', '')"),
                         {"r": rid, "n": f"r{i}", "t": i})
            conn.execute(sa.text("INSERT INTO params VALUES (:r, 'model', :v)"),
                         {"r": rid, "v": "rf" if i % 2 else "x" * 300})
            conn.execute(sa.text("INSERT INTO run_tags VALUES (:r, 'env', 'prod')"), {"r": rid})
            conn.execute(sa.text("INSERT INTO latest_metrics VALUES (:r, 'acc', :v, 0, 1)"), {"r": rid, "v": i / runs})
    db.dispose()


def _check_upgraded(uri: str, fresh_uri: str) -> None:
    store = SqlStore(uri)
    try:
        flt = RunFilter((Comparison("metric", "acc", Op.GT, 0.5), Comparison("param", "model", Op.EQ, "rf")))
        found = store.runs.search(RunQuery(("7",), flt, order_by=(OrderBy("metric", "acc", False),), max_results=3))
        assert [r.info.run_name for r in found.items] == ["r49", "r47", "r45"]
        assert len(store.runs.search(RunQuery(("7",))).items) == 50
        long_value = store.runs.search(RunQuery(("7",), RunFilter((Comparison("param", "model", Op.EQ, "x" * 300),))))
        assert len(long_value.items) == 25
    finally:
        store.close()
    migrated, fresh = _indexes(uri), _indexes(fresh_uri)
    assert migrated == fresh
    assert {"ix_runs_experiment_stage_start_run", "ix_params_key_value_run", "ix_run_tags_key_value_run",
            "ix_latest_metrics_key_value_run"} <= set(migrated)


def _interrupt(uri: str) -> None:
    """What a migration stopped halfway leaves: one new index built, one old index gone, and
    the revision not yet moved."""
    engine = sa.create_engine(normalize_url(uri))
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ix_runs_experiment_stage_start_run ON runs "
                             "(experiment_id, lifecycle_stage, start_time DESC, run_id)"))
        conn.execute(sa.text("DROP INDEX ix_latest_metrics_key_value"))
    engine.dispose()


@pytest.fixture
def postgres_databases(postgres_uri: str) -> Iterator[tuple[str, str]]:
    admin = sa.create_engine(normalize_url(postgres_uri), isolation_level="AUTOCOMMIT")
    names = [f"shipyard_mig9_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    base = postgres_uri.rsplit("/", 1)[0]
    yield base + f"/{names[0]}", base + f"/{names[1]}"
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.mark.parametrize("interrupted", [False, True], ids=["clean", "interrupted"])
def test_0009_on_sqlite_with_data(tmp_path: Path, interrupted: bool) -> None:
    uri, fresh = f"sqlite:///{tmp_path / 'old.db'}", f"sqlite:///{tmp_path / 'fresh.db'}"
    _old_store_with_runs(uri)
    if interrupted:
        _interrupt(uri)
    assert upgrade_database(uri) == (_before_0009(), HEAD_REVISION)
    SqlStore(fresh).close()
    _check_upgraded(uri, fresh)


@pytest.mark.postgres
@pytest.mark.parametrize("interrupted", [False, True], ids=["clean", "interrupted"])
def test_0009_on_postgres_with_data(postgres_databases: tuple[str, str], interrupted: bool) -> None:
    uri, fresh = postgres_databases
    _old_store_with_runs(uri)
    if interrupted:
        _interrupt(uri)
    assert upgrade_database(uri) == (_before_0009(), HEAD_REVISION)
    SqlStore(fresh).close()
    _check_upgraded(uri, fresh)


def test_0009_downgrade_restores_the_old_indexes(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'down.db'}"
    _old_store_with_runs(uri, runs=3)
    before = _indexes(uri)
    upgrade_database(uri)
    db = Database(normalize_url(uri))
    with db.write() as conn:
        command.downgrade(alembic_config(conn), _before_0009())
    db.dispose()
    assert _indexes(uri) == before
