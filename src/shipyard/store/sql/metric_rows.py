"""Appending metric values inside a transaction: shared by ``MetricStore.log`` and
``RunStore.write`` (which folds them into the transaction that creates or ends a run).

A batch's values are grouped by (run, key), and each group is written as one row of
``metric_chunks``: its steps, values and timestamps packed as three little-endian arrays, in
the order they were logged. A client that logs one value per call (MLflow's ``log-metric``)
would leave one tiny chunk per value, so a group whose (run, key) already ends with a chunk of
fewer than :data:`SMALL_CHUNK` points is appended to that chunk instead: a batch of one key
tries the append first (one statement, as an insert was), a batch of more keys finds those
chunks with one query. The database concatenates the bytes, so concurrent appends on
PostgreSQL each see the other's.
"""

from __future__ import annotations

import functools
import math
import sys
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.store.sql.tables import latest_metrics, metric_chunks
from shipyard.store.sql.upsert import insert_rows, upsert

# A (run, key)'s newest chunk holding fewer points than this takes the next values of that key;
# at 256 points (6 KiB) an append rewrites little, and a history logged one value at a time reads
# as a few hundred rows per 100,000 points (tests/unit/test_metric_chunks.py).
SMALL_CHUNK = 256
_KEYS_PER_QUERY = 500  # far below any dialect's bound-parameter limit
_BIG_ENDIAN = sys.byteorder == "big"


def pack(typecode: str, items: Iterable[Any]) -> bytes:
    """``items`` as a little-endian ``array(typecode)``'s bytes ("q": int64, "d": float64)."""
    packed = array(typecode, items)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _not_older(table: sa.Table, excluded: sa.ColumnCollection[str, Any]) -> sa.ColumnElement[bool]:
    return sa.or_(excluded.step > table.c.step,
                  sa.and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp))


_LATEST = ("run_id", "key", "value", "step", "timestamp")
_CHUNK = ("run_id", "key", "n", "steps", "vals", "timestamps")
_APPEND = {
    "sqlite": "UPDATE metric_chunks SET n = n + ?, steps = CAST(steps || ? AS BLOB), "
              "vals = CAST(vals || ? AS BLOB), timestamps = CAST(timestamps || ? AS BLOB) WHERE id = ?",
    "postgresql": "UPDATE metric_chunks SET n = n + %s, steps = steps || %s, vals = vals || %s, "
                  "timestamps = timestamps || %s WHERE id = %s",
}

_APPEND_NEWEST = {
    "sqlite": "UPDATE metric_chunks SET n = n + ?, steps = CAST(steps || ? AS BLOB), "
              "vals = CAST(vals || ? AS BLOB), timestamps = CAST(timestamps || ? AS BLOB) "
              "WHERE id = (SELECT max(id) FROM metric_chunks WHERE run_id = ? AND key = ?) AND n < ?",
    "postgresql": "UPDATE metric_chunks SET n = n + %s, steps = steps || %s, vals = vals || %s, "
                  "timestamps = timestamps || %s "
                  "WHERE id = (SELECT max(id) FROM metric_chunks WHERE run_id = %s AND key = %s) AND n < %s",
}


def append_metrics(conn: sa.Connection, run_id: str, metrics_: Sequence[Metric], *, new_run: bool = False) -> None:
    """Append the values, one chunk per key, and move each key's latest value with one upsert
    that only wins over the stored latest when its (step, timestamp) is not older. For a run
    created in this transaction (``new_run``) there is nothing stored yet: plain inserts."""
    append_runs_metrics(conn, [(run_id, metrics_)], new_runs=new_run)


