"""MetricStore on SQL: the hot path of tracking.

A batch is one transaction (:func:`~shipyard.store.sql.metric_rows.append_metrics`): its values
are appended with a single executemany, and each key's latest value is moved with one upsert
that only wins over the stored latest when its (step, timestamp) is not older.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.entities.history import MetricHistory
from shipyard.store.sql import history_columns
from shipyard.store.sql.database import Database
from shipyard.store.sql.metric_rows import append_metrics
from shipyard.store.sql.runs import require_run
from shipyard.store.sql.tables import metrics


class SqlMetricStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def log(self, run_id: str, metrics_: Sequence[Metric]) -> None:
        if not metrics_:
            return
        with self._db.write() as conn:
            require_run(conn, run_id)
            append_metrics(conn, run_id, metrics_)

    def history(self, run_id: str, key: str) -> list[Metric]:
        with self._db.read() as conn:
            require_run(conn, run_id, writable=False)
            rows = conn.execute(
                sa.select(metrics.c.value, metrics.c.step, metrics.c.timestamp)
                .where(metrics.c.run_id == run_id, metrics.c.key == key)
                .order_by(metrics.c.step, metrics.c.timestamp, metrics.c.id)).all()
        nan = float("nan")
        return [Metric(key, nan if v is None else v, step, ts) for v, step, ts in rows]

    def history_columns(self, run_id: str, key: str) -> MetricHistory:
        # With NumPy, the database's own order and packed columns (history_columns.py); else the
        # driver's own cursor: its tuples go straight into three arrays, without a result row
        # object per point.
        fast = history_columns.available(self._db.dialect)
        mark = "?" if self._db.dialect == "sqlite" else "%s"
        sql = (f"SELECT step, value, timestamp FROM metrics WHERE run_id = {mark} AND key = {mark} "
               "ORDER BY step, timestamp, id")
        with self._db.read() as conn:
            require_run(conn, run_id, writable=False)
            if fast:
                return history_columns.read(conn, run_id, key)
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.execute(sql, (run_id, key))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        return MetricHistory.from_rows(key, rows)

