"""MonitorStore on SQL: definitions, the evaluated windows, alerts, and the evaluation lease.

The lease is two columns of the monitor's row, taken with one conditional UPDATE (``WHERE
lease_expires <= now OR lease_owner = me``): the database decides which of two runners asking
at once gets it, whatever process or machine they run in. Recording an evaluation checks the
lease and the window again inside its transaction, and the unique (monitor, window_start) index
is the last guard, so a window is evaluated once even when a lease expired mid-evaluation.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities.monitor import ALERT_STATUSES, EVALUATION_STATUSES, Alert, AlertState, Monitor, MonitorEvaluation
from shipyard.errors import AlreadyExists, Conflict, InvalidInput
from shipyard.store.not_found import monitor_not_found
from shipyard.store.sql.database import Database, inserted_key
from shipyard.store.sql.tables import monitor_alerts, monitor_evaluations, monitors
from shipyard.tracking.validation import check_project, check_projects
from shipyard.wire import (
    alert_to_wire,
    evaluation_summary_to_wire,
    monitor_from_wire,
    monitor_spec_to_wire,
)

_MAX_USER = 256
_MAX_OWNER = 256
_MAX_DETAIL = 5000
_MAX_ACTION = 2000


def _json(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise InvalidInput("a monitor, evaluation or alert holds NaN or an infinite number (in its metrics, "
                           "scores, bounds or payload): store finite numbers, or None for none") from None


def _spec(m: Monitor) -> str:
    return _json(monitor_spec_to_wire(m))


def _from_row(row: Any) -> Monitor:
    return monitor_from_wire({
        "name": row.name, **json.loads(row.spec), "state": row.state, "state_since": row.state_since,
        "next_window_start": row.next_window_start, "last_evaluation_time": row.last_evaluation_time,
        "revision": row.revision, "creation_time": row.creation_time, "last_update_time": row.last_update_time,
        "user": row.user_id, "project": row.project})


def _evaluation(row: Any, with_report: bool) -> MonitorEvaluation:
    summary = json.loads(row.summary)
    return MonitorEvaluation(
        monitor=row.monitor, window_start=row.window_start, window_end=row.window_end, status=row.status,
        state=AlertState(row.state), rows=row.rows, labelled=row.labelled, dataset_drift=bool(row.dataset_drift),
        drifted_columns=tuple(summary.get("drifted_columns", ())), scores=summary.get("scores", {}),
        metrics=summary.get("metrics", {}), breaches=tuple(summary.get("breaches", ())),
        message=summary.get("message", ""), report=json.loads(row.report) if with_report else {},
        evaluation_time=row.evaluation_time, evaluation_id=row.evaluation_id)


def _alert(row: Any) -> Alert:
    return Alert(monitor=row.monitor, time=row.time, state=AlertState(row.state), window_start=row.window_start,
                 action=row.action, status=row.status, attempts=row.attempts, detail=row.detail,
                 payload=json.loads(row.payload), alert_id=row.alert_id)


def _row(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(monitors).where(monitors.c.name == name)).first()
    if row is None:
        raise monitor_not_found(name)
    return row


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput(f"limit: expected a whole number of at least 1, got {limit!r}", field="limit")
    return limit


class SqlMonitorStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, monitor: Monitor, *, user: str = "") -> Monitor:
        check_project(monitor.project)
        now = now_ms()
        stored = replace(monitor, revision=1, creation_time=now, last_update_time=now, user=(user or "")[:_MAX_USER],
                         state_since=monitor.state_since or now, last_evaluation_time=None)
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(monitors.c.name).where(monitors.c.name == monitor.name)).first():
                    raise AlreadyExists(f"monitor {monitor.name!r} already exists", monitor=monitor.name)
                conn.execute(monitors.insert().values(
                    name=stored.name, deployment=stored.deployment, spec=_spec(stored), state=stored.state.value,
                    state_since=stored.state_since, next_window_start=stored.next_window_start,
                    last_evaluation_time=None, lease_owner="", lease_expires=0, revision=1, creation_time=now,
                    last_update_time=now, user_id=stored.user, project=stored.project))
        except sa_exc.IntegrityError:  # a concurrent create of the same name won the INSERT
            raise AlreadyExists(f"monitor {monitor.name!r} already exists", monitor=monitor.name) from None
        return stored

    def get(self, name: str) -> Monitor:
        with self._db.read() as conn:
            return _from_row(_row(conn, name))

    def list(self, deployment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Monitor]:
        stmt = sa.select(monitors)
        if deployment is not None:
            stmt = stmt.where(monitors.c.deployment == deployment)
        if (wanted := check_projects(projects)) is not None:
            stmt = stmt.where(monitors.c.project.in_(wanted))
        with self._db.read() as conn:
            return [_from_row(r) for r in conn.execute(stmt.order_by(monitors.c.name)).all()]

    def save(self, monitor: Monitor, *, user: str = "") -> Monitor:
        read = monitor.revision
        now = now_ms()
        with self._db.write() as conn:
            row = _row(conn, monitor.name)
            changed = conn.execute(monitors.update().where(monitors.c.name == monitor.name,
                                                           monitors.c.revision == read)
                                   .values(deployment=monitor.deployment, spec=_spec(monitor), revision=read + 1,
                                           last_update_time=max(now, row.last_update_time),
                                           user_id=(user or "")[:_MAX_USER])).rowcount
            if not changed:
                raise Conflict(f"monitor {monitor.name!r} is at revision {row.revision}, but this change was made to "
                               f"revision {read}: read it again and retry", expected_revision=read,
                               current_revision=row.revision)
            return _from_row(_row(conn, monitor.name))

    def delete(self, name: str) -> None:
        with self._db.write() as conn:
            _row(conn, name)
            # Children first: SQLite enforces ON DELETE CASCADE only with foreign keys on.
            conn.execute(monitor_alerts.delete().where(monitor_alerts.c.monitor == name))
            conn.execute(monitor_evaluations.delete().where(monitor_evaluations.c.monitor == name))
            conn.execute(monitors.delete().where(monitors.c.name == name))

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        if not isinstance(owner, str) or not owner or len(owner) > _MAX_OWNER:
            raise InvalidInput(f"owner: expected 1 to {_MAX_OWNER} characters naming the runner, got {owner!r}",
                               field="owner")
        if not 0 < seconds <= 86_400:
            raise InvalidInput(f"seconds: a lease lasts more than 0 and at most 86400 seconds, got {seconds!r}",
                               field="seconds")
        now = now_ms()
        with self._db.write() as conn:
            taken = conn.execute(monitors.update().where(
                monitors.c.name == name, sa.or_(monitors.c.lease_expires <= now, monitors.c.lease_owner == owner))
                .values(lease_owner=owner, lease_expires=now + int(seconds * 1000))).rowcount
            if not taken:
                _row(conn, name)  # NotFound, or held by another runner
            return bool(taken)

    def release_lease(self, name: str, owner: str) -> None:
        with self._db.write() as conn:
            conn.execute(monitors.update().where(monitors.c.name == name, monitors.c.lease_owner == owner)
                         .values(lease_owner="", lease_expires=0))

    def record_evaluation(self, evaluation: MonitorEvaluation, *, owner: str) -> Monitor:
        e = evaluation
        if e.status not in EVALUATION_STATUSES:
            raise InvalidInput(f"status: expected one of {', '.join(EVALUATION_STATUSES)}, got {e.status!r}",
                               field="status")
        if e.window_end <= e.window_start:
            raise InvalidInput(f"window: the end ({e.window_end}) must come after the start ({e.window_start})",
                               field="window_end")
        now = now_ms()
        try:
            with self._db.write() as conn:
                row = _row(conn, e.monitor)
                if row.lease_owner != owner or row.lease_expires <= now:
                    raise Conflict(f"monitor {e.monitor!r}: {owner!r} does not hold its evaluation lease (it expired "
                                   "or another runner took it); the window was not recorded", monitor=e.monitor)
                if e.window_start != row.next_window_start:
                    raise Conflict(f"monitor {e.monitor!r} is at the window starting {row.next_window_start}, not "
                                   f"{e.window_start}: that window was evaluated already or is not due yet",
                                   monitor=e.monitor)
                conn.execute(monitor_evaluations.insert().values(
                    monitor=e.monitor, window_start=e.window_start, window_end=e.window_end,
                    evaluation_time=e.evaluation_time or now, status=e.status, state=e.state.value, rows=e.rows,
                    labelled=e.labelled, dataset_drift=e.dataset_drift, summary=_json(evaluation_summary_to_wire(e)),
                    report=_json(dict(e.report))))
                values: dict[str, Any] = {"next_window_start": e.window_end,
                                          "last_evaluation_time": e.evaluation_time or now, "state": e.state.value}
                if e.state.value != row.state:
                    values["state_since"] = e.evaluation_time or now
                conn.execute(monitors.update().where(monitors.c.name == e.monitor).values(**values))
                return _from_row(_row(conn, e.monitor))
        except sa_exc.IntegrityError:  # the same window recorded by a concurrent writer
            raise Conflict(f"monitor {e.monitor!r}: the window starting {e.window_start} was evaluated already",
                           monitor=e.monitor) from None

    def evaluations(self, name: str, *, limit: int | None = None, since: int | None = None,
                    with_report: bool = True) -> builtins.list[MonitorEvaluation]:
        columns = [c for c in monitor_evaluations.c if with_report or c.name != "report"]
        stmt = sa.select(*columns).where(monitor_evaluations.c.monitor == name)
        if since is not None:
            stmt = stmt.where(monitor_evaluations.c.window_start >= since)
        stmt = stmt.order_by(monitor_evaluations.c.window_start.desc())
        if _limit(limit) is not None:
            stmt = stmt.limit(limit)
        with self._db.read() as conn:
            _row(conn, name)
            rows = conn.execute(stmt).all()
        return [_evaluation(r, with_report) for r in reversed(rows)]

    def record_alert(self, alert: Alert) -> Alert:
        if alert.status not in ALERT_STATUSES:
            raise InvalidInput(f"status: expected one of {', '.join(ALERT_STATUSES)}, got {alert.status!r}",
                               field="status")
        body = alert_to_wire(alert)
        with self._db.write() as conn:
            _row(conn, alert.monitor)
            result = conn.execute(monitor_alerts.insert().values(
                monitor=alert.monitor, time=alert.time or now_ms(), state=alert.state.value,
                window_start=alert.window_start, action=alert.action[:_MAX_ACTION], status=alert.status,
                attempts=alert.attempts, detail=alert.detail[:_MAX_DETAIL], payload=_json(body["payload"])))
            alert_id = inserted_key(result)
            return _alert(conn.execute(sa.select(monitor_alerts)
                                       .where(monitor_alerts.c.alert_id == alert_id)).one())

    def alerts(self, name: str, *, limit: int | None = None) -> builtins.list[Alert]:
        stmt = sa.select(monitor_alerts).where(monitor_alerts.c.monitor == name) \
            .order_by(monitor_alerts.c.alert_id.desc())
        if _limit(limit) is not None:
            stmt = stmt.limit(limit)
        with self._db.read() as conn:
            _row(conn, name)
            rows = conn.execute(stmt).all()
        return [_alert(r) for r in reversed(rows)]
