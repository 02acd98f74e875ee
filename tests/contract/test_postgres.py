from __future__ import annotations

from collections.abc import Iterator

import pytest

from shipyard.store.sql import SqlStore
from tests.contract.auth_suite import AuthStoreContract
from tests.contract.deployments_suite import DeploymentStoreContract
from tests.contract.logged_models_suite import LoggedModelStoreContract
from tests.contract.monitors_suite import MonitorStoreContract
from tests.contract.suite import StoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract, AuthStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, postgres_uri: str) -> Iterator[SqlStore]:
        store = SqlStore(postgres_uri)
        yield store
        store.close()
