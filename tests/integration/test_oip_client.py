"""The Open Inference Protocol v2 as a third-party client speaks it: NVIDIA's ``tritonclient[http]``
driving ``shipyard serve`` and ``shipyard deploy run`` as real processes.

The model takes the four datatypes clients send most (FP32, INT64, BOOL and BYTES columns): a
scikit-learn pipeline one-hot encoding a string column, fitted on a DataFrame.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard import deploy
from tests.ci import require
from tests.support import ServerProcess, shipyard_command

httpclient = require("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402 - after the skip above

pytestmark = pytest.mark.slow
RNG = np.random.default_rng(20)
FRAME = pd.DataFrame({
    "x": RNG.normal(size=80).astype(np.float32),
    "n": RNG.integers(0, 5, size=80).astype(np.int64),
    "flag": RNG.random(80) > 0.5,
    "tag": RNG.choice(["red", "green", "blue"], size=80).astype(object),
})
LABELS = ((FRAME["x"] + FRAME["n"] * 0.3 - FRAME["flag"] + (FRAME["tag"] == "red")) > 0.5).astype(np.int64)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A store with model ``mixed`` version 1 at @production and the deployment ``mixed-api`` of it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    root = tmp_path_factory.mktemp("oip")
    uris = {"SHIPYARD_TRACKING_URI": f"sqlite:///{root / 'store.db'}", "SHIPYARD_ARTIFACT_URI": str(root / "art")}
    encode = ColumnTransformer([("tag", OneHotEncoder(handle_unknown="ignore"), ["tag"])], remainder="passthrough")
    estimator = make_pipeline(encode, LogisticRegression()).fit(FRAME, LABELS)
    client = shipyard.Client(uris["SHIPYARD_TRACKING_URI"], uris["SHIPYARD_ARTIFACT_URI"])
    try:
        run_id = client.create_run(client.create_experiment("oip")).info.run_id
        client.log_model(run_id, estimator, "model", input_example=FRAME.head(5))
        client.set_terminated(run_id)
        client.register_model(f"runs:/{run_id}/model", "mixed")
        client.approve_model_version("mixed", 1)
        client.set_alias("mixed", "production", 1)
        deploy.create_deployment(client, "mixed-api", "models:/mixed@production")
    finally:
        client.close()
    return {**uris, "root": str(root)}


@contextlib.contextmanager
def running(store: dict[str, str], *args: str) -> Iterator[str]:
    """``shipyard <args>`` on a free port until the block ends; yields ``host:port``."""
    env = {k: v for k, v in store.items() if k.startswith("SHIPYARD_")}
    # Ready means the model is loaded: slow on a busy machine, hence the long wait.
    with ServerProcess(shipyard_command(*args), Path(store["root"]), env=env, health="/v2/health/ready",
                       name=args[0], timeout=120.0) as server:
        yield f"127.0.0.1:{server.port}"


def _inputs(rows: pd.DataFrame, *, binary: bool = False) -> list[object]:
    """One tensor per column, of the datatype a client picks for it."""
    tensors = []
    for name, datatype, values in (("x", "FP32", rows["x"].to_numpy(np.float32)),
                                   ("n", "INT64", rows["n"].to_numpy(np.int64)),
                                   ("flag", "BOOL", rows["flag"].to_numpy(bool)),
                                   ("tag", "BYTES", rows["tag"].to_numpy(object))):
        tensor = httpclient.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        tensors.append(tensor)
    return tensors


def _check_protocol(url: str, model: str) -> None:
    client = httpclient.InferenceServerClient(url=url)
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready(model)

        metadata = client.get_model_metadata(model)
        assert metadata["name"] == model
        assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [
            ("x", "FP32"), ("n", "INT64"), ("flag", "BOOL"), ("tag", "BYTES")]
        assert [t["name"] for t in metadata["outputs"]] == ["predict"]

        rows = FRAME.tail(12)
        expected = LABELS.tail(12).to_numpy()
        named = client.infer(model, _inputs(rows), request_id="req-7",
                             outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)])
        assert named.get_response()["id"] == "req-7"
        assert named.get_output("predict")["datatype"] == "INT64"
        predicted = named.as_numpy("predict")
        assert predicted.shape == (12,)
        # The same answers the estimator gives (it learnt the rule, so they match the labels too).
        assert (predicted == expected).mean() >= 0.75
        # No outputs named: tritonclient asks for binary output data; the answer is JSON, which it reads.
        unnamed = client.infer(model, _inputs(rows))
        np.testing.assert_array_equal(unnamed.as_numpy("predict"), predicted)

        def refused(call: object, fragment: str) -> None:
            with pytest.raises(InferenceServerException) as info:
                call()  # type: ignore[operator]
            assert fragment in info.value.message(), info.value.message()

        refused(lambda: client.infer(model, _inputs(rows), outputs=[httpclient.InferRequestedOutput("proba")]),
                "unknown output 'proba'")
        refused(lambda: client.infer(model, _inputs(rows, binary=True)), "binary tensor data extension")
        wrong = _inputs(rows)
        wrong[0] = httpclient.InferInput("x", [12], "FP64")  # float64 does not fit a float32 column safely
        wrong[0].set_data_from_numpy(rows["x"].to_numpy(np.float64), binary_data=False)
        refused(lambda: client.infer(model, wrong), "column 'x': expected float32, got float64")
        refused(lambda: client.infer(model, _inputs(rows)[:3]), "missing column 'tag'")
        refused(lambda: client.infer("nope", _inputs(rows)), "no model named 'nope'")
    finally:
        client.close()


def test_tritonclient_drives_shipyard_serve(store: dict[str, str]) -> None:
    with running(store, "serve", "models:/mixed@production") as url:
        _check_protocol(url, "mixed")


def test_tritonclient_drives_shipyard_deploy_run(store: dict[str, str]) -> None:
    with running(store, "deploy", "run", "mixed-api", "--no-log-predictions") as url:
        _check_protocol(url, "mixed-api")
