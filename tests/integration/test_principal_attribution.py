"""One door into the domain: a change made through the native API, the MLflow-compatible API or
the SDK against a server is recorded under the request's principal, whichever door it came by
(before, the MLflow door recorded the server process's OS login)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi import FastAPI

import shipyard
from shipyard import deploy
from shipyard.auth import Principal
from shipyard.config import Settings
from shipyard.server import create_app
from shipyard.server import permissions as perms
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport

BASE = "http://testserver"
NATIVE = f"{BASE}/api/v1"
MLFLOW = f"{BASE}/api/2.0/mlflow"


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FastAPI]:
    monkeypatch.setenv("LOGNAME", "server-process-login")  # what the MLflow door used to record
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver",
                                capture_packages=False, capture_git=False)
    server = create_app(settings)
    monkeypatch.setattr(perms, "resolve_principal", lambda scope: Principal("alice", anonymous=False))
    yield server
    server.state.client.close()


@pytest.fixture
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = ASGITransport(app)
    with httpx.Client(base_url=BASE, transport=transport) as client:
        yield client
    transport.close()


def ok(response: httpx.Response) -> dict:
    assert response.is_success, response.text
    return response.json() if response.content else {}


def history_users(http: httpx.Client, model: str) -> set[str]:
    return {e["user"] for e in ok(http.get(f"{NATIVE}/registered-models/{model}/history"))["events"]}


def test_registry_changes_record_the_principal_through_both_apis(http: httpx.Client) -> None:
    ok(http.post(f"{NATIVE}/registered-models", json={"name": "native-m"}))
    ok(http.post(f"{NATIVE}/registered-models/native-m/versions", json={"source": "s3://bucket/native"}))
    ok(http.put(f"{NATIVE}/registered-models/native-m/aliases/staging", json={"version": 1}))
    ok(http.post(f"{MLFLOW}/registered-models/create", json={"name": "mlflow-m"}))
    ok(http.post(f"{MLFLOW}/model-versions/create", json={"name": "mlflow-m", "source": "s3://bucket/mlflow"}))
    ok(http.post(f"{MLFLOW}/registered-models/alias", json={"name": "mlflow-m", "alias": "staging", "version": "1"}))
    ok(http.post(f"{MLFLOW}/registered-models/set-tag", json={"name": "mlflow-m", "key": "team", "value": "x"}))
    assert history_users(http, "native-m") == {"alice"}
    assert history_users(http, "mlflow-m") == {"alice"}


def test_mlflow_registry_edits_record_the_principal_as_the_native_api_does(http: httpx.Client) -> None:
    """Every registry change the MLflow door makes, tag deletions among them (issue #14: they
    recorded no user), is recorded under alice, as the same changes over /api/v1 are."""
    for name in ("native-tags", "mlflow-tags"):
        ok(http.post(f"{NATIVE}/registered-models", json={"name": name}))
        for n in (1, 2):
            ok(http.post(f"{NATIVE}/registered-models/{name}/versions", json={"source": f"s3://bucket/{name}/{n}"}))
    models = f"{NATIVE}/registered-models/native-tags"
    ok(http.put(f"{models}/tags", json={"tags": {"team": "x"}}))
    ok(http.put(f"{models}/versions/1/tags", json={"tags": {"checked": "yes"}}))
    ok(http.delete(f"{models}/tags/team"))
    ok(http.delete(f"{models}/versions/1/tags/checked"))

    m, v = {"name": "mlflow-tags"}, {"name": "mlflow-tags", "version": "1"}
    ok(http.post(f"{MLFLOW}/registered-models/set-tag", json={**m, "key": "team", "value": "x"}))
    ok(http.post(f"{MLFLOW}/model-versions/set-tag", json={**v, "key": "checked", "value": "yes"}))
    ok(http.request("DELETE", f"{MLFLOW}/registered-models/delete-tag", json={**m, "key": "team"}))
    ok(http.request("DELETE", f"{MLFLOW}/model-versions/delete-tag", json={**v, "key": "checked"}))
    ok(http.post(f"{MLFLOW}/model-versions/transition-stage", json={**v, "stage": "Staging"}))
    ok(http.patch(f"{MLFLOW}/model-versions/update", json={**v, "description": "checked"}))
    ok(http.post(f"{MLFLOW}/registered-models/alias", json={**m, "alias": "champion", "version": "1"}))
    ok(http.request("DELETE", f"{MLFLOW}/registered-models/alias", json={**m, "alias": "champion"}))
    ok(http.request("DELETE", f"{MLFLOW}/model-versions/delete", json={"name": "mlflow-tags", "version": "2"}))
    ok(http.post(f"{MLFLOW}/registered-models/rename", json={**m, "new_name": "mlflow-renamed"}))

    native = ok(http.get(f"{models}/history"))["events"]
    mlflow = ok(http.get(f"{NATIVE}/registered-models/mlflow-renamed/history"))["events"]
    deletions = {"model_tag_deleted", "version_tag_deleted"}
    assert deletions <= {e["kind"] for e in native}
    assert deletions | {"version_tag_set", "version_updated", "alias_set", "alias_deleted", "version_deleted",
                        "model_renamed"} <= {e["kind"] for e in mlflow}
    assert {e["user"] for e in native} == {e["user"] for e in mlflow} == {"alice"}


def test_deployment_and_dataset_changes_record_the_principal(app: FastAPI, http: httpx.Client) -> None:
    transport = ASGITransport(app)
    sdk = shipyard.Client(settings=app.state.settings.replace(tracking_uri=BASE),
                          store=RestStore(BASE, transport=transport))
    try:
        # The SDK claims its own login; the server records who it authenticated.
        ok(http.post(f"{NATIVE}/registered-models", json={"name": "churn"}))
        ok(http.post(f"{NATIVE}/registered-models/churn/versions", json={"source": "s3://bucket/churn"}))
        made = deploy.create_deployment(sdk, "churn-api", "models:/churn/1")
        assert made.user == "alice"
        assert {e.user for e in deploy.deployment_history(sdk, "churn-api")} == {"alice"}

        run_id = sdk.create_run("0", "train").info.run_id
        native = sdk.log_dataset(run_id, pd.DataFrame({"x": [1, 2, 3]}), name="native-ds")
        assert native.user == "alice"
        mlflow_run = ok(http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0"}))["run"]["info"]["run_id"]
        dataset = {"name": "mlflow-ds", "digest": "abc123", "source_type": "local", "source": "{}"}
        ok(http.post(f"{MLFLOW}/runs/log-inputs", json={"run_id": mlflow_run, "datasets": [{"dataset": dataset}]}))
        versions = ok(http.get(f"{NATIVE}/datasets/mlflow-ds/versions"))["dataset_versions"]
        assert [v["user"] for v in versions] == ["alice"]
    finally:
        sdk.close()
        transport.close()


def test_evaluation_promotion_and_card_edits_record_the_principal(app: FastAPI, http: httpx.Client) -> None:
    """Evaluation, quality gates and cards are domain code on the registry service the request's
    principal built: the SDK against the server, the native API and the MLflow API all record alice."""
    from sklearn.linear_model import LogisticRegression

    transport = ASGITransport(app)
    sdk = shipyard.Client(settings=app.state.settings.replace(tracking_uri=BASE),
                          store=RestStore(BASE, transport=transport))
    try:
        frame = pd.DataFrame({"x": [-2.0, -1.0, -0.5, 0.5, 1.0, 2.0]})
        labels = (frame["x"] > 0).astype(int)
        run_id = sdk.create_run("0", "train").info.run_id
        sdk.log_model(run_id, LogisticRegression().fit(frame, labels), "model")
        ok(http.post(f"{NATIVE}/registered-models", json={"name": "gated"}))
        ok(http.post(f"{NATIVE}/registered-models/gated/versions", json={"source": f"runs:/{run_id}/model"}))

        evaluation = sdk.evaluate_model("models:/gated/1", frame.assign(y=labels), target="y")  # tags the version
        accuracy = evaluation.metrics["accuracy"]
        refused = sdk.promote_model("gated", 1, "staging", require=[f"metrics.accuracy > {accuracy}"])
        assert not refused.promoted
        assert sdk.promote_model("gated", 1, "staging", require=[f"metrics.accuracy >= {accuracy}"]).promoted
        sdk.model_card("gated", 1)  # rendered and stored
        sdk.set_model_card("gated", 1, "# Edited by the SDK\n")
        ok(http.patch(f"{NATIVE}/registered-models/gated/versions/1", json={"card": "# Edited over /api/v1\n"}))
        ok(http.patch(f"{MLFLOW}/model-versions/update",
                      json={"name": "gated", "version": "1", "description": "edited over MLflow"}))
        ok(http.post(f"{MLFLOW}/registered-models/alias", json={"name": "gated", "alias": "champion", "version": "1"}))

        events = ok(http.get(f"{NATIVE}/registered-models/gated/history"))["events"]
        kinds = [e["kind"] for e in events]
        assert kinds.count("version_updated") == 4  # the stored card, the SDK's, the native and MLflow edits
        assert {"version_tag_set", "alias_set"} <= set(kinds)
        assert {e["user"] for e in events} == {"alice"}
        assert ok(http.get(f"{NATIVE}/registered-models/gated/versions/1"))["card"] == "# Edited over /api/v1\n"
    finally:
        sdk.close()
        transport.close()


def _run_users(http: httpx.Client, run_ids: list[str]) -> list[str]:
    return [ok(http.get(f"{NATIVE}/runs/{i}"))["info"]["user_id"] for i in run_ids]


def test_runs_record_the_signed_in_principal_not_the_login_the_client_claims(
        app: FastAPI, http: httpx.Client) -> None:
    """A run's user is who the server authenticated, by every door: the SDK (a run written at
    once, and a deferred one written with its first values), the native API (create and write) and
    the MLflow API, whose client sends its OS login as user_id and as the mlflow.user tag."""
    transport = ASGITransport(app)
    settings = app.state.settings.replace(tracking_uri=BASE)
    sdk = shipyard.Client(settings=settings, store=RestStore(BASE, transport=transport))
    deferring = shipyard.Client(settings=settings, store=RestStore(BASE, transport=transport), defer_runs=True)
    try:
        run_ids = [sdk.create_run("0", "sdk", user_id="sdk-login").info.run_id,
                   deferring.create_run("0", "deferred", user_id="sdk-login", defer=True).info.run_id]
        deferring.flush()
        run_ids.append(ok(http.post(f"{NATIVE}/runs", json={"experiment_id": "0", "user_id": "mallory"}))
                       ["info"]["run_id"])
        written = "0123456789abcdef0123456789abcdef"
        ok(http.post(f"{NATIVE}/runs/{written}/write", json={"create": {
            "experiment_id": "0", "run_name": "written", "start_time": 1, "user_id": "mallory"}}))
        run_ids.append(written)
        made = ok(http.post(f"{MLFLOW}/runs/create", json={
            "experiment_id": "0", "user_id": "os-login", "tags": [{"key": "mlflow.user", "value": "os-login"}]}))
        run_ids.append(made["run"]["info"]["run_id"])
        assert made["run"]["info"]["user_id"] == "alice"
        assert _run_users(http, run_ids) == ["alice"] * 5
        mlflow_run = ok(http.get(f"{MLFLOW}/runs/get", params={"run_id": run_ids[-1]}))["run"]
        assert mlflow_run["info"]["user_id"] == "alice"
        # The tag is the client's claim, kept as sent (any tag can be set later anyway): docs/security.md
        assert {"key": "mlflow.user", "value": "os-login"} in mlflow_run["data"]["tags"]
    finally:
        deferring.close()
        sdk.close()
        transport.close()


def test_without_authentication_a_run_keeps_the_user_the_client_names(
        app: FastAPI, http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The anonymous local principal of a server without --auth: the SDK's login, as sent."""
    from shipyard.auth import ANONYMOUS

    monkeypatch.setattr(perms, "resolve_principal", lambda scope: ANONYMOUS)
    native = ok(http.post(f"{NATIVE}/runs", json={"experiment_id": "0", "user_id": "sdk-login"}))["info"]["run_id"]
    made = ok(http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0", "user_id": "os-login"}))
    assert _run_users(http, [native, made["run"]["info"]["run_id"]]) == ["sdk-login", "os-login"]
    assert ok(http.post(f"{NATIVE}/runs", json={"experiment_id": "0"}))["info"]["user_id"] == ""
