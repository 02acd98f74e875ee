"""A metric's history as columns, read from its chunks without building an object per point.

The chunks of one (run, key) (``metric_chunks``, written by :mod:`.metric_rows`) come in id
order, the ``(run_id, key, id)`` index's own order, in one query, and their arrays are joined:
the points in the order they were logged. They are then put in the documented order (step,
timestamp, then logged order) by one stable sort, and only when some point is out of that
order, which a check of the whole column with NumPy finds in well under a millisecond. Without
NumPy (:func:`available` is false) the check and the sort run in Python: the same result,
slower. NaN comes back as ``float("nan")`` on every path, whatever NaN was logged.
"""

from __future__ import annotations

import sys
from array import array
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from shipyard.entities.history import MetricHistory
from shipyard.installed import importable
from shipyard.store.sql.driver_rows import driver_rows

if TYPE_CHECKING:
    import numpy as np
    import sqlalchemy as sa

_SQL = {
    "sqlite": "SELECT steps, vals, timestamps FROM metric_chunks WHERE run_id = ? AND key = ? ORDER BY id",
    "postgresql": "SELECT steps, vals, timestamps FROM metric_chunks WHERE run_id = %s AND key = %s ORDER BY id",
}
_BIG_ENDIAN = sys.byteorder == "big"


def available(dialect: str) -> bool:
    """Whether NumPy checks and sorts the columns :func:`read` returns for this dialect (NumPy
    is looked up, not imported)."""
    return dialect in ("postgresql", "sqlite") and importable("numpy")


def read(conn: sa.Connection, run_id: str, key: str) -> MetricHistory:
    """The points of ``key`` of ``run_id`` as columns in (step, timestamp, logged) order, read
    through the store's connection ``conn`` in one query."""
    dialect = conn.dialect.name
    chunks = driver_rows(conn, _SQL[dialect], (run_id, key))  # bytea in binary on PostgreSQL, not hex text
    steps, values, timestamps = (_column(typecode, [chunk[i] for chunk in chunks])
                                 for i, typecode in enumerate("qdq"))
    if available(dialect):
        return _numpy_ordered(key, steps, values, timestamps)
    return _python_ordered(key, steps, values, timestamps)


def _column(typecode: str, parts: list[bytes]) -> array[Any]:
    out = array(typecode)
    for part in parts:  # straight into the array: a joined copy first cost more than the read
        out.frombytes(part)
    if _BIG_ENDIAN:
        out.byteswap()
    return out


def _numpy_ordered(key: str, steps: array[int], values: array[float], timestamps: array[int]) -> MetricHistory:
    import numpy as np

    # Views of the arrays, no copies; the arrays themselves are returned when nothing moves.
    s, v, t = (np.frombuffer(steps, dtype=np.int64), np.frombuffer(values, dtype=np.float64),
               np.frombuffer(timestamps, dtype=np.int64))
    nan = np.isnan(v)
    if nan.any():
        values = _from_numpy("d", np.where(nan, np.nan, v))  # one NaN, as a NULL read before chunks gave
        v = np.frombuffer(values, dtype=np.float64)
    if len(s) > 1:
        # Comparisons, not differences: a difference of two int64 steps can overflow.
        s0, s1 = s[:-1], s[1:]
        if ((s1 < s0) | ((s1 == s0) & (t[1:] < t[:-1]))).any():
            order = np.lexsort((t, s))  # stable: ties keep the logged order
            steps, timestamps = _from_numpy("q", s[order]), _from_numpy("q", t[order])
            values = _from_numpy("d", v[order])
    return MetricHistory(key, steps, values, timestamps)


def _from_numpy(typecode: str, column: np.ndarray) -> array[Any]:
    out = array(typecode)
    out.frombytes(column.tobytes())  # one copy, no objects
    return out


def _python_ordered(key: str, steps: array[int], values: array[float], timestamps: array[int]) -> MetricHistory:
    if any(v != v for v in values):  # NaN: one NaN, as above
        nan = float("nan")
        values = array("d", (nan if v != v else v for v in values))
    if any(later < earlier for earlier, later in pairwise(zip(steps, timestamps, strict=True))):
        order = sorted(range(len(steps)), key=lambda i: (steps[i], timestamps[i]))  # stable
        steps = array("q", (steps[i] for i in order))
        values = array("d", (values[i] for i in order))
        timestamps = array("q", (timestamps[i] for i in order))
    return MetricHistory(key, steps, values, timestamps)
