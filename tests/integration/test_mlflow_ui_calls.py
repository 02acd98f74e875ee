"""The calls MLflow's web UI makes beside its REST API, against a ``shipyard server`` process:
bulk and sampled metric histories, the datasets of experiments, and single-file upload and
download by query string, with MLflow's limits, messages and error codes.

The server and client fixtures are test_mlflow_client.py's (one server for the module).
"""

from __future__ import annotations

import httpx
import pytest

from tests.ci import require
from tests.integration.test_mlflow_client import client, server, unique, url  # noqa: F401 (fixtures)
from tests.support import ServerProcess

mlflow = require("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, InputTag  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture
def ajax(server: ServerProcess) -> httpx.Client:  # noqa: F811
    with httpx.Client(base_url=f"{server.url}/ajax-api/2.0/mlflow", timeout=10) as h:
        yield h


def _refused(response: httpx.Response, needle: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE", body
    assert needle in body["message"], body


def _run_with(client: MlflowClient, history: list[tuple[int, int, float]], key: str = "loss") -> str:  # noqa: F811
    run_id = client.create_run(client.create_experiment(unique("ui"))).info.run_id
    for timestamp, step, value in history:
        client.log_metric(run_id, key, value, timestamp=timestamp, step=step)
    return run_id


def test_bulk_history_orders_by_run_then_time_step_value(client: MlflowClient, ajax: httpx.Client) -> None:  # noqa: F811
    logged = [(2, 3, 1.0), (1, 3, 5.0), (1, 3, 4.0), (1, 2, 9.0)]
    first, second = sorted(_run_with(client, logged) for _ in range(2))
    got = ajax.get("/metrics/get-history-bulk", params={"run_id": [second, first], "metric_key": "loss"})
    assert got.status_code == 200, got.text
    expected = [{"key": "loss", "value": v, "timestamp": t, "step": s, "run_id": r}
                for r in (first, second) for t, s, v in sorted(logged)]
    assert got.json()["metrics"] == expected
    limited = ajax.get("/metrics/get-history-bulk", params={"run_id": first, "metric_key": "loss", "max_results": 2})
    assert limited.json()["metrics"] == expected[:2]
    absent = ajax.get("/metrics/get-history-bulk", params={"run_id": "f" * 32, "metric_key": "loss"})
    assert absent.json() == {}  # an unknown run has no history (proto3: no empty list sent)


@pytest.mark.parametrize(("params", "needle"), [
    ({"metric_key": "loss"}, "must specify at least one run_id"),
    ({"run_id": [str(i) for i in range(101)], "metric_key": "loss"}, "cannot specify more than 100 run_ids"),
    ({"run_id": "1"}, "must specify a metric_key"),
])
def test_bulk_history_refusals(ajax: httpx.Client, params: dict, needle: str) -> None:
    _refused(ajax.get("/metrics/get-history-bulk", params=params), f"GetMetricHistoryBulk request {needle}")


def test_sampled_history_keeps_every_runs_last_step(client: MlflowClient, ajax: httpx.Client) -> None:  # noqa: F811
    short = _run_with(client, [(1, step, float(step)) for step in range(10)])
    long = _run_with(client, [(1, step, float(step)) for step in range(20)])
    got = ajax.get("/metrics/get-history-bulk-interval",
                   params={"run_ids": [short, long], "metric_key": "loss", "max_results": 5})
    assert got.status_code == 200, got.text
    by_run: dict[str, list[int]] = {short: [], long: []}
    for row in got.json()["metrics"]:
        by_run[row["run_id"]].append(row["step"])
    # 20 distinct steps sampled every 4th, plus each run's last step (9 and 19), run by run.
    assert by_run == {short: [0, 4, 8, 9], long: [0, 4, 8, 9, 12, 16, 19]}
    window = ajax.get("/metrics/get-history-bulk-interval",
                      params={"run_ids": short, "metric_key": "loss", "start_step": 2, "end_step": 5,
                              "max_results": 10})
    assert [row["step"] for row in window.json()["metrics"]] == [2, 3, 4, 5]


@pytest.mark.parametrize(("params", "needle"), [
    ({"metric_key": "loss"}, "Missing value for required parameter 'run_ids'"),
    ({"run_ids": [str(i) for i in range(101)], "metric_key": "loss"}, "must specify at most 100 run_ids"),
    ({"run_ids": "1", "metric_key": "loss", "max_results": 0}, "max_results must be between 1 and 2500"),
    ({"run_ids": "1"}, "Missing value for required parameter 'metric_key'"),
    ({"run_ids": "1", "metric_key": "loss", "start_step": 3, "end_step": 1}, "end_step must be greater than"),
    ({"run_ids": "1", "metric_key": "loss", "start_step": 3}, "both must be specified"),
])
def test_sampled_history_refusals(ajax: httpx.Client, params: dict, needle: str) -> None:
    _refused(ajax.get("/metrics/get-history-bulk-interval", params=params), needle)


def test_search_datasets_summarises_each_dataset_and_context(client: MlflowClient,  # noqa: F811
                                                             ajax: httpx.Client) -> None:
    experiment_id = client.create_experiment(unique("datasets"))
    run_id = client.create_run(experiment_id).info.run_id
    train = Dataset(name="churn", digest="d1", source_type="local", source="s")
    client.log_inputs(run_id, [DatasetInput(train, [InputTag("mlflow.data.context", "training")]),
                               DatasetInput(Dataset(name="holdout", digest="d2", source_type="local", source="s"))])
    got = ajax.post("/experiments/search-datasets", json={"experiment_ids": [experiment_id]})
    assert got.status_code == 200, got.text
    assert got.json()["dataset_summaries"] == [
        {"experiment_id": experiment_id, "name": "churn", "digest": "d1", "context": "training"},
        {"experiment_id": experiment_id, "name": "holdout", "digest": "d2"}]
    _refused(ajax.post("/experiments/search-datasets", json={}), "must specify at least one experiment_id")
    _refused(ajax.post("/experiments/search-datasets", json={"experiment_ids": [str(i) for i in range(21)]}),
             "SearchDatasets request cannot specify more than 20")


def test_query_string_upload_and_downloads(client: MlflowClient, server: ServerProcess,  # noqa: F811
                                           ajax: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment(unique("upload"))).info.run_id
    # No media type, as MLflow's clients send it, from a client that is not a browser.
    sent = ajax.post("/upload-artifact", params={"run_uuid": run_id, "path": "notes/a.txt"}, content=b"hello")
    assert sent.status_code == 200, sent.text
    got = httpx.get(f"{server.url}/get-artifact", params={"run_uuid": run_id, "path": "notes/a.txt"}, timeout=10)
    assert (got.status_code, got.content) == (200, b"hello")
    assert [a.path for a in client.list_artifacts(run_id, "notes")] == ["notes/a.txt"]
    for params, needle in [({}, "Request must specify run_uuid."), ({"run_uuid": run_id}, "Request must specify path."),
                           ({"run_uuid": run_id, "path": "../x"}, "Invalid path"),
                           ({"run_uuid": run_id, "path": "b.txt"}, "Request must specify data.")]:
        _refused(ajax.post("/upload-artifact", params=params), needle)
    # A browser sends an Origin with a cross-site POST: an untyped body is then refused.
    forged = ajax.post("/upload-artifact", params={"run_uuid": run_id, "path": "c.txt"}, content=b"x",
                       headers={"origin": "https://evil.example"})
    assert forged.status_code == 400, forged.text
    assert "c.txt" not in {a.path for a in client.list_artifacts(run_id)}


def test_root_downloads_answer_mlflows_path_error(client: MlflowClient, server: ServerProcess) -> None:  # noqa: F811
    run_id = client.create_run(client.create_experiment(unique("paths"))).info.run_id
    for path, params in [("/get-artifact", {"run_id": run_id, "path": "../etc/passwd"}),
                         ("/model-versions/get-artifact", {"name": "m", "version": 1, "path": "../x"}),
                         ("//model-versions/get-artifact", {"name": "m", "version": 1, "path": "../x"})]:
        got = httpx.get(f"{server.url}{path}", params=params, timeout=10)
        assert (got.status_code, got.json()) == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                                       "message": "Invalid path"})
    missing = httpx.get(f"{server.url}/get-artifact", params={"run_id": run_id, "path": "none.txt"}, timeout=10)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")


def test_model_version_file_download(client: MlflowClient, server: ServerProcess, url: str) -> None:  # noqa: F811
    class Echo(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input

    name = unique("mvfile")
    mlflow.set_experiment(unique("experiment"))  # not another test's active one, of another server
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Echo(), registered_model_name=name,
                                pip_requirements=["mlflow"])
    got = httpx.get(f"{server.url}/model-versions/get-artifact",
                    params={"name": name, "version": 1, "path": "MLmodel"}, timeout=10)
    assert got.status_code == 200, got.text
    assert "python_function" in got.text
