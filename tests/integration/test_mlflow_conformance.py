"""MLflow server conformance, family by family (issue #21): what an ``mlflow server`` answers
to the ``mlflow`` client and to raw HTTP, a Shipyard server answers too — statuses, error codes
and the message texts clients match — except where docs/mlflow.md names a deliberate security
difference, which is asserted here as well.

The server and client fixtures are test_mlflow_client.py's (one server for the module).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
import requests

import shipyard
from shipyard.entities import Node, NodeKind
from shipyard.errors import Conflict, InvalidInput
from shipyard.store.rest import RestStore
from tests.ci import require
from tests.integration.test_mlflow_client import client, server, url  # noqa: F401 (fixtures)
from tests.support import ServerProcess

mlflow = require("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric  # noqa: E402
from mlflow.entities.logged_model_input import LoggedModelInput  # noqa: E402
from mlflow.entities.logged_model_output import LoggedModelOutput  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def http(server: ServerProcess) -> httpx.Client:  # noqa: F811
    with httpx.Client(base_url=f"{server.url}/api/2.0/mlflow", timeout=10) as h:
        yield h


def _error(response: httpx.Response, status: int, code: str, needle: str = "") -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert needle in body["message"], body
    return body


# -- 1. model version sources ----------------------------------------------------------------


@pytest.mark.parametrize("source", [
    "s3://bucket/path/model", "gs://bucket/model", "https://models.example.com/m/1", "models:/other/3",
    "mlflow-artifacts:/models", "mlflow-artifacts:/models///", "mlflow-artifacts://host:9000/models/artifact/..../",
    f"runs:/{'e' * 32}/model", "runs:/graphql_test/model", "dbfs:/databricks/mlflow/1/model",
])
def test_remote_and_registry_sources_are_accepted_as_external(client: MlflowClient, http: httpx.Client,  # noqa: F811
                                                              source: str) -> None:
    name = unique("ext")
    client.create_registered_model(name)
    run_id = "f" * 32  # a run of another server
    got = http.post("/model-versions/create", json={"name": name, "source": source, "run_id": run_id})
    assert got.status_code == 200, got.text
    version = got.json()["model_version"]
    assert (version["source"], version["run_id"], version["version"]) == (source, run_id, "1")
    assert client.get_model_version(name, "1").source == source
    uri = http.get("/model-versions/get-download-uri", params={"name": name, "version": "1"}).json()
    assert uri["artifact_uri"] == source


@pytest.mark.parametrize(("source", "needle"), [
    ("/tmp", "To use a local path as a model version"),
    ("relative/model", "To use a local path as a model version"),
    ("file:///etc/passwd", "To use a local path as a model version"),
    ("file://123.45.67.89/path/to/source", "is not a valid remote uri"),
    ("mlflow-artifacts://host:9000/models/../../../", "If supplying a source as an http, https,"),
    ("http://host:9000/models/../../../", "If supplying a source as an http, https,"),
    ("s3a://my_bucket/api/2.0/mlflow-artifacts/artifacts/../../../", "If supplying a source as an http, https,"),
    ("mlflow-artifacts://host:9000/models/..%2f..%2fartifacts", "If supplying a source as an http, https,"),
    ("mlflow-artifacts://host:9000/models/%252e%252e/x", "If supplying a source as an http, https,"),
    ("mlflow-artifacts://host:9000/models/artifact%00", "If supplying a source as an http, https,"),
    (f"dbfs:/{'a' * 32}/artifacts/a%3f/../../../../", "Invalid model version source"),
])
def test_local_and_climbing_sources_are_refused(client: MlflowClient, http: httpx.Client,  # noqa: F811
                                                source: str, needle: str) -> None:
    name = unique("bad")
    client.create_registered_model(name)
    run_id = client.create_run(client.create_experiment(unique("src"))).info.run_id
    _error(http.post("/model-versions/create", json={"name": name, "source": source, "run_id": run_id}), 400,
           "INVALID_PARAMETER_VALUE", needle)
    assert client.search_model_versions(f"name = '{name}'") == []


def test_the_native_api_and_sdk_share_the_source_rule(server: ServerProcess, url: str) -> None:  # noqa: F811
    native = shipyard.Client(tracking_uri=url, store=RestStore(url))
    try:
        name = unique("native")
        version = native.register_model("s3://bucket/churn/model", name)
        assert version.run_id is None  # no lineage edge to a run that is not here
        assert native.store.lineage.edges([Node(NodeKind.MODEL, f"{name}/1")], upstream=True) == []
        with pytest.raises(InvalidInput, match="external source 's3://bucket/churn/model'"):
            native.load_model(f"models:/{name}/1")
        with pytest.raises(InvalidInput, match="read its own disk"):
            native.register_model("file:///etc/passwd", name)
    finally:
        native.close()
    refused = httpx.post(f"{server.url}/api/v1/registered-models/{name}/versions", json={"source": "/etc/passwd"},
                         timeout=10)
    assert refused.status_code == 400
    assert "read its own disk" in refused.json()["message"]  # Shipyard's wording on the native API


def test_a_version_of_a_logged_model_is_listed_on_it(client: MlflowClient) -> None:  # noqa: F811
    name = unique("lm")
    client.create_registered_model(name)
    model = client.create_logged_model(client.create_experiment(unique("lm")))
    client.create_model_version(name, source=model.artifact_location, model_id=model.model_id)
    client.create_model_version(name, source=model.model_uri, model_id=model.model_id)
    tag = client.get_logged_model(model.model_id).tags["mlflow.modelVersions"]
    assert json.loads(tag) == [{"name": name, "version": 1}, {"name": name, "version": 2}]


# -- 2. parents and logged models naming an absent run --------------------------------------


@pytest.mark.parametrize("parent", ["7", "my-parent-id", "f" * 32])
def test_a_parent_run_that_is_not_here_is_kept_as_given(client: MlflowClient, parent: str) -> None:  # noqa: F811
    exp = client.create_experiment(unique("parent"))
    run = client.create_run(exp, tags={"mlflow.parentRunId": parent}, run_name="child")
    for got in (run, client.get_run(run.info.run_id)):
        assert got.data.tags["mlflow.parentRunId"] == parent
        assert got.info.run_name == "child"


# -- 3. experiment artifact_location ---------------------------------------------------------


def test_artifact_location_is_stored_and_returned(client: MlflowClient, server: ServerProcess) -> None:  # noqa: F811
    remote = client.create_experiment(unique("loc"), artifact_location="s3://bucket/team")
    assert client.get_experiment(remote).artifact_location == "s3://bucket/team"
    assert "shipyard.mlflow.artifact_location" not in client.get_experiment(remote).tags
    relative = client.create_experiment(unique("loc"), artifact_location="my_location")
    location = client.get_experiment(relative).artifact_location
    assert Path(location).is_absolute()
    assert location.endswith("/my_location")
    # The proxy still writes only to the server's own store: logging works and nothing lands there.
    run = client.create_run(remote)
    client.log_text(run.info.run_id, "hi", "notes.txt")
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
    assert not Path(location).exists()


# -- 6. validation and messages --------------------------------------------------------------


def test_invalid_experiment_creations_are_400(http: httpx.Client) -> None:
    _error(http.post("/experiments/create", json={"name": 123}), 400, "INVALID_PARAMETER_VALUE",
           "Invalid value 123 for parameter 'name'")
    _error(http.post("/experiments/create", json={}), 400, "INVALID_PARAMETER_VALUE",
           "Missing value for required parameter 'name'.")
    _error(http.post("/experiments/create", json={"name": unique("v"), "artifact_location": 9.0}), 400,
           "INVALID_PARAMETER_VALUE", "Invalid value 9.0 for parameter 'artifact_location'")
    _error(http.post("/experiments/create", json={"name": unique("v"), "tags": "5"}), 400,
           "INVALID_PARAMETER_VALUE", "Invalid value \"5\" for parameter 'tags'")


def test_messages_clients_match(client: MlflowClient, http: httpx.Client) -> None:  # noqa: F811
    run_id = client.create_run(client.create_experiment(unique("msg"))).info.run_id
    for field in ("metrics", "params", "tags"):
        _error(http.post("/runs/log-batch", json={"run_id": run_id, field: "foo"}), 400,
               "INVALID_PARAMETER_VALUE", f"Invalid value \"foo\" for parameter '{field}' supplied")
    _error(http.post("/runs/log-batch", json={"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]}), 400,
           "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'metrics[0].timestamp'")
    assert http.post("/runs/log-batch", json={"run_id": run_id, "metrics": [
        {"key": "mae", "value": 2.5, "timestamp": 123456789}]}).status_code == 200
    listed = http.get("/artifacts/list", params={"run_id": run_id, "path": "../path"})
    assert (listed.status_code, listed.json()) == (400, {"error_code": "INVALID_PARAMETER_VALUE",
                                                         "message": "Invalid path"})
    with pytest.raises(MlflowException, match=r"Run .+ not found"):
        client.delete_tag("f" * 32, "taggity")
    with pytest.raises(MlflowException, match="No tag with name: fakeTag"):
        client.delete_tag(run_id, "fakeTag")
    client.delete_run(run_id)
    with pytest.raises(MlflowException, match=f"The run {run_id} must be in"):
        client.delete_tag(run_id, "taggity")
    with pytest.raises(MlflowException, match=r"Registered Model with name=\S+ not found"):
        client.get_registered_model(unique("ghost"))


# -- 4. logged models ------------------------------------------------------------------------


def test_logged_model_lifecycle_and_inputs(client: MlflowClient) -> None:  # noqa: F811
    exp = client.create_experiment(unique("lm"))
    model = client.create_logged_model(exp)
    run = client.create_run(exp)
    dataset = DatasetInput(Dataset(name="train", digest="d1", source_type="local", source="s"),
                           tags=[InputTag(key="mlflow.data.context", value="training")])
    client.log_inputs(run.info.run_id, datasets=[dataset], models=[LoggedModelInput(model_id=model.model_id)])
    inputs = client.get_run(run.info.run_id).inputs
    assert [m.model_id for m in inputs.model_inputs] == [model.model_id]
    assert [d.dataset.name for d in inputs.dataset_inputs] == ["train"]
    client.delete_logged_model(model.model_id)
    with pytest.raises(MlflowException, match="not found") as exc:
        client.get_logged_model(model.model_id)
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_metrics_logged_with_a_model_id_are_returned_with_the_model(client: MlflowClient,  # noqa: F811
                                                                    http: httpx.Client) -> None:
    exp = client.create_experiment(unique("lmm"))
    run_id = client.create_run(exp).info.run_id
    model = client.create_logged_model(exp, source_run_id=run_id)
    client.log_metric(run_id, "auc", 0.91, step=2, timestamp=1000, model_id=model.model_id,
                      dataset_name="holdout", dataset_digest="d1")
    client.log_batch(run_id, metrics=[Metric("loss", 0.3, 1001, 0, model_id=model.model_id),
                                      Metric("lr", 0.01, 1002, 0)])
    got = {m.key: m for m in client.get_logged_model(model.model_id).metrics}
    assert set(got) == {"auc", "loss"}  # lr was logged without the model
    auc = got["auc"]
    assert (auc.value, auc.step, auc.timestamp, auc.run_id) == (0.91, 2, 1000, run_id)
    assert (auc.dataset_name, auc.dataset_digest, auc.model_id) == ("holdout", "d1", model.model_id)
    assert client.get_run(run_id).data.metrics == {"auc": 0.91, "loss": 0.3, "lr": 0.01}  # the run's too
    found = client.search_logged_models([exp])
    assert {m.key for m in found[0].metrics} == {"auc", "loss"}
    # A model that is not there: a 404 and nothing logged, not even to the run.
    _error(http.post("/runs/log-metric", json={"run_id": run_id, "key": "ghost", "value": 1, "timestamp": 1,
                                               "model_id": f"m-{'0' * 32}"}), 404, "RESOURCE_DOES_NOT_EXIST",
           "not found")
    assert "ghost" not in client.get_run(run_id).data.metrics


def test_logged_model_artifact_file_download(client: MlflowClient, server: ServerProcess) -> None:  # noqa: F811
    exp = client.create_experiment(unique("lmf"))
    model = client.create_logged_model(exp)
    put = httpx.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{model.model_id}/artifacts/"
                    "sub/MLmodel", content=b"flavors: {}\n", timeout=10)
    assert put.status_code == 200, put.text
    files = f"{server.url}/ajax-api/2.0/mlflow/logged-models/{model.model_id}/artifacts/files"
    got = httpx.get(files, params={"artifact_file_path": "sub/MLmodel"}, timeout=10)
    assert (got.status_code, got.content) == (200, b"flavors: {}\n")
    _error(httpx.get(files, timeout=10), 400, "BAD_REQUEST", '"artifact_file_path" query parameter')
    _error(httpx.get(files, params={"artifact_file_path": "../../etc/passwd"}, timeout=10), 400,
           "INVALID_PARAMETER_VALUE", "Invalid path")
    client.delete_logged_model(model.model_id)
    _error(httpx.get(files, params={"artifact_file_path": "sub/MLmodel"}, timeout=10), 404,
           "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model.model_id}' not found.")
    kept = httpx.get(f"{server.url}/api/2.0/mlflow/logged-models/{model.model_id}", params={"allow_deleted": "true"},
                     timeout=10)
    assert kept.json()["model"]["info"]["model_id"] == model.model_id  # MLflow's allow_deleted flag


def test_run_outputs_are_the_models_logged_as_outputs(client: MlflowClient, http: httpx.Client) -> None:  # noqa: F811
    exp = client.create_experiment(unique("out"))
    run_id = client.create_run(exp).info.run_id
    made_here = client.create_logged_model(exp, source_run_id=run_id)
    elsewhere = client.create_logged_model(exp)
    assert client.get_run(run_id).outputs.model_outputs == []  # as MLflow: only log_outputs records one
    client.log_outputs(run_id, [LoggedModelOutput(made_here.model_id, step=3),
                                LoggedModelOutput(elsewhere.model_id, step=0)])
    outputs = client.get_run(run_id).outputs.model_outputs
    assert [(o.model_id, o.step) for o in outputs] == [(made_here.model_id, 3), (elsewhere.model_id, 0)]
    searched = next(r for r in client.search_runs([exp]) if r.info.run_id == run_id)
    assert [o.model_id for o in searched.outputs.model_outputs] == [made_here.model_id, elsewhere.model_id]
    _error(http.post("/runs/outputs", json={"run_id": run_id}), 400, "INVALID_PARAMETER_VALUE",
           "Missing value for required parameter 'models'")
    client.delete_run(run_id)
    _error(http.post("/runs/outputs", json={"run_id": run_id, "models": [{"model_id": elsewhere.model_id}]}), 400,
           "INVALID_PARAMETER_VALUE", f"The run {run_id} must be in the 'active' state")


def test_logged_model_search_default_order(client: MlflowClient) -> None:  # noqa: F811
    exp = client.create_experiment(unique("order"))
    made = [client.create_logged_model(exp, name=f"m{i}") for i in range(4)]
    expected = sorted(made, key=lambda m: (-m.creation_timestamp, m.model_id))  # newest first, ties by id
    assert [m.model_id for m in client.search_logged_models([exp])] == [m.model_id for m in expected]
    oldest = client.search_logged_models([exp], order_by=[{"field_name": "creation_timestamp", "ascending": True}])
    assert [m.creation_timestamp for m in oldest] == sorted(m.creation_timestamp for m in made)


def test_tag_deletion_statuses(client: MlflowClient, http: httpx.Client) -> None:  # noqa: F811
    exp = client.create_experiment(unique("tags"))
    _error(http.post("/experiments/delete-experiment-tag", json={"experiment_id": exp, "key": "nope"}), 404,
           "RESOURCE_DOES_NOT_EXIST", f"No tag with name: nope in experiment with id {exp}")
    client.set_experiment_tag(exp, "team", "ml")
    client.delete_experiment(exp)
    for call, body in (("delete-experiment-tag", {"key": "team"}), ("set-experiment-tag", {"key": "a", "value": "b"})):
        _error(http.post(f"/experiments/{call}", json={"experiment_id": exp, **body}), 400,
               "INVALID_PARAMETER_VALUE", f"The experiment {exp} must be in the 'active' state.")
    model = client.create_logged_model(client.create_experiment(unique("tags")))
    with pytest.raises(MlflowException, match=f"No tag with key 'nope' found for model with ID '{model.model_id}'"):
        client.delete_logged_model_tag(model.model_id, "nope")
    name = unique("reg")
    client.create_registered_model(name, tags={"t": "1"})
    client.create_model_version(name, "s3://bucket/model")
    client.delete_registered_model_tag(name, "absent")  # an absent tag is a no-op, as in MLflow
    client.delete_model_version_tag(name, "1", "absent")
    client.delete_registered_model_tag(name, "t")
    assert client.get_registered_model(name).tags == {}
    with pytest.raises(MlflowException, match=r"Registered Model with name=\S+ not found") as missing:
        client.delete_registered_model_tag(unique("ghost"), "t")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    _error(http.request("DELETE", "/model-versions/delete-tag", params={"name": name, "version": "x", "key": "t"}),
           400, "INVALID_PARAMETER_VALUE", "Parameter 'version' must be an integer, got 'x'.")
    _error(http.request("DELETE", "/registered-models/delete-tag", params={"name": name, "key": "../t"}), 400,
           "INVALID_PARAMETER_VALUE", "../t")


# -- 5. dataset inputs -----------------------------------------------------------------------


def test_dataset_inputs_logged_twice_keep_the_first_record(client: MlflowClient) -> None:  # noqa: F811
    exp = client.create_experiment(unique("ds"))
    run_id = client.create_run(exp).info.run_id
    dataset = Dataset(name="iris", digest="abc", source_type="local", source="s3://b/iris.csv")
    first = DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training"), InputTag("owner", "ana")])
    client.log_inputs(run_id, [first, first])
    client.log_inputs(run_id, [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "eval")])])
    other = Dataset(name="iris", digest="def", source_type="local", source="s3://b/iris2.csv")
    client.log_inputs(run_id, [DatasetInput(other, tags=[InputTag("k", "v")])])
    inputs = client.get_run(run_id).inputs.dataset_inputs
    assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [("iris", "abc"), ("iris", "def")]
    assert {t.key: t.value for t in inputs[0].tags} == {"mlflow.data.context": "training", "owner": "ana"}
    assert {t.key: t.value for t in inputs[1].tags} == {"k": "v"}
    second_run = client.create_run(exp).info.run_id  # the same dataset, other tags, in another run
    client.log_inputs(second_run, [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "eval")])])
    again = client.get_run(second_run).inputs.dataset_inputs
    assert [(i.dataset.source, {t.key: t.value for t in i.tags}) for i in again] == [
        ("s3://b/iris.csv", {"mlflow.data.context": "eval"})]


def test_inputs_with_model_links(client: MlflowClient, server: ServerProcess) -> None:  # noqa: F811
    exp = client.create_experiment(unique("mi"))
    run_id = client.create_run(exp).info.run_id
    own = client.create_logged_model(exp, source_run_id=run_id)
    other = client.create_logged_model(exp)
    absent = f"m-{'a' * 32}"  # MLflow records a model input without looking it up
    dataset = DatasetInput(Dataset(name="eval", digest="e1", source_type="local", source="x"))
    client.log_inputs(run_id, datasets=[dataset], models=[LoggedModelInput(own.model_id),
                                                          LoggedModelInput(other.model_id), LoggedModelInput(absent)])
    client.log_inputs(run_id, models=[LoggedModelInput(other.model_id)])  # logged twice: reported once
    inputs = client.get_run(run_id).inputs
    assert [m.model_id for m in inputs.model_inputs] == [own.model_id, other.model_id, absent]
    assert [d.dataset.name for d in inputs.dataset_inputs] == ["eval"]
    # Lineage: an edge only from the run that holds another model of this server (no self-loop, none to nowhere).
    native = shipyard.Client(tracking_uri=server.url, store=RestStore(server.url))
    try:
        held_by = native.store.logged_models.get(other.model_id).run_id
        edges = native.store.lineage.edges([Node(NodeKind.RUN, run_id)], upstream=True)
        assert [e.source.id for e in edges if e.source.kind is NodeKind.RUN] == [held_by]
    finally:
        native.close()


# -- 7. logging to finished runs -------------------------------------------------------------


def test_a_finished_run_takes_additions_but_keeps_its_record(client: MlflowClient, server: ServerProcess,  # noqa: F811
                                                             tmp_path: Path) -> None:
    run_id = client.create_run(client.create_experiment(unique("done"))).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_text(run_id, "v1", "report.txt")
    client.set_terminated(run_id)
    client.log_metric(run_id, "eval_auc", 0.91)  # an evaluation after end_run
    client.log_param(run_id, "eval_set", "holdout")
    client.set_tag(run_id, "evaluated", "yes")
    client.log_text(run_id, "new", "eval/summary.txt")  # new files stay allowed
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.data.metrics["eval_auc"] == 0.91
    assert got.data.params == {"lr": "0.1", "eval_set": "holdout"}
    with pytest.raises(MlflowException, match="lr") as changed:
        client.log_param(run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE"
    # Overwriting a file the finished run holds: 409 on the MLflow proxy and the native API alike.
    exp = got.info.experiment_id
    proxy = httpx.put(f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{exp}/{run_id}/artifacts/report.txt",
                      content=b"v2", timeout=10)
    _error(proxy, 409, "RESOURCE_CONFLICT", "immutable")
    native = httpx.put(f"{server.url}/api/v1/runs/{run_id}/artifacts/report.txt", content=b"v2",
                       headers={"content-type": "application/octet-stream"}, timeout=10)
    assert native.status_code == 409, native.text
    assert native.json()["error_code"] == "CONFLICT"
    (tmp_path / "report.txt").write_text("v2")
    with pytest.raises(requests.HTTPError, match="immutable"):  # the client's proxy upload raises this
        client.log_artifact(run_id, str(tmp_path / "report.txt"))
    (tmp_path / "dl").mkdir()
    client.download_artifacts(run_id, "report.txt", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "report.txt").read_text() == "v1"  # the recorded file is unchanged


def test_the_sdk_refuses_overwriting_a_finished_runs_artifact(url: str) -> None:  # noqa: F811
    native = shipyard.Client(tracking_uri=url, store=RestStore(url))
    try:
        run = native.create_run(native.create_experiment(unique("sdk")))
        native.log_text(run.info.run_id, "v1", "a.txt")
        native.set_terminated(run.info.run_id)
        native.log_text(run.info.run_id, "new", "b.txt")
        with pytest.raises(Conflict, match="immutable"):
            native.log_text(run.info.run_id, "v2", "a.txt")
    finally:
        native.close()
