from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.store.sql import SqlStore
from tests.contract.deployments_suite import DeploymentStoreContract
from tests.contract.logged_models_suite import LoggedModelStoreContract
from tests.contract.monitors_suite import MonitorStoreContract
from tests.contract.suite import StoreContract


class TestSqliteFileStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = SqlStore(f"sqlite:///{tmp_path / 'shipyard.db'}")
        yield store
        store.close()


class TestSqliteMemoryStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self) -> Iterator[SqlStore]:
        store = SqlStore("sqlite:///:memory:")
        yield store
        store.close()
