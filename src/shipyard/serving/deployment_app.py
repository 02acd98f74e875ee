"""The HTTP side of deployment mode: the routes of :func:`create_deployment_app`.

The health, metadata and metrics routes are the serving app's own; the three prediction routes
lease a version from :class:`~shipyard.serving.deployment.DeploymentServing` for the request,
answer with the version in the body and in the ``x-shipyard-model-version`` header, and leave
the shadows and the prediction log to it. ``/v2/models/{name}/versions/{version}`` routes are
not served here: the deployment, not the caller, chooses the version.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from shipyard.errors import InvalidInput, NotReady
from shipyard.predictions.writer import PredictionLogger, feedback_route
from shipyard.serving import oip, protocols
from shipyard.serving.access import request_id_of
from shipyard.serving.app import DEFAULT_MAX_BODY_BYTES, Call, Handlers, serving_app, serving_routes
from shipyard.serving.deployment import (
    DEFAULT_POLL_SECONDS,
    ROUTING_KEY_HEADER,
    VERSION_HEADER,
    DeploymentServing,
    OnPredictions,
)
from shipyard.serving.fast_path import ServingApp
from shipyard.serving.models import ServedModel
from shipyard.serving.responses import json_response

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.deploy.rollout import DeploymentService
    from shipyard.models.registry import RegistryService
    from shipyard.serving.guard import ServingGuard

__all__ = ["HasDeploymentServices", "create_deployment_app"]


class HasDeploymentServices(Protocol):
    """What hands out the services deployment mode reads through: the SDK's ``Client``."""

    @property
    def registry(self) -> RegistryService: ...

    @property
    def deployments(self) -> DeploymentService: ...

    def flush(self) -> None: ...


# -- handlers ----------------------------------------------------------------------------------------------

def _answered(served: ServedModel, payload: Any) -> Response:
    return json_response(payload, headers={VERSION_HEADER: served.version})


def _key(request: Request) -> str | None:
    return request.headers.get(ROUTING_KEY_HEADER) or None


async def _ready(request: Request, serving: DeploymentServing, call: Call) -> Response:
    try:
        serving.current()
    except NotReady as err:
        err.details.update(serving.health())
        raise
    return json_response({"ready": True, **serving.health()})


async def _ping(request: Request, serving: DeploymentServing, call: Call) -> Response:
    serving.current()
    return Response("\n", media_type="application/json")


async def _model_ready(request: Request, serving: DeploymentServing, call: Call) -> Response:
    served = serving.ready_models().get(request.path_params["name"])
    return json_response({"name": served.name, "version": served.version, "ready": True})


async def _native(request: Request, serving: DeploymentServing, call: Call) -> Response:
    started = time.perf_counter()
    with serving.lease(request.path_params["name"], _key(request)) as held:
        served = call.served = held.version.served
        body = await serving.read_body(request)
        predictions, ids = await serving.predict_routed(held, body, protocols.decode_native,
                                                        request_id_of(request.scope), started)
    return _answered(served, protocols.encode_native(served.name, served.version, predictions, ids))


async def _infer(request: Request, serving: DeploymentServing, call: Call) -> Response:
    started = time.perf_counter()
    request_id = request_id_of(request.scope)
    given: list[Any] = [None, None]
    if oip.BINARY_HEADER in request.headers:
        raise InvalidInput(oip.BINARY_REFUSED)
    with serving.lease(request.path_params["name"], _key(request)) as held:
        served = call.served = held.version.served

        def decode(raw: bytes) -> Any:
            data, given[0], given[1] = oip.decode_infer_request(raw, served)
            return data

        body = await serving.read_body(request)
        predictions, ids = await serving.predict_routed(held, body, decode, request_id, started)
    return _answered(served, oip.encode_infer(served, predictions, ids, given[0] or request_id, given[1]))


async def _invocations(request: Request, serving: DeploymentServing, call: Call) -> Response:
    started = time.perf_counter()
    content_type = request.headers.get("content-type")
    with serving.lease(None, _key(request)) as held:
        served = call.served = held.version.served
        body = await serving.read_body(request)
        predictions, _ = await serving.predict_routed(
            held, body, lambda raw: protocols.decode_mlflow(raw, content_type), request_id_of(request.scope), started)
    return _answered(served, protocols.encode_mlflow(predictions))


def create_deployment_app(client: HasDeploymentServices, name: str, *, poll_seconds: float = DEFAULT_POLL_SECONDS,
                          on_predictions: OnPredictions | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                          metrics_dir: str | None = None, prime: bool = False,
                          load_before_serving: bool = False, prediction_log: ArtifactStore | None = None,
                          guard: ServingGuard | None = None) -> ServingApp:
    """The ASGI app serving deployment ``name`` from ``client``'s store, following its changes
    every ``poll_seconds``. ``on_predictions(records)``: called with the prediction-log records of
    each answer (see the module docstring). ``prime=True`` loads the deployment now, in this
    thread (``NotFound`` for a missing one); else it loads at startup, in the background (liveness
    200, readiness 503 meanwhile) or, with ``load_before_serving=True``, before startup returns
    (a failed load fails startup: what worker processes sharing a socket need). The caller keeps
    ownership of ``client``. ``prediction_log``: the artifact store to keep every prediction in
    (a :class:`~shipyard.predictions.writer.PredictionLogger` fed by the answers, flushed at
    shutdown) and to take ``POST /v1/feedback`` into; ``on_predictions`` is then not given.
    ``guard``: who may call which route (``shipyard deploy run --auth``); none: anyone, unchecked."""
    if max_body_bytes < 1:
        raise InvalidInput("max_body_bytes must be at least 1")
    if prediction_log is not None and on_predictions is not None:
        raise InvalidInput("give prediction_log or on_predictions, not both")
    from shipyard.models.registry import as_registry

    serving = DeploymentServing(as_registry(client), client.deployments, name, poll_seconds=poll_seconds,
                                on_predictions=on_predictions, max_body_bytes=max_body_bytes, metrics_dir=metrics_dir)
    logger = None
    if prediction_log is not None:
        # Drops are counted in the app's registry, so /metrics shows them.
        logger = PredictionLogger(prediction_log, registry=serving.metrics.registry)
        serving.on_predictions = logger.record
    if prime:
        try:
            serving.prime()
        except BaseException:
            serving.remove_files()
            raise

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if load_before_serving:
            await serving.load()
            if serving.table is None:
                await serving.close()
                raise NotReady(f"deployment {name!r} failed to load: {serving.load_error}")
            loading = None
        else:
            loading = asyncio.get_running_loop().create_task(serving.load())
        try:
            yield
        finally:
            if loading is not None and not loading.done():
                loading.cancel()
            await serving.close()
            if logger is not None:  # after the last answer: everything answered is logged
                await asyncio.to_thread(logger.close)
            if guard is not None:
                await asyncio.to_thread(guard.close)
            serving.remove_files()

    # The handlers take the DeploymentServing that is this app's Serving.
    handlers = Handlers(_ready, _ping, _model_ready, _native, _infer, _invocations)  # type: ignore[arg-type]
    routes = [*serving_routes(handlers, versioned=False),
              *([feedback_route(logger, deployment=name)] if logger is not None else [])]
    return serving_app(routes, serving, guard, lifespan)
