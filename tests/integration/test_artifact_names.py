"""Names refused when an artifact is stored, alike through the SDK, the native REST API and the
MLflow artifact proxy; names already stored stay readable, listable and deletable.

Each refused shape is one another client, proxy or operating system can later read as a
traversal or as another file: a segment of dots only (``....//`` is ``../`` after one strip of
``../``), a segment holding ``;`` (``..;/`` is ``..`` to servlet containers), bytes that are not
UTF-8 (the overlong ``%c0%af`` is ``/`` to old decoders), control characters.

That every store (the SDK's local one, S3, GCS, the REST store) refuses them is the contract suite's
(``tests/contract/artifacts_suite.py``); this file keeps the HTTP answers of both APIs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from shipyard.artifacts.cas import CasArtifactStore
from shipyard.errors import InvalidInput
from tests.contract.artifacts_suite import REFUSED_NAMES
from tests.support import OCTET, InProcessServer

IDS = list(REFUSED_NAMES)
CASES = list(REFUSED_NAMES.values())


@pytest.fixture
def run(remote: shipyard.Client) -> tuple[str, str]:
    info = remote.create_run(remote.create_experiment("names")).info
    return info.experiment_id, info.run_id


def test_the_sdk_refuses_a_local_file_name(tmp_path: Path) -> None:
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             artifact_uri=str(tmp_path / "artifacts"))
    try:
        run_id = client.create_run(client.create_experiment("names")).info.run_id
        local = tmp_path / "report;v2.txt"
        local.write_text("x")
        with pytest.raises(InvalidInput, match="';'"):
            client.log_artifact(run_id, local)
        with pytest.raises(InvalidInput, match="only of dots"):
            client.log_artifact(run_id, tmp_path / "report;v2.txt", "...")
        assert client.artifacts.walk(run_id) == []
    finally:
        client.close()


@pytest.mark.parametrize(("raw", "rule"), CASES, ids=IDS)
def test_the_native_api_answers_400(server: InProcessServer, remote: shipyard.Client, run: tuple[str, str],
                                    raw: str, rule: str) -> None:
    _, run_id = run
    response = server.http.put(f"/api/v1/runs/{run_id}/artifacts/{raw}", content=b"x", headers=OCTET)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_INPUT"
    assert rule in body["message"]
    # The SDK pointed at the server refuses with the same rule: the contract suite's REST backend.
    assert remote.artifacts.walk(run_id) == []


@pytest.mark.parametrize(("raw", "rule"), CASES, ids=IDS)
def test_the_mlflow_artifact_proxy_answers_400(server: InProcessServer, remote: shipyard.Client, run: tuple[str, str],
                                               raw: str, rule: str) -> None:
    experiment_id, run_id = run
    url = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{raw}"
    response = server.http.put(url, content=b"x")
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    # MLflow routes may word an artifact-path rule as MLflow does ("Invalid path").
    assert rule in body["message"] or body["message"] == "Invalid path", body
    assert remote.artifacts.walk(run_id) == []


def test_names_stored_before_stay_readable_and_deletable(server: InProcessServer, remote: shipyard.Client,
                                                        run: tuple[str, str]) -> None:
    """A store written before these rules keeps working: its files are listed, downloaded and
    deleted by their names (only storing a new file under such a name is refused)."""
    experiment_id, run_id = run
    remote.artifacts.log_bytes(run_id, b"old bytes", "seed.txt")
    cas = server.app.state.client.artifacts
    assert isinstance(cas, CasArtifactStore)
    with cas.storage.open(cas._files_key(run_id, "seed.txt")) as stream:
        pointer = stream.read()
    old = ["old/.../x.txt", "old/a;b.txt"]
    for name in old:  # what an older Shipyard stored
        cas.storage.put_bytes(cas._files_key(run_id, name), pointer)

    assert {e.path for e in remote.artifacts.walk(run_id)} == {"seed.txt", *old}
    for name in old:
        with remote.artifacts.open(run_id, name) as stream:
            assert stream.read() == b"old bytes"
        native = server.http.get(f"/api/v1/runs/{run_id}/artifacts/{name}")
        assert (native.status_code, native.content) == (200, b"old bytes")
        proxied = server.http.get(f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{name}")
        assert (proxied.status_code, proxied.content) == (200, b"old bytes")
    remote.artifacts.delete(run_id, old[0])
    assert server.http.delete(f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/{old[1]}"
                              ).status_code == 200
    assert [e.path for e in remote.artifacts.walk(run_id)] == ["seed.txt"]


def test_ordinary_names_are_still_stored(server: InProcessServer, remote: shipyard.Client,
                                         run: tuple[str, str]) -> None:
    experiment_id, run_id = run
    names = [".hidden", "a..b.txt", "v1.2/model.onnx", "café/naïve 100%.txt", "..x", "x.."]
    for name in names:
        remote.artifacts.log_bytes(run_id, name.encode(), name)
    url = f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/proxied/..data"
    assert server.http.put(url, content=b"y").status_code == 200
    assert {e.path for e in remote.artifacts.walk(run_id)} == {*names, "proxied/..data"}
