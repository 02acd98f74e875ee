"""The prediction log's writer: every answered row, queued and written in the background.

The serving app calls :meth:`PredictionLogger.record` after each answered batch with one dict
per row (``prediction_id``, ``time`` in ms, ``deployment``, ``model``, ``version``, ``role``,
``inputs``, ``outputs``, ``latency_ms``, ``request_id``). ``record`` never blocks and never
raises: rows go onto a bounded queue, and when it is full they are dropped and counted
(:attr:`PredictionLogger.dropped`, the Prometheus counter
``shipyard_prediction_log_dropped_total`` and a rate-limited WARNING), never silently.

A background thread drains the queue every ``flush_seconds`` or ``flush_rows`` rows, whichever
comes first, and writes one Parquet file per (deployment, hour) in the format of
:mod:`shipyard.predictions.format`. :func:`feedback_route`
takes ground truth over HTTP. :mod:`shipyard.predictions.reader` reads the log back.
"""

from __future__ import annotations

import logging
import threading
import time as _time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from shipyard.errors import InvalidInput, ShipyardError, StoreUnavailable
from shipyard.predictions.format import (
    BUILDERS,
    feedback_rows,
    parquet_bytes,
    partitions,
    row_is_valid,
    write_feedback,
)

if TYPE_CHECKING:
    from starlette.routing import Route

    from shipyard.artifacts.protocol import ArtifactStore

__all__ = ["PredictionLogger", "feedback_route"]

log = logging.getLogger("shipyard.predictions.writer")

_WARN_EVERY_SECONDS = 10.0
_WRITE_ATTEMPTS = 3


# -- the logger ----------------------------------------------------------------------------------------------

class _DropCounter:
    """``shipyard_prediction_log_dropped_total{kind, reason}``, when prometheus-client is installed."""

    def __init__(self, registry: Any) -> None:
        try:
            from prometheus_client import CollectorRegistry, Counter
        except ImportError:  # pragma: no cover - the counter attribute still counts
            self._counter = None
            return
        self.registry = registry if registry is not None else CollectorRegistry()
        self._counter = Counter("shipyard_prediction_log_dropped_total",
                                "Prediction log rows dropped (queue full, logger closed, invalid or unwritable)",
                                ["kind", "reason"], registry=self.registry)

    def inc(self, kind: str, reason: str, amount: int) -> None:
        if self._counter is not None:
            self._counter.labels(kind, reason).inc(amount)


