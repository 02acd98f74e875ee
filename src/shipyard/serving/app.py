"""The serving app: a small Starlette (not FastAPI) ASGI app answering predictions for its models;
its POST prediction routes skip Starlette's routing and middleware (:mod:`.fast_path`).

Routes::

    GET  /v2/health/live   /v2/health/ready   /ping   /health   /metrics   /v2   /v1/models
    POST /v1/models/{name}/predict                                  native
    GET  /v2/models/{name}[/versions/{version}][/ready]             Open Inference Protocol
    POST /v2/models/{name}[/versions/{version}]/infer
    POST /invocations                                               MLflow scoring

:func:`create_serving_app` takes the models already loaded, or a function that loads them: that
one runs in a thread when the app starts, so the process answers ``/v2/health/live`` at once and
``/v2/health/ready`` (503 until then) once every model is in memory. Each model gets one
:class:`~shipyard.serving.batcher.Batcher`; shutdown (uvicorn's, on SIGTERM) waits for in-flight
requests, then lets every batcher finish what it holds.

A request is decoded and checked (signature, missing values) on its own before it joins a batch;
bodies over 64 KiB are decoded in a worker thread so a large one does not stall the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shipyard._version import __version__
from shipyard.errors import InvalidInput, MethodNotAllowed, NotFound, NotReady, RequestTooLarge, ShipyardError
from shipyard.serving import oip, protocols
from shipyard.serving.access import AccessMiddleware, request_id_of
from shipyard.serving.batcher import Batcher, BatcherClosed
from shipyard.serving.encoding import prediction_ids
from shipyard.serving.fast_path import ServingApp
from shipyard.serving.metrics import CONTENT_TYPE, UNKNOWN, ServingMetrics
from shipyard.serving.models import ModelSet, ServedModel, row_count, settle_heap
from shipyard.serving.responses import error_response, json_response

if TYPE_CHECKING:
    from shipyard.serving.guard import ServingGuard

__all__ = ["DEFAULT_MAX_BODY_BYTES", "INLINE_BODY_BYTES", "Serving", "create_serving_app", "http_error", "serving_app"]

log = logging.getLogger("shipyard.serving")
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
# Bodies up to this size are decoded on the event loop: a thread hop costs more than parsing them.
INLINE_BODY_BYTES = 64 * 1024

ModelsOrLoader = Sequence[ServedModel] | Callable[[], Sequence[ServedModel]]


class Serving:
    """The app's state: the models (once loaded), their batchers, the metrics."""

    def __init__(self, served: ModelsOrLoader, *, max_batch_size: int, max_wait_ms: float, max_body_bytes: int,
                 metrics_dir: str | None) -> None:
        self.max_batch_size = max_batch_size
        self.max_wait_ms = max_wait_ms
        self.max_body_bytes = max_body_bytes
        self.metrics = ServingMetrics(metrics_dir)
        self.models: ModelSet | None = None
        self.load_error: str | None = None
        self.batchers: dict[ServedModel, Batcher] = {}
        self._loader: Callable[[], Sequence[ServedModel]] | None = None
        if callable(served):
            self._loader = served
        else:
            self._install(served)

    def _install(self, served: Sequence[ServedModel]) -> None:
        models = ModelSet(served)
        self.batchers = {m: self._batcher(m) for m in models}
        self.models = models
        settle_heap()

    def _batcher(self, served: ServedModel) -> Batcher:
        def on_batch(rows: int, requests: int, seconds: float) -> None:
            self.metrics.observe_batch(served.name, served.version, rows, requests, seconds)

        return served.batcher(max_batch_size=self.max_batch_size, max_wait_ms=self.max_wait_ms, on_batch=on_batch,
                              name=served.name)

    async def load(self) -> None:
        """Run the loader (in a thread); the app is ready when it returns."""
        if self.models is not None:
            if any(b.closed for b in self.batchers.values()):  # started again after a shutdown (tests)
                self.batchers = {m: self._batcher(m) for m in self.models}
            return
        if self._loader is None:
            return
        started = time.perf_counter()
        try:
            self._install(await asyncio.to_thread(self._loader))
        except Exception as exc:
            self.load_error = str(exc) if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"
            log.exception("loading the models failed; this process will not become ready")
            return
        assert self.models is not None
        log.info("ready in %.1fs: serving %s", time.perf_counter() - started, self.models.describe())

    async def close(self) -> None:
        await asyncio.gather(*(b.close() for b in self.batchers.values()))

    def settle(self) -> None:
        """Hand over what answers deferred to the end of the event loop's turn (their metrics), so
        that a scrape sees every request answered before it."""
        self.metrics.flush()

    def ready_models(self) -> ModelSet:
        if self.models is None:
            raise NotReady(f"the models failed to load: {self.load_error}" if self.load_error
                           else "the models are still loading; retry when /v2/health/ready answers 200")
        return self.models

    async def read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            raise self._too_large()
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> RequestTooLarge:
        return RequestTooLarge(f"request body over the limit of {self.max_body_bytes} bytes; send smaller batches",
                               limit=self.max_body_bytes)

    async def predict(self, served: ServedModel, body: bytes, decode: Callable[[bytes], Any],
                      request_id: str, *, with_ids: bool = True) -> tuple[Any, list[str]]:
        """Decode and check one request, predict it (batched), return (predictions, prediction ids).
        ``with_ids=False``: the answer carries no ids (``/invocations``), so they are only made
        if the prediction fails (the error names them)."""
        def prepare() -> Any:
            return served.prepare(decode(body))

        data = prepare() if len(body) <= INLINE_BODY_BYTES else await asyncio.to_thread(prepare)
        rows = row_count(data)
        ids = prediction_ids(rows) if with_ids else []
        try:
            predictions = await self.batchers[served].submit(data, rows)
        except Exception as exc:
            raise predict_failure(exc, served, ids or prediction_ids(rows), request_id) from None
        return predictions, ids


