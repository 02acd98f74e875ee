"""The real ``mlflow`` client (tracking, artifacts, registry, autologging) against a Shipyard
server process, unchanged: every test fails if the server's answer is wrong.

One ``shipyard server`` serves the whole module (each test uses its own experiment and model
names); the client is the current ``mlflow-skinny`` release, a test dependency.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import shipyard
from shipyard.entities import Node, NodeKind
from shipyard.store.rest import RestStore
from tests.ci import require
from tests.support import ServerProcess, shipyard_command

mlflow = require("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [
    # mlflow's own deprecation and advisory warnings are not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("mlflow-server")
    with ServerProcess(shipyard_command("server", "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
                                        "--artifacts-destination", str(root / "artifacts")), root) as srv:
        yield srv


@pytest.fixture
def url(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    yield server.url
    while mlflow.active_run():
        mlflow.end_run()


@pytest.fixture
def client(url: str) -> MlflowClient:
    return MlflowClient(tracking_uri=url, registry_uri=url)


@pytest.fixture
def native(url: str) -> Iterator[shipyard.Client]:
    """The Shipyard SDK on the same server: one set of data."""
    c = shipyard.Client(tracking_uri=url, store=RestStore(url))
    yield c
    c.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def error_code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return exc.value.error_code


# -- experiments and runs ------------------------------------------------------------------------


def test_experiments(client: MlflowClient) -> None:
    assert client.get_experiment("0").name == "Default"
    name = unique("exp")
    exp_id = mlflow.set_experiment(name).experiment_id
    assert exp_id.isdigit()
    assert client.get_experiment_by_name(name).experiment_id == exp_id
    assert client.get_experiment_by_name(unique("ghost")) is None
    with pytest.raises(MlflowException) as exc:
        client.create_experiment(name)
    assert error_code(exc) == "RESOURCE_ALREADY_EXISTS"
    client.set_experiment_tag(exp_id, "team", "churn")
    assert client.get_experiment(exp_id).tags["team"] == "churn"
    client.rename_experiment(exp_id, name + "-renamed")
    assert client.get_experiment(exp_id).name == name + "-renamed"
    found = client.search_experiments(filter_string=f"name LIKE '{name}%' and tags.team = 'churn'")
    assert [e.experiment_id for e in found] == [exp_id]
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    assert exp_id not in [e.experiment_id for e in client.search_experiments()]
    assert exp_id in [e.experiment_id for e in client.search_experiments(view_type=2)]
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"


def test_run_logging_and_artifacts(url: str, client: MlflowClient, tmp_path: Path,
                                   native: shipyard.Client) -> None:
    mlflow.set_experiment(unique("runs"))
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    (tmp_path / "folder" / "a.txt").write_text("a")
    (tmp_path / "folder" / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (tmp_path / "one.csv").write_text("x,y\n1,2\n")
    with mlflow.start_run(run_name="baseline") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"depth": 6, "loss": "log"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.9, "nan": math.nan, "inf": math.inf, "ninf": -math.inf}, step=7)
        mlflow.set_tag("team", "churn")
        mlflow.set_tags({"a": "1", "b": "2"})
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"k": [1, 2]}, "config.json")
        mlflow.log_artifact(str(tmp_path / "one.csv"))
        mlflow.log_artifacts(str(tmp_path / "folder"), "folder")
    run_id = run.info.run_id
    assert len(run_id) == 32
    assert int(run_id, 16) >= 0
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "baseline"
    assert got.data.params == {"lr": "0.01", "depth": "6", "loss": "log"}
    assert got.data.metrics["loss"] == pytest.approx(0.2)
    assert got.data.metrics["acc"] == 0.9
    assert math.isnan(got.data.metrics["nan"])
    assert got.data.metrics["inf"] == math.inf
    assert got.data.metrics["ninf"] == -math.inf
    assert got.data.tags["team"] == "churn"
    assert got.data.tags["mlflow.runName"] == "baseline"
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    top = {f.path: f for f in client.list_artifacts(run_id)}
    assert set(top) == {"notes", "config.json", "one.csv", "folder"}
    assert top["folder"].is_dir
    assert top["one.csv"].file_size == 8
    assert [f.path for f in client.list_artifacts(run_id, "folder/sub")] == ["folder/sub/b.bin"]
    dest = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="folder",
                                                    dst_path=str(tmp_path / "d")))
    assert (dest / "a.txt").read_text() == "a"
    assert (dest / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert json.loads(Path(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="config.json", dst_path=str(tmp_path / "c"))).read_text()) == {"k": [1, 2]}
    # The same run, seen natively.
    seen = native.get_run(run_id)
    assert seen.info.run_name == "baseline"
    assert seen.data.params["depth"] == "6"
    assert native.artifacts.open(run_id, "notes/hello.txt").read() == b"hello"


def test_log_batch_and_nested_runs(url: str, client: MlflowClient, native: shipyard.Client) -> None:
    from mlflow.entities import Metric, Param, RunTag

    exp_id = client.create_experiment(unique("batch"))
    parent = client.create_run(exp_id, run_name="parent")
    child = client.create_run(exp_id, run_name="child", tags={"mlflow.parentRunId": parent.info.run_id})
    client.log_batch(child.info.run_id, metrics=[Metric("m", float(i), 0, i) for i in range(1000)],
                     params=[Param(f"p{i}", str(i)) for i in range(50)], tags=[RunTag("t", "v")])
    assert len(client.get_metric_history(child.info.run_id, "m")) == 1000
    got = client.get_run(child.info.run_id)
    assert got.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert len(got.data.params) == 50
    assert native.get_run(child.info.run_id).info.parent_run_id == parent.info.run_id
    # The client splits what is over MLflow's batch limits: 2,500 metrics arrive whole.
    client.log_batch(child.info.run_id, metrics=[Metric("n", 1.0, i, i) for i in range(2500)])
    assert len(client.get_metric_history(child.info.run_id, "n")) == 2500


def test_search_runs(url: str, client: MlflowClient) -> None:
    exp_id = client.create_experiment(unique("search"))
    ids = {}
    for i in range(7):
        run = client.create_run(exp_id, run_name=f"r{i}", start_time=1000 + i)
        client.log_param(run.info.run_id, "depth", str(i % 2))
        client.log_metric(run.info.run_id, "acc", i / 10)
        client.set_tag(run.info.run_id, "kind", "even" if i % 2 == 0 else "odd")
        ids[i] = run.info.run_id
    found = client.search_runs([exp_id], "metrics.acc >= 0.3 and params.depth = '1'", order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in found] == [ids[5], ids[3]]
    found = client.search_runs([exp_id], "tags.`kind` IN ('even') and attributes.run_name LIKE 'r%'",
                               order_by=["attributes.start_time ASC"])
    assert [r.info.run_id for r in found] == [ids[0], ids[2], ids[4], ids[6]]
    assert [r.info.run_id for r in client.search_runs([exp_id], "tags.mlflow.runName = 'r4'")] == [ids[4]]
    assert [r.info.run_id for r in client.search_runs([exp_id], "tags.missing IS NULL",
                                                      order_by=["params.depth DESC", "metrics.acc"])] == \
        [ids[1], ids[3], ids[5], ids[0], ids[2], ids[4], ids[6]]
    page1 = client.search_runs([exp_id], max_results=3, order_by=["metrics.acc"])
    page2 = client.search_runs([exp_id], max_results=3, order_by=["metrics.acc"], page_token=page1.token)
    page3 = client.search_runs([exp_id], max_results=3, order_by=["metrics.acc"], page_token=page2.token)
    assert [r.info.run_id for r in [*page1, *page2, *page3]] == [ids[i] for i in range(7)]
    assert page3.token is None
    frame = mlflow.search_runs(experiment_ids=[exp_id], filter_string="metrics.acc < 0.2", order_by=["metrics.acc"])
    assert list(frame["run_id"]) == [ids[0], ids[1]]
    assert list(frame["params.depth"]) == ["0", "1"]
    assert list(frame["tags.kind"]) == ["even", "odd"]


def test_delete_and_restore_runs(client: MlflowClient) -> None:
    exp_id = client.create_experiment(unique("delete"))
    run_id = client.create_run(exp_id).info.run_id
    client.set_terminated(run_id)
    client.set_tag(run_id, "note", "tags may change after the end")
    client.log_metric(run_id, "late", 1.0)  # e.g. an evaluation after the end, as MLflow allows
    assert client.get_run(run_id).data.metrics == {"late": 1.0}
    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([exp_id]) == []
    assert [r.info.run_id for r in client.search_runs([exp_id], run_view_type=2)] == [run_id]
    client.restore_run(run_id)
    assert [r.info.run_id for r in client.search_runs([exp_id])] == [run_id]


def test_errors_the_client_raises(client: MlflowClient) -> None:
    exp_id = client.create_experiment(unique("errors"))
    with pytest.raises(MlflowException) as exc:
        client.get_run("0" * 32)
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as exc:
        client.get_experiment("987654")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"
    run_id = client.create_run(exp_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_param(run_id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "lr", "0.2")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    assert "0.1" in str(exc.value)
    assert "0.2" in str(exc.value)
    with pytest.raises(MlflowException) as exc:
        client.search_runs([exp_id], "metrics.acc >> 1")
    assert error_code(exc) == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as exc:
        client.log_param(run_id, "long", "x" * 6001)
    assert "6000" in str(exc.value)


# -- models --------------------------------------------------------------------------------------


def _data() -> tuple[Any, Any]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    return X, (X[:, 0] + X[:, 1] > 0).astype(int)


def test_sklearn_log_model_register_alias_and_load(url: str, client: MlflowClient, native: shipyard.Client) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    name = unique("churn")
    mlflow.set_experiment(unique("models"))
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name=name, input_example=X[:2],
                                        pip_requirements=["scikit-learn"])
    assert str(info.registered_model_version) == "1"
    assert client.get_logged_model(info.model_id).status.to_proto() is not None
    assert client.get_run(run.info.run_id).outputs.model_outputs[0].model_id == info.model_id
    client.set_registered_model_alias(name, "champion", 1)
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    loaded = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    np.testing.assert_array_equal(loaded.predict(X[:5]), model.predict(X[:5]))
    # One set of data: Shipyard sees the version, its lineage, and loads the MLflow-format model.
    version = native.get_model_version(name, 1)
    assert version.run_id == run.info.run_id
    assert "champion" in version.aliases
    np.testing.assert_array_equal(native.load_model(f"models:/{name}@champion").predict(X[:5]), model.predict(X[:5]))
    edges = native.store.lineage.edges([Node(NodeKind.RUN, run.info.run_id)], upstream=False)
    assert any(e.target.kind is NodeKind.MODEL for e in edges)
    # Aliases set on either side are seen on the other.
    native.set_alias(name, "staging", 1)
    assert client.get_model_version_by_alias(name, "staging").version == "1"
    client.delete_registered_model_alias(name, "staging")
    assert "staging" not in native.get_registered_model(name).aliases
    with pytest.raises(MlflowException) as exc:
        client.get_model_version_by_alias(name, "staging")
    assert error_code(exc) == "RESOURCE_DOES_NOT_EXIST"
    # A protected alias (Shipyard's approvals) refuses the move until the version is approved.
    with pytest.raises(MlflowException) as exc:
        client.set_registered_model_alias(name, "production", 1)
    assert error_code(exc) == "PERMISSION_DENIED"
    assert "approv" in str(exc.value)
    native.approve_model_version(name, 1, comment="checked")
    client.set_registered_model_alias(name, "production", 1)
    # Search registered models and versions.
    assert [m.name for m in client.search_registered_models(f"name = '{name}'")] == [name]
    assert [m.name for m in mlflow.search_registered_models(filter_string=f"name LIKE '{name}%'")] == [name]
    newest = client.search_registered_models(f"name LIKE '{name}%'", order_by=["last_updated_timestamp DESC"])
    assert [m.name for m in newest] == [name]
    versions = client.search_model_versions(f"name = '{name}'", order_by=["version_number ASC"])
    assert [(v.version, v.run_id) for v in versions] == [("1", run.info.run_id)]
    client.transition_model_version_stage(name, "1", "Staging")
    assert client.get_latest_versions(name, ["Staging"])[0].version == "1"
    client.update_model_version(name, "1", description="first")
    assert client.get_model_version(name, "1").description == "first"
    found = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert [m.model_id for m in found] == [info.model_id]


def test_sklearn_autolog(url: str, client: MlflowClient) -> None:
    from sklearn.ensemble import RandomForestClassifier

    X, y = _data()
    mlflow.set_experiment(unique("autolog"))
    mlflow.sklearn.autolog(log_models=True, log_input_examples=False, silent=True)
    try:
        with mlflow.start_run() as run:
            RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = client.get_run(run.info.run_id)
    assert got.data.params["n_estimators"] == "5"
    assert got.data.params["max_depth"] == "3"
    assert 0.5 < got.data.metrics["training_accuracy_score"] <= 1.0
    models = mlflow.search_logged_models(experiment_ids=[run.info.experiment_id], output_format="list")
    assert len(models) == 1
    assert models[0].source_run_id == run.info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    assert loaded.predict(X[:3]).shape == (3,)


def test_xgboost_autolog(url: str, client: MlflowClient) -> None:
    xgb = require("xgboost")
    X, y = _data()
    mlflow.set_experiment(unique("xgb"))
    mlflow.xgboost.autolog(log_models=False, silent=True)
    try:
        with mlflow.start_run() as run:
            xgb.train({"max_depth": 2, "objective": "binary:logistic", "eval_metric": "logloss"},
                      xgb.DMatrix(X, label=y), num_boost_round=4,
                      evals=[(xgb.DMatrix(X, label=y), "train")])
    finally:
        mlflow.xgboost.autolog(disable=True)
    got = client.get_run(run.info.run_id)
    assert got.data.params["max_depth"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "train-logloss")) == 4


def test_log_input_becomes_a_dataset_and_a_lineage_edge(url: str, client: MlflowClient,
                                                        native: shipyard.Client) -> None:
    import pandas as pd

    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, name="train-frame", targets="y")
    mlflow.set_experiment(unique("inputs"))
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
    got = client.get_run(run.info.run_id)
    (given,) = got.inputs.dataset_inputs
    assert given.dataset.name == "train-frame"
    assert given.dataset.digest == dataset.digest
    assert given.tags[0].value == "training"
    versions = native.store.datasets.list_versions("train-frame")
    assert versions[-1].num_rows == 3
    edges = native.store.lineage.edges([Node(NodeKind.RUN, run.info.run_id)], upstream=True)
    assert [(e.source.id, e.context) for e in edges] == [(versions[-1].ref, "training")]


# -- bad input on the wire -----------------------------------------------------------------------


def test_bad_requests_are_4xx_in_mlflow_shape(server: ServerProcess, tmp_path: Path) -> None:
    base = f"{server.url}/api/2.0/mlflow"
    with httpx.Client(timeout=10) as http:
        _check_bad_requests(http, base, server.url)


def _check_bad_requests(http: httpx.Client, base: str, root: str) -> None:
    def check(response: httpx.Response, status: int, code: str, needle: str = "") -> None:
        assert response.status_code == status, response.text
        body = response.json()
        assert body["error_code"] == code, body
        assert needle in body["message"], body

    check(http.post(f"{base}/experiments/create", content="name=x",
                    headers={"content-type": "application/x-www-form-urlencoded"}), 400, "INVALID_PARAMETER_VALUE")
    check(http.post(f"{base}/experiments/create", content="{not json", headers={"content-type": "application/json"}),
          400, "INVALID_PARAMETER_VALUE", "Malformed JSON")
    check(http.post(f"{base}/experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE", "'name'")
    check(http.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "page_token": "garbage"}), 400,
          "INVALID_PARAMETER_VALUE", "page token")
    check(http.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "max_results": 50001}), 400,
          "INVALID_PARAMETER_VALUE", "max_results")
    check(http.post(f"{base}/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.acc > 'x'"}), 400,
          "INVALID_PARAMETER_VALUE", "column")
    check(http.get(f"{base}/experiments/search", params={"max_results": 0}), 400, "INVALID_PARAMETER_VALUE")
    run_id = http.post(f"{base}/runs/create", json={"experiment_id": "0"}).json()["run"]["info"]["run_id"]
    metrics = [{"key": "m", "value": 1.0, "timestamp": 1, "step": i} for i in range(1001)]
    check(http.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}), 400,
          "INVALID_PARAMETER_VALUE", "at most 1000 metrics")
    params = [{"key": f"p{i}", "value": "1"} for i in range(101)]
    check(http.post(f"{base}/runs/log-batch", json={"run_id": run_id, "params": params}), 400,
          "INVALID_PARAMETER_VALUE", "at most 100 params")
    check(http.post(f"{base}/runs/log-batch", json={"run_id": run_id, "metrics": metrics[:900],
                                                    "params": params[:100], "tags": params[:50]}), 400,
          "INVALID_PARAMETER_VALUE", "in total")
    history = http.get(f"{base}/metrics/get-history", params={"run_id": run_id, "metric_key": "m"})
    assert history.json() == {}, "a refused batch wrote nothing"
    check(http.get(f"{base}/runs/get", params={"run_id": "f" * 32}), 404, "RESOURCE_DOES_NOT_EXIST")
    check(http.get(f"{base}/experiments/get", params={"experiment_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    check(http.post(f"{base}/runs/create", json={"experiment_id": "424242"}), 404, "RESOURCE_DOES_NOT_EXIST")
    check(http.get(f"{base}/traces/abc"), 404, "ENDPOINT_NOT_FOUND", "tracing")
    check(http.get(f"{root}/api/2.0/mlflow/no-such-thing"), 404, "ENDPOINT_NOT_FOUND")
    info = http.get(f"{root}/api/3.0/mlflow/server-info").json()
    assert info["multipart_uploads_enabled"] is False


@pytest.mark.parametrize("path", ["0/../../escape.txt", "0/%2e%2e/%2e%2e/escape.txt", "..%2f..%2fescape.txt",
                                  "0/x/artifacts/../../../../escape.txt", "%252e%252e/escape.txt", "/etc/passwd"])
def test_artifact_proxy_refuses_traversal(server: ServerProcess, path: str) -> None:
    before = set(server.root.rglob("*"))
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
    put = httpx.put(url, content=b"evil", headers={"content-type": "text/plain"}, timeout=10)
    get = httpx.get(url, timeout=10)
    for response in (put, get):
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["error_code"] in {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST",
                                                 "ENDPOINT_NOT_FOUND"}
    new = set(server.root.rglob("*")) - before
    assert not [p for p in new if "escape" in p.name or p.suffix == ".txt"]
    assert not (server.root.parent / "escape.txt").exists()


def test_default_experiment_and_both_run_ids(server: ServerProcess) -> None:
    with httpx.Client(timeout=10) as http:
        _check_default_experiment_and_ids(http, f"{server.url}/api/2.0/mlflow")


def _check_default_experiment_and_ids(http: httpx.Client, base: str) -> None:
    exp = http.get(f"{base}/experiments/get", params={"experiment_id": "0"}).json()["experiment"]
    assert exp["name"] == "Default"
    assert exp["artifact_location"] == "mlflow-artifacts:/0"
    run = http.post(f"{base}/runs/create", json={"experiment_id": "0"}).json()["run"]
    run_id = run["info"]["run_id"]
    assert run["info"]["run_uuid"] == run_id
    assert http.post(f"{base}/runs/log-metric", json={"run_uuid": run_id, "key": "m", "value": "NaN",
                                                      "timestamp": 1, "step": 0}).json() == {}
    got = http.get(f"{base}/runs/get", params={"run_uuid": run_id}).json()["run"]
    assert got["data"]["metrics"] == [{"key": "m", "value": "NaN", "timestamp": 1, "step": 0}]
    assert "params" not in got["data"]  # proto3: empty fields are left out
    # What orjson refuses and json.loads takes (a bare NaN), and log-batch items of another shape
    # than the client's (numbers as strings), are read as they were before the fast paths.
    items = ('[{"key": "n", "value": NaN, "timestamp": 2, "step": 0},'
             ' {"key": "s", "value": "1.5", "timestamp": "3", "step": "2"}]')
    body = f'{{"run_id": "{run_id}", "metrics": {items}}}'
    assert http.post(f"{base}/runs/log-batch", content=body,
                     headers={"content-type": "application/json"}).json() == {}
    got = http.get(f"{base}/runs/get", params={"run_id": run_id}).json()["run"]
    metrics = {m["key"]: m for m in got["data"]["metrics"]}
    assert metrics["n"] == {"key": "n", "value": "NaN", "timestamp": 2, "step": 0}
    assert metrics["s"] == {"key": "s", "value": 1.5, "timestamp": 3, "step": 2}


def test_shipyard_serve_answers_for_a_model_registered_by_mlflow(server: ServerProcess, url: str,
                                                                  tmp_path: Path) -> None:
    """``shipyard serve models:/<name>@champion`` of a model the mlflow client logged and registered."""
    from sklearn.linear_model import LogisticRegression

    X, y = _data()
    name = unique("served")
    mlflow.set_experiment(unique("serve"))
    model = LogisticRegression().fit(X, y)
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name=name, pip_requirements=["scikit-learn"])
    MlflowClient().set_registered_model_alias(name, "champion", 1)
    with ServerProcess(shipyard_command("serve", f"models:/{name}@champion"), tmp_path,
                       env={"SHIPYARD_TRACKING_URI": server.url}, health="/v2/health/ready", name="serve",
                       timeout=120.0) as served:
        answer = httpx.post(f"{served.url}/invocations", json={"inputs": X[:4].tolist()}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": model.predict(X[:4]).tolist()}
