from __future__ import annotations

import platform

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from shipyard._version import __version__
from shipyard.server.responses import json_response

router = APIRouter(tags=["meta"])


@router.get("/health", name="health", summary="Liveness and store reachability")
def health(request: Request) -> Response:
    # A cheap query: is the store there? The store itself, not client(request): health is public,
    # and answers the same to everyone (it reads no one's data and says nothing of it).
    request.app.state.client.store.experiments.get("0")
    return json_response({"status": "ok"})


@router.get("/version", name="version", summary="Server and API version")
def version() -> Response:
    return json_response({"version": __version__, "api": "v1", "python": platform.python_version()})


@router.get("/metrics", name="prometheus_metrics", summary="Prometheus metrics of the server")
def prometheus_metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/openapi.json", name="openapi", include_in_schema=False)
def openapi(request: Request) -> Response:
    return json_response(request.app.openapi())


@router.get("/docs", name="api_docs", include_in_schema=False)
def api_docs() -> Response:
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Shipyard API")
