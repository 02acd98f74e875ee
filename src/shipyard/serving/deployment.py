"""Serving a deployment (``shipyard deploy run NAME``): its routes split traffic, its shadows see
every request, and the process follows the deployment's changes while it serves.

The app answers under the deployment's name (``/v1/models/churn-api/predict``,
``/v2/models/churn-api/infer``, ``/invocations``). Each request is routed by the deployment's
:class:`~shipyard.deploy.traffic.TrafficSplit`: sticky by the ``x-shipyard-routing-key`` header
when the caller sends one, else drawn at random by weight. The version that answered is in the
body (``version`` / ``model_version``, spelled ``MODEL/VERSION``: a canary may come from another
registered model) and in the ``x-shipyard-model-version`` header.

What a revision serves is one immutable :class:`~shipyard.serving.routing_table.RoutingTable`. A
request takes the current table when it starts and *leases* the version it was routed to and every
shadow; a background task polls the store every ``poll_seconds`` and, when the revision changes,
loads the versions it does not hold yet (in a thread, digests verified), then swaps the table in
one assignment. Requests already running finish on the versions they leased; a version the new
table no longer uses is released (its batcher closed, its files removed) once its last lease is
returned. A revision that fails to load leaves the previous one serving; the error is logged and
shown by ``/v2/health/ready``, and the load is retried with a growing delay.

Shadows get each request after the caller's answer is computed, in background tasks off the
caller's path; their answers go to the prediction log only. A shadow that raises, or is slow, costs
the caller nothing: at most :data:`~shipyard.serving.routing_table.SHADOW_BACKLOG` requests wait per
shadow, later ones are dropped and counted.

``on_predictions(records)`` (the prediction logger's ``record``) is called on the event loop after
each answered request with one dict per row, and once more per shadow answer (role ``shadow``,
the caller's prediction ids). It must not block; anything it raises is logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.deploy.traffic import TrafficSplit
from shipyard.entities import Batching, Deployment, DeploymentStatus, ModelRef
from shipyard.errors import InvalidInput, NotFound, NotReady, ShipyardError
from shipyard.serving.app import (
    DEFAULT_MAX_BODY_BYTES,
    INLINE_BODY_BYTES,
    Serving,
    predict_failure,
)
from shipyard.serving.encoding import jsonable, prediction_ids
from shipyard.serving.metrics import DeploymentMetrics
from shipyard.serving.models import ModelSet, ServedModel, row_count, settle_heap
from shipyard.serving.routing_table import HeldVersion, Lease, RoutingTable
from shipyard.serving.tables import TableRows

if TYPE_CHECKING:
    from shipyard.deploy.rollout import DeploymentService
    from shipyard.models.registry import RegistryService

__all__ = ["DEFAULT_POLL_SECONDS", "ROUTING_KEY_HEADER", "VERSION_HEADER", "DeploymentServing", "OnPredictions",
           "RoutingTable"]

log = logging.getLogger("shipyard.serving")

ROUTING_KEY_HEADER = "x-shipyard-routing-key"
VERSION_HEADER = "x-shipyard-model-version"
DEFAULT_POLL_SECONDS = 2.0
_MAX_RETRY_SECONDS = 60.0

OnPredictions = Callable[[list[dict[str, Any]]], Any]


class DeploymentServing(Serving):
    """The app's state in deployment mode: the current routing table and the loop that follows
    the deployment in the store: it reads the deployment through ``deployments`` and the model
    packages it names through ``registry``."""

    def __init__(self, registry: RegistryService, deployments: DeploymentService, name: str, *,
                 poll_seconds: float = DEFAULT_POLL_SECONDS, on_predictions: OnPredictions | None = None,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, metrics_dir: str | None = None) -> None:
        if poll_seconds <= 0:
            raise InvalidInput("poll_seconds must be above 0")
        defaults = Batching()
        super().__init__(list, max_batch_size=defaults.max_batch_size, max_wait_ms=defaults.max_wait_ms,
                         max_body_bytes=max_body_bytes, metrics_dir=metrics_dir)
        self._loader = None
        self.registry = registry
        self.deployments = deployments
        self.name = name
        self.poll_seconds = poll_seconds
        self.on_predictions = on_predictions
        self.deployment_metrics = DeploymentMetrics(self.metrics.registry)
        self.table: RoutingTable | None = None
        self.deleted = False
        self.last_error: dict[str, Any] | None = None  # the latest failed load or poll, for readiness
        self._loaded: dict[tuple[ModelRef, Batching], HeldVersion] = {}
        self._scratch = Path(tempfile.mkdtemp(prefix="shipyard-deploy-"))
        self._follower: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._failed_revision: int | None = None
        self._retry_at = 0.0
        self._failures = 0
        self._log_pending: list[Callable[[], list[dict[str, Any]]]] = []

    # -- loading and swapping --------------------------------------------------------------------------
    def prime(self) -> Deployment:
        """Read the deployment and load what it serves, in the calling thread (before serving).
        Raises ``NotFound`` for a missing deployment, and whatever loading a version raises."""
        deployment = self.deployments.get(self.name)
        self._install(deployment, self._load_missing(deployment, set()))
        settle_heap()
        return deployment

    def _load_missing(self, deployment: Deployment, held: set[ModelRef]) -> dict[ModelRef, tuple[ServedModel, Path]]:
        """Load every version of ``deployment`` not in ``held`` (runs in a thread)."""
        loaded: dict[ModelRef, tuple[ServedModel, Path]] = {}
        try:
            for ref in deployment.versions:
                if ref in held or ref in loaded:
                    continue
                loaded[ref] = self._load_version(ref)
        except BaseException:
            for _, folder in loaded.values():
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return loaded

    def _load_version(self, ref: ModelRef) -> tuple[ServedModel, Path]:
        from shipyard.models.package import load_model_folder

        started = time.perf_counter()
        folder = self._scratch / f"{ref.model}-{ref.version}-{uuid.uuid4().hex[:8]}"
        folder = self.registry.download_model(ref.uri, folder)
        served = ServedModel(self.name, str(ref), load_model_folder(folder), uri=ref.uri, path=folder)
        log.info("deployment %s: loaded %s (%s) in %.2fs", self.name, ref, served.flavor,
                 time.perf_counter() - started)
        return served, folder

    # Serving calls its own _install only for a loader, and this class never keeps one.
    def _install(self, deployment: Deployment,  # type: ignore[override]
                 loaded: Mapping[ModelRef, tuple[ServedModel, Path]]) -> None:
        """Build the table of ``deployment`` from the versions held and ``loaded``, and swap it in."""
        batching = deployment.batching
        split = TrafficSplit.of(deployment)

        def version(ref: ModelRef) -> HeldVersion:
            held = self._loaded.get((ref, batching))
            if held is None:
                if ref in loaded:
                    served, folder = loaded[ref]
                else:  # loaded already, under other batching settings: share the model, not the batcher
                    served, folder = next(v.served for k, v in self._loaded.items() if k[0] == ref), None
                held = self._loaded[(ref, batching)] = HeldVersion(ref, served, batching, folder, self._on_batch(ref))
            held.retired = False
            return held

        routes = tuple(version(r.ref) for r in deployment.routes)
        table = RoutingTable(deployment, split, routes, tuple(version(s) for s in deployment.shadows))
        previous, self.table = self.table, table
        self.models = table.models
        self.deleted, self.load_error = False, None
        self.deployment_metrics.revision.labels(self.name).set(deployment.revision)
        in_use = {v.key for v in table.versions}
        for held in list(self._loaded.values()):
            if held.key not in in_use:
                held.retired = True
                self._release_if_idle(held)
        if previous is None:
            log.info("deployment %s revision %d: serving %s", self.name, deployment.revision, _summary(deployment))
        elif previous.deployment.revision != deployment.revision:
            log.info("deployment %s: revision %d -> %d: serving %s", self.name, previous.deployment.revision,
                     deployment.revision, _summary(deployment))

    def _on_batch(self, ref: ModelRef) -> Callable[[int, int, float], None]:
        def on_batch(rows: int, requests: int, seconds: float) -> None:
            self.metrics.observe_batch(self.name, str(ref), rows, requests, seconds)

        return on_batch

    def _release_if_idle(self, held: HeldVersion) -> None:
        """Free a retired version once nobody holds it: close its batcher, forget the model, remove
        its files (unless another batching of the same version still uses them)."""
        if not held.retired or held.leases or self._loaded.get(held.key) is not held:
            return
        del self._loaded[held.key]
        shared = any(v.served is held.served for v in self._loaded.values())
        folder = None if shared else held.folder
        if shared and held.folder is not None:  # the folder now belongs to the version that stays
            next(v for v in self._loaded.values() if v.served is held.served).folder = held.folder
        log.info("deployment %s: released %s", self.name, held.ref)

        async def close() -> None:
            await held.batcher.close()
            if folder is not None:
                await asyncio.to_thread(shutil.rmtree, folder, True)

        try:
            self._spawn(close())
        except RuntimeError:  # no running loop (priming, tests): nothing queued can be left
            held.batcher._executor.shutdown(wait=False)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def refresh(self) -> None:
        """Read the deployment once; take up a new revision (loading in a thread) when it changed."""
        try:
            deployment = await asyncio.to_thread(self.deployments.get, self.name)
        except NotFound:
            if not self.deleted:
                log.error("deployment %s was deleted; answering 503 until it is created again", self.name)
            self.deleted = True
            return
        except Exception as exc:
            log.warning("deployment %s: reading it from the store failed (%s); still serving revision %s",
                        self.name, _message(exc), self.table.deployment.revision if self.table else None)
            self.last_error = {"stage": "poll", "message": _message(exc), "time": now_ms()}
            return
        if self.last_error is not None and self.last_error["stage"] == "poll":
            self.last_error = None  # the store answers again
        if self.table is not None and deployment.revision == self.table.deployment.revision and not self.deleted:
            return
        if deployment.revision == self._failed_revision and time.monotonic() < self._retry_at:
            return
        try:
            await self._take_up(deployment)
        except Exception as exc:
            self._failures = self._failures + 1 if deployment.revision == self._failed_revision else 1
            self._failed_revision = deployment.revision
            delay = min(self.poll_seconds * 2 ** (self._failures - 1), max(_MAX_RETRY_SECONDS, self.poll_seconds))
            self._retry_at = time.monotonic() + delay
            self.last_error = {"stage": "load", "revision": deployment.revision, "message": _message(exc),
                               "time": now_ms(), "retry_in_seconds": round(delay, 1)}
            self.deployment_metrics.reloads.labels(self.name, "failed").inc()
            served = self.table.deployment.revision if self.table else None
            log.error("deployment %s: loading revision %d failed; still serving revision %s (retry in %.0fs)",
                      self.name, deployment.revision, served, delay, exc_info=exc)
            return
        self._failed_revision, self._failures, self.last_error = None, 0, None
        self.deployment_metrics.reloads.labels(self.name, "ok").inc()

    async def _take_up(self, deployment: Deployment) -> None:
        """Load what ``deployment`` adds (in a thread), then swap its table in. The versions it
        keeps are leased meanwhile, so none is released while the others load."""
        wanted = set(deployment.versions)
        pinned = [v for v in self._loaded.values() if v.ref in wanted]
        for v in pinned:
            v.leases += 1
        try:
            loaded = await asyncio.to_thread(self._load_missing, deployment, {v.ref for v in pinned})
            self._install(deployment, loaded)
            if loaded:
                settle_heap()
        finally:
            for v in pinned:
                self._give_back(v)

    async def _follow(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # the follower must outlive anything; it is logged and retried
                log.exception("deployment %s: following the store failed", self.name)
            await asyncio.sleep(self.poll_seconds)

    async def load(self) -> None:
        """Startup: load the deployment (unless primed), then follow it."""
        for held in self._loaded.values():
            if held.batcher.closed:  # started again after a shutdown (tests)
                held.batcher = held.served.batcher(max_batch_size=held.batching.max_batch_size,
                                                   max_wait_ms=held.batching.max_wait_ms,
                                                   on_batch=self._on_batch(held.ref), name=str(held.ref))
        if self.table is None:
            try:
                deployment = await asyncio.to_thread(self.deployments.get, self.name)
                await self._take_up(deployment)
            except Exception as exc:
                self.load_error = _message(exc)
                log.exception("deployment %s: loading failed; retrying every %gs", self.name, self.poll_seconds)
        if self._follower is None or self._follower.done():
            self._follower = asyncio.get_running_loop().create_task(self._follow(), name="shipyard-deploy-follow")

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        await asyncio.gather(*(v.batcher.close() for v in self._loaded.values()))
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._hand_over_log()  # the last answers (shadows included), before the logger is closed

    def remove_files(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    # -- requests -----------------------------------------------------------------------------------------
    def current(self) -> RoutingTable:
        """The table to route a request with; ``NotReady`` (503) while loading, stopped or deleted."""
        table = self.table
        if table is None:
            raise NotReady(f"deployment {self.name!r} failed to load: {self.load_error}" if self.load_error
                           else f"deployment {self.name!r} is still loading; retry when /v2/health/ready answers 200")
        if self.deleted:
            raise NotReady(f"deployment {self.name!r} no longer exists (deleted); nothing is served here")
        if table.deployment.status is DeploymentStatus.STOPPED:
            raise NotReady(f"deployment {self.name!r} is stopped (revision {table.deployment.revision}); "
                           f"start it with: shipyard deploy start {self.name}", deployment=self.name,
                           revision=table.deployment.revision)
        return table

    def ready_models(self) -> ModelSet:
        return self.current().models

    @contextlib.contextmanager
    def lease(self, name: str | None, key: str | None) -> Iterator[Lease]:
        """Route one request (``name``: the model its URL names) and hold its versions meanwhile.
        Shadows the request is not handed to are given back on exit."""
        table = self.current()
        if name is not None and name != self.name:
            raise NotFound(f"no model named {name!r} is served here; served: {self.name} (deployment)",
                           served=[{"name": self.name}])
        version, role = table.pick(key)
        held = Lease(table, version, role, list(table.shadows))
        for v in (version, *held.shadows):
            v.leases += 1
        try:
            yield held
        finally:
            for v in (version, *held.shadows):
                self._give_back(v)

    def _give_back(self, held: HeldVersion) -> None:
        held.leases -= 1
        self._release_if_idle(held)

    async def predict_routed(self, held: Lease, body: bytes, decode: Callable[[bytes], Any], request_id: str,
                             started: float) -> tuple[Any, list[str]]:
        """Decode, check and predict one request on its leased version; log it, mirror it to the
        shadows; return (predictions, prediction ids)."""
        served = held.version.served

        def prepare() -> tuple[Any, Any]:
            decoded = decode(body)
            return decoded, served.prepare(decoded)

        decoded, data = prepare() if len(body) <= INLINE_BODY_BYTES else await asyncio.to_thread(prepare)
        ids = prediction_ids(row_count(data))
        try:
            predictions = await held.version.batcher.submit(data, len(ids))
        except Exception as exc:
            raise predict_failure(exc, served, ids, request_id) from None
        if self.on_predictions is not None:
            self._log(lambda: _records(self.name, held.version.ref, held.role, data, predictions, ids, request_id,
                                       started))
        for shadow in held.shadows:
            self._mirror(shadow, decoded, ids, request_id)
        return predictions, ids

    def _log(self, build: Callable[[], list[dict[str, Any]]]) -> None:
        """Queue one answer's records for ``on_predictions``; never raises into the request path.
        The answers of one turn of the event loop (a batch's callers resume together) are built
        and handed over at the end of that turn, in one call: one queue lock per batch, not per
        request."""
        self._log_pending.append(build)
        if len(self._log_pending) == 1:
            asyncio.get_running_loop().call_soon(self._hand_over_log)

    def settle(self) -> None:
        self._hand_over_log()
        super().settle()

    def _hand_over_log(self) -> None:
        builds, self._log_pending = self._log_pending, []
        if not builds or self.on_predictions is None:
            return
        records: list[dict[str, Any]] = []
        failed = 0
        for build in builds:
            try:
                records.extend(build())
            except Exception:
                failed += 1
                log.warning("deployment %s: building prediction log records failed", self.name, exc_info=True)
        try:
            if records:
                self.on_predictions(records)
        except Exception:
            failed = len(builds)
            log.warning("deployment %s: the prediction log callback failed", self.name, exc_info=True)
        if failed:
            self.deployment_metrics.log_errors.labels(self.name).inc(failed)

    def _mirror(self, shadow: HeldVersion, decoded: Any, ids: list[str], request_id: str) -> None:
        """Send the request to ``shadow`` in the background (the lease passes to that task)."""
        shadow.leases += 1  # the task's own: the request gives its lease back when it ends
        if shadow.shadow_waiting >= shadow.shadow_backlog:
            self.deployment_metrics.shadow.labels(self.name, str(shadow.ref), "dropped").inc()
            self._give_back(shadow)
            return
        shadow.shadow_waiting += 1
        try:
            self._spawn(self._shadow(shadow, decoded, ids, request_id))
        except BaseException:
            shadow.shadow_waiting -= 1
            self._give_back(shadow)
            raise

    async def _shadow(self, shadow: HeldVersion, decoded: Any, ids: list[str], request_id: str) -> None:
        started = time.perf_counter()
        try:
            data = shadow.served.prepare(decoded)
            if row_count(data) != len(ids):
                raise ShipyardError(f"the shadow's input has {row_count(data)} rows, the caller's {len(ids)}")
            predictions = await shadow.batcher.submit(data, len(ids))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.deployment_metrics.shadow.labels(self.name, str(shadow.ref), "error").inc()
            log.warning("deployment %s: shadow %s failed on request %s (%s)", self.name, shadow.ref, request_id,
                        _message(exc))
            return
        finally:
            shadow.shadow_waiting -= 1
            self._give_back(shadow)
        self.deployment_metrics.shadow.labels(self.name, str(shadow.ref), "ok").inc()
        if self.on_predictions is not None:
            self._log(lambda: _records(self.name, shadow.ref, "shadow", data, predictions, ids, request_id, started))

    def health(self) -> dict[str, Any]:
        """What ``/v2/health/ready`` says besides ready: revision, versions, the latest error."""
        table = self.table
        details: dict[str, Any] = {"deployment": self.name}
        if table is not None:
            details.update(revision=table.deployment.revision, status=table.deployment.status.value,
                           serving=table.describe())
        if self.deleted:
            details["status"] = "DELETED"
        if self.last_error is not None:
            details["last_error"] = self.last_error
        return details


def _records(deployment: str, ref: ModelRef, role: str, data: Any, predictions: Any, ids: list[str],
             request_id: str, started: float) -> list[dict[str, Any]]:
    """One prediction-log record per row."""
    now = now_ms()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    outputs = jsonable(predictions)
    if not isinstance(outputs, list) or len(outputs) != len(ids):
        outputs = [outputs] * len(ids) if len(ids) == 1 else list(outputs)
    return [{"prediction_id": pid, "time": now, "deployment": deployment, "model": ref.model,
             "version": str(ref.version), "role": role, "inputs": row, "outputs": out, "latency_ms": latency_ms,
             "request_id": request_id}
            for pid, row, out in zip(ids, _input_rows(data), outputs, strict=True)]


def _input_rows(data: Any) -> list[dict[str, Any]]:
    """The rows as the model saw them: ``{column: value}``, or ``{"input": row}`` for a tensor."""
    if isinstance(data, TableRows):  # no DataFrame per request just to log it
        return data.records()
    if hasattr(data, "columns"):
        rows: list[dict[str, Any]] = jsonable(data)
        return rows
    return [{"input": row} for row in jsonable(data)]


def _summary(d: Deployment) -> str:
    text = ", ".join(f"{r.model}/{r.version} {r.weight}%" for r in d.routes)
    if d.shadows:
        text += "; shadow " + ", ".join(str(s) for s in d.shadows)
    return text + (" [stopped]" if d.status is DeploymentStatus.STOPPED else "")


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ShipyardError) else f"{type(exc).__name__}: {exc}"

