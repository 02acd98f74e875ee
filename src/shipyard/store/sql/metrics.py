"""MetricStore on SQL: the hot path of tracking.

A batch is one transaction (:func:`~shipyard.store.sql.metric_rows.append_metrics`): its values
are appended as one chunk per key (``metric_chunks``), and each key's latest value is moved with
one upsert that only wins over the stored latest when its (step, timestamp) is not older. A
history is read from its chunks as columns (:mod:`~shipyard.store.sql.history_columns`); the
objects of :meth:`SqlMetricStore.history` are built from those columns.
"""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.entities import Metric
from shipyard.entities.history import MetricHistory
from shipyard.store.sql import history_columns
from shipyard.store.sql.database import Database
from shipyard.store.sql.metric_rows import append_metrics
from shipyard.store.sql.runs import require_run


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
        return self.history_columns(run_id, key).metrics()

    def history_columns(self, run_id: str, key: str) -> MetricHistory:
        with self._db.read() as conn:
            require_run(conn, run_id, writable=False)
            return history_columns.read(conn, run_id, key)
