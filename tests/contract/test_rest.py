"""The contract suite against RestStore, talking to an in-process server over SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.artifacts.rest import RestArtifactStore
from shipyard.config import Settings
from shipyard.models.manifest import ModelManifest
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
    records_given_user = False
    server_user = "local"  # the anonymous principal, until authentication exists

    def model_source(self, store: RestStore) -> str:
        # The server registers only models a run really logged: log an MLmodel file first.
        run_id = self.new_run(store).info.run_id
        artifacts = RestArtifactStore(store.uri, self._transport)
        try:
            manifest = ModelManifest("pyfunc", {}, False, "3.11", [], {})
            artifacts.log_bytes(run_id, manifest.to_yaml().encode(), "model/MLmodel")
        finally:
            artifacts.close()
        return f"runs:/{run_id}/model"

    @pytest.fixture
    def store(self, server_app) -> Iterator[RestStore]:
        transport = self._transport = ASGITransport(server_app)
        store = RestStore("http://testserver", transport=transport)
        yield store
        store.close()
        transport.close()
