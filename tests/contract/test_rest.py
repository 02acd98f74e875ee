"""The contract suite against RestStore, talking to an in-process server over SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.config import Settings
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.contract.suite import StoreContract


@pytest.fixture(scope="module")
def server_app(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("rest-store")
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                                artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    yield app
    app.state.client.close()


class TestRestStore(StoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, server_app) -> Iterator[RestStore]:
        transport = ASGITransport(server_app)
        store = RestStore("http://testserver", transport=transport)
        yield store
        store.close()
        transport.close()
