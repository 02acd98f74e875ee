"""DatasetStore on SQL: one version per distinct content digest of a named dataset."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities import DatasetVersion
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import NotFound
from shipyard.store.not_found import dataset_not_found
from shipyard.store.sql.database import Database, inserted_key
from shipyard.store.sql.tables import dataset_versions, datasets
from shipyard.tracking.validation import check_project, check_projects

_COLUMNS = (dataset_versions, datasets.c.name, datasets.c.project)


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(row.name, row.version, row.digest, row.source, row.kind, row.num_rows, row.size_bytes,
                          tuple(json.loads(row.schema_json)), json.loads(row.profile_json), row.snapshot_uri,
                          row.creation_time, row.user_id, row.project)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS).join(datasets, datasets.c.dataset_id == dataset_versions.c.dataset_id)


class SqlDatasetStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def log_version(self, name: str, *, digest: str, source: str, kind: str, num_rows: int | None = None,
                    size_bytes: int | None = None, schema: Sequence[Mapping[str, Any]] = (),
                    profile: Mapping[str, Any] | None = None, snapshot_uri: str | None = None,
                    user: str = "", project: str = DEFAULT_PROJECT) -> tuple[DatasetVersion, bool]:
        check_project(project)
        now = now_ms()
        for attempt in range(2):  # a concurrent first use of the name may win the INSERT
            try:
                with self._db.write() as conn:
                    pk = self._dataset_id(conn, name, now, project)
                    existing = conn.execute(sa.select(dataset_versions.c.version, dataset_versions.c.snapshot_uri)
                                            .where(dataset_versions.c.dataset_id == pk,
                                                   dataset_versions.c.digest == digest)).first()
                    if existing is not None:
                        if snapshot_uri and not existing.snapshot_uri:
                            conn.execute(dataset_versions.update().where(
                                dataset_versions.c.dataset_id == pk, dataset_versions.c.version == existing.version)
                                .values(snapshot_uri=snapshot_uri))
                        return self._get(conn, name, existing.version), False
                    version = conn.execute(
                        datasets.update().where(datasets.c.dataset_id == pk)
                        .values(last_version=datasets.c.last_version + 1)
                        .returning(datasets.c.last_version)).scalar_one()
                    conn.execute(dataset_versions.insert().values(
                        dataset_id=pk, version=version, digest=digest, source=source, kind=kind, num_rows=num_rows,
                        size_bytes=size_bytes, schema_json=json.dumps(list(schema)),
                        profile_json=json.dumps(dict(profile or {})), snapshot_uri=snapshot_uri,
                        creation_time=now, user_id=user or ""))
                    return self._get(conn, name, version), True
            except sa_exc.IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def get_version(self, name: str, version: int) -> DatasetVersion:
        with self._db.read() as conn:
            return self._get(conn, name, version)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        with self._db.read() as conn:
            rows = conn.execute(_select().where(datasets.c.name == name).order_by(dataset_versions.c.version)).all()
        if not rows:
            raise dataset_not_found(name)
        return [_version(r) for r in rows]

    def list_datasets(self, *, projects: Sequence[str] | None = None) -> list[DatasetVersion]:
        stmt = _select().where(dataset_versions.c.version == datasets.c.last_version)
        if (wanted := check_projects(projects)) is not None:
            stmt = stmt.where(datasets.c.project.in_(wanted))
        with self._db.read() as conn:
            rows = conn.execute(stmt.order_by(datasets.c.name)).all()
        return [_version(r) for r in rows]

    @staticmethod
    def _dataset_id(conn: sa.Connection, name: str, now: int, project: str) -> int:
        """The dataset's key; a first use creates it in ``project`` (later ones keep that)."""
        pk = conn.execute(sa.select(datasets.c.dataset_id).where(datasets.c.name == name)).scalar()
        if pk is None:
            pk = inserted_key(conn.execute(datasets.insert().values(name=name, creation_time=now, last_version=0,
                                                                    project=project)))
        return pk

    @staticmethod
    def _get(conn: sa.Connection, name: str, version: int) -> DatasetVersion:
        row = conn.execute(_select().where(datasets.c.name == name, dataset_versions.c.version == version)).first()
        if row is None:
            known = conn.execute(sa.select(datasets.c.last_version).where(datasets.c.name == name)).scalar()
            if known is None:
                raise dataset_not_found(name)
            raise NotFound(f"dataset {name!r} has no version {version} (its versions are 1 to {known})")
        return _version(row)
