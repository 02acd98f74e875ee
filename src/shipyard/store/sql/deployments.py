"""DeploymentStore on SQL: deployments, their revisions, and the lineage edges of what they serve.

Every write is one transaction holding the deployment's new row, its history event and the
``deployed`` lineage edges of versions that start serving or shadowing, so the history can never
miss a change nor record one that did not happen. Concurrent writers are told apart by the
revision: the UPDATE only matches the revision the caller read, so of two writers that read the
same revision, one wins and the other gets ``Conflict``.
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
from shipyard.entities import (
    DEPLOYMENT_EVENT_KINDS,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    Edge,
    ModelRef,
    Node,
    NodeKind,
    Relation,
)
from shipyard.errors import AlreadyExists, Conflict, InvalidInput
from shipyard.store.not_found import deployment_history_not_found, deployment_not_found
from shipyard.store.sql import registry_read
from shipyard.store.sql.database import Database
from shipyard.store.sql.lineage import record_edges
from shipyard.store.sql.tables import deployment_events, deployments
from shipyard.tracking import validation as rules
from shipyard.wire import deployment_from_wire, deployment_spec_to_wire, deployment_to_wire

_SAVE_KINDS = tuple(k for k in DEPLOYMENT_EVENT_KINDS if k not in ("create", "delete"))
_MAX_USER = 256
_MAX_DETAIL = 5000


# -- integrity ------------------------------------------------------------------------------------
# The shape rules (routes, weights, limits) are the domain's: shipyard.deploy.limits.
def _storable(d: Deployment) -> Deployment:
    """``d`` with what its row needs whatever the rules allow: a known status and project."""
    return replace(d, status=rules.check_choice("status", d.status, DeploymentStatus),
                   project=rules.check_project(d.project))


# -- rows ---------------------------------------------------------------------------------------------
def _values(d: Deployment) -> dict[str, Any]:
    return {"name": d.name, "environment": d.environment, "status": d.status.value, "revision": d.revision,
            "spec": json.dumps(deployment_spec_to_wire(d), separators=(",", ":")),
            "creation_time": d.creation_time, "last_update_time": d.last_update_time, "user_id": d.user,
            "project": d.project}


def _from_row(row: Any) -> Deployment:
    return deployment_from_wire({"name": row.name, "environment": row.environment, "status": row.status,
                                 "revision": row.revision, "creation_time": row.creation_time,
                                 "last_update_time": row.last_update_time, "user": row.user_id,
                                 "project": row.project, **json.loads(row.spec)})


def deployments_running(conn: sa.Connection, model: str, version: int | None = None) -> list[Deployment]:
    """The deployments (active or stopped) whose routes or shadows run ``model``, or only its
    version ``version``: the registry refuses to delete what one of them would load."""
    rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).all()
    running = [_from_row(row) for row in rows]
    return [d for d in running
            if any(ref.model == model and version in (None, ref.version) for ref in d.versions)]


def _row(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(deployments).where(deployments.c.name == name)).first()
    if row is None:
        raise deployment_not_found(name)
    return row


def _record(conn: sa.Connection, d: Deployment, kind: str, detail: str) -> None:
    conn.execute(deployment_events.insert().values(
        name=d.name, revision=d.revision, kind=kind, timestamp=d.last_update_time, user_id=d.user,
        detail=detail[:_MAX_DETAIL], state=json.dumps(deployment_to_wire(d), separators=(",", ":"))))


def _require_versions(conn: sa.Connection, refs: Sequence[ModelRef]) -> None:
    """``NotFound`` naming the first model or version that does not exist."""
    for ref in refs:
        registry_read.version_row(conn, registry_read.model_row(conn, ref.model), ref.version)


def _new_versions(old: Deployment | None, new: Deployment) -> list[tuple[ModelRef, str]]:
    """The versions ``new`` runs that ``old`` did not, each with its role."""
    before = set(old.versions) if old is not None else set()
    roles = [(r.ref, "primary" if i == 0 else "canary") for i, r in enumerate(new.routes)]
    roles += [(s, "shadow") for s in new.shadows]
    return [(ref, role) for ref, role in roles if ref not in before]


def _serve(conn: sa.Connection, old: Deployment | None, new: Deployment) -> None:
    """Check the versions that start running exist, and record their lineage edges."""
    added = _new_versions(old, new)
    _require_versions(conn, [ref for ref, _ in added])
    record_edges(conn, [Edge(Node(NodeKind.MODEL, str(ref)), Node(NodeKind.DEPLOYMENT, new.name), Relation.DEPLOYED,
                             context=role, timestamp=new.last_update_time) for ref, role in added])


class SqlDeploymentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, deployment: Deployment, *, user: str = "", detail: str = "") -> Deployment:
        d = _storable(deployment)
        now = now_ms()
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(deployments.c.name).where(deployments.c.name == d.name)).first():
                    raise AlreadyExists(f"deployment {d.name!r} already exists")
                last = conn.execute(sa.select(sa.func.max(deployment_events.c.revision))
                                    .where(deployment_events.c.name == d.name)).scalar()
                stored = replace(d, revision=(last or 0) + 1, creation_time=now, last_update_time=now,
                                 user=(user or "")[:_MAX_USER])
                conn.execute(deployments.insert().values(**_values(stored)))
                _record(conn, stored, "create", detail)
                _serve(conn, None, stored)
        except sa_exc.IntegrityError:  # a concurrent create of the same name won the INSERT
            raise AlreadyExists(f"deployment {d.name!r} already exists") from None
        return stored

    def get(self, name: str) -> Deployment:
        with self._db.read() as conn:
            return _from_row(_row(conn, name))

    def list(self, environment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Deployment]:
        stmt = sa.select(deployments)
        if environment is not None:
            stmt = stmt.where(deployments.c.environment == environment)
        if (wanted := rules.check_projects(projects)) is not None:
            stmt = stmt.where(deployments.c.project.in_(wanted))
        with self._db.read() as conn:
            return [_from_row(r) for r in conn.execute(stmt.order_by(deployments.c.name)).all()]

    def save(self, deployment: Deployment, *, kind: str, user: str = "", detail: str = "") -> Deployment:
        if kind not in _SAVE_KINDS:
            raise InvalidInput(f"kind: {kind!r} is not a kind of change; use one of {', '.join(_SAVE_KINDS)}",
                               field="kind")
        read_revision = rules.check_whole("revision", deployment.revision, 1, 2**63 - 2)
        d = _storable(deployment)
        try:
            with self._db.write() as conn:
                row = _row(conn, d.name)
                if row.revision != read_revision:
                    raise _stale(d.name, read_revision, row.revision)
                # A deployment stays in the project it was created in, whatever the caller sent.
                new = replace(d, revision=read_revision + 1, creation_time=row.creation_time, project=row.project,
                              last_update_time=max(now_ms(), row.last_update_time), user=(user or "")[:_MAX_USER])
                changed = conn.execute(deployments.update().where(deployments.c.name == d.name,
                                                                  deployments.c.revision == read_revision)
                                       .values(**_values(new))).rowcount
                if not changed:  # another writer moved it between our read and our update
                    raise _stale(d.name, read_revision, self._revision(conn, d.name))
                _record(conn, new, kind, detail)
                _serve(conn, _from_row(row), new)
        except sa_exc.IntegrityError:  # the same revision recorded by a concurrent writer
            raise Conflict(f"deployment {d.name!r} changed while revision {read_revision + 1} was being "
                           "written; read it again and retry") from None
        return new

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(deployment_events).where(deployment_events.c.name == name)
                                .order_by(deployment_events.c.revision)).all()
        if not rows:
            raise deployment_history_not_found(name)
        return [DeploymentEvent(r.name, r.revision, r.kind, r.timestamp, r.user_id,
                                deployment_from_wire(json.loads(r.state)), r.detail) for r in rows]

    def delete(self, name: str, *, user: str = "", detail: str = "") -> None:
        try:
            with self._db.write() as conn:
                row = _row(conn, name)
                deleted = conn.execute(deployments.delete().where(deployments.c.name == name,
                                                                  deployments.c.revision == row.revision)).rowcount
                if not deleted:  # changed (or deleted) by another writer since we read it
                    raise Conflict(f"deployment {name!r} changed while it was being deleted; retry")
                _record(conn, replace(_from_row(row), revision=row.revision + 1,
                                      last_update_time=max(now_ms(), row.last_update_time),
                                      user=(user or "")[:_MAX_USER]), "delete", detail)
        except sa_exc.IntegrityError:  # the same revision recorded by a concurrent writer
            raise Conflict(f"deployment {name!r} changed while it was being deleted; retry") from None

    @staticmethod
    def _revision(conn: sa.Connection, name: str) -> int | None:
        return conn.execute(sa.select(deployments.c.revision).where(deployments.c.name == name)).scalar()


def _stale(name: str, read: int, current: int | None) -> Conflict:
    if current is None:
        return Conflict(f"deployment {name!r} was deleted after revision {read} was read", expected_revision=read)
    return Conflict(f"deployment {name!r} is at revision {current}, but this change was made to revision {read}: "
                    "it changed since it was read; read it again and retry",
                    expected_revision=read, current_revision=current)
