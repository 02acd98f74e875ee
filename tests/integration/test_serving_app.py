"""The serving app in-process (httpx's ASGI transport): real packages saved and loaded with their digests,
the three protocols, batching under concurrency, readiness, shutdown, errors, metrics and the access log."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.models import PythonModel
from shipyard.models.package import load_model_folder, save_model
from shipyard.serving import ServedModel, create_serving_app, load_served
from shipyard.serving.access import flush_access_log
from tests.support import assert_error_envelope, wait_for_async

OIP_ERROR = frozenset({"error"})  # the message again, the one field Open Inference Protocol clients read


class Echo(PythonModel):
    """Identity-like: predicts each row's own ``x``, so a caller can tell its rows from anyone else's."""

    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input["x"].to_numpy()


class Fragile(PythonModel):
    """Fails on any batch holding x == 13; sleeps a little so concurrent requests meet in a batch."""

    def predict(self, context: Any, model_input: Any) -> Any:
        time.sleep(0.01)
        if (model_input["x"] == 13).any():
            raise ValueError("secret internals: row 13 is cursed")
        return model_input["x"].to_numpy() * 10


class Slow(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        time.sleep(0.3)
        return model_input["x"].to_numpy()


EXAMPLE = pd.DataFrame({"x": [1.0, 2.0], "k": [1, 2]})
TRAIN = pd.DataFrame({"x": np.random.default_rng(1).normal(size=80), "z": np.random.default_rng(2).normal(size=80)})


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("packages")
    save_model(LogisticRegression().fit(TRAIN, (TRAIN["x"] + TRAIN["z"] > 0).astype(int)), root / "churn",
               input_example=TRAIN.head(3))
    for name, model in (("echo", Echo()), ("fragile", Fragile()), ("slow", Slow())):
        save_model(model, root / name, input_example=EXAMPLE)
    return {p.name: p for p in root.iterdir()}


def served(packages: dict[str, Path], name: str, version: str = "3") -> ServedModel:
    return ServedModel(name, version, load_model_folder(packages[name]), path=packages[name])


def run(app: Any, scenario: Callable[[httpx.AsyncClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
            return await scenario(client)

    return asyncio.run(main())


def assert_error(response: httpx.Response, status: int, code: str, *fragments: str) -> dict[str, Any]:
    body = assert_error_envelope(response, status, extra_keys=OIP_ERROR, nosniff=False)
    assert body["error_code"] == code
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    return body


# -- the protocols ---------------------------------------------------------------------------------------
def test_native_predict(packages: dict[str, Path]) -> None:
    model = served(packages, "churn")
    app = create_serving_app([model])
    rows = TRAIN.head(4)
    expected = model.model.unwrap().predict(rows).tolist()

    async def scenario(client: httpx.AsyncClient) -> None:
        records = await client.post("/v1/models/churn/predict", json={"inputs": rows.to_dict(orient="records")},
                                    headers={"x-request-id": "abc-123"})
        assert records.status_code == 200, records.text
        assert records.headers["x-request-id"] == "abc-123"
        body = records.json()
        assert (body["model"], body["version"], body["predictions"]) == ("churn", "3", expected)
        assert len(body["prediction_ids"]) == 4
        assert len(set(body["prediction_ids"])) == 4
        assert all(uuid.UUID(hex=i).version == 4 for i in body["prediction_ids"])

        columns = await client.post("/v1/models/churn/predict", json={"inputs": rows.to_dict(orient="list")})
        assert columns.json()["predictions"] == expected
        assert re.fullmatch(r"[0-9a-f]{32}", columns.headers["x-request-id"])  # generated when not given

        listed = await client.get("/v1/models")
        assert listed.json() == {"models": [{"name": "churn", "version": "3", "flavor": "sklearn"}]}

    run(app, scenario)


def test_open_inference_protocol(packages: dict[str, Path]) -> None:
    model = served(packages, "churn")
    app = create_serving_app([model])
    rows = TRAIN.head(3)
    expected = model.model.unwrap().predict(rows).tolist()

    async def scenario(client: httpx.AsyncClient) -> None:
        meta = (await client.get("/v2/models/churn")).json()
        assert meta["name"] == "churn"
        assert meta["versions"] == ["3"]
        assert [(t["name"], t["datatype"]) for t in meta["inputs"]] == [("x", "FP64"), ("z", "FP64")]
        assert (await client.get("/v2/models/churn/versions/3")).json() == meta
        assert (await client.get("/v2/models/churn/ready")).status_code == 200
        assert (await client.get("/v2/models/churn/versions/3/ready")).json()["ready"] is True
        assert (await client.get("/v2")).json()["name"] == "shipyard"

        per_column = {"id": "req-7", "inputs": [
            {"name": c, "shape": [3], "datatype": "FP64", "data": rows[c].tolist()} for c in ("x", "z")]}
        answer = await client.post("/v2/models/churn/infer", json=per_column)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["model_name"], body["model_version"], body["id"]) == ("churn", "3", "req-7")
        assert body["outputs"] == [{"name": "predict", "shape": [3], "datatype": "INT64", "data": expected}]
        assert len(body["parameters"]["prediction_ids"]) == 3

        matrix = {"inputs": [{"name": "features", "shape": [3, 2], "datatype": "FP32",
                              "data": rows.to_numpy().ravel().tolist()}]}
        pinned = await client.post("/v2/models/churn/versions/3/infer", json=matrix,
                                   headers={"x-request-id": "r-9"})
        assert pinned.json()["outputs"][0]["data"] == expected
        assert pinned.json()["id"] == "r-9"  # no id in the body: the request id

    run(app, scenario)


def test_mlflow_invocations(packages: dict[str, Path]) -> None:
    model = served(packages, "churn")
    app = create_serving_app([model])
    rows = TRAIN.head(3)
    expected = {"predictions": model.model.unwrap().predict(rows).tolist()}

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.get("/ping")).status_code == 200
        assert (await client.get("/health")).status_code == 200
        for payload in (
            {"dataframe_split": rows.to_dict(orient="split", index=False)},
            {"dataframe_records": rows.to_dict(orient="records")},
            {"instances": rows.to_dict(orient="records")},
            {"inputs": rows.to_dict(orient="list")},
        ):
            answer = await client.post("/invocations", json=payload)
            assert answer.status_code == 200, (payload, answer.text)
            assert answer.json() == expected
        csv = await client.post("/invocations", content=rows.to_csv(index=False).encode(),
                                headers={"content-type": "text/csv"})
        assert csv.json() == expected

    run(app, scenario)


# -- batching ----------------------------------------------------------------------------------------------
def test_concurrent_requests_are_batched_and_each_gets_its_rows(packages: dict[str, Path]) -> None:
    model = served(packages, "echo")
    app = create_serving_app([model], max_batch_size=32, max_wait_ms=10)
    rng = random.Random(3)
    requests, start = [], 0
    for _ in range(50):
        rows = rng.randint(1, 5)
        requests.append([float(v) for v in range(start, start + rows)])
        start += rows

    async def scenario(client: httpx.AsyncClient) -> tuple[list[Any], str]:
        async def one(i: int, xs: list[float]) -> httpx.Response:
            if i % 3 == 0:  # the protocols share one batcher
                return await client.post("/v2/models/echo/infer", json={"inputs": [
                    {"name": "x", "shape": [len(xs)], "datatype": "FP64", "data": xs},
                    {"name": "k", "shape": [len(xs)], "datatype": "INT64", "data": [1] * len(xs)}]})
            return await client.post("/v1/models/echo/predict", json={"inputs": [{"x": x, "k": 1} for x in xs]})

        answers = await asyncio.gather(*(one(i, xs) for i, xs in enumerate(requests)))
        return list(answers), (await client.get("/metrics")).text

    answers, metrics = run(app, scenario)
    for i, (xs, answer) in enumerate(zip(requests, answers, strict=True)):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        got = body["outputs"][0]["data"] if i % 3 == 0 else body["predictions"]
        assert got == xs
        ids = body["parameters"]["prediction_ids"] if i % 3 == 0 else body["prediction_ids"]
        assert len(ids) == len(xs)
    batcher = next(iter(app.state.serving.batchers.values()))
    assert batcher.stats.requests == 50
    assert batcher.stats.batches < 50
    batches = batcher.stats.batches
    assert f'shipyard_serving_batch_size_requests_count{{model="echo",version="3"}} {batches}.0' in metrics
    assert f'shipyard_serving_predicted_rows_total{{model="echo",version="3"}} {float(start)}' in metrics


# -- errors ------------------------------------------------------------------------------------------------
BAD_REQUESTS = [
    ("POST", "/v1/models/churn/predict", {"content": b'{"inputs": [1,'}, 400, "INVALID_INPUT", "malformed JSON"),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": [{"x": "a", "z": 1.0}]}}, 400, "INVALID_INPUT",
     "column 'x': expected float64, got string"),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": [{"x": 1.0}]}}, 400, "INVALID_INPUT",
     "missing column 'z'"),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": [{"x": None, "z": 1.0}]}}, 400, "INVALID_INPUT",
     "missing values (null or NaN) in column 'x'"),
    ("POST", "/v1/models/churn/predict", {"json": {"inputs": [[1.0, 2.0]]}}, 400, "INVALID_INPUT",
     "expected a table with columns ['x', 'z']"),
    ("POST", "/v2/models/churn/infer", {"json": {"inputs": [
        {"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3]}]}}, 400, "INVALID_INPUT",
     "shape [2, 2] holds 4 values but data has 3"),
    ("POST", "/v2/models/churn/infer", {"json": {"inputs": [
        {"name": "x", "shape": [1], "datatype": "INT64", "data": [1.5]}]}}, 400, "INVALID_INPUT", "whole numbers"),
    ("POST", "/v1/models/nope/predict", {"json": {"inputs": []}}, 404, "NOT_FOUND",
     "no model named 'nope'", "served: churn (version 3)"),
    ("POST", "/v2/models/churn/versions/8/infer", {"json": {"inputs": []}}, 404, "NOT_FOUND",
     "no version '8'", "churn (version 3)"),
    ("GET", "/v2/models/other", {}, 404, "NOT_FOUND", "no model named 'other'"),
    ("POST", "/invocations", {"content": b"a=1", "headers": {"content-type": "application/x-www-form-urlencoded"}},
     415, "UNSUPPORTED_MEDIA_TYPE", "text/csv"),
    ("POST", "/invocations", {"json": {"data": []}}, 400, "INVALID_INPUT", "exactly one of dataframe_split"),
    ("POST", "/v1/models/churn/predict", {"content": b'{"inputs": [' + b'{"x": 1.0, "z": 2.0},' * 200 + b"]}"},
     413, "REQUEST_TOO_LARGE", "limit of 2048 bytes"),
    ("GET", "/v1/models/churn/predict", {}, 405, "METHOD_NOT_ALLOWED", "GET"),
    ("GET", "/nowhere", {}, 404, "NOT_FOUND", "no such route"),
]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "code", "fragments"),
                         [(*r[:5], r[5:]) for r in BAD_REQUESTS],
                         ids=["json", "dtype", "missing-column", "null", "rows-for-columns", "shape", "fraction",
                              "unknown-model", "unknown-version", "unknown-metadata", "media-type", "mlflow-keys",
                              "too-large", "method", "route"])
def test_client_errors_are_json_4xx(packages: dict[str, Path], method: str, path: str, kwargs: dict[str, Any],
                                    status: int, code: str, fragments: tuple[str, ...]) -> None:
    app = create_serving_app([served(packages, "churn")], max_body_bytes=2048)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, str]:
        return await client.request(method, path, **kwargs), (await client.get("/metrics")).text

    response, metrics = run(app, scenario)
    body = assert_error(response, status, code, *fragments)
    assert ("error" in body) == path.startswith("/v2/")  # the Open Inference Protocol's error field
    if code == "NOT_FOUND" and "served" in body.get("details", {}):
        assert body["details"]["served"] == [{"name": "churn", "version": "3"}]
    if path.endswith(("/predict", "/infer")) and status != 405:
        label = 'model="_unknown"' if code == "NOT_FOUND" else 'model="churn"'
        assert re.search(rf'shipyard_serving_errors_total\{{error_code="{code}",{label}.*status="{status}"', metrics)


def test_a_failing_model_is_a_safe_500_and_spares_concurrent_requests(packages: dict[str, Path],
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    app = create_serving_app([served(packages, "fragile")], max_batch_size=64, max_wait_ms=20)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        batches = [[1.0, 2.0], [12.0, 13.0], [20.0], [30.0, 31.0, 32.0]]
        return list(await asyncio.gather(*(
            client.post("/v1/models/fragile/predict", json={"inputs": [{"x": x, "k": 1} for x in xs]})
            for xs in batches)))

    with caplog.at_level(logging.ERROR, logger="shipyard.serving"):
        ok1, failed, ok2, ok3 = run(app, scenario)
    body = assert_error(failed, 500, "INTERNAL_ERROR", "the model failed while predicting (ValueError)",
                        failed.headers["x-request-id"])
    assert "cursed" not in failed.text  # the exception's text stays in the log
    assert len(body["details"]["prediction_ids"]) == 2
    assert [r.json()["predictions"] for r in (ok1, ok2, ok3)] == [[10.0, 20.0], [200.0], [300.0, 310.0, 320.0]]
    logged = [r for r in caplog.records if r.name == "shipyard.serving" and r.levelno == logging.ERROR]
    assert any(body["details"]["prediction_ids"][0] in r.getMessage() and r.exc_info for r in logged)


# -- lifecycle -----------------------------------------------------------------------------------------------
def test_not_ready_while_loading(packages: dict[str, Path]) -> None:
    release = threading.Event()

    def load() -> list[ServedModel]:
        release.wait(10)
        return [served(packages, "echo")]

    app = create_serving_app(load)

    async def scenario(client: httpx.AsyncClient) -> None:
        async with app.router.lifespan_context(app):
            assert (await client.get("/v2/health/live")).status_code == 200
            assert_error(await client.get("/v2/health/ready"), 503, "NOT_READY", "still loading")
            assert (await client.get("/ping")).status_code == 503
            assert_error(await client.post("/v1/models/echo/predict", json={"inputs": [{"x": 1.0, "k": 1}]}),
                         503, "NOT_READY")
            release.set()
            for _ in range(200):
                if (await client.get("/v2/health/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            answer = await client.post("/v1/models/echo/predict", json={"inputs": [{"x": 4.0, "k": 1}]})
            assert answer.json()["predictions"] == [4.0]

    run(app, scenario)


def test_a_failed_load_stays_not_ready_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    def load() -> list[ServedModel]:
        raise shipyard.errors.ArtifactCorrupted("model.skops: digest mismatch")

    app = create_serving_app(load)

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        async with app.router.lifespan_context(app):
            # The loader runs in a thread: wait until it failed.
            await wait_for_async(lambda: app.state.serving.load_error is not None, timeout=10, interval=0.01,
                                 what="the loader to fail")
            assert (await client.get("/v2/health/live")).status_code == 200
            return await client.get("/v2/health/ready")

    with caplog.at_level(logging.ERROR, logger="shipyard.serving"):
        assert_error(run(app, scenario), 503, "NOT_READY", "failed to load", "digest mismatch")


def test_load_before_serving_waits_in_startup(packages: dict[str, Path]) -> None:
    loaded = threading.Event()

    def load() -> list[ServedModel]:
        time.sleep(0.1)
        loaded.set()
        return [served(packages, "echo")]

    def fail() -> list[ServedModel]:
        raise shipyard.errors.ArtifactCorrupted("model.skops: digest mismatch")

    app = create_serving_app(load, load_before_serving=True)

    async def scenario(client: httpx.AsyncClient) -> None:
        async with app.router.lifespan_context(app):
            assert loaded.is_set()  # startup returned only once the model was in
            assert (await client.get("/v2/health/ready")).status_code == 200
        failing = create_serving_app(fail, load_before_serving=True)
        with pytest.raises(shipyard.errors.ShipyardError, match="digest mismatch"):
            async with failing.router.lifespan_context(failing):
                pass

    run(app, scenario)


def test_shutdown_finishes_requests_in_flight(packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_serving_app([served(packages, "slow")], max_batch_size=8, max_wait_ms=5)
    [batcher] = app.state.serving.batchers.values()
    submitted: list[int] = []
    original = batcher.submit

    async def counted(data: Any, rows: int) -> Any:
        submitted.append(rows)  # the request is queued in the same step, before submit awaits anything
        return await original(data, rows)

    monkeypatch.setattr(batcher, "submit", counted)

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            pending = [asyncio.ensure_future(client.post("/v1/models/slow/predict",
                                                         json={"inputs": [{"x": float(i), "k": 1}]}))
                       for i in range(3)]
            # Shutdown begins only once all three are in the batcher, queued or running in its thread.
            await wait_for_async(lambda: len(submitted) >= 3, timeout=10, interval=0.01,
                                 what=lambda: f"3 requests to reach the batcher (only {len(submitted)} did)")
        # The lifespan has ended: the batcher finished what it held before returning.
        assert all(task.done() for task in pending)
        late = await client.post("/v1/models/slow/predict", json={"inputs": [{"x": 9.0, "k": 1}]})
        assert_error(late, 503, "NOT_READY", "shutting down")
        return [task.result() for task in pending]

    assert [r.json()["predictions"] for r in run(app, scenario)] == [[0.0], [1.0], [2.0]]


def test_access_log_has_one_line_per_request(packages: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    app = create_serving_app([served(packages, "echo")])

    async def scenario(client: httpx.AsyncClient) -> None:
        await client.post("/v1/models/echo/predict", json={"inputs": [{"x": 1.0, "k": 1}]},
                          headers={"x-request-id": "trace-42"})
        await client.post("/v1/models/echo/predict", content=b"nope", headers={"x-request-id": "bad id with spaces"})
        await client.get("/v2/health/live")

    with caplog.at_level(logging.INFO, logger="shipyard.serving.access"):
        run(app, scenario)
        flush_access_log()  # a background thread writes the lines
    lines = [r for r in caplog.records if r.name == "shipyard.serving.access"]
    assert len(lines) == 2  # the liveness probe logs at DEBUG
    assert lines[0].getMessage().startswith("POST /v1/models/echo/predict 200 ")
    assert lines[0].request_id == "trace-42"
    assert (lines[0].http_status, lines[1].http_status) == (200, 400)
    assert re.fullmatch(r"[0-9a-f]{32}", lines[1].request_id)  # an unusable id is replaced


def test_metrics_are_labelled_by_model_and_version(packages: dict[str, Path]) -> None:
    app = create_serving_app([served(packages, "echo", "7")])

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        for _ in range(2):
            await client.post("/v1/models/echo/predict", json={"inputs": [{"x": 1.0, "k": 1}]})
        await client.post("/invocations", json={"dataframe_records": [{"x": 1.0, "k": 1}]})
        return await client.get("/metrics")

    response = run(app, scenario)
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'shipyard_serving_requests_total{model="echo",protocol="native",status="200",version="7"} 2.0' in text
    assert 'shipyard_serving_requests_total{model="echo",protocol="mlflow",status="200",version="7"} 1.0' in text
    assert 'shipyard_serving_request_duration_seconds_count{model="echo",protocol="native",version="7"} 2.0' in text
    assert 'shipyard_serving_batch_size_rows_count{model="echo",version="7"}' in text


# -- loading from the registry ----------------------------------------------------------------------------
def test_serves_a_registered_version_pinned_at_load(fluent: str) -> None:
    from sklearn.linear_model import LogisticRegression

    for c in (0.01, 10.0):
        with shipyard.start_run():
            shipyard.log_model(LogisticRegression(C=c).fit(TRAIN, TRAIN["x"] > 0), "model",
                               input_example=TRAIN.head(2), registered_model_name="churn")
    client = shipyard.Client(tracking_uri=fluent)
    try:
        for version in (1, 2):
            client.approve_model_version("churn", version)  # production is a protected alias
        client.set_alias("churn", "production", 1)
        model = load_served(client, "models:/churn@production")
        assert (model.name, model.version, model.uri) == ("churn", "1", "models:/churn/1")
        client.set_alias("churn", "production", 2)  # moving the alias later does not change this process
    finally:
        client.close()
    app = create_serving_app([model])

    async def scenario(client: httpx.AsyncClient) -> dict[str, Any]:
        return (await client.post("/v1/models/churn/predict", json={"inputs": TRAIN.head(2).to_dict("list")})).json()

    assert run(app, scenario)["version"] == "1"
