"""A finished run's recorded artifacts cannot be replaced by deleting them first: the 409 that
refuses overwriting a file would mean nothing if DELETE then PUT did the same, on either API."""

from __future__ import annotations

import pytest

import shipyard
from tests.support import OCTET, InProcessServer


def _finished_run(remote: shipyard.Client) -> tuple[str, str]:
    info = remote.create_run(remote.create_experiment("record")).info
    remote.log_text(info.run_id, "v1", "report.txt")
    remote.set_terminated(info.run_id)
    return info.experiment_id, info.run_id


@pytest.mark.parametrize("api", ["native", "mlflow"])
def test_a_finished_runs_file_cannot_be_deleted_then_uploaded_again(server: InProcessServer, remote: shipyard.Client,
                                                                    api: str) -> None:
    experiment_id, run_id = _finished_run(remote)
    url = (f"/api/v1/runs/{run_id}/artifacts/report.txt" if api == "native"
           else f"/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/report.txt")
    deleted = server.http.delete(url)
    assert deleted.status_code == 409, deleted.text
    assert "immutable" in deleted.json()["message"]
    replaced = server.http.put(url, content=b"v2", headers=OCTET)
    assert replaced.status_code == 409, replaced.text
    with remote.artifacts.open(run_id, "report.txt") as stream:
        assert stream.read() == b"v1"  # the recorded file is unchanged


def test_a_running_run_may_still_delete_its_files(server: InProcessServer, remote: shipyard.Client) -> None:
    info = remote.create_run(remote.create_experiment("draft")).info
    remote.log_text(info.run_id, "draft", "a.txt")
    remote.log_text(info.run_id, "draft", "b.txt")
    assert server.http.delete(f"/api/v1/runs/{info.run_id}/artifacts/a.txt").status_code == 200
    proxied = f"/api/2.0/mlflow-artifacts/artifacts/{info.experiment_id}/{info.run_id}/artifacts/b.txt"
    assert server.http.delete(proxied).status_code == 200
    assert remote.artifacts.walk(info.run_id) == []
