"""The prediction routes' fast path (serving/fast_path.py): it is taken for exactly the POST prediction
routes, and every answer (status, body, headers) is the one Starlette's routing and middleware give."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.routing import Route

from shipyard.models.package import load_model_folder, save_model
from shipyard.serving import ServedModel, create_serving_app
from shipyard.serving.fast_path import ServingApp, _PathTable

TRAIN = pd.DataFrame({"x": np.random.default_rng(1).normal(size=60), "z": np.random.default_rng(2).normal(size=60)})
ROWS = TRAIN.head(2)
SPLIT = {"dataframe_split": {"columns": ["x", "z"], "data": ROWS.to_numpy().tolist()}}

# (method, path, request options): answers, refusals and errors of every prediction route, and their neighbours
REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/invocations", {"json": SPLIT}),
    ("POST", "/invocations", {"json": {"dataframe_records": ROWS.to_dict(orient="records")}}),
    ("POST", "/invocations", {"json": {"inputs": ROWS.to_dict(orient="list")}}),
    ("POST", "/invocations", {"json": {"dataframe_split": {"columns": ["x"], "data": [[1.0]]}}}),
    ("POST", "/invocations", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
    ("POST", "/invocations", {"content": b"x,z\n1,2\n", "headers": {"content-type": "text/csv"}}),
    ("POST", "/invocations", {"content": b"x", "headers": {"content-type": "text/plain"}}),
    ("POST", "/invocations", {"json": SPLIT, "headers": {"x-request-id": "given-id-1"}}),
    ("GET", "/invocations", {}),
    ("POST", "/invocations/", {"json": SPLIT}),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": ROWS.to_dict(orient="records")}}),
    ("POST", "/v1/models/other/predict", {"json": {"inputs": ROWS.to_dict(orient="records")}}),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": "nope"}}),
    ("PUT", "/v1/models/churn/predict", {"json": {}}),
    (
        "POST",
        "/v2/models/churn/infer",
        {
            "json": {
                "id": "r1",
                "inputs": [
                    {"name": "x", "shape": [2], "datatype": "FP64", "data": ROWS["x"].tolist()},
                    {"name": "z", "shape": [2], "datatype": "FP64", "data": ROWS["z"].tolist()},
                ],
            }
        },
    ),
    (
        "POST",
        "/v2/models/churn/versions/3/infer",
        {
            "json": {
                "inputs": [
                    {"name": "input", "shape": [2, 2], "datatype": "FP64", "data": ROWS.to_numpy().ravel().tolist()}
                ]
            }
        },
    ),
    ("POST", "/v2/models/churn/versions/9/infer", {"json": {"inputs": []}}),
    ("POST", "/v2/models/churn/infer", {"json": {"inputs": []}, "headers": {"inference-header-content-length": "3"}}),
    ("POST", "/v2/models/churn/ready", {}),
    ("GET", "/v2/models/churn", {}),
]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.linear_model import LogisticRegression

    folder = tmp_path_factory.mktemp("fast") / "churn"
    save_model(
        LogisticRegression().fit(TRAIN, (TRAIN["x"] + TRAIN["z"] > 0).astype(int)), folder, input_example=TRAIN.head(3)
    )
    return folder


def answers(app: Any) -> list[tuple[int, Any, dict[str, str]]]:
    async def main() -> list[tuple[int, Any, dict[str, str]]]:
        got = []
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
            for method, path, options in REQUESTS:
                response = await client.request(method, path, **options)
                body = response.json() if response.headers.get("content-type") == "application/json" else response.text
                if isinstance(body, dict):  # fresh per request: ids, and messages quoting the request id
                    body.pop("prediction_ids", None)
                    body.get("parameters", {}).pop("prediction_ids", None)
                    if "id" in body and body["id"] == response.headers["x-request-id"]:
                        body["id"] = "<request id>"
                    for key in ("message", "error"):
                        if key in body:
                            body[key] = body[key].replace(response.headers["x-request-id"], "<request id>")
                headers = dict(response.headers)
                if headers.pop("x-request-id") == "given-id-1":
                    headers["x-request-id"] = "given-id-1"
                got.append((response.status_code, body, headers))
        return got

    return asyncio.run(main())


def test_fast_path_answers_as_starlette_does(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = ServedModel("churn", "3", load_model_folder(package))
    fast = answers(create_serving_app([served]))
    taken = []
    original = ServingApp.__init__

    def without_fast_path(self: ServingApp, **options: Any) -> None:
        options["fast"] = False
        original(self, **options)

    monkeypatch.setattr(ServingApp, "__init__", without_fast_path)
    slow = answers(create_serving_app([served]))
    for request, a, b in zip(REQUESTS, fast, slow, strict=True):
        assert a == b, request
        taken.append(a[0])
    assert taken[0] == 200
    assert {400, 404, 405, 415} <= set(taken)


def test_the_path_table_matches_only_the_prediction_routes() -> None:
    async def endpoint(request: Any) -> Any:  # pragma: no cover - never called
        return None

    def route(path: str, name: str, method: str = "POST") -> Route:
        return Route(path, endpoint, methods=[method], name=name)

    table = _PathTable(
        [
            route("/v1/models/{name}/predict", "predict"),
            route("/v2/models/{name}/infer", "infer"),
            route("/v2/models/{name}/versions/{version}/infer", "version_infer"),
            route("/invocations", "invocations"),
            route("/v1/feedback", "feedback"),
            route("/v2/models/{name}/ready", "model_ready", "GET"),
        ]
    )
    assert table.match("/invocations") == (endpoint, {})
    assert table.match("/v1/models/churn/predict") == (endpoint, {"name": "churn"})
    assert table.match("/v2/models/a.b/versions/7/infer") == (endpoint, {"name": "a.b", "version": "7"})
    for miss in (
        "/invocations/",
        "/v1/models//predict",
        "/v1/models/a/b/predict",
        "/v1/feedback",
        "/v2/models/churn/ready",
        "/v2/models/churn/infer/",
        "/v1/models/churn/predictx",
        "",
    ):
        assert table.match(miss) is None, miss