def append_runs_metrics(conn: sa.Connection, batches: Sequence[tuple[str, Sequence[Metric]]], *,
                        new_runs: bool = False) -> None:
    """:func:`append_metrics` for several runs at once: one statement for all their new chunks
    (and one for the appended ones) and one for all their latest values, whatever the number of
    runs and keys."""
    groups: defaultdict[tuple[str, str], list[Metric]] = defaultdict(list)
    for run_id, metrics_ in batches:
        for m in metrics_:
            groups[run_id, m.key].append(m)
    if not groups:
        return
    # One key (a value logged per call): try appending straight away, one statement as before
    # chunks; more keys: find their small newest chunks with one query first.
    one_key = not new_runs and len(groups) == 1
    small = {} if new_runs or one_key else _small_newest_chunks(conn, list(groups))
    isnan = math.isnan
    chunks: list[tuple[str, str, int, bytes, bytes, bytes]] = []
    appends: list[tuple[int, bytes, bytes, bytes, int]] = []
    latest_rows: list[tuple[str, str, float | None, int, int]] = []
    for (run_id, key), group in groups.items():
        steps = [m.step for m in group]
        stamps = [m.timestamp for m in group]
        packed = (pack("q", steps), pack("d", [m.value for m in group]), pack("q", stamps))
        # The greatest (step, timestamp); of equal ones the last logged, as with one value at a time.
        best = group[max(zip(steps, stamps, range(len(group)), strict=True))[2]]
        latest_rows.append((run_id, key, None if isnan(best.value) else best.value, best.step, best.timestamp))
        if one_key and _append_to_newest(conn, run_id, key, len(group), packed):
            continue
        chunk_id = small.get((run_id, key))
        if chunk_id is None:
            chunks.append((run_id, key, len(group), *packed))
        else:
            appends.append((len(group), *packed, chunk_id))
    # Tuples straight to the driver: SQLAlchemy's per-row parameter processing is not needed here.
    insert_rows(conn, metric_chunks, _CHUNK, chunks)
    if appends:
        conn.exec_driver_sql(_APPEND[conn.dialect.name], appends)
    if new_runs:
        insert_rows(conn, latest_metrics, _LATEST, latest_rows)
    else:
        upsert(conn, latest_metrics, [dict(zip(_LATEST, row, strict=True)) for row in latest_rows],
               keys=("run_id", "key"), where=_not_older)


def _append_to_newest(conn: sa.Connection, run_id: str, key: str, n: int, packed: tuple[bytes, bytes, bytes]) -> bool:
    """Append to the newest chunk of (``run_id``, ``key``) if it holds fewer than
    :data:`SMALL_CHUNK` points; whether it did."""
    cursor = conn.exec_driver_sql(_APPEND_NEWEST[conn.dialect.name], (n, *packed, run_id, key, SMALL_CHUNK))
    return cursor.rowcount == 1


def _small_newest_chunks(conn: sa.Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The id of the newest chunk of each (run, key) of ``pairs`` that holds fewer than
    :data:`SMALL_CHUNK` points: one query per 500 keys (the ``(run_id, key, id)`` index answers
    each key's newest chunk). The SQL goes straight to the driver: compiling a select per call
    doubled the cost of logging one value."""
    wanted = set(pairs)
    run_ids = sorted({run_id for run_id, _key in pairs})
    keys = sorted({key for _run_id, key in pairs})
    found: dict[tuple[str, str], int] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        some_keys = keys[start:start + _KEYS_PER_QUERY]
        sql = _newest_sql(conn.dialect.name, len(run_ids), len(some_keys))
        for chunk_id, run_id, key in conn.exec_driver_sql(sql, (*run_ids, *some_keys, SMALL_CHUNK)):
            if (run_id, key) in wanted:
                found[run_id, key] = chunk_id
    return found


@functools.cache
def _newest_sql(dialect: str, runs: int, keys: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (f"SELECT id, run_id, key FROM metric_chunks WHERE id IN (SELECT max(id) FROM metric_chunks WHERE "
            f"run_id IN ({', '.join([mark] * runs)}) AND key IN ({', '.join([mark] * keys)}) GROUP BY run_id, key) "
            f"AND n < {mark}")