class PredictionLogger:
    """Queue prediction rows and write them to ``artifacts`` as Parquet in a background thread.

    ``flush_rows``: write once this many rows are queued; ``flush_seconds``: write at least this
    often; ``max_queue``: rows held in memory at most (queued plus being written); beyond it rows
    are dropped and counted. ``registry``: the Prometheus registry to count drops in (the serving
    app's, so ``/metrics`` shows them); a private one when None.

    Counters (read any time): ``dropped``, ``written`` (rows), ``files``, ``write_errors``.
    """

    def __init__(self, artifacts: ArtifactStore, *, flush_rows: int = 10_000, flush_seconds: float = 5.0,
                 max_queue: int = 200_000, registry: Any = None) -> None:
        if flush_rows < 1 or max_queue < 1 or flush_seconds <= 0:
            raise InvalidInput("flush_rows and max_queue must be at least 1, flush_seconds above 0")
        self._artifacts = artifacts
        self._flush_rows = flush_rows
        self._flush_seconds = float(flush_seconds)
        self._max_queue = max_queue
        self._metrics = _DropCounter(registry)
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._pending: list[tuple[str, list[Any]]] = []
        self._held = 0  # rows queued or being written: what max_queue bounds
        self._queued_rows = 0  # rows queued and not yet taken by the writer
        self._enqueued = 0  # sequence numbers of batches put, and of batches written (for flush)
        self._finished = 0
        self._flush_wanted = False
        self._closed = False
        self._last_warning = 0.0
        self._unwarned = 0
        self.dropped = 0
        self.written = 0
        self.files = 0
        self.write_errors = 0
        self._thread = threading.Thread(target=self._run, name="shipyard-prediction-log", daemon=True)
        self._thread.start()

    # -- producers (the serving app's threads and event loop) ------------------------------------------
    def record(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Queue prediction rows; returns how many were accepted (the rest are dropped and
        counted). Never blocks, never raises."""
        try:
            rows = list(records)
        except Exception:
            self._drop("prediction", "invalid", 1)
            return 0
        return self._put("prediction", rows, partial=True)

    def record_feedback(self, rows: Sequence[Mapping[str, Any]]) -> int:
        """Queue checked feedback rows (:func:`feedback_rows`) all or nothing: returns their
        number, or 0 when the queue cannot take them all (those are counted as dropped)."""
        return self._put("feedback", list(rows), partial=False)

    def _put(self, kind: str, rows: list[Any], *, partial: bool) -> int:
        if not rows:
            return 0
        try:
            with self._lock:
                if self._closed:
                    accepted, reason = 0, "closed"
                else:
                    room = max(self._max_queue - self._held, 0)
                    accepted = min(len(rows), room) if partial else (len(rows) if len(rows) <= room else 0)
                    reason = "queue_full"
                    if accepted:
                        self._pending.append((kind, rows if accepted == len(rows) else rows[:accepted]))
                        self._held += accepted
                        self._queued_rows += accepted
                        self._enqueued += 1
                        if self._queued_rows >= self._flush_rows:
                            self._wake.notify()
        except Exception:  # never let logging fail a prediction
            accepted, reason = 0, "invalid"
        if accepted < len(rows):
            self._drop(kind, reason, len(rows) - accepted)
        return accepted

    def _drop(self, kind: str, reason: str, count: int) -> None:
        try:
            with self._lock:
                self.dropped += count
                self._unwarned += count
                now = _time.monotonic()
                warn = now - self._last_warning >= _WARN_EVERY_SECONDS
                if warn:
                    self._last_warning, unwarned, self._unwarned = now, self._unwarned, 0
            self._metrics.inc(kind, reason, count)
            if warn:
                log.warning("prediction log: dropped %d %s rows (%s) since the last warning, %d in all; "
                            "raise max_queue or check the artifact store", unwarned, kind, reason, self.dropped)
        except Exception:  # pragma: no cover - counting must not raise either
            pass

    # -- control ----------------------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued before this call; whether it was written within ``timeout``."""
        with self._lock:
            target = self._enqueued
            self._flush_wanted = True
            self._wake.notify()
            return self._done.wait_for(lambda: self._finished >= target, timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Write everything queued, then stop the thread (the app's shutdown calls this). Rows
        recorded afterwards are dropped and counted. Safe to call twice."""
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("prediction log: %d rows were still being written when close() gave up after %ss",
                        self._held, timeout)

    @property
    def registry(self) -> Any:
        """The Prometheus registry holding the drop counter."""
        return getattr(self._metrics, "registry", None)

    def __enter__(self) -> PredictionLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        deadline = _time.monotonic() + self._flush_seconds
        while True:
            with self._lock:
                while not (self._closed or self._flush_wanted or self._queued_rows >= self._flush_rows):
                    left = deadline - _time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
                batch, self._pending = self._pending, []
                self._queued_rows = 0
                self._flush_wanted = False
                target = self._enqueued
                closing = self._closed
            if batch:
                try:
                    self._write(batch)
                except Exception:  # the thread must survive anything; the rows are counted as lost
                    log.exception("prediction log: writing a batch failed")
                    self._drop("prediction", "write_failed", sum(len(rows) for _, rows in batch))
            deadline = _time.monotonic() + self._flush_seconds
            with self._lock:
                self._held -= sum(len(rows) for _, rows in batch)
                self._finished = target
                self._done.notify_all()
                if closing and not self._pending:
                    return

    def _write(self, batch: list[tuple[str, list[Any]]]) -> None:
        for kind, (build, namespace) in BUILDERS.items():
            rows = [row for k, rows in batch if k == kind for row in rows]
            if not rows:
                continue
            try:
                table = build(rows)
            except Exception:  # some row is malformed: keep the good ones, count the others
                good = [row for row in rows if row_is_valid(row)]
                try:
                    table = build(good)
                except Exception:
                    log.exception("prediction log: cannot build a table of %d %s rows", len(rows), kind)
                    good, table = [], None
                if len(good) < len(rows):
                    self._drop(kind, "invalid", len(rows) - len(good))
                if table is None:
                    continue
            self._write_with_retries(kind, namespace, table)

    def _write_with_retries(self, kind: str, namespace: str, table: pa.Table) -> None:
        pending = list(partitions(table))
        error: Exception | None = None
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            failed = []
            for folder, chunk in pending:
                try:
                    self._artifacts.log_bytes(namespace, parquet_bytes(chunk),
                                              f"{folder}/{uuid.uuid4().hex}.parquet")
                except Exception as exc:
                    failed.append((folder, chunk))
                    error = exc
                else:
                    self.written += chunk.num_rows
                    self.files += 1
            if not failed:
                return
            self.write_errors += 1
            pending = failed
            if attempt < _WRITE_ATTEMPTS:
                log.warning("prediction log: writing %d files failed (%s); retrying", len(failed), error)
                _time.sleep(0.2 * attempt)
        lost = sum(chunk.num_rows for _, chunk in pending)
        log.error("prediction log: %d %s rows lost: writing to the artifact store failed %d times (%s)",
                  lost, kind, _WRITE_ATTEMPTS, error)
        self._drop(kind, "write_failed", lost)


# -- the HTTP route ------------------------------------------------------------------------------------------

_MAX_FEEDBACK_BODY = 8 * 1024 * 1024


def feedback_route(sink: PredictionLogger | ArtifactStore, *, deployment: str | None = None,
                   path: str = "/v1/feedback") -> Route:
    """A Starlette route for ``POST /v1/feedback``: a body ``{"prediction_id": ..., "value": ...,
    "deployment": ...}`` (deployment optional when ``deployment`` is given here) or a list of them.
    Answers 202 ``{"accepted": N}``; 400 ``{error_code, message}`` naming the bad field; 503 when
    the logger's queue is full. ``sink``: a :class:`PredictionLogger` (rows are queued) or an
    artifact store (rows are written before answering)."""
    import asyncio

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from shipyard.serving.encoding import loads
    from shipyard.serving.responses import error_response, json_response

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > _MAX_FEEDBACK_BODY:
                raise InvalidInput(f"body: over the limit of {_MAX_FEEDBACK_BODY} bytes; send smaller batches",
                                   field="body")
            chunks.append(chunk)
        return b"".join(chunks)

    async def endpoint(request: Request) -> Response:
        try:
            rows = feedback_rows(loads(await read_body(request)), deployment=deployment)
            if isinstance(sink, PredictionLogger):
                if sink.record_feedback(rows) != len(rows):
                    raise StoreUnavailable("the feedback queue is full; retry shortly", retry=True)
            else:
                await asyncio.to_thread(write_feedback, sink, rows)
        except ShipyardError as err:
            return error_response(err)
        except Exception:
            log.exception("feedback: unexpected error")
            return error_response(ShipyardError("internal server error; the server log has the details"))
        return json_response({"accepted": len(rows)}, status=202)

    return Route(path, endpoint, methods=["POST"], name="feedback")
