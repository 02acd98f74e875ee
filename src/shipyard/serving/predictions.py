"""The prediction log: every answered row, written in the background as Parquet in the artifact store.

The serving app calls :meth:`PredictionLogger.record` after each answered batch with one dict
per row (``prediction_id``, ``time`` in ms, ``deployment``, ``model``, ``version``, ``role``,
``inputs``, ``outputs``, ``latency_ms``, ``request_id``). ``record`` never blocks and never
raises: rows go onto a bounded queue, and when it is full they are dropped and counted
(:attr:`PredictionLogger.dropped`, the Prometheus counter
``shipyard_prediction_log_dropped_total`` and a rate-limited WARNING), never silently.

A background thread drains the queue every ``flush_seconds`` or ``flush_rows`` rows, whichever
comes first, and writes one Parquet file per (deployment, hour) under::

    predictions/deployment=<name>/hour=<YYYY-MM-DDTHH>/<uuid>.parquet     (namespace "predictions")
    feedback/deployment=<name>/hour=<YYYY-MM-DDTHH>/<uuid>.parquet        (namespace "feedback")

Hours are UTC. One namespace per kind of log, not per deployment: deployment names allow spaces
and dots that artifact namespaces do not, and a reader lists a deployment's hours with one call.
Inputs, outputs and feedback values are JSON text columns, so the files never depend on a
model's schema. :mod:`shipyard.monitoring.predictions` reads them back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time as _time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.errors import InvalidInput, ShipyardError, StoreUnavailable

if TYPE_CHECKING:
    from starlette.routing import Route

    from shipyard.artifacts.protocol import ArtifactStore

__all__ = ["FEEDBACK_NAMESPACE", "FEEDBACK_SCHEMA", "HOUR_FORMAT", "PREDICTIONS_NAMESPACE", "PREDICTION_SCHEMA",
           "PredictionLogger", "feedback_route", "feedback_rows", "partition_path", "record_feedback",
           "write_feedback"]

log = logging.getLogger("shipyard.serving.predictions")

PREDICTIONS_NAMESPACE = "predictions"
FEEDBACK_NAMESPACE = "feedback"
HOUR_FORMAT = "%Y-%m-%dT%H"
HOUR_MS = 3_600_000
SCHEMA_VERSION = "1"
ROLES = ("primary", "canary", "shadow")
_TIME = pa.timestamp("ms", tz="UTC")

PREDICTION_SCHEMA = pa.schema([
    pa.field("prediction_id", pa.string(), nullable=False),
    pa.field("time", _TIME, nullable=False),
    pa.field("deployment", pa.string(), nullable=False),
    pa.field("model", pa.string()),
    pa.field("version", pa.string()),
    pa.field("role", pa.string()),
    pa.field("request_id", pa.string()),
    pa.field("latency_ms", pa.float64()),
    pa.field("inputs", pa.string()),  # JSON: the row as the model saw it
    pa.field("outputs", pa.string()),  # JSON: what the model answered for the row
], metadata={"shipyard.log": "predictions", "shipyard.schema_version": SCHEMA_VERSION})

FEEDBACK_SCHEMA = pa.schema([
    pa.field("prediction_id", pa.string(), nullable=False),
    pa.field("time", _TIME, nullable=False),
    pa.field("deployment", pa.string(), nullable=False),
    pa.field("value", pa.string()),  # JSON: the ground truth as sent
], metadata={"shipyard.log": "feedback", "shipyard.schema_version": SCHEMA_VERSION})

_PREDICTION_ID = re.compile(r"[0-9a-f]{32}")
_WARN_EVERY_SECONDS = 10.0
_WRITE_ATTEMPTS = 3


def partition_path(deployment: str, hour_ms: int) -> str:
    """``deployment=<name>/hour=<YYYY-MM-DDTHH>`` of the UTC hour starting at ``hour_ms``."""
    return f"deployment={deployment}/hour={datetime.fromtimestamp(hour_ms / 1000, UTC).strftime(HOUR_FORMAT)}"


# -- JSON columns --------------------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy and pandas scalars
    if callable(item):
        return item()
    tolist = getattr(value, "tolist", None)  # arrays
    if callable(tolist):
        return tolist()
    return str(value)


try:
    import orjson as _orjson

    _OPTIONS = _orjson.OPT_SERIALIZE_NUMPY | _orjson.OPT_NON_STR_KEYS

    def _to_json(value: Any) -> str:
        return _orjson.dumps(value, default=_json_default, option=_OPTIONS).decode()
except ImportError:  # pragma: no cover - orjson comes with the server extra
    def _to_json(value: Any) -> str:
        return json.dumps(value, default=_json_default, separators=(",", ":"))


def _json_column(values: Iterable[Any]) -> list[str | None]:
    return [_to_json(v) for v in values]


# -- building tables -----------------------------------------------------------------------------------------

def _prediction_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The rows as one Arrow table: one list per column, then whole-column conversions."""
    columns = {
        "prediction_id": pa.array([r["prediction_id"] for r in rows], pa.string()),
        "time": pa.array([r["time"] for r in rows], pa.int64()).cast(_TIME),
        "deployment": pa.array([r["deployment"] for r in rows], pa.string()),
        "model": pa.array([r.get("model") for r in rows], pa.string()),
        "version": pa.array([None if (v := r.get("version")) is None else str(v) for r in rows], pa.string()),
        "role": pa.array([r.get("role") or "primary" for r in rows], pa.string()),
        "request_id": pa.array([r.get("request_id") for r in rows], pa.string()),
        "latency_ms": pa.array([r.get("latency_ms") for r in rows], pa.float64()),
        "inputs": pa.array(_json_column(r.get("inputs") for r in rows), pa.string()),
        "outputs": pa.array(_json_column(r.get("outputs") for r in rows), pa.string()),
    }
    return _checked(pa.Table.from_pydict(columns, schema=PREDICTION_SCHEMA))


