"""PrefixRouter: requests outside a router's prefixes skip its routes; inside, routing is FastAPI's."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from shipyard.server.routing import PrefixRouter
from shipyard.testing import ASGITransport


def _app() -> tuple[FastAPI, PrefixRouter]:
    app = FastAPI()
    runs = PrefixRouter(prefix="/api/v1/runs")
    runs.add_api_route("/{run_id}", lambda run_id: {"run": run_id}, methods=["GET"])
    both = PrefixRouter(prefixes=("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"))
    for ui in ("/api", "/ajax-api"):
        both.add_api_route(f"{ui}/2.0/mlflow/runs/get", lambda: {"mlflow": True}, methods=["GET"])
    app.include_router(runs)
    app.include_router(both)
    return app, runs


def test_requests_reach_routes_inside_the_prefixes() -> None:
    app, _ = _app()
    transport = ASGITransport(app)
    with transport, httpx.Client(base_url="http://testserver", transport=transport) as http:
        assert http.get("/api/v1/runs/abc").json() == {"run": "abc"}
        assert http.get("/api/2.0/mlflow/runs/get").json() == {"mlflow": True}
        assert http.get("/ajax-api/2.0/mlflow/runs/get").json() == {"mlflow": True}
        assert http.post("/api/v1/runs/abc").status_code == 405  # the path is known, the method not
        assert http.get("/api/v1/nothing").status_code == 404


def test_a_path_outside_the_prefixes_is_turned_away_before_any_route() -> None:
    app, runs = _app()
    tried: list[str] = []
    route = runs.routes[0]
    original = route.matches

    def spy(scope):
        tried.append(scope["path"])
        return original(scope)

    route.matches = spy  # type: ignore[method-assign]
    transport = ASGITransport(app)
    with transport, httpx.Client(base_url="http://testserver", transport=transport) as http:
        assert http.get("/api/2.0/mlflow/runs/get").status_code == 200
        assert tried == []  # the runs router was skipped whole
        assert http.get("/api/v1/runs/abc").status_code == 200
    assert "/api/v1/runs/abc" in tried


def test_a_prefix_router_needs_a_prefix() -> None:
    with pytest.raises(ValueError, match="prefix"):
        PrefixRouter()
