from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlStore
from tests.contract.auth_suite import AuthStoreContract
from tests.contract.deployments_suite import DeploymentStoreContract
from tests.contract.logged_models_suite import LoggedModelStoreContract
from tests.contract.monitors_suite import MonitorStoreContract
from tests.contract.suite import StoreContract


class TestSqliteFileStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract, AuthStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = SqlStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        yield store
        store.close()


class TestSqliteMemoryStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract, AuthStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self) -> Iterator[SqlStore]:
        store = SqlStore("sqlite:///:memory:")
        yield store
        store.close()


def test_rows_older_than_projects_are_in_the_default_project(tmp_path: Path) -> None:
    """A store written before migration 0013 (at 0012, after the auth tables came): each of its
    experiments, models, datasets, deployments and monitors is in ``default`` once upgraded."""
    import json

    import sqlalchemy as sa
    from alembic import command

    from shipyard.entities import Deployment, RegistryQuery, Route
    from shipyard.entities.monitor import Monitor
    from shipyard.store.sql.database import Database
    from shipyard.store.sql.engine import normalize_url
    from shipyard.store.sql.schema import HEAD_REVISION, alembic_config, upgrade_database
    from shipyard.wire import deployment_spec_to_wire, monitor_spec_to_wire

    uri = f"sqlite:///{tmp_path / 'v12.db'}"
    db = Database(normalize_url(uri))
    deployment = Deployment("churn-api", "production", (Route("churn", 1, 100),))
    with db.write() as conn:
        command.upgrade(alembic_config(conn), "0012")
        rows = [
            ("INSERT INTO experiments (experiment_id, name, lifecycle_stage, creation_time, last_update_time) "
             "VALUES (7, 'old', 'active', 1, 1)", {}),
            ("INSERT INTO registered_models (model_id, name, description, creation_time, last_update_time, "
             "last_version) VALUES (1, 'churn', '', 1, 1, 1)", {}),
            ("INSERT INTO model_versions (model_id, version, source, run_id, status, description, card, "
             "creation_time, last_update_time) VALUES (1, 1, 'runs:/r1/model', NULL, 'READY', '', '', 1, 1)", {}),
            ("INSERT INTO datasets (dataset_id, name, creation_time, last_version) VALUES (1, 'train', 1, 1)", {}),
            ("INSERT INTO dataset_versions (dataset_id, version, digest, source, kind, schema_json, profile_json, "
             "creation_time, user_id) VALUES (1, 1, 'sha256:x', 's3://b/t', 'file', '[]', '{}', 1, '')", {}),
            ("INSERT INTO deployments (name, environment, status, revision, spec, creation_time, last_update_time, "
             "user_id) VALUES ('churn-api', 'production', 'ACTIVE', 1, :spec, 1, 1, '')",
             {"spec": json.dumps(deployment_spec_to_wire(deployment))}),
            ("INSERT INTO monitors (name, deployment, spec, state, state_since, next_window_start, lease_owner, "
             "lease_expires, revision, creation_time, last_update_time, user_id) VALUES ('drift', 'churn-api', "
             ":spec, 'OK', 1, 0, '', 0, 1, 1, 1, '')",
             {"spec": json.dumps(monitor_spec_to_wire(Monitor("drift", deployment="churn-api")))}),
        ]
        for statement, values in rows:
            conn.execute(sa.text(statement), values)
    db.dispose()
    assert upgrade_database(uri) == ("0012", HEAD_REVISION)
    store = SqlStore(uri)
    try:
        old = store.experiments.get("7")
        assert (old.name, old.project) == ("old", "default")
        assert store.experiments.list(projects=["default"]) == [store.experiments.get("0"), old]
        assert store.experiments.list(projects=["other"]) == []
        assert store.models.get_model("churn").project == "default"
        assert [m.name for m in store.models.search_models(RegistryQuery(projects=("default",))).items] == ["churn"]
        assert [v.version for v in store.models.search_versions(RegistryQuery(projects=("default",))).items] == [1]
        assert store.datasets.get_version("train", 1).project == "default"
        assert [d.name for d in store.datasets.list_datasets(projects=["default"])] == ["train"]
        assert store.deployments.get("churn-api").project == "default"
        assert [d.name for d in store.deployments.list(projects=["default"])] == ["churn-api"]
        assert store.monitors.get("drift").project == "default"
        assert [m.name for m in store.monitors.list(projects=["default"])] == ["drift"]
        assert store.monitors.list(projects=["other"]) == []
        # A dataset made before projects keeps its project for new versions too.
        again, created = store.datasets.log_version("train", digest="sha256:y", source="s3://b/u", kind="file",
                                                    project="other")
        assert (created, again.version, again.project) == (True, 2, "default")
        assert store.experiments.create("new", project="other").project == "other"
    finally:
        store.close()