def _feedback_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    columns = {
        "prediction_id": pa.array([r["prediction_id"] for r in rows], pa.string()),
        "time": pa.array([r["time"] for r in rows], pa.int64()).cast(_TIME),
        "deployment": pa.array([r["deployment"] for r in rows], pa.string()),
        "value": pa.array(_json_column(r["value"] for r in rows), pa.string()),
    }
    return _checked(pa.Table.from_pydict(columns, schema=FEEDBACK_SCHEMA))


def _checked(table: pa.Table) -> pa.Table:
    """Arrow does not enforce ``nullable=False`` when building: a missing key column is an error here."""
    for name in ("prediction_id", "time", "deployment"):
        if table.column(name).null_count:
            raise ValueError(f"{name} is missing in some rows")
    return table


_BUILDERS: dict[str, tuple[Callable[[Sequence[Mapping[str, Any]]], pa.Table], str]] = {
    "prediction": (_prediction_table, PREDICTIONS_NAMESPACE),
    "feedback": (_feedback_table, FEEDBACK_NAMESPACE),
}


def _row_is_valid(row: Any) -> bool:
    try:
        return isinstance(row, Mapping) and isinstance(row["prediction_id"], str) and \
            isinstance(row["deployment"], str) and bool(row["deployment"]) and isinstance(row["time"], int)
    except KeyError:
        return False


def _chunks(table: pa.Table) -> Iterable[tuple[str, pa.Table]]:
    """``(partition path, rows)`` per (deployment, hour), found by one sort of the whole table."""
    if table.num_rows == 0:
        return
    hours = table.column("time").cast(pa.int64()).to_numpy() // HOUR_MS
    encoded = table.column("deployment").combine_chunks().dictionary_encode()
    names, codes = encoded.dictionary.to_pylist(), encoded.indices.to_numpy(zero_copy_only=False)
    keys = codes.astype(np.int64) * (1 << 32) + (hours - hours.min())
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    table = table.take(pa.array(order))
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    hours = hours[order]
    codes = codes[order]
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        yield partition_path(names[codes[start]], int(hours[start]) * HOUR_MS), table.slice(start, end - start)


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _write_table(artifacts: ArtifactStore, namespace: str, table: pa.Table) -> int:
    """One file per (deployment, hour) of ``table``; the number of files written."""
    written = 0
    for folder, chunk in _chunks(table):
        artifacts.log_bytes(namespace, _parquet_bytes(chunk), f"{folder}/{uuid.uuid4().hex}.parquet")
        written += 1
    return written


def _now_ms() -> int:
    return _time.time_ns() // 1_000_000


# -- feedback ------------------------------------------------------------------------------------------------

