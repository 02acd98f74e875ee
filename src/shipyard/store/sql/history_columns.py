"""A metric's history as columns, read without building Python rows.

The points of one (run, key) are read in the order the ``(run_id, key, step)`` index gives them,
without the database sorting them by (step, timestamp, id): that sort cost more than the read
itself. They are put in that documented order afterwards by one stable NumPy sort, and only when
some points share a step out of (timestamp, id) order, which a check of the whole column finds in
well under a millisecond.

- **PostgreSQL** packs every point into 32 big-endian bytes (``int8send(step) ||
  float8send(value) || int8send(timestamp) || int8send(id)``) and sends them all as one ``bytea``
  (``string_agg``), which NumPy views as a record array: one row, one buffer, no object per point.
- **SQLite** hands its rows to NumPy as the driver makes them (``numpy.fromiter`` over the
  cursor, into one record array): no list of rows and no tuples per column. SQLite has no way to
  pack a double exactly into a value (its text forms round some), and a second SQLite library in
  the process (the ADBC driver's) would corrupt the file: POSIX locks are per process, so one
  library closing the file drops the other's locks.

Without NumPy, ``available`` is false and the caller reads tuples: the same result, slower. NaN is
stored as NULL and comes back as NaN on every path.
"""

from __future__ import annotations

import functools
import importlib.util
from array import array
from typing import TYPE_CHECKING, Any

from shipyard.entities.history import MetricHistory

if TYPE_CHECKING:
    import numpy as np
    import sqlalchemy as sa

_POSTGRES = (
    "SELECT string_agg(int8send(step) || float8send(coalesce(value, 'NaN')) || int8send(timestamp) || int8send(id),"
    " ''::bytea) FROM (SELECT step, value, timestamp, id FROM metrics WHERE run_id = %s AND key = %s"
    " ORDER BY step) AS points")
# ORDER BY step, id is the index's own order (an index entry ends with the rowid): no sort, and no
# id to fetch, as a stable sort by (step, timestamp) keeps the id order of ties.
_SQLITE = "SELECT step, value, timestamp FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, id"


@functools.cache
def _have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def available(dialect: str) -> bool:
    """Whether :func:`read` can serve this dialect (NumPy is looked up, not imported)."""
    return dialect in ("postgresql", "sqlite") and _have("numpy")


def read(conn: sa.Connection, run_id: str, key: str) -> MetricHistory:
    """The points of ``key`` of ``run_id`` as columns in (step, timestamp, id) order, read through
    the store's connection ``conn``; only where :func:`available` says so."""
    if conn.dialect.name == "postgresql":
        steps, values, timestamps, ids = _postgres(conn, run_id, key)
    else:
        steps, values, timestamps, ids = _sqlite(conn, run_id, key)
    return _history(key, *_in_order(steps, values, timestamps, ids))


def _postgres(conn: sa.Connection, run_id: str, key: str) -> tuple[Any, ...]:
    import numpy as np

    cursor = conn.connection.driver_connection.cursor(binary=True)  # type: ignore[union-attr]
    try:
        packed = cursor.execute(_POSTGRES, (run_id, key)).fetchone()[0]
    finally:
        cursor.close()
    record = np.dtype([("step", ">i8"), ("value", ">f8"), ("timestamp", ">i8"), ("id", ">i8")])
    points = np.frombuffer(packed or b"", dtype=record)
    return (points["step"].astype(np.int64), points["value"].astype(np.float64),
            points["timestamp"].astype(np.int64), points["id"].astype(np.int64))


def _sqlite(conn: sa.Connection, run_id: str, key: str) -> tuple[Any, ...]:
    import numpy as np

    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_SQLITE, (run_id, key))
        # Each row tuple goes straight into the record array; a NULL value (NaN as stored) is NaN.
        points = np.fromiter(cursor, dtype=np.dtype([("step", "i8"), ("value", "f8"), ("timestamp", "i8")]))
    finally:
        cursor.close()
    return points["step"], points["value"], points["timestamp"], None


def _in_order(steps: np.ndarray, values: np.ndarray, timestamps: np.ndarray,
              ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns sorted by (step, timestamp, id), with one stable sort only when they are not.
    Without ``ids`` the rows are in id order within a step, which the stable sort keeps."""
    import numpy as np

    if len(steps) > 1:
        # Comparisons, not differences: a difference of two int64 steps can overflow.
        s0, s1, t0, t1 = steps[:-1], steps[1:], timestamps[:-1], timestamps[1:]
        later = t1 < t0
        if ids is not None:
            later |= (t1 == t0) & (ids[1:] < ids[:-1])
        if ((s1 < s0) | ((s1 == s0) & later)).any():
            order = np.lexsort((timestamps, steps) if ids is None else (ids, timestamps, steps))
            steps, values, timestamps = steps[order], values[order], timestamps[order]
    return steps, values, timestamps


def _history(key: str, steps: np.ndarray, values: np.ndarray, timestamps: np.ndarray) -> MetricHistory:
    import numpy as np

    columns: list[array[Any]] = []
    for typecode, column in (("q", steps), ("d", values), ("q", timestamps)):
        out = array(typecode)
        # ndarray has the buffer protocol; numpy's stubs do not say so
        out.frombytes(memoryview(np.ascontiguousarray(column)).cast("B"))  # type: ignore[arg-type]  # one copy, no objects
        columns.append(out)
    return MetricHistory(key, *columns)
