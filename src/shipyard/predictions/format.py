"""The prediction log's format: schemas, tables, partitions, writing.

Each answered row and each piece of ground truth is one row of an Arrow table, written as one
Parquet file per (deployment, hour) in the artifact store, under::

    predictions/deployment=<name>/hour=<YYYY-MM-DDTHH>/<uuid>.parquet     (namespace "predictions")
    feedback/deployment=<name>/hour=<YYYY-MM-DDTHH>/<uuid>.parquet        (namespace "feedback")

Hours are UTC. One namespace per kind of log, not per deployment: deployment names allow spaces
and dots that artifact namespaces do not, and a reader lists a deployment's hours with one call.
Inputs, outputs and feedback values are JSON text columns, so the files never depend on a
model's schema. :mod:`shipyard.predictions.writer` queues rows and writes them here in the
background; :mod:`shipyard.predictions.reader` reads them back.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from shipyard.clock import now_ms
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore

__all__ = ["BUILDERS", "FEEDBACK_NAMESPACE", "FEEDBACK_SCHEMA", "HOUR_FORMAT", "HOUR_MS", "PREDICTIONS_NAMESPACE",
           "PREDICTION_SCHEMA", "ROLES", "SCHEMA_VERSION", "feedback_rows", "parquet_bytes", "partition_path",
           "partitions", "record_feedback", "row_is_valid", "write_feedback"]

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


BUILDERS: dict[str, tuple[Callable[[Sequence[Mapping[str, Any]]], pa.Table], str]] = {
    "prediction": (_prediction_table, PREDICTIONS_NAMESPACE),
    "feedback": (_feedback_table, FEEDBACK_NAMESPACE),
}


def row_is_valid(row: Any) -> bool:
    try:
        return isinstance(row, Mapping) and isinstance(row["prediction_id"], str) and \
            isinstance(row["deployment"], str) and bool(row["deployment"]) and isinstance(row["time"], int)
    except KeyError:
        return False


def partitions(table: pa.Table) -> Iterable[tuple[str, pa.Table]]:
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


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _write_table(artifacts: ArtifactStore, namespace: str, table: pa.Table) -> int:
    """One file per (deployment, hour) of ``table``; the number of files written."""
    written = 0
    for folder, chunk in partitions(table):
        artifacts.log_bytes(namespace, parquet_bytes(chunk), f"{folder}/{uuid.uuid4().hex}.parquet")
        written += 1
    return written



# -- feedback ------------------------------------------------------------------------------------------------

def _time_ms(value: Any, field: str) -> int:
    if value is None:
        return now_ms()
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
    use :meth:`~shipyard.predictions.writer.PredictionLogger.record_feedback` (queued) or
    :func:`write_feedback`."""
    row: dict[str, Any] = {"prediction_id": prediction_id, "value": value, "deployment": deployment}
    if time is not None:
        row["time"] = _time_ms(time, "time")
    write_feedback(artifacts, feedback_rows(row))


def write_feedback(artifacts: ArtifactStore, rows: Sequence[Mapping[str, Any]]) -> int:
    """Write checked feedback rows (:func:`feedback_rows`) now; the number of files written."""
    return _write_table(artifacts, FEEDBACK_NAMESPACE, _feedback_table(rows))