def _time_ms(value: Any, field: str) -> int:
    if value is None:
        return _now_ms()
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInput(f"{field}: expected milliseconds since the epoch (a whole number) or a datetime, "
                       f"got {value!r}", field=field)


def feedback_rows(body: Any, *, deployment: str | None = None, max_rows: int = 10_000) -> list[dict[str, Any]]:
    """Feedback rows from a request body: ``{"prediction_id", "value", "deployment"?, "time"?}`` or a
    list of them. ``deployment`` fills rows that name none. Raises ``InvalidInput`` naming the
    field (``[3].prediction_id`` for the fourth item of a list)."""
    from shipyard.tracking.validation import check_deployment_name

    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput("body: send a feedback object or a non-empty list of them", field="body")
    if len(items) > max_rows:
        raise InvalidInput(f"body: at most {max_rows} feedback items per request, got {len(items)}", field="body")
    rows = []
    for index, item in enumerate(items):
        where = f"[{index}]." if isinstance(body, list) else ""
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where.rstrip('.') or 'body'}: expected an object with prediction_id and value, "
                               f"got {type(item).__name__}", field=where.rstrip(".") or "body")
        unknown = sorted(set(item) - {"prediction_id", "value", "deployment", "time"})
        if unknown:
            raise InvalidInput(f"{where}{unknown[0]}: unknown field (expected prediction_id, value, deployment, "
                               "time)", field=f"{where}{unknown[0]}")
        pid = item.get("prediction_id")
        if not isinstance(pid, str) or not _PREDICTION_ID.fullmatch(pid):
            raise InvalidInput(f"{where}prediction_id: expected the 32 lowercase hex characters the prediction was "
                               f"answered with, got {pid!r}", field=f"{where}prediction_id")
        if "value" not in item or item["value"] is None:
            raise InvalidInput(f"{where}value: required (the ground truth for the prediction: a number, string, "
                               "boolean, list or object)", field=f"{where}value")
        name = item.get("deployment", deployment)
        if name is None:
            raise InvalidInput(f"{where}deployment: required (this endpoint serves no single deployment)",
                               field=f"{where}deployment")
        try:
            check_deployment_name(name)
        except InvalidInput as err:
            raise InvalidInput(f"{where}deployment: {err.message}", field=f"{where}deployment") from None
        rows.append({"prediction_id": pid, "value": item["value"], "deployment": name,
                     "time": _time_ms(item.get("time"), f"{where}time")})
    return rows


def record_feedback(artifacts: ArtifactStore, deployment: str, prediction_id: str, value: Any, *,
                    time: int | datetime | None = None) -> None:
    """Write one ground-truth row for ``prediction_id`` now (synchronously; a Parquet file under
    ``feedback/deployment=<name>/hour=<hour of time>``). ``value`` is any JSON-able value;
    ``time`` (ms or datetime, default now) is when the truth became known. Readers keep the latest
    feedback per prediction. Raises ``InvalidInput`` naming a bad field. For many rows at once,
    use :meth:`PredictionLogger.record_feedback` (queued) or :func:`write_feedback`."""
    row: dict[str, Any] = {"prediction_id": prediction_id, "value": value, "deployment": deployment}
    if time is not None:
        row["time"] = _time_ms(time, "time")
    write_feedback(artifacts, feedback_rows(row))


def write_feedback(artifacts: ArtifactStore, rows: Sequence[Mapping[str, Any]]) -> int:
    """Write checked feedback rows (:func:`feedback_rows`) now; the number of files written."""
    return _write_table(artifacts, FEEDBACK_NAMESPACE, _feedback_table(rows))


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
        for kind, (build, namespace) in _BUILDERS.items():
            rows = [row for k, rows in batch if k == kind for row in rows]
            if not rows:
                continue
            try:
                table = build(rows)
            except Exception:  # some row is malformed: keep the good ones, count the others
                good = [row for row in rows if _row_is_valid(row)]
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
        pending = list(_chunks(table))
        error: Exception | None = None
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            failed = []
            for folder, chunk in pending:
                try:
                    self._artifacts.log_bytes(namespace, _parquet_bytes(chunk),
                                              f"{folder}/{uuid.uuid4().hex}.parquet")
                except Exception as exc:
                    failed.append((folder, chunk))
                    error: Exception = exc
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