def predict_failure(exc: Exception, served: ServedModel, ids: list[str], request_id: str) -> ShipyardError:
    """The error a caller gets when predicting its rows raised ``exc`` (logged here, in full)."""
    if isinstance(exc, BatcherClosed):
        return NotReady("the server is shutting down; retry on another replica")
    # The message is safe to return: no traceback, no exception text (it may quote the
    # input); the log has everything, under the same request and prediction ids.
    log.error("predict failed for model %s version %s (request_id=%s, prediction_ids=%s..%s)",
              served.name, served.version, request_id, ids[0], ids[-1], exc_info=exc)
    if isinstance(exc, ShipyardError):
        exc.details.setdefault("prediction_ids", ids)
        return exc
    return ShipyardError(f"the model failed while predicting ({type(exc).__name__}); the server log has the "
                         f"details under request id {request_id}", prediction_ids=ids)


class Call:
    """What a prediction handler resolved, for the metrics labels (None until it resolves a model)."""

    __slots__ = ("served",)

    def __init__(self) -> None:
        self.served: ServedModel | None = None


Handler = Callable[[Request, Serving, Call], Awaitable[Response]]


def _endpoint(protocol: str | None, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` with the error boundary and, for prediction routes (``protocol`` given), metrics."""

    async def endpoint(request: Request) -> Response:
        serving: Serving = request.app.state.serving
        started = time.perf_counter()
        call = Call()
        error_code = None
        oip_route = request.scope["path"].startswith("/v2/")
        try:
            response = await handler(request, serving, call)
        except ClientDisconnect:  # nobody to answer; not a server fault either
            error_code = "CLIENT_DISCONNECTED"
            response = Response(status_code=499)
        except ShipyardError as err:
            error_code = err.code
            response = error_response(err, oip=oip_route)
        except Exception:
            log.exception("unhandled error on %s %s (request_id=%s)", request.method, request.url.path,
                          request_id_of(request.scope))
            error_code = ShipyardError.code
            response = error_response(ShipyardError("internal server error; the server log has the details"),
                                      oip=oip_route)
        if protocol is not None:
            served = call.served
            serving.metrics.observe_request(served.name if served else UNKNOWN, served.version if served else UNKNOWN,
                                            protocol, response.status_code, time.perf_counter() - started, error_code)
        return response

    return endpoint


def _version_param(request: Request) -> str | None:
    return request.path_params.get("version")


# -- health and metadata ---------------------------------------------------------------------------------

async def _live(request: Request, serving: Serving, call: Call) -> Response:
    return json_response({"live": True})


async def _ready(request: Request, serving: Serving, call: Call) -> Response:
    serving.ready_models()
    return json_response({"ready": True})


async def _ping(request: Request, serving: Serving, call: Call) -> Response:
    serving.ready_models()
    return Response("\n", media_type="application/json")


async def _metrics(request: Request, serving: Serving, call: Call) -> Response:
    serving.settle()
    return Response(serving.metrics.render(), media_type=CONTENT_TYPE)


async def _server_metadata(request: Request, serving: Serving, call: Call) -> Response:
    return json_response({"name": "shipyard", "version": __version__, "extensions": []})


async def _list_models(request: Request, serving: Serving, call: Call) -> Response:
    models = serving.ready_models()
    return json_response({"models": [{"name": m.name, "version": m.version, "flavor": m.flavor} for m in models]})


async def _model_metadata(request: Request, serving: Serving, call: Call) -> Response:
    models = serving.ready_models()
    served = models.get(request.path_params["name"], _version_param(request))
    return json_response(oip.model_metadata(served, models.versions(served.name)))


async def _model_ready(request: Request, serving: Serving, call: Call) -> Response:
    served = serving.ready_models().get(request.path_params["name"], _version_param(request))
    return json_response({"name": served.name, "version": served.version, "ready": True})


# -- predictions -------------------------------------------------------------------------------------------

async def _native(request: Request, serving: Serving, call: Call) -> Response:
    served = call.served = serving.ready_models().get(request.path_params["name"])
    body = await serving.read_body(request)
    predictions, ids = await serving.predict(served, body, protocols.decode_native, request_id_of(request.scope))
    return json_response(protocols.encode_native(served.name, served.version, predictions, ids))


async def _infer(request: Request, serving: Serving, call: Call) -> Response:
    served = call.served = serving.ready_models().get(request.path_params["name"], _version_param(request))
    if oip.BINARY_HEADER in request.headers:
        raise InvalidInput(oip.BINARY_REFUSED)
    body = await serving.read_body(request)
    given: list[Any] = [None, None]

    def decode(raw: bytes) -> Any:
        data, given[0], given[1] = oip.decode_infer_request(raw, served)
        return data

    request_id = request_id_of(request.scope)
    predictions, ids = await serving.predict(served, body, decode, request_id)
    return json_response(oip.encode_infer(served, predictions, ids, given[0] or request_id, given[1]))


async def _invocations(request: Request, serving: Serving, call: Call) -> Response:
    served = call.served = serving.ready_models().default
    body = await serving.read_body(request)
    content_type = request.headers.get("content-type")
    predictions, _ = await serving.predict(served, body, lambda raw: protocols.decode_mlflow(raw, content_type),
                                           request_id_of(request.scope), with_ids=False)
    return json_response(protocols.encode_mlflow(predictions))


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    oip_route = request.url.path.startswith("/v2/")
    if exc.status_code == 404:
        return error_response(NotFound(f"no such route: {request.method} {request.url.path}"), oip=oip_route)
    if exc.status_code == 405:
        response = error_response(MethodNotAllowed(f"method {request.method} is not allowed on {request.url.path}"),
                                  oip=oip_route)
        response.headers.update(exc.headers or {})
        return response
    return error_response(ShipyardError(str(exc.detail)), oip=oip_route)


@dataclass(frozen=True, slots=True)
class Handlers:
    """The handlers a serving app brings; health and metadata routes not listed here are shared."""

    ready: Handler
    ping: Handler
    model_ready: Handler
    native: Handler
    infer: Handler
    invocations: Handler


def serving_routes(h: Handlers, *, versioned: bool) -> list[Route]:
    """The routes every serving app answers; ``versioned`` adds ``/v2/models/{name}/versions/…``
    (a deployment chooses the version itself, so it leaves them out)."""

    def route(path: str, name: str, handler: Handler, method: str, protocol: str | None = None) -> Route:
        # The name is what the permission table of serving with --auth declares (serving/guard.py).
        return Route(path, _endpoint(protocol, handler), methods=[method], name=name)

    routes = [
        route("/v2/health/live", "health_live", _live, "GET"),
        route("/v2/health/ready", "health_ready", h.ready, "GET"),
        route("/ping", "ping", h.ping, "GET"),
        route("/health", "health", h.ping, "GET"),
        route("/metrics", "metrics", _metrics, "GET"),
        route("/v2", "server_metadata", _server_metadata, "GET"),
        route("/v1/models", "list_models", _list_models, "GET"),
        route("/v1/models/{name}/predict", "predict", h.native, "POST", "native"),
        route("/v2/models/{name}", "model_metadata", _model_metadata, "GET"),
        route("/v2/models/{name}/ready", "model_ready", h.model_ready, "GET"),
        route("/v2/models/{name}/infer", "infer", h.infer, "POST", "v2"),
    ]
    if versioned:
        routes += [
            route("/v2/models/{name}/versions/{version}", "version_metadata", _model_metadata, "GET"),
            route("/v2/models/{name}/versions/{version}/ready", "version_ready", h.model_ready, "GET"),
            route("/v2/models/{name}/versions/{version}/infer", "version_infer", h.infer, "POST", "v2"),
        ]
    return [*routes, route("/invocations", "invocations", h.invocations, "POST", "mlflow")]


def create_serving_app(served: ModelsOrLoader, *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                       max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_dir: str | None = None,
                       load_before_serving: bool = False, guard: ServingGuard | None = None) -> ServingApp:
    """The ASGI app serving ``served``: loaded models, or a function (run in a thread at startup)
    returning them. ``max_batch_size`` rows / ``max_wait_ms`` bound each batch (1 or 0 turn
    batching off); bodies over ``max_body_bytes`` get 413. ``metrics_dir``: the
    ``PROMETHEUS_MULTIPROC_DIR`` shared by worker processes, if any.

    A loader runs in the background by default: the server answers at once, liveness 200 and
    readiness 503 until the models are in. ``load_before_serving=True`` makes startup wait for it
    instead (a failed load fails startup), so the server accepts no connection before it can
    predict: what worker processes sharing one listening socket need, since a request must never
    reach a worker that is still loading while its siblings report ready.

    ``guard``: who may call which route (``shipyard serve --auth``); without it every caller may
    call every route, and nothing is checked per request."""
    if max_body_bytes < 1:
        raise InvalidInput("max_body_bytes must be at least 1")
    serving = Serving(served, max_batch_size=max_batch_size, max_wait_ms=max_wait_ms,
                      max_body_bytes=max_body_bytes, metrics_dir=metrics_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if load_before_serving:
            await serving.load()
            if serving.models is None:
                raise NotReady(f"the models failed to load: {serving.load_error}")
        # Otherwise loading runs in the background so that liveness answers while a large model loads.
        loading = asyncio.get_running_loop().create_task(serving.load())
        try:
            yield
        finally:
            if not loading.done():
                loading.cancel()
            await serving.close()
            if guard is not None:
                await asyncio.to_thread(guard.close)

    routes = serving_routes(Handlers(_ready, _ping, _model_ready, _native, _infer, _invocations), versioned=True)
    return serving_app(routes, serving, guard, lifespan)


def serving_app(routes: Sequence[BaseRoute], serving: Serving, guard: ServingGuard | None,
                lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[None]]) -> ServingApp:
    """The ASGI app of ``routes``: every route behind ``guard`` when there is one, else the
    prediction routes on the fast path (:mod:`shipyard.serving.fast_path`)."""
    app = ServingApp(routes=routes if guard is None else guard.protect(routes), fast=guard is None,
                     exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.state.serving = serving
    app.state.guard = guard
    app.add_middleware(AccessMiddleware)
    return app
