"""The server's app factory: HTTP in, domain call, HTTP out.

``create_app`` wires the routers, the one error renderer, the request guard (hosts,
permissions, content types, body size) and Prometheus metrics around a tracking
:class:`~shipyard.tracking.client.Client` built from the settings.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.monitoring.prometheus import MonitorCollector
from shipyard.server.errors import install_error_handlers
from shipyard.server.mlflow_compat.routes import build_routers as mlflow_routers
from shipyard.server.observability import MetricsMiddleware, ServerMetrics
from shipyard.server.permissions import authorize
from shipyard.server.routers import (
    artifacts,
    datasets,
    deployments,
    experiments,
    lineage,
    logged_models,
    meta,
    models,
    monitors,
    runs,
)
from shipyard.server.security import RequestGuard
from shipyard.server.ui import routers as ui_routers
from shipyard.tracking.client import Client

ROUTERS = (meta.router, experiments.router, runs.router, artifacts.router, models.router,
           models.versions_router, datasets.router, lineage.router, logged_models.router, logged_models.runs_router,
           deployments.router, monitors.router)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    """Build the server for ``settings`` (default: resolved from the environment)."""
    settings = settings or (client.settings if client is not None else Settings.resolve())
    app = FastAPI(title="Shipyard", version=__version__, summary="Native REST API of the Shipyard server",
                  dependencies=[Depends(authorize)], generate_unique_id_function=lambda route: route.name,
                  openapi_url=None, docs_url=None, redoc_url=None,  # served by meta.router, guarded
                  redirect_slashes=False)
    app.state.settings = settings
    app.state.client = client or Client(settings=settings)
    app.state.metrics = ServerMetrics()
    app.state.metrics.registry.register(MonitorCollector(lambda: app.state.client.store))
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    for router in mlflow_routers():
        app.include_router(router)
    for router in ui_routers():
        app.include_router(router)
    # Added last = outermost: metrics see every response, CORS answers preflights before the guard.
    app.add_middleware(RequestGuard, allowed_hosts=_split(settings.server_allowed_hosts),
                       max_body_bytes=settings.server_max_body_bytes)
    origins = _split(settings.server_cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` workers: every setting comes from SHIPYARD_* variables."""
    return create_app(Settings.resolve())
