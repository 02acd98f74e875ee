"""Evaluation: metrics against scikit-learn's own, the evaluation run, file input, bad input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as m
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier

import shipyard
from shipyard.data import digest_table
from shipyard.entities import Node, NodeKind, Relation
from shipyard.errors import InvalidInput
from shipyard.models.evaluate import (
    CONFUSION_MATRIX_ARTIFACT,
    EVALUATION_RUN_TAG,
    MODEL_URI_TAG,
    MODEL_VERSION_TAG,
    RESIDUALS_ARTIFACT,
    SOURCE_RUN_TAG,
    dataset_digest,
    evaluate,
)


def _noisy(frame: pd.DataFrame, seed: int = 3) -> np.ndarray:
    return frame["x"].to_numpy() + 0.8 * np.random.default_rng(seed).normal(size=len(frame))


# Logging a model is the slow part (requirements are looked up in the installed distributions),
# so the store and the four models below are made once for the module; each test registers,
# evaluates and counts only what it made itself.
@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"x": rng.normal(size=240), "z": rng.normal(size=240)})


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[shipyard.Client]:
    c = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path_factory.mktemp('store') / 'shipyard.db'}")
    yield c
    c.close()


@dataclass(frozen=True)
class Logged:
    model: Any
    labels: np.ndarray
    uri: str

    @property
    def run_id(self) -> str:
        return self.uri.split("/")[1]


def _log(client: shipyard.Client, model: Any, features: pd.DataFrame, labels: Any) -> Logged:
    """Fit ``model`` and log it to a finished run of the "training" experiment."""
    model.fit(features, labels)
    experiment_id = client.get_or_create_experiment("training").experiment_id
    run_id = client.create_run(experiment_id, "train").info.run_id
    client.log_model(run_id, model, "model", flavor="sklearn", input_example=features.head(3))
    client.set_terminated(run_id)
    return Logged(model, np.asarray(labels), f"runs:/{run_id}/model")


@pytest.fixture(scope="module")
def binary(client: shipyard.Client, features: pd.DataFrame) -> Logged:
    return _log(client, LogisticRegression(), features, (_noisy(features) > 0).astype(int))


@pytest.fixture(scope="module")
def multiclass(client: shipyard.Client, features: pd.DataFrame) -> Logged:
    noisy = _noisy(features)
    return _log(client, LogisticRegression(), features,
                np.where(noisy > 0.5, "high", np.where(noisy < -0.5, "low", "mid")))


@pytest.fixture(scope="module")
def labels_only(client: shipyard.Client, features: pd.DataFrame) -> Logged:
    return _log(client, RidgeClassifier(), features, np.where(_noisy(features) > 0.3, "yes", "no"))  # no predict_proba


@pytest.fixture(scope="module")
def regressor(client: shipyard.Client, features: pd.DataFrame) -> Logged:
    noise = np.random.default_rng(5).normal(scale=0.5, size=len(features))
    return _log(client, Ridge(), features, (2 * features["x"] - features["z"] + noise).to_numpy())


def _inputs(client: shipyard.Client, run_id: str) -> list[tuple[str, str, str]]:
    """(dataset version, its digest, context) of each dataset the run read, from the lineage graph."""
    edges = client.store.lineage.edges([Node(NodeKind.RUN, run_id)], upstream=True)
    found = []
    for edge in edges:
        if edge.relation is Relation.INPUT and edge.source.kind is NodeKind.DATASET:
            name, _, version = edge.source.id.rpartition("@")
            found.append((edge.source.id, client.store.datasets.get_version(name, int(version)).digest, edge.context))
    return found


def _png(client: shipyard.Client, run_id: str, path: str, tmp_path: Path) -> bytes:
    return client.download_artifacts(run_id, path, tmp_path / "download").read_bytes()


def test_binary_classifier_by_alias(client: shipyard.Client, features: pd.DataFrame, binary: Logged,
                                    tmp_path: Path) -> None:
    client.register_model(binary.uri, "churn")
    client.set_alias("churn", "champion", 1)
    data = features.assign(label=binary.labels)

    result = evaluate(client, "models:/churn@champion", data, target="label", dataset_name="holdout")

    labels, predicted = binary.labels, binary.model.predict(features)
    proba = binary.model.predict_proba(features)[:, 1]
    expected = {"accuracy": m.accuracy_score(labels, predicted), "precision": m.precision_score(labels, predicted),
                "recall": m.recall_score(labels, predicted), "f1": m.f1_score(labels, predicted),
                "roc_auc": m.roc_auc_score(labels, proba), "log_loss": m.log_loss(labels, proba)}
    assert result.model_type == "classifier"  # inferred: the model has predict_proba
    assert result.metrics == pytest.approx(expected)
    assert 0.6 < result.metrics["accuracy"] < 1.0  # a real, imperfect model
    assert result.artifacts == [CONFUSION_MATRIX_ARTIFACT]

    run = client.get_run(result.run_id)
    assert run.info.run_name == "evaluate models:/churn@champion"
    assert run.info.status.value == "FINISHED"
    assert run.info.experiment_id == client.get_run(binary.run_id).info.experiment_id
    assert {k: run.data.tags[k] for k in (MODEL_URI_TAG, MODEL_VERSION_TAG, SOURCE_RUN_TAG)} == {
        MODEL_URI_TAG: "models:/churn@champion", MODEL_VERSION_TAG: "churn/1", SOURCE_RUN_TAG: binary.run_id}
    assert dict(run.data.params) == {"dataset": "holdout", "dataset_digest": digest_table(data), "rows": "240",
                                     "target": "label", "model_type": "classifier"}
    assert run.data.metrics == pytest.approx(expected)
    assert _png(client, result.run_id, CONFUSION_MATRIX_ARTIFACT, tmp_path).startswith(b"\x89PNG")
    assert client.get_model_version("churn", 1).tags[EVALUATION_RUN_TAG] == result.run_id

    # The named data is a dataset version the evaluation read: the lineage graph links them.
    [(version, digest, context)] = _inputs(client, result.run_id)
    assert (version.rpartition("@")[0], digest, context) == ("holdout", digest_table(data), "evaluation")

    again = evaluate(client, "models:/churn/1", data, target="label")  # the tag follows the latest evaluation
    assert client.get_model_version("churn", 1).tags[EVALUATION_RUN_TAG] == again.run_id
    assert _inputs(client, again.run_id) == []  # an unnamed DataFrame is recorded by digest only


def test_multiclass_classifier_into_chosen_experiment(client: shipyard.Client, features: pd.DataFrame,
                                                      multiclass: Logged) -> None:
    other = client.create_experiment("evaluations")

    result = evaluate(client, multiclass.uri, features.assign(tier=multiclass.labels), target="tier",
                      experiment_id=other)

    labels, predicted = multiclass.labels, multiclass.model.predict(features)
    proba = multiclass.model.predict_proba(features)
    expected = {"accuracy": m.accuracy_score(labels, predicted),
                "precision_macro": m.precision_score(labels, predicted, average="macro"),
                "recall_macro": m.recall_score(labels, predicted, average="macro"),
                "f1_macro": m.f1_score(labels, predicted, average="macro"),
                "roc_auc_ovr": m.roc_auc_score(labels, proba, multi_class="ovr"),
                "log_loss": m.log_loss(labels, proba)}
    assert result.metrics == pytest.approx(expected)
    assert 0.5 < result.metrics["accuracy"] < 1.0
    run = client.get_run(result.run_id)
    assert run.info.experiment_id == other
    assert MODEL_VERSION_TAG not in run.data.tags  # not a registered version
    assert run.data.tags[SOURCE_RUN_TAG] == multiclass.run_id
    assert run.data.params["dataset"] == "dataframe"
    assert [a.path for a in client.list_artifacts(result.run_id, "evaluation")] == [CONFUSION_MATRIX_ARTIFACT]


def test_classifier_without_probabilities_string_labels(client: shipyard.Client, features: pd.DataFrame,
                                                          labels_only: Logged) -> None:
    result = evaluate(client, labels_only.uri, features.assign(y=labels_only.labels), target="y")

    labels, predicted = labels_only.labels, labels_only.model.predict(features)
    assert result.model_type == "classifier"  # inferred from the string target (no predict_proba to go by)
    assert result.metrics == pytest.approx({  # label metrics only; the positive class is the greater label
        "accuracy": m.accuracy_score(labels, predicted),
        "precision": m.precision_score(labels, predicted, pos_label="yes"),
        "recall": m.recall_score(labels, predicted, pos_label="yes"),
        "f1": m.f1_score(labels, predicted, pos_label="yes")})
    assert result.metrics["precision"] != pytest.approx(m.precision_score(labels, predicted, pos_label="no"))


def test_regressor(client: shipyard.Client, features: pd.DataFrame, regressor: Logged, tmp_path: Path) -> None:
    client.register_model(regressor.uri, "price")

    result = evaluate(client, "models:/price/latest", features.assign(price=regressor.labels), target="price")

    target, predicted = regressor.labels, regressor.model.predict(features)
    assert result.model_type == "regressor"  # inferred from the float target
    assert result.metrics == pytest.approx({"mae": m.mean_absolute_error(target, predicted),
                                            "rmse": m.root_mean_squared_error(target, predicted),
                                            "r2": m.r2_score(target, predicted)})
    assert 0.5 < result.metrics["r2"] < 1.0
    assert result.artifacts == [RESIDUALS_ARTIFACT]
    assert _png(client, result.run_id, RESIDUALS_ARTIFACT, tmp_path).startswith(b"\x89PNG")
    run = client.get_run(result.run_id)
    assert run.data.tags[MODEL_VERSION_TAG] == "price/1"  # latest resolved to the number
    assert client.get_model_version("price", 1).tags[EVALUATION_RUN_TAG] == result.run_id


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_file_input(client: shipyard.Client, features: pd.DataFrame, binary: Logged, tmp_path: Path,
                    suffix: str) -> None:
    path = tmp_path / f"holdout{suffix}"
    data = features.assign(label=binary.labels)
    if suffix == ".csv":
        data.to_csv(path, index=False)
    else:
        data.to_parquet(path, index=False)

    result = evaluate(client, binary.uri, path, target="label")

    from_frame = evaluate(client, binary.uri, data, target="label")
    assert result.metrics == pytest.approx(from_frame.metrics)
    params = client.get_run(result.run_id).data.params
    assert params["dataset"] == f"holdout{suffix}"
    assert params["dataset_digest"] == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"  # the file's bytes
    assert params["rows"] == "240"
    [(version, digest, context)] = _inputs(client, result.run_id)
    assert (version.rpartition("@")[0], digest, context) == ("holdout", params["dataset_digest"], "evaluation")


def test_package_from_elsewhere_goes_to_default_experiment(features: pd.DataFrame, regressor: Logged,
                                                          client: shipyard.Client, tmp_path: Path) -> None:
    folder = client.download_artifacts(regressor.run_id, "model", tmp_path)
    other = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'other.db'}")  # the source run is not in it
    try:
        result = evaluate(other, str(folder), features.assign(t=regressor.labels), target="t")
        run = other.get_run(result.run_id)
    finally:
        other.close()
    assert run.info.experiment_id == "0"
    assert SOURCE_RUN_TAG not in run.data.tags
    assert run.data.tags[MODEL_URI_TAG] == str(folder)


def test_bad_input(client: shipyard.Client, features: pd.DataFrame, binary: Logged, regressor: Logged,
                   tmp_path: Path) -> None:
    good = features.assign(label=binary.labels)
    training = client.get_experiment_by_name("training").experiment_id
    runs_before = len(client.search_runs([training]))
    (tmp_path / "data.json").write_text("{}")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    cases = [
        (good, {"target": "churned"}, "target column 'churned' is not in the data; its columns are: 'x', 'z', "
                                      "'label'"),
        (good.iloc[:0], {"target": "label"}, "no rows"),
        (good.assign(label=good["label"].where(good.index > 2)), {"target": "label"}, "3 missing label"),
        (tmp_path / "data.json", {"target": "label"}, "unsupported file type '.json'"),
        (tmp_path / "absent.csv", {"target": "label"}, "no such file"),
        (tmp_path / "empty.csv", {"target": "label"}, "is empty"),
        (tmp_path / "broken.parquet", {"target": "label"}, "cannot read data file"),
        (good.to_numpy(), {"target": "label"}, "pandas DataFrame or the path"),
        (good, {"target": "label", "model_type": "ranker"}, "model_type 'ranker'"),
        (good[["label"]], {"target": "label"}, "no feature columns"),
        (good, {"target": "label", "dataset_name": "hold/out"}, "dataset name 'hold/out' is not valid"),
    ]
    for data, options, message in cases:
        with pytest.raises(InvalidInput, match=message):
            evaluate(client, binary.uri, data, **options)
    with pytest.raises(InvalidInput, match="fractional scores"):  # an integer target with 2 values: a classifier
        evaluate(client, regressor.uri, good, target="label")
    with pytest.raises(InvalidInput, match="cannot compare the labels"):
        evaluate(client, binary.uri, good.assign(label=np.where(binary.labels, "yes", "no")), target="label")
    with pytest.raises(InvalidInput, match="not numbers"):
        evaluate(client, binary.uri, good.assign(label=np.where(binary.labels, "a", "b")), target="label",
                 model_type="regressor")
    assert len(client.search_runs([training])) == runs_before  # refused before any run was created


def test_dataset_digest_is_the_table_digest(features: pd.DataFrame) -> None:
    base = dataset_digest(features)
    assert base == digest_table(features) == digest_table(features.copy())
    assert base != dataset_digest(features.assign(x=features["x"] + 1e-9))
    assert base != dataset_digest(features.rename(columns={"z": "w"}))
    assert base == dataset_digest(features.set_axis(features.index + 1))  # an unnamed index is not data
    assert base != dataset_digest(features.rename_axis("row"))  # a named one is
