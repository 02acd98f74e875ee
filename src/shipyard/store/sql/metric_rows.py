"""Appending metric values inside a transaction: shared by ``MetricStore.log`` and
``RunStore.write`` (which folds them into the transaction that creates or ends a run)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.store.sql.tables import latest_metrics, metrics
from shipyard.store.sql.upsert import upsert


def _not_older(table: sa.Table, excluded: sa.ColumnCollection) -> sa.ColumnElement[bool]:
    return sa.or_(excluded.step > table.c.step,
                  sa.and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp))


def append_metrics(conn: sa.Connection, run_id: str, metrics_: Sequence[Metric], *, new_run: bool = False) -> None:
    """Append the values with one executemany and move each key's latest value with one upsert
    that only wins over the stored latest when its (step, timestamp) is not older. For a run
    created in this transaction (``new_run``) there is no stored latest: a plain insert."""
    if not metrics_:
        return
    isnan = math.isnan
    rows = [{"run_id": run_id, "key": m.key, "value": None if isnan(m.value) else m.value,
             "step": m.step, "timestamp": m.timestamp} for m in metrics_]
    latest: dict[str, dict] = {}
    for row in rows:
        best = latest.get(row["key"])
        if best is None or (row["step"], row["timestamp"]) >= (best["step"], best["timestamp"]):
            latest[row["key"]] = row
    conn.execute(metrics.insert(), rows)
    if new_run:
        conn.execute(latest_metrics.insert(), list(latest.values()))
    else:
        upsert(conn, latest_metrics, list(latest.values()), keys=("run_id", "key"), where=_not_older)
