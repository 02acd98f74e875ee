"""The server's app factory: HTTP in, domain call, HTTP out.

``create_app`` wires the routers, the one error renderer, the request guard (hosts,
permissions, content types, body size, security headers), with ``--auth`` the sign-in of
each request and the audit log, and Prometheus metrics around a tracking
:class:`~shipyard.tracking.client.Client` built from the settings.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from shipyard._version import __version__
from shipyard.config import Settings
from shipyard.errors import InvalidInput, MissingDependency
from shipyard.monitoring.prometheus import MonitorCollector
from shipyard.monitoring.scheduler import MONITOR_PRINCIPAL, MonitorScheduler
from shipyard.server.audit import AuditMiddleware
from shipyard.server.authentication import BOOTSTRAP_HASH_ENV, Authenticator
from shipyard.server.errors import install_error_handlers
from shipyard.server.mlflow_compat.routes import build_routers as mlflow_routers
from shipyard.server.observability import MetricsMiddleware, ServerMetrics
from shipyard.server.permissions import authorize
from shipyard.server.routers import (
    artifacts,
    auth,
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

if TYPE_CHECKING:
    from shipyard.server.oidc import OidcClient

ROUTERS = (meta.router, experiments.router, runs.router, artifacts.router, models.router,
           models.versions_router, datasets.router, lineage.router, logged_models.router, logged_models.runs_router,
           deployments.router, monitors.router, auth.router)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Each worker runs due monitors in the background; the monitors' database lease, not this
    process, makes sure each window is evaluated once whatever the number of workers."""
    settings: Settings = app.state.settings
    scheduler = None
    if app.state.schedule_monitors and settings.server_run_monitors:
        # As its own principal: without one the server's client records the process's OS login.
        scheduler = MonitorScheduler(lambda: app.state.client.acting_as(MONITOR_PRINCIPAL).monitors,
                                     settings.server_monitor_interval_seconds)
        scheduler.start()
    app.state.monitor_scheduler = scheduler
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.stop()


def create_app(settings: Settings | None = None, *, client: Client | None = None,
               bootstrap_hash: str | None = None, schedule_monitors: bool = False) -> FastAPI:
    """Build the server for ``settings`` (default: resolved from the environment). With
    ``settings.server_auth``, requests sign in and are audited; ``bootstrap_hash`` is the hash of
    the one-time code that creates the first admin (:func:`~shipyard.server.authentication.bootstrap_code_hash`).
    ``schedule_monitors`` runs due monitors in the background while the app's lifespan lasts
    (``shipyard server`` turns it on; an app embedded in tests or tools, whose lifespan may never
    be shut down before its store is closed, leaves it off)."""
    settings = settings or (client.settings if client is not None else Settings.resolve())
    app = FastAPI(title="Shipyard", version=__version__, summary="Native REST API of the Shipyard server",
                  dependencies=[Depends(authorize)], generate_unique_id_function=lambda route: route.name,
                  openapi_url=None, docs_url=None, redoc_url=None,  # served by meta.router, guarded
                  redirect_slashes=False, lifespan=_lifespan)
    app.state.settings = settings
    app.state.oidc = single_sign_on(settings)  # before the store opens: a wrong setting leaks nothing
    app.state.schedule_monitors = schedule_monitors
    app.state.client = client or Client(settings=settings)
    app.state.authenticator = _authenticator(app.state.client, bootstrap_hash) if settings.server_auth else None
    app.state.metrics = ServerMetrics()
    app.state.metrics.registry.register(MonitorCollector(lambda: app.state.client.store))
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    for router in mlflow_routers():
        app.include_router(router)
    for router in ui_routers():
        app.include_router(router)
    # Added last = outermost: metrics see every response, the audit log sees the guard's refusals
    # of mutating requests too, CORS answers preflights before the guard.
    app.add_middleware(RequestGuard, allowed_hosts=_split(settings.server_allowed_hosts),
                       max_body_bytes=settings.server_max_body_bytes)
    origins = _split(settings.server_cors_origins)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    if app.state.authenticator is not None:
        app.add_middleware(AuditMiddleware, record=app.state.authenticator.store.record_audit)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    return app


def _authenticator(client: Client, bootstrap_hash: str | None) -> Authenticator:
    auth_store = getattr(client.store, "auth", None)
    if auth_store is None:
        raise InvalidInput(f"--auth needs a SQL tracking store that keeps users (sqlite:// or postgresql://), "
                           f"not {client.settings.tracking_uri}")
    return Authenticator(auth_store, bootstrap_hash=bootstrap_hash)


def single_sign_on(settings: Settings) -> OidcClient | None:
    """The OpenID Connect client of ``settings`` (``None``: single sign-on is off). Raises
    ``InvalidInput`` for a wrong setting or without ``--auth``, ``MissingDependency`` without authlib."""
    if not settings.server_oidc_issuer.strip():
        return None
    if not settings.server_auth:
        raise InvalidInput("single sign-on (SHIPYARD_SERVER_OIDC_ISSUER) signs users in: start the server with --auth "
                           "(SHIPYARD_SERVER_AUTH=true), or unset SHIPYARD_SERVER_OIDC_ISSUER")
    try:
        from shipyard.server.oidc import OidcClient, OidcConfig
    except ImportError as err:
        raise MissingDependency(f"single sign-on needs authlib ({err}): pip install 'shipyard-mlops[oidc]'") from None
    config = OidcConfig.from_settings(settings)
    assert config is not None
    return OidcClient(config)


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` workers: every setting comes from SHIPYARD_* variables
    (and the bootstrap code's hash from its own, which is no setting)."""
    return create_app(Settings.resolve(), bootstrap_hash=os.environ.get(BOOTSTRAP_HASH_ENV), schedule_monitors=True)
