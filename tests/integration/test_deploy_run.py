"""Serving a deployment (``shipyard deploy run``): routing by weight and key, shadows off the caller's path,
the prediction-log hook, and following rollouts live, under load, on a real SQLite store."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import shipyard
from shipyard import deploy
from shipyard.cli import app as cli_app
from shipyard.deploy.traffic import TrafficSplit
from shipyard.models import PythonModel
from shipyard.serving.deployment import ROUTING_KEY_HEADER, VERSION_HEADER
from shipyard.serving.deployment_app import create_deployment_app
from tests.support import ServerProcess, shipyard_command, wait_for, wait_for_async

TRAIN = pd.DataFrame({"x": np.random.default_rng(11).normal(size=60), "z": np.random.default_rng(12).normal(size=60)})
ROW = TRAIN.head(1).to_dict("records")
POLL = 0.05
EXAMPLE_X = 1234.5


class Raising(PythonModel):
    """Fails on every input but its own example (saving a model predicts on the example)."""

    def predict(self, context: Any, model_input: Any) -> Any:
        if not (model_input["x"] == EXAMPLE_X).any():
            raise RuntimeError("this shadow always fails")
        return model_input["x"].to_numpy()


class Sleepy(PythonModel):
    """Takes 3 s per call, far beyond any caller's latency below, but not on its own example (saving a
    model predicts on the example)."""

    def predict(self, context: Any, model_input: Any) -> Any:
        if not (model_input["x"] == EXAMPLE_X).any():
            time.sleep(3.0)
        return model_input["x"].to_numpy()


@dataclass
class Registry:
    """Model ``churn``: versions 1 and 2 (sklearn), 3 (a shadow that raises), 4 (a shadow that sleeps)."""

    tracking_uri: str
    artifact_uri: str
    client: shipyard.Client
    records: list[dict[str, Any]] = field(default_factory=list)

    def app(self, name: str, **options: Any) -> Any:
        options.setdefault("on_predictions", self.records.extend)
        options.setdefault("prime", True)
        return create_deployment_app(self.client, name, poll_seconds=POLL, **options)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("deploy-run")
    uri, artifacts = f"sqlite:///{root / 'db.sqlite'}", str(root / "artifacts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
        client = shipyard.Client(tracking_uri=uri, artifact_uri=artifacts)
        run_id = client.create_run("0", "train").info.run_id
        target = (TRAIN["x"] + TRAIN["z"] > 0).astype(int)
        models = {"one": LogisticRegression(C=1.0).fit(TRAIN, target),
                  "two": LogisticRegression(C=0.01).fit(TRAIN, 1 - target),
                  "raising": Raising(), "sleepy": Sleepy()}
        for path, model in models.items():
            example = TRAIN.head(2).assign(x=[EXAMPLE_X, 0.0]) if path in ("raising", "sleepy") else TRAIN.head(2)
            client.log_model(run_id, model, path, input_example=example)
            client.register_model(f"runs:/{run_id}/{path}", "churn")
        client.set_terminated(run_id)
        yield Registry(uri, artifacts, client)
        client.close()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
        yield client


async def predict(client: httpx.AsyncClient, key: str | None = None) -> httpx.Response:
    headers = {ROUTING_KEY_HEADER: key} if key else {}
    return await client.post("/v1/models/churn-api/predict", json={"inputs": ROW}, headers=headers)


def answered_by(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers[VERSION_HEADER] == response.json()["version"]
    return response.json()["version"]


# -- routing -------------------------------------------------------------------------------------------
def test_serves_the_deployment_under_its_name_on_every_protocol(store: Registry) -> None:
    deploy.create_deployment(store.client, "basic-api", "models:/churn/1")
    app = store.app("basic-api")

    async def scenario() -> None:
        async with serving(app) as client:
            native = await client.post("/v1/models/basic-api/predict", json={"inputs": TRAIN.head(3).to_dict("list")},
                                       headers={"x-request-id": "req-1"})
            assert answered_by(native) == "churn/1"
            assert native.json()["model"] == "basic-api"
            ids = native.json()["prediction_ids"]
            infer = await client.post("/v2/models/basic-api/infer", json={"inputs": [
                {"name": c, "shape": [2], "datatype": "FP64", "data": TRAIN[c].head(2).tolist()} for c in "xz"]})
            assert (infer.json()["model_name"], infer.json()["model_version"]) == ("basic-api", "churn/1")
            assert infer.headers[VERSION_HEADER] == "churn/1"
            mlflow = await client.post("/invocations", json={"dataframe_records": ROW})
            assert (mlflow.status_code, mlflow.headers[VERSION_HEADER]) == (200, "churn/1")
            listed = await client.get("/v1/models")
            assert listed.json()["models"] == [{"name": "basic-api", "version": "churn/1", "flavor": "sklearn"}]
            ready = (await client.get("/v2/health/ready")).json()
            assert (ready["ready"], ready["revision"], ready["serving"]) == \
                (True, 1, [{"version": "churn/1", "role": "primary", "weight": 100}])
            unknown = await client.post("/v1/models/other/predict", json={"inputs": ROW})
            assert (unknown.status_code, unknown.json()["error_code"]) == (404, "NOT_FOUND")
            metrics = (await client.get("/metrics")).text
            assert 'shipyard_serving_deployment_revision{deployment="basic-api"} 1.0' in metrics
            assert 'shipyard_serving_requests_total{model="basic-api",protocol="native",status="200",' \
                   'version="churn/1"} 1.0' in metrics
            first = [r for r in store.records if r["request_id"] == "req-1"]
            assert [r["prediction_id"] for r in first] == ids
            assert first[0]["inputs"] == {"x": TRAIN["x"][0], "z": TRAIN["z"][0]}
            assert first[0]["outputs"] == native.json()["predictions"][0]
            assert {k: first[0][k] for k in ("deployment", "model", "version", "role")} == \
                {"deployment": "basic-api", "model": "churn", "version": "1", "role": "primary"}
            assert first[0]["latency_ms"] > 0
            assert abs(first[0]["time"] - time.time() * 1000) < 60_000

    asyncio.run(scenario())


def test_every_answer_is_logged_and_feedback_is_joined(store: Registry) -> None:
    """``prediction_log``: the answers land as Parquet at shutdown, with the feedback sent for them."""
    from shipyard.predictions.reader import read_predictions

    deploy.create_deployment(store.client, "logged-api", "models:/churn/1")
    app = store.app("logged-api", on_predictions=None, prediction_log=store.client.artifacts)

    async def scenario() -> list[str]:
        async with serving(app) as client:
            answer = await client.post("/v1/models/logged-api/predict",
                                       json={"inputs": TRAIN.head(3).to_dict("records")})
            ids = answer.json()["prediction_ids"]
            feedback = await client.post("/v1/feedback", json=[{"prediction_id": ids[0], "value": 1},
                                                               {"prediction_id": ids[2], "value": 0}])
            assert feedback.status_code == 202, feedback.text
            bad = await client.post("/v1/feedback", json={"value": 1})
            assert bad.status_code == 400
            assert "prediction_id" in bad.json()["message"]
            return ids

    ids = asyncio.run(scenario())
    logged = read_predictions(store.client, "logged-api", since="1h")
    assert sorted(logged["prediction_id"]) == sorted(ids)
    assert set(logged["version"]) == {"1"}
    has_feedback = dict(zip(logged["prediction_id"], logged["feedback"].notna(), strict=True))
    assert [has_feedback[i] for i in ids] == [True, False, True]


def test_a_failing_prediction_log_callback_never_fails_a_request(store: Registry) -> None:
    deploy.create_deployment(store.client, "log-api", "models:/churn/1")

    def broken(records: list[dict[str, Any]]) -> None:
        raise OSError("disk full")

    app = store.app("log-api", on_predictions=broken)

    async def scenario() -> str:
        async with serving(app) as client:
            for _ in range(3):
                assert (await client.post("/v1/models/log-api/predict", json={"inputs": ROW})).status_code == 200
            return (await client.get("/metrics")).text

    assert 'shipyard_serving_prediction_log_errors_total{deployment="log-api"} 3.0' in asyncio.run(scenario())


def test_canary_weight_and_sticky_keys(store: Registry) -> None:
    deploy.create_deployment(store.client, "churn-api", "models:/churn/1")
    canaried = deploy.canary(store.client, "churn-api", "models:/churn/2", 25)
    split = TrafficSplit.of(canaried)
    app = store.app("churn-api")

    async def scenario() -> tuple[Counter[str], dict[str, set[str]]]:
        async with serving(app) as client:
            drawn: Counter[str] = Counter()
            for _ in range(8):
                drawn.update(answered_by(r) for r in await asyncio.gather(*(predict(client) for _ in range(50))))
            sticky: dict[str, set[str]] = {}
            for key in [f"user-{i}" for i in range(40)] * 3:
                sticky.setdefault(key, set()).add(answered_by(await predict(client, key)))
            return drawn, sticky

    drawn, sticky = asyncio.run(scenario())
    # Binomial(400, 0.25): mean 100, standard deviation 8.7; 40 is more than 4.5 of them.
    assert sum(drawn.values()) == 400
    assert abs(drawn["churn/2"] - 100) < 40, drawn
    assert all(len(seen) == 1 for seen in sticky.values())  # the same key, the same version, every time
    assert {key: seen.pop() for key, seen in sticky.items()} == \
        {key: f"churn/{split.pick(key).version}" for key in sticky}
    roles = Counter(r["role"] for r in store.records if r["deployment"] == "churn-api")
    assert roles["canary"] > 0
    assert roles["primary"] > 0


# -- shadows ---------------------------------------------------------------------------------------------
def test_shadows_never_touch_the_caller(store: Registry) -> None:
    deploy.create_deployment(store.client, "shadow-api", "models:/churn/1")
    deploy.shadow(store.client, "shadow-api", "models:/churn/3")  # raises
    deploy.shadow(store.client, "shadow-api", "models:/churn/4")  # sleeps 3 s per call
    app = store.app("shadow-api")

    async def scenario() -> tuple[list[float], list[httpx.Response], str]:
        async with serving(app) as client:
            async def timed() -> tuple[float, httpx.Response]:
                started = time.perf_counter()
                response = await client.post("/v1/models/shadow-api/predict", json={"inputs": ROW})
                return time.perf_counter() - started, response

            results = []
            for _ in range(3):  # later waves find the sleeping shadow still busy with earlier ones
                results += await asyncio.gather(*(timed() for _ in range(10)))
            # The sleeping shadow works through the 30 requests in a few batches of 3 s each.
            await wait_for_async(lambda: sum(r["role"] == "shadow" for r in store.records
                                             if r["deployment"] == "shadow-api") >= 30, timeout=30)
            return [t for t, _ in results], [r for _, r in results], (await client.get("/metrics")).text

    latencies, responses, metrics = asyncio.run(scenario())
    assert all(answered_by(r) == "churn/1" for r in responses)
    assert max(latencies) < 2.0, latencies  # one call of the sleeping shadow alone takes 3 s
    assert all(set(r.json()) == {"model", "version", "predictions", "prediction_ids"} for r in responses)
    mine = [r for r in store.records if r["deployment"] == "shadow-api"]
    shadow = [r for r in mine if r["role"] == "shadow"]
    assert {r["version"] for r in shadow} == {"4"}  # the raising shadow logs nothing
    assert {r["prediction_id"] for r in shadow} == {r["prediction_id"] for r in mine if r["role"] == "primary"}
    assert all(r["outputs"] == r["inputs"]["x"] for r in shadow)
    assert 'shipyard_serving_shadow_requests_total{model="shadow-api",outcome="error",version="churn/3"} 30.0' \
        in metrics
    assert 'shipyard_serving_shadow_requests_total{model="shadow-api",outcome="ok",version="churn/4"} 30.0' \
        in metrics


# -- following the deployment --------------------------------------------------------------------------------
def test_a_rollout_under_load_drops_no_request(store: Registry) -> None:
    deploy.create_deployment(store.client, "live-api", "models:/churn/1")
    app = store.app("live-api")
    state = app.state.serving

    async def scenario() -> tuple[list[httpx.Response], list[str]]:
        async with serving(app) as client:
            await wait_for_async(lambda: state.table is not None)
            answers: list[httpx.Response] = []
            stop = asyncio.Event()

            async def caller() -> None:
                while not stop.is_set():
                    answers.append(await client.post("/v1/models/live-api/predict", json={"inputs": ROW}))

            callers = [asyncio.create_task(caller()) for _ in range(20)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(deploy.canary, store.client, "live-api", "models:/churn/2", 50)
            await wait_for_async(lambda: state.table.deployment.revision == 2)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(deploy.promote, store.client, "live-api")
            await wait_for_async(lambda: state.table.deployment.revision == 3)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*callers)
            await wait_for_async(lambda: {str(v.ref) for v in state._loaded.values()} == {"churn/2"})  # 1 released
            after = [answered_by(r) for r in await asyncio.gather(*(predict_on(client) for _ in range(20)))]
            return answers, after

    async def predict_on(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/v1/models/live-api/predict", json={"inputs": ROW})

    answers, after = asyncio.run(scenario())
    assert len(answers) > 200
    failed = [r for r in answers if r.status_code != 200]
    assert failed == []
    assert Counter(answered_by(r) for r in answers).keys() == {"churn/1", "churn/2"}
    assert set(after) == {"churn/2"}


def test_stopped_is_503_and_a_failed_load_keeps_the_old_revision(store: Registry,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    deploy.create_deployment(store.client, "stop-api", "models:/churn/1")
    app = store.app("stop-api")
    state = app.state.serving

    async def scenario() -> None:
        async with serving(app) as client:
            await wait_for_async(lambda: state.table is not None)
            await asyncio.to_thread(deploy.stop, store.client, "stop-api")
            await wait_for_async(lambda: state.table.deployment.revision == 2)
            stopped = await predict_named(client)
            assert stopped.status_code == 503
            assert stopped.json()["error_code"] == "NOT_READY"
            assert "'stop-api' is stopped" in stopped.json()["message"]
            assert "shipyard deploy start stop-api" in stopped.json()["message"]
            ready = await client.get("/v2/health/ready")
            assert (ready.status_code, ready.json()["details"]["status"]) == (503, "STOPPED")
            await asyncio.to_thread(deploy.start, store.client, "stop-api")
            await wait_for_async(lambda: state.table.deployment.revision == 3)
            assert answered_by(await predict_named(client)) == "churn/1"

            original = state._load_version
            monkeypatch.setattr(state, "_load_version", lambda ref: (_ for _ in ()).throw(
                shipyard.errors.ArtifactCorrupted(f"{ref}: digest mismatch")))
            await asyncio.to_thread(deploy.canary, store.client, "stop-api", "models:/churn/2", 50)
            await wait_for_async(lambda: state.last_error is not None)
            ready = (await client.get("/v2/health/ready")).json()
            assert (ready["ready"], ready["revision"]) == (True, 3)
            assert ready["last_error"]["revision"] == 4
            assert "digest mismatch" in ready["last_error"]["message"]
            assert {answered_by(await predict_named(client)) for _ in range(20)} == {"churn/1"}
            monkeypatch.setattr(state, "_load_version", original)  # the next retry loads it
            await wait_for_async(lambda: state.table.deployment.revision == 4)
            assert "last_error" not in (await client.get("/v2/health/ready")).json()
            metrics = (await client.get("/metrics")).text
            assert 'shipyard_serving_deployment_reloads_total{deployment="stop-api",outcome="failed"}' in metrics

    async def predict_named(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post("/v1/models/stop-api/predict", json={"inputs": ROW})

    asyncio.run(scenario())


def test_new_batching_reuses_the_loaded_model(store: Registry) -> None:
    from shipyard.entities import Batching

    deploy.create_deployment(store.client, "batch-api", "models:/churn/1")
    app = store.app("batch-api")
    state = app.state.serving

    async def scenario() -> None:
        async with serving(app) as client:
            [before] = state._loaded.values()
            await asyncio.to_thread(deploy.update, store.client, "batch-api", batching=Batching(1, 0))
            await wait_for_async(lambda: state.table.deployment.revision == 2)
            answer = await client.post("/v1/models/batch-api/predict", json={"inputs": ROW})
            assert answered_by(answer) == "churn/1"
            [after] = state._loaded.values()  # the old batcher is released, the model is not loaded again
            assert after.served is before.served
            assert (after.batching, after.batcher.enabled, before.batcher.closed) == (Batching(1, 0), False, True)

    asyncio.run(scenario())


# -- the command -----------------------------------------------------------------------------------------------
def test_run_refuses_a_missing_deployment(store: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn started for a missing deployment"))
    result = CliRunner().invoke(cli_app, ["--tracking-uri", store.tracking_uri, "--artifact-uri", store.artifact_uri,
                                          "deploy", "run", "nope-api", "--port", "8099"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "nope-api" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_deploy_run_serves_and_follows_a_promotion(store: Registry, tmp_path: Path) -> None:
    deploy.create_deployment(store.client, "cli-api", "models:/churn/1")
    env = {"SHIPYARD_TRACKING_URI": store.tracking_uri, "SHIPYARD_ARTIFACT_URI": store.artifact_uri}
    server = ServerProcess(shipyard_command("deploy", "run", "cli-api", "--poll-seconds", "0.1"), tmp_path, env=env,
                           health="/v2/health/live", name="deploy-run")
    with server:
        url = server.url

        def version() -> str | None:
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.post(f"{url}/v1/models/cli-api/predict", json={"inputs": ROW}, timeout=2)
                return answer.headers.get(VERSION_HEADER)
            return None

        def serves(wanted: str) -> bool:
            server.assert_alive()
            return version() == wanted

        def revision() -> int | None:
            server.assert_alive()
            return httpx.get(f"{url}/v2/health/ready", timeout=2).json().get("revision")

        wait_for(lambda: serves("churn/1"), what=lambda: f"churn/1 to answer:\n{server.logs(tail=4000)}")
        deploy.canary(store.client, "cli-api", "models:/churn/2", 10)
        deploy.promote(store.client, "cli-api")
        # One answer from churn/2 could be the canary's 10% (revision 2): wait for revision 3 itself.
        wait_for(lambda: revision() == 3, what=lambda: f"revision 3:\n{server.logs(tail=4000)}")
        assert {version() for _ in range(5)} == {"churn/2"}
        assert 'shipyard_serving_deployment_revision{deployment="cli-api"} 3.0' in httpx.get(f"{url}/metrics").text
    text = server.logs()
    assert "Serving cli-api revision 1 (churn/1 100%)" in text
    # The follower may catch the canary (revision 2) between the two commands, or only the promotion.
    assert re.search(r"revision [12] -> 3", text), text
    assert "Traceback" not in text
