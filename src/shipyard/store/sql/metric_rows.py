"""Appending metric values inside a transaction: shared by ``MetricStore.log`` and
``RunStore.write`` (which folds them into the transaction that creates or ends a run)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.store.sql.tables import latest_metrics, metrics
from shipyard.store.sql.upsert import insert_rows, upsert


def _not_older(table: sa.Table, excluded: sa.ColumnCollection[str, Any]) -> sa.ColumnElement[bool]:
    return sa.or_(excluded.step > table.c.step,
                  sa.and_(excluded.step == table.c.step, excluded.timestamp >= table.c.timestamp))


_COLUMNS = ("run_id", "key", "value", "step", "timestamp")


def append_metrics(conn: sa.Connection, run_id: str, metrics_: Sequence[Metric], *, new_run: bool = False) -> None:
    """Append the values with one executemany and move each key's latest value with one upsert
    that only wins over the stored latest when its (step, timestamp) is not older. For a run
    created in this transaction (``new_run``) there is no stored latest: a plain insert."""
    append_runs_metrics(conn, [(run_id, metrics_)], new_runs=new_run)


def append_runs_metrics(conn: sa.Connection, batches: Sequence[tuple[str, Sequence[Metric]]], *,
                        new_runs: bool = False) -> None:
    """:func:`append_metrics` for several runs at once: one executemany for all their values and
    one statement for all their latest values, whatever the number of runs."""
    isnan = math.isnan
    values: list[tuple[str, str, float | None, int, int]] = []
    latest: dict[tuple[str, str], Metric] = {}
    for run_id, metrics_ in batches:
        for m in metrics_:
            values.append((run_id, m.key, None if isnan(m.value) else m.value, m.step, m.timestamp))
            best = latest.get((run_id, m.key))
            if best is None or (m.step, m.timestamp) >= (best.step, best.timestamp):
                latest[run_id, m.key] = m
    if not values:
        return
    # Tuples straight to the driver on SQLite: SQLAlchemy's per-row parameter processing was a
    # third of a 1,000-metric log_batch.
    insert_rows(conn, metrics, _COLUMNS, values)
    latest_rows = [(run_id, m.key, None if isnan(m.value) else m.value, m.step, m.timestamp)
                   for (run_id, _key), m in latest.items()]
    if new_runs:
        insert_rows(conn, latest_metrics, _COLUMNS, latest_rows)
    else:
        upsert(conn, latest_metrics, [dict(zip(_COLUMNS, row, strict=True)) for row in latest_rows],
               keys=("run_id", "key"), where=_not_older)
