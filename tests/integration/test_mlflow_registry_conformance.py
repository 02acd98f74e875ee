"""The registry and logged-model answers an ``mlflow server`` gives its client, from a Shipyard
server (issue #21): duplicate names in MLflow's words, version search order and fields,
timestamps that move as MLflow's do, copies of versions, logged models naming a run of another
server, and logged-model searches by dataset.

The server and client fixtures are test_mlflow_client.py's (one server for the module).
"""

from __future__ import annotations

import time

import httpx
import pytest

import shipyard
from shipyard.store.rest import RestStore
from tests.ci import require
from tests.integration.test_mlflow_client import client, server, unique, url  # noqa: F401 (fixtures)
from tests.support import ServerProcess

mlflow = require("mlflow")
from mlflow import MlflowClient  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

ABSENT_RUN = "a" * 32  # a run of another server


def test_duplicate_names_answer_in_mlflows_words(client: MlflowClient) -> None:  # noqa: F811
    name = unique("dup")
    client.create_registered_model(name)
    with pytest.raises(MlflowException, match=rf"^RESOURCE_ALREADY_EXISTS: Registered Model \(name={name}\) "
                                              r"already exists\.$"):
        client.create_registered_model(name)
    experiment = unique("dup-exp")
    client.create_experiment(experiment)
    with pytest.raises(MlflowException, match=f"Experiment '{experiment}' already exists."):
        client.create_experiment(experiment)


def test_version_search_ties_and_mlflows_fields(client: MlflowClient) -> None:  # noqa: F811
    prefix = unique("ties")
    for suffix in ("b", "a"):
        client.create_registered_model(f"{prefix}-{suffix}")
        for path in ("model", "other"):
            client.create_model_version(f"{prefix}-{suffix}", f"runs:/{ABSENT_RUN}/{path}", ABSENT_RUN)
    found = client.search_model_versions(f"name LIKE '{prefix}%'", order_by=["version_number DESC"])
    assert [(v.name[-1], v.version) for v in found] == [("a", "2"), ("b", "2"), ("a", "1"), ("b", "1")]
    by_source = client.search_model_versions(f"source_path = 'runs:/{ABSENT_RUN}/other' and name = '{prefix}-a'")
    assert [v.version for v in by_source] == ["2"]
    # The run_id the client gave, though its run is not here (no lineage edge to it).
    by_run = client.search_model_versions(f"run_id = '{ABSENT_RUN}' and name = '{prefix}-a'")
    assert [(v.version, v.run_id) for v in by_run] == [("2", ABSENT_RUN), ("1", ABSENT_RUN)]
    assert client.get_model_version(f"{prefix}-a", "1").description == ""  # not None


def test_stage_moves_the_version_and_model_a_description_only_the_version(client: MlflowClient) -> None:  # noqa: F811
    name = unique("stamps")
    client.create_registered_model(name)
    client.create_model_version(name, f"runs:/{ABSENT_RUN}/model", ABSENT_RUN)
    created = client.get_model_version(name, "1").last_updated_timestamp
    time.sleep(0.01)
    client.transition_model_version_stage(name, "1", "Staging")
    staged = client.get_model_version(name, "1").last_updated_timestamp
    model_staged = client.get_registered_model(name).last_updated_timestamp
    assert staged > created
    assert model_staged >= staged
    time.sleep(0.01)
    client.update_model_version(name, "1", description="better")
    assert client.get_model_version(name, "1").last_updated_timestamp > staged
    assert client.get_registered_model(name).last_updated_timestamp == model_staged


def test_a_copied_version_downloads_and_loads_from_its_source(client: MlflowClient, url: str) -> None:  # noqa: F811
    class Double(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input):
            return model_input * 2

    name, copy = unique("orig"), unique("copy")
    mlflow.set_experiment(unique("experiment"))  # not another test's active one, of another server
    with mlflow.start_run():
        mlflow.pyfunc.log_model(name="model", python_model=Double(), registered_model_name=name,
                                pip_requirements=["mlflow"])
    client.set_registered_model_alias(name, "champion", "1")
    copied = client.copy_model_version(f"models:/{name}@champion", copy)
    assert client.get_model_version(copy, copied.version).source == f"models:/{name}/1"
    assert client.get_model_version_download_uri(copy, copied.version) == \
        client.get_model_version_download_uri(name, "1")
    native = shipyard.Client(tracking_uri=url, store=RestStore(url))
    try:  # Shipyard's loader follows the copy to the package it names
        assert native.model_source(f"models:/{copy}/1") == native.model_source(f"models:/{name}/1")
    finally:
        native.close()


def test_a_logged_model_may_name_a_run_of_another_server(client: MlflowClient) -> None:  # noqa: F811
    experiment_id = client.create_experiment(unique("lm-src"))
    model = client.create_logged_model(experiment_id, source_run_id=ABSENT_RUN)
    assert client.get_logged_model(model.model_id).source_run_id == ABSENT_RUN
    other = client.create_experiment(unique("lm-other"))
    run_id = client.create_run(other).info.run_id
    with pytest.raises(MlflowException, match="belongs to experiment"):  # a run here must be of the experiment
        client.create_logged_model(experiment_id, source_run_id=run_id)


def test_logged_models_searched_by_dataset(client: MlflowClient, server: ServerProcess) -> None:  # noqa: F811
    experiment_id = client.create_experiment(unique("lm-ds"))
    run_id = client.create_run(experiment_id).info.run_id
    evaluated, other = client.create_logged_model(experiment_id), client.create_logged_model(experiment_id)
    client.log_metric(run_id, "acc", 0.9, dataset_name="eval", dataset_digest="d1", model_id=evaluated.model_id)
    client.log_metric(run_id, "acc", 0.5, dataset_name="train", dataset_digest="d0", model_id=other.model_id)

    def ids(datasets: list[dict[str, str]]) -> list[str]:
        return [m.model_id for m in client.search_logged_models([experiment_id], datasets=datasets)]

    assert ids([{"dataset_name": "eval", "dataset_digest": "d1"}]) == [evaluated.model_id]
    assert ids([{"dataset_name": "eval"}]) == [evaluated.model_id]
    assert ids([{"dataset_name": "eval", "dataset_digest": "nope"}]) == []
    refused = httpx.post(f"{server.url}/api/2.0/mlflow/logged-models/search",
                         json={"experiment_ids": [experiment_id], "datasets": [{"dataset_digest": "d1"}]}, timeout=10)
    assert (refused.status_code, refused.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
