"""The registry through the SDK: register, alias, load by models:/ URI, history, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import InvalidInput, NotFound


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({"x": rng.normal(size=60), "z": rng.normal(size=60)})


def _fit(frame: pd.DataFrame, c: float):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(frame, (frame["x"] > 0).astype(int))


def test_register_alias_and_load_by_uri(fluent: str, frame: pd.DataFrame) -> None:
    first, second = _fit(frame, 0.01), _fit(frame, 10.0)
    with shipyard.start_run():
        shipyard.log_model(first, "model", input_example=frame.head(3), registered_model_name="churn")
    with shipyard.start_run() as run:
        shipyard.log_model(second, "model", input_example=frame.head(3))
    version = shipyard.register_model(f"runs:/{run.run_id}/model", "churn")
    assert version.version == 2
    assert version.run_id == run.run_id
    # Flavor and pickle flag are visible without reading the package (API clients, CLI).
    assert version.tags["shipyard.flavor"] == "sklearn"
    assert version.tags["shipyard.pickle_based"] in ("true", "false")

    shipyard.set_alias("churn", "staging", 1)
    np.testing.assert_allclose(shipyard.load_model("models:/churn@staging").unwrap().coef_, first.coef_)
    shipyard.set_alias("churn", "staging", 2)  # moved
    np.testing.assert_allclose(shipyard.load_model("models:/churn@staging").unwrap().coef_, second.coef_)
    np.testing.assert_allclose(shipyard.load_model("models:/churn/1").unwrap().coef_, first.coef_)
    np.testing.assert_allclose(shipyard.load_model("models:/churn/latest").unwrap().coef_, second.coef_)

    client = shipyard.Client(tracking_uri=fluent)
    try:
        assert client.get_registered_model("churn").aliases == {"staging": 2}
        moves = [(e.kind, e.alias, e.version, e.previous_version) for e in client.model_history("churn")
                 if e.kind.startswith("alias")]
        assert moves == [("alias_set", "staging", 1, None), ("alias_set", "staging", 2, 1)]
        shipyard.delete_alias("churn", "staging")
        with pytest.raises(NotFound, match="staging"):
            shipyard.load_model("models:/churn@staging")
    finally:
        client.close()


def test_registry_bad_input(fluent: str, frame: pd.DataFrame) -> None:
    with shipyard.start_run() as run:
        shipyard.log_model(_fit(frame, 1.0), "model", registered_model_name="m1")
        shipyard.log_text("not a model", "notes.txt")
    with pytest.raises(NotFound, match="9"):
        shipyard.set_alias("m1", "prod", 9)
    with pytest.raises(NotFound, match="ghost"):
        shipyard.load_model("models:/ghost/1")
    # Like MLflow, a source that is not a model package is recorded (as external); loading it says why not.
    not_a_model = shipyard.register_model(f"runs:/{run.run_id}/notes.txt", "m1")
    with pytest.raises(InvalidInput, match=r"notes\.txt"):
        shipyard.load_model(f"models:/m1/{not_a_model.version}")
    for bad_source in ("file:///etc/passwd", "/etc/passwd", f"runs:/{run.run_id}/../x"):
        with pytest.raises(InvalidInput):
            shipyard.register_model(bad_source, "m1")
    for bad_name in ("", "a/b", "a@b", " padded", ".", ".."):
        with pytest.raises(InvalidInput):
            shipyard.register_model(f"runs:/{run.run_id}/model", bad_name)
    for bad_alias in ("latest", "1st", "has space", ""):
        with pytest.raises(InvalidInput):
            shipyard.set_alias("m1", bad_alias, 1)
    for bad_uri in ("models:/m1", "models:/m1/zero", "models:/@x"):
        with pytest.raises(InvalidInput, match="models:/<name>"):
            shipyard.load_model(bad_uri)
    client = shipyard.Client(tracking_uri=fluent)
    try:
        assert client.get_registered_model("m1").latest_version == 2  # nothing half-written (2: notes.txt above)
    finally:
        client.close()


def test_client_deletes_model_and_version_tags(fluent: str, frame: pd.DataFrame) -> None:
    with shipyard.start_run():
        shipyard.log_model(_fit(frame, 1.0), "model", registered_model_name="tagged")
    client = shipyard.Client(tracking_uri=fluent)
    try:
        client.set_registered_model_tag("tagged", "team", "growth")
        client.set_model_version_tag("tagged", 1, "candidate", "yes")
        client.delete_registered_model_tag("tagged", "team")
        client.delete_model_version_tag("tagged", 1, "candidate")
        assert "team" not in client.get_registered_model("tagged").tags
        assert "candidate" not in client.get_model_version("tagged", 1).tags
        with pytest.raises(NotFound, match="registered model 'tagged' has no tag 'team'"):
            client.delete_registered_model_tag("tagged", "team")
        with pytest.raises(NotFound, match="version 1 of model 'tagged' has no tag 'candidate'"):
            client.delete_model_version_tag("tagged", 1, "candidate")
    finally:
        client.close()
