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
from tests.contract.deployments_suite import DeploymentStoreContract
from tests.contract.logged_models_suite import LoggedModelStoreContract
from tests.contract.monitors_suite import MonitorStoreContract
from tests.contract.suite import StoreContract


@pytest.fixture(scope="module")
def server_app(tmp_path_factory: pytest.TempPathFactory):
    root: Path = tmp_path_factory.mktemp("rest-store")
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                                artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    yield app
    app.state.client.close()


class TestRestStore(StoreContract, LoggedModelStoreContract, DeploymentStoreContract,
                         MonitorStoreContract):
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


def test_logged_model_search_takes_a_filter_string_over_http(server_app) -> None:
    """What people with curl (and the MLflow adapter's callers) send: MLflow's filter text,
    parsed by the server with the logged-model grammar, attribute spellings included."""
    import uuid

    import httpx

    transport = ASGITransport(server_app)
    store = RestStore("http://testserver", transport=transport)
    try:
        exp_id = store.experiments.create(f"lm-http-{uuid.uuid4().hex[:8]}").experiment_id
        with httpx.Client(base_url="http://testserver", transport=transport) as http:
            for n, name in enumerate(("churn", "fraud")):
                made = http.post("/api/v1/logged-models", json={
                    "model_id": f"m-{uuid.uuid4().hex}", "experiment_id": exp_id, "name": name,
                    "run_id": uuid.uuid4().hex, "artifact_path": "model", "creation_time": 1000 + n})
                assert (made.status_code, made.json()["name"]) == (201, name)
            found = http.post("/api/v1/logged-models/search", json={
                "experiment_ids": [exp_id], "filter_string": "name LIKE 'fr%' and creation_timestamp_ms > 500"})
            assert found.status_code == 200
            assert [m["name"] for m in found.json()["logged_models"]] == ["fraud"]
            both = http.post("/api/v1/logged-models/search", json={
                "experiment_ids": [exp_id], "filter_string": "name = 'x'",
                "filter": [{"kind": "attribute", "key": "name", "op": "=", "value": "x"}]})
            assert both.status_code == 400
            assert both.json()["error_code"] == "INVALID_INPUT"
            bad = http.post("/api/v1/logged-models/search", json={"experiment_ids": [exp_id],
                                                                   "filter_string": "metrics.acc > 1"})
            assert bad.status_code == 400
    finally:
        store.close()
        transport.close()


def test_projects_over_http(server_app) -> None:
    """What a client without the SDK sends: ``project`` on creation (the default one when left
    out), ``projects`` repeated in a list's query string, ``projects: []`` in a search body."""
    import uuid

    import httpx

    first, second = f"p-{uuid.uuid4().hex[:8]}", f"p-{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url="http://testserver", transport=ASGITransport(server_app)) as http:
        made = {}
        for project in (first, second, None):
            name = f"e-{uuid.uuid4().hex[:8]}"
            body = {"name": name} if project is None else {"name": name, "project": project}
            answer = http.post("/api/v1/experiments", json=body)
            assert answer.status_code == 201
            made[project] = answer.json()
        assert made[None]["project"] == "default"
        listed = http.get("/api/v1/experiments", params={"projects": [first, second]}).json()["experiments"]
        assert [e["name"] for e in listed] == [made[first]["name"], made[second]["name"]]
        for bad in ("", "x" * 300):
            refused = http.post("/api/v1/experiments", json={"name": f"e-{uuid.uuid4().hex[:8]}", "project": bad})
            assert (refused.status_code, refused.json()["error_code"]) == (400, "INVALID_INPUT")
        model = f"m-{uuid.uuid4().hex[:8]}"
        assert http.post("/api/v1/registered-models", json={"name": model, "project": first}).status_code == 201
        found = http.get("/api/v1/registered-models", params={"projects": first}).json()["registered_models"]
        assert [(m["name"], m["project"]) for m in found] == [(model, first)]
        nothing = http.post("/api/v1/registered-models/search", json={"projects": []})
        assert (nothing.status_code, nothing.json()["registered_models"]) == (200, [])
        for path, key in (("/api/v1/datasets", "datasets"), ("/api/v1/deployments", "deployments"),
                          ("/api/v1/monitors", "monitors"), ("/api/v1/model-versions", "model_versions")):
            answer = http.get(path, params={"projects": second})
            assert (answer.status_code, answer.json()[key]) == (200, []), path
