"""Bad input never breaks the server: one error envelope everywhere, deny by default, no 5xx.

Everything runs in-process (``shipyard.testing.ASGITransport``); the property-based part is
schemathesis walking ``/openapi.json`` with a fixed seed and a bounded number of examples.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute

import shipyard
from shipyard.config import Settings
from shipyard.server import create_app
from shipyard.server.permissions import ROUTE_PERMISSIONS, Permission
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.ci import require
from tests.support import ENVELOPE_KEYS, assert_error_envelope

MAX_BODY = 2_000_000  # small enough that a 413 costs little, large enough for a 1 MB tag to reach validation
NON_SCHEMA_ROUTES = {"openapi", "api_docs"}  # served by meta.router with include_in_schema=False


def _settings(root: Path, **overrides: object) -> Settings:
    return Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                            artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver",
                            server_max_body_bytes=MAX_BODY, **overrides)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    server = create_app(_settings(tmp_path_factory.mktemp("input")))
    yield server
    server.state.client.close()


@pytest.fixture(scope="module")
def http(app: FastAPI) -> Iterator[httpx.Client]:
    transport = ASGITransport(app)
    with httpx.Client(base_url="http://testserver", transport=transport) as client:
        yield client
    transport.close()


@pytest.fixture(scope="module")
def sdk(app: FastAPI) -> Iterator[shipyard.Client]:
    """The SDK talking to the in-process server, as it would to a remote one."""
    transport = ASGITransport(app)
    client = shipyard.Client(settings=app.state.settings, store=RestStore("http://testserver", transport=transport))
    yield client
    client.close()
    transport.close()


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    return http.post("/api/v1/runs", json={"experiment_id": "0"}).json()["info"]["run_id"]


# -- the error envelope, across every router ---------------------------------------------------
def _deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


ERROR_CASES = [
    # (id, status, method, path, request kwargs)
    ("unknown-run", 404, "GET", "/api/v1/runs/{run}0", {}),
    ("unknown-experiment", 404, "GET", "/api/v1/experiments/987654", {}),
    ("unknown-route", 404, "GET", "/api/v1/nothing-here", {}),
    ("unknown-artifact-run", 404, "GET", "/api/v1/runs/nope/artifacts", {}),
    ("bad-field-type", 400, "POST", "/api/v1/experiments", {"json": {"name": 5}}),
    ("unknown-field", 400, "POST", "/api/v1/runs", {"json": {"experiment_id": "0", "colour": "red"}}),
    ("bad-metric-value", 400, "POST", "/api/v1/runs/{run}/metrics",
     {"json": {"metrics": [{"key": "m", "value": "lots", "timestamp": 1}]}}),
    ("malformed-json", 400, "POST", "/api/v1/runs",
     {"content": b'{"experiment_id": ', "headers": {"content-type": "application/json"}}),
    ("deep-json", 400, "POST", "/api/v1/runs/search",
     {"content": _deep(10_000), "headers": {"content-type": "application/json"}}),
    ("method-not-allowed", 405, "PUT", "/api/v1/experiments", {}),
    ("meta-method-not-allowed", 405, "POST", "/version", {"json": {}}),
    ("form-post", 415, "POST", "/api/v1/experiments", {"data": {"name": "csrf"}}),
    ("text-plain-post", 415, "POST", "/api/v1/runs/{run}/params",
     {"content": b"{}", "headers": {"content-type": "text/plain"}}),
    ("too-large-declared", 413, "POST", "/api/v1/runs/{run}/metrics",
     {"content": b" " * (MAX_BODY + 1), "headers": {"content-type": "application/json"}}),
    ("bad-filter", 400, "POST", "/api/v1/runs/search",
     {"json": {"experiment_ids": ["0"], "filter_string": "metrics.loss <<< 1"}}),
    ("filter-and-filter-string", 400, "POST", "/api/v1/runs/search",
     {"json": {"experiment_ids": ["0"], "filter": [], "filter_string": "metrics.loss < 1"}}),
    ("duplicate-experiment", 409, "POST", "/api/v1/experiments", {"json": {"name": "Default"}}),
    ("invalid-host", 400, "GET", "/health", {"headers": {"host": "evil.example"}}),
    ("control-character", 400, "PATCH", "/api/v1/experiments/0", {"json": {"name": "a\x00b"}}),
]


@pytest.mark.parametrize(("status", "method", "path", "kwargs"), [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_error_shape(http: httpx.Client, run_id: str, status: int, method: str, path: str, kwargs: dict) -> None:
    assert_error_envelope(http.request(method, path.format(run=run_id), **kwargs), status)


def test_streamed_body_over_the_limit_is_413(http: httpx.Client, run_id: str) -> None:
    """No Content-Length: the guard counts as the body arrives. FastAPI used to turn its
    exception into a 400 "error parsing the body"; the renderer now looks at the cause."""
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b" " * (MAX_BODY // 4)
        yield b'{"metrics": []}'

    response = http.post(f"/api/v1/runs/{run_id}/metrics", content=chunks(),
                         headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    body = assert_error_envelope(response, 413)
    assert body["error_code"] == "REQUEST_TOO_LARGE"
    assert str(MAX_BODY) in body["message"]


def test_a_bug_is_a_500_envelope_without_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(_settings(tmp_path))
    router = APIRouter()

    @router.get("/test-only/boom", name="test_only_boom")
    def boom() -> None:
        raise RuntimeError("secret internals /srv/app.py")

    monkeypatch.setitem(ROUTE_PERMISSIONS, "test_only_boom", Permission.READ)  # type: ignore[arg-type]
    app.include_router(router)
    response = _call(app, "GET", "/test-only/boom")
    body = assert_error_envelope(response, 500)
    assert body == {"error_code": "INTERNAL_ERROR",
                    "message": "internal server error; the server log has the details"}
    assert "secret internals" not in response.text
    assert "secret internals" in caplog.text  # the details went to the log


def _call(app: FastAPI, method: str, path: str, **kwargs: object) -> httpx.Response:
    """One request to a throwaway app, then release its transport and store."""
    transport = ASGITransport(app)
    try:
        with httpx.Client(base_url="http://testserver", transport=transport) as client:
            return client.request(method, path, **kwargs)  # type: ignore[arg-type]
    finally:
        transport.close()
        app.state.client.close()


# -- deny by default ----------------------------------------------------------------------------
def _route_names(app: FastAPI) -> set[str]:
    schema = app.openapi()
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    # The MLflow-compatible routes are kept out of the native schema (docs/mlflow.md lists them), and
    # so are the web UI's pages (docs/ui.md).
    return operations | _mlflow_routes(app) | _ui_routes(app) | NON_SCHEMA_ROUTES


def _mlflow_routes(app: FastAPI) -> set[str]:
    return {name for route in _all_routes(app.routes) if (name := getattr(route, "name", "")).startswith("mlflow_")}


def _ui_routes(app: FastAPI) -> set[str]:
    return {name for route in _all_routes(app.routes) if (name := getattr(route, "name", "")).startswith("ui_")}


def test_every_route_declares_its_permission(app: FastAPI) -> None:
    names = _route_names(app)
    assert "create_run" in names  # operationIds are route names (generate_unique_id_function)
    undeclared = names - set(ROUTE_PERMISSIONS)
    assert not undeclared, f"routes missing from ROUTE_PERMISSIONS: {sorted(undeclared)}"


def test_no_stale_permission_entries(app: FastAPI) -> None:
    stale = set(ROUTE_PERMISSIONS) - _route_names(app)
    assert not stale, f"ROUTE_PERMISSIONS names routes that do not exist: {sorted(stale)}"


def _all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x wraps included routers
        yield from _all_routes(included.routes) if included is not None else (route,)


def test_the_schema_walk_sees_every_route(app: FastAPI) -> None:
    """Guards the two tests above: no route hides from the OpenAPI schema except the two known."""
    routes = list(_all_routes(app.routes))
    assert {getattr(r, "name", None) for r in routes} == _route_names(app)
    hidden = {r.name for r in routes if not getattr(r, "include_in_schema", True)}
    assert hidden == NON_SCHEMA_ROUTES | _mlflow_routes(app) | _ui_routes(app)
    assert len(_mlflow_routes(app)) > 50


def test_an_undeclared_route_is_refused(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path))
    router = APIRouter(prefix="/api/v1/new")
    called = []

    @router.post("", name="brand_new_route")
    def brand_new_route() -> dict[str, str]:
        called.append(True)
        return {"ok": "yes"}

    app.include_router(router)  # included after create_app, as a plugin would
    response = _call(app, "POST", "/api/v1/new", json={})
    body = assert_error_envelope(response, 403)
    assert body["error_code"] == "PERMISSION_DENIED"
    assert "/api/v1/new" in body["message"]
    assert called == []


# -- bad input ------------------------------------------------------------------------------------
def test_non_finite_metric_values_round_trip(sdk: shipyard.Client) -> None:
    run = sdk.create_run("0")
    for step, value in enumerate([math.nan, math.inf, -math.inf, 0.5]):
        sdk.log_metric(run.info.run_id, "odd", value, step=step)
    history = [m.value for m in sdk.get_metric_history(run.info.run_id, "odd")]
    assert math.isnan(history[0])
    assert history[1:] == [math.inf, -math.inf, 0.5]
    assert sdk.get_run(run.info.run_id).data.metrics["odd"] == 0.5


def test_non_finite_values_on_the_wire(http: httpx.Client, run_id: str) -> None:
    sent = [{"key": "w", "value": v, "step": i, "timestamp": 1} for i, v in enumerate(["NaN", "Infinity", "-Infinity"])]
    assert http.post(f"/api/v1/runs/{run_id}/metrics", json={"metrics": sent}).status_code == 200
    got = http.get(f"/api/v1/runs/{run_id}/metric-history", params={"key": "w"}).json()["metrics"]
    assert [m["value"] for m in got] == ["NaN", "Infinity", "-Infinity"]


@pytest.mark.parametrize(("route", "field"), [("tags", "tags"), ("params", "params")])
def test_a_1mb_value_is_refused_and_nothing_stored(http: httpx.Client, run_id: str, route: str,
                                                   field: str) -> None:
    method = "PUT" if route == "tags" else "POST"
    huge = {field: [{"key": "small", "value": "ok"}, {"key": "big", "value": "x" * 1_000_000}]}
    body = assert_error_envelope(http.request(method, f"/api/v1/runs/{run_id}/{route}", json=huge), 400)
    assert f"{field}.1.value" in body["message"]
    assert "10000 characters" in body["message"]
    data = http.get(f"/api/v1/runs/{run_id}").json()["data"]
    assert "big" not in data[field]
    assert "small" not in data[field]


def test_a_1mb_experiment_tag_is_refused(http: httpx.Client) -> None:
    response = http.put("/api/v1/experiments/0/tags", json={"tags": {"big": "x" * 1_000_000}})
    assert_error_envelope(response, 400)
    assert "big" not in http.get("/api/v1/experiments/0").json()["tags"]


@pytest.mark.parametrize("body", [_deep(10_000), b'{"name":' + b'{"a":' * 10_000 + b"1" + b"}" * 10_001],
                         ids=["arrays", "objects"])
def test_deeply_nested_json_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/api/v1/experiments", content=body, headers={"content-type": "application/json"})
    message = assert_error_envelope(response, 400)["message"]
    assert "nested too deeply" in message


def test_moderately_nested_json_is_a_plain_validation_error(http: httpx.Client) -> None:
    """Deep enough to be silly, shallow enough for the parser: pydantic names the field."""
    body = b'{"name":' + _deep(500) + b"}"
    response = http.post("/api/v1/experiments", content=body, headers={"content-type": "application/json"})
    assert "name" in assert_error_envelope(response, 400)["details"]["fields"]


def test_body_that_is_not_utf8_is_400(http: httpx.Client) -> None:
    response = http.post("/api/v1/experiments", content=b'{"name": "\xff\xfe"}',
                         headers={"content-type": "application/json"})
    assert "UTF-8" in assert_error_envelope(response, 400)["message"]


UNICODE_NAMES = ["ünïcødé", "实验 第一", "эксперимент", "🚀 launch", "مرحبا", "a\u200db", "ᐊᐃᐅ e\u0301"]


@pytest.mark.parametrize("name", UNICODE_NAMES)
def test_unicode_names_round_trip(sdk: shipyard.Client, name: str) -> None:
    experiment_id = sdk.create_experiment(f"exp {name}", tags={"note": name})
    experiment = sdk.get_experiment_by_name(f"exp {name}")
    assert experiment is not None
    assert experiment.experiment_id == experiment_id
    assert experiment.tags["note"] == name
    run = sdk.create_run(experiment_id, run_name=f"run {name}", tags={"who": name})
    sdk.log_param(run.info.run_id, "label", name)
    stored = sdk.get_run(run.info.run_id)
    assert (stored.info.run_name, stored.data.tags["who"], stored.data.params["label"]) == \
        (f"run {name}", name, name)
    found = sdk.search_runs([experiment_id], f"params.label = '{name}'")
    assert [r.info.run_id for r in found] == [run.info.run_id]


CONTROL = ["\x00", "\n", "\r", "\t", "\x1b[31m", "\x7f"]


@pytest.mark.parametrize("char", CONTROL, ids=[repr(c) for c in CONTROL])
def test_control_characters_in_names_are_400_naming_the_rule(http: httpx.Client, run_id: str,
                                                              char: str) -> None:
    requests = [
        ("POST", "/api/v1/experiments", {"name": f"bad{char}name"}),
        ("PATCH", "/api/v1/experiments/0", {"name": f"bad{char}name"}),
        ("POST", "/api/v1/runs", {"experiment_id": "0", "run_name": f"bad{char}name"}),
        ("PATCH", f"/api/v1/runs/{run_id}", {"run_name": f"bad{char}name"}),
    ]
    for method, path, payload in requests:
        message = assert_error_envelope(http.request(method, path, json=payload), 400)["message"]
        assert "control character" in message, (path, message)
    assert http.get("/api/v1/experiments/0").json()["name"] == "Default"
    assert http.get(f"/api/v1/runs/{run_id}").json()["info"]["run_name"] != f"bad{char}name"


@pytest.mark.parametrize("char", CONTROL, ids=[repr(c) for c in CONTROL])
def test_control_characters_in_keys_are_400_naming_the_rule(http: httpx.Client, run_id: str,
                                                             char: str) -> None:
    for route, method, payload in [
        ("metrics", "POST", {"metrics": [{"key": f"k{char}", "value": 1, "timestamp": 1}]}),
        ("params", "POST", {"params": [{"key": f"k{char}", "value": "v"}]}),
        ("tags", "PUT", {"tags": [{"key": f"k{char}", "value": "v"}]}),
    ]:
        response = http.request(method, f"/api/v1/runs/{run_id}/{route}", json=payload)
        message = assert_error_envelope(response, 400)["message"]
        assert "use letters, digits" in message, (route, message)


# -- property-based: schemathesis over the OpenAPI schema ---------------------------------------
schemathesis = require("schemathesis")  # under CI a missing schemathesis fails the module, not skips it
from hypothesis import HealthCheck, settings  # noqa: E402 - after the require
from schemathesis.checks import not_a_server_error  # noqa: E402

# Built at import: schemathesis makes one test per operation at collection time. (Its lazy
# ``pytest.from_fixture`` loader writes ``node._nodeid``, which pytest 9 no longer has.) The
# store is SQLite in memory, so collecting this module writes nothing.
_FUZZ_ARTIFACTS = tempfile.TemporaryDirectory(prefix="shipyard-fuzz-")
FUZZ_APP = create_app(Settings.resolve(env={}, tracking_uri="sqlite://", artifact_uri=_FUZZ_ARTIFACTS.name,
                                       server_allowed_hosts="testserver", server_max_body_bytes=MAX_BODY))
fuzz_schema = schemathesis.openapi.from_asgi("/openapi.json", FUZZ_APP)


@pytest.fixture(scope="module")
def fuzz_app() -> Iterator[FastAPI]:
    yield FUZZ_APP
    FUZZ_APP.state.client.close()
    _FUZZ_ARTIFACTS.cleanup()


def envelope_on_errors(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Every error the fuzzer provokes has the pinned envelope too."""
    if response.status_code >= 400:
        body = json.loads(response.content)
        assert ENVELOPE_KEYS <= set(body) <= ENVELOPE_KEYS | {"details"}, body
        assert response.headers["x-content-type-options"] == ["nosniff"]


@fuzz_schema.parametrize()
@settings(max_examples=30, derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_fuzzed_requests_never_5xx(case: schemathesis.Case, fuzz_app: FastAPI) -> None:
    case.call_and_validate(checks=[not_a_server_error, envelope_on_errors])
