"""Appending metric values inside a transaction: shared by ``MetricStore.log`` and
``RunStore.write`` (which folds them into the transaction that creates or ends a run)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.store.sql.tables import latest_metrics, metrics
from shipyard.store.sql.upsert import upsert


def _not_older(table: sa.Table, excluded: sa.ColumnCollection) -> sa.ColumnElement[bool]:
    return sa.or_(excluded.step > table.c.step,
                  sa.and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp))


@functools.cache
def _sqlite_insert(dialect: sa.Dialect) -> str:
    return str(metrics.insert().compile(dialect=dialect, column_keys=list(_COLUMNS)))


_COLUMNS = ("run_id", "key", "value", "step", "timestamp")


def append_metrics(conn: sa.Connection, run_id: str, metrics_: Sequence[Metric], *, new_run: bool = False) -> None:
    """Append the values with one executemany and move each key's latest value with one upsert
    that only wins over the stored latest when its (step, timestamp) is not older. For a run
    created in this transaction (``new_run``) there is no stored latest: a plain insert."""
    if not metrics_:
        return
    isnan = math.isnan
    latest: dict[str, Metric] = {}
    for m in metrics_:
        best = latest.get(m.key)
        if best is None or (m.step, m.timestamp) >= (best.step, best.timestamp):
            latest[m.key] = m
    if conn.dialect.name == "sqlite":
        # The statement SQLAlchemy compiles, given to the driver with tuples: its per-row
        # parameter processing was a third of a 1,000-metric log_batch (nothing to convert here).
        conn.exec_driver_sql(_sqlite_insert(conn.dialect),
                             [(run_id, m.key, None if isnan(m.value) else m.value, m.step, m.timestamp)
                              for m in metrics_])
    else:
        conn.execute(metrics.insert(), [{"run_id": run_id, "key": m.key, "value": None if isnan(m.value) else m.value,
                                         "step": m.step, "timestamp": m.timestamp} for m in metrics_])
    rows = [{"run_id": run_id, "key": m.key, "value": None if isnan(m.value) else m.value, "step": m.step,
             "timestamp": m.timestamp} for m in latest.values()]
    if new_run:
        conn.execute(latest_metrics.insert(), rows)
    else:
        upsert(conn, latest_metrics, rows, keys=("run_id", "key"), where=_not_older)
