"""The real ``mlflow`` client against ``shipyard server --auth``: a token (``MLFLOW_TRACKING_TOKEN``,
sent as Bearer) and a user name and password (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``, sent as
Basic) both log a whole run, artifacts included; no credentials and too small a role are refused
in MLflow's own error codes.

The server is a real process, started by the command users run; its first admin is made with
the one-time code it prints.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.ci import require
from tests.support import ServerProcess, shipyard_command

mlflow = require("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

PASSWORD = "a long enough passphrase 7"
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


class Site:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def call(self, method: str, path: str, *, auth: tuple[str, str], **kwargs: object) -> dict:
        response = self.http.request(method, f"/api/v1{path}", auth=auth, **kwargs)  # type: ignore[arg-type]
        assert response.is_success, response.text
        return response.json() if response.content else {}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("mlflow-auth")
    command = shipyard_command("server", "--auth", "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
                               "--artifacts-destination", str(root / "artifacts"))
    with ServerProcess(command, root) as server:
        logs = " ".join(server.logs().split())
        code = re.search(r"one-time code \(.*?\): ([A-Za-z0-9_-]{24})", logs)
        assert code is not None, logs
        made = Site(server)
        boot = made.http.post("/api/v1/auth/bootstrap",
                              json={"name": "admin", "password": PASSWORD, "code": code.group(1)})
        assert boot.status_code == 201, boot.text
        admin = ("admin", PASSWORD)
        for user, role in (("carol", "editor"), ("vera", "viewer")):
            made.call("POST", "/users", auth=admin, json={"name": user, "password": PASSWORD})
            made.call("PUT", f"/projects/default/members/{user}", auth=admin, json={"role": role})
        yield made
        made.http.close()


@pytest.fixture
def signed_out(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", site.url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refusal is final: do not wait it out
    mlflow.set_tracking_uri(site.url)
    yield site.url
    while mlflow.active_run():
        mlflow.end_run()


def _log_a_run(tmp_path: Path, experiment: str) -> str:
    mlflow.set_experiment(experiment)
    notes = tmp_path / "notes.txt"
    notes.write_text("logged through the mlflow client")
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_metrics({"loss": 0.5, "acc": 0.75}, step=1)
        mlflow.set_tag("team", "carol")
        mlflow.log_artifact(str(notes), artifact_path="docs")
    return run.info.run_id


def _check_run(url: str, run_id: str, tmp_path: Path) -> None:
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.1"}
    assert run.data.metrics == {"loss": 0.5, "acc": 0.75}
    assert run.info.status == "FINISHED"
    assert [f.path for f in client.list_artifacts(run_id, "docs")] == ["docs/notes.txt"]
    local = client.download_artifacts(run_id, "docs/notes.txt", str(tmp_path / "down"))
    assert Path(local).read_text() == "logged through the mlflow client"


def test_a_token_logs_a_whole_run(site: Site, signed_out: str, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path) -> None:
    secret = site.call("POST", "/auth/tokens", auth=("carol", PASSWORD), json={"name": "mlflow"})["secret"]
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", secret)
    run_id = _log_a_run(tmp_path, f"bearer-{uuid.uuid4().hex[:8]}")
    _check_run(signed_out, run_id, tmp_path)
    # With a token the client claims its OS login (no MLFLOW_TRACKING_USERNAME): the server records carol.
    assert MlflowClient(tracking_uri=signed_out).get_run(run_id).info.user_id == "carol"
    events = site.call("GET", "/audit", auth=("admin", PASSWORD), params={"principal": "carol"})["events"]
    assert any(e["action"] == "mlflow_log_batch" or e["action"].startswith("mlflow_log") for e in events)
    assert any(e["object"] == f"run:{run_id}" for e in events)


def test_a_user_name_and_password_log_a_whole_run(site: Site, signed_out: str, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "carol")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    run_id = _log_a_run(tmp_path, f"basic-{uuid.uuid4().hex[:8]}")
    _check_run(signed_out, run_id, tmp_path)
    run = MlflowClient(tracking_uri=signed_out).get_run(run_id)
    assert run.info.user_id == "carol"  # the server records who signed in, not what the client claims


def test_without_credentials_the_client_is_told_to_sign_in(site: Site, signed_out: str) -> None:
    with pytest.raises(MlflowException) as refused:
        MlflowClient(tracking_uri=signed_out).search_experiments()
    assert "401" in str(refused.value) or refused.value.error_code == "UNAUTHENTICATED"
    assert "sign in" in str(refused.value)


def test_a_viewer_reads_but_cannot_write(site: Site, signed_out: str, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "carol")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    run_id = _log_a_run(tmp_path, f"shared-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "vera")
    client = MlflowClient(tracking_uri=signed_out)
    assert client.get_run(run_id).data.params == {"lr": "0.1"}
    with pytest.raises(MlflowException) as refused:
        client.log_param(run_id, "sneaky", "1")
    assert refused.value.error_code == "PERMISSION_DENIED"
    assert "editor" in str(refused.value)
