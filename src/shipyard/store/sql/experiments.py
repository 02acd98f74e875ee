"""ExperimentStore on SQL."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities import Experiment, LifecycleStage, ViewType
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import AlreadyExists, NotFound
from shipyard.store.not_found import experiment_not_found
from shipyard.store.sql.database import Database, inserted_key
from shipyard.store.sql.tables import experiment_tags, experiments
from shipyard.store.sql.upsert import upsert
from shipyard.tracking.validation import check_project, check_projects


def experiment_pk(experiment_id: str) -> int:
    """The integer key of an experiment id; a malformed id cannot exist, so it is NotFound."""
    try:
        return int(experiment_id)
    except (TypeError, ValueError):
        raise experiment_not_found(experiment_id) from None


class SqlExperimentStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, name: str, tags: Mapping[str, str] | None = None, *,
               project: str = DEFAULT_PROJECT) -> Experiment:
        check_project(project)
        now = now_ms()
        try:
            with self._db.write() as conn:
                self._refuse_taken_name(conn, name)
                pk = inserted_key(conn.execute(experiments.insert().values(
                    name=name, lifecycle_stage=LifecycleStage.ACTIVE.value,
                    creation_time=now, last_update_time=now, project=project)))
                if tags:
                    conn.execute(experiment_tags.insert(),
                                 [{"experiment_id": pk, "key": k, "value": v} for k, v in tags.items()])
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"experiment {name!r} already exists") from None
        return self.get(str(pk))

    def get(self, experiment_id: str) -> Experiment:
        pk = experiment_pk(experiment_id)
        with self._db.read() as conn:
            found = self._select(conn, experiments.c.experiment_id == pk)
        if not found:
            raise experiment_not_found(experiment_id)
        return found[0]

    def get_by_name(self, name: str) -> Experiment | None:
        with self._db.read() as conn:
            found = self._select(conn, experiments.c.name == name)
        return found[0] if found else None

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY, *,
             projects: Sequence[str] | None = None) -> list[Experiment]:
        where: sa.ColumnElement[bool] = experiments.c.lifecycle_stage.in_([s.value for s in view.stages()])
        if (wanted := check_projects(projects)) is not None:
            where = sa.and_(where, experiments.c.project.in_(wanted))
        with self._db.read() as conn:
            return self._select(conn, where)

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        pk = experiment_pk(experiment_id)
        try:
            with self._db.write() as conn:
                self._require(conn, pk, experiment_id)
                self._refuse_taken_name(conn, new_name, except_pk=pk)
                conn.execute(experiments.update().where(experiments.c.experiment_id == pk)
                             .values(name=new_name, last_update_time=now_ms()))
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"experiment {new_name!r} already exists") from None
        return self.get(experiment_id)

    def delete(self, experiment_id: str) -> None:
        self._set_stage(experiment_id, LifecycleStage.DELETED)

    def restore(self, experiment_id: str) -> None:
        self._set_stage(experiment_id, LifecycleStage.ACTIVE)

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        pk = experiment_pk(experiment_id)
        with self._db.write() as conn:
            self._require(conn, pk, experiment_id)
            upsert(conn, experiment_tags,
                   [{"experiment_id": pk, "key": k, "value": v} for k, v in tags.items()],
                   keys=("experiment_id", "key"))

    def delete_tag(self, experiment_id: str, key: str) -> None:
        pk = experiment_pk(experiment_id)
        with self._db.write() as conn:
            self._require(conn, pk, experiment_id)
            deleted = conn.execute(experiment_tags.delete().where(
                experiment_tags.c.experiment_id == pk, experiment_tags.c.key == key)).rowcount
        if not deleted:
            raise NotFound(f"experiment '{experiment_id}' has no tag {key!r}")

    def _set_stage(self, experiment_id: str, stage: LifecycleStage) -> None:
        pk = experiment_pk(experiment_id)
        with self._db.write() as conn:
            self._require(conn, pk, experiment_id)
            conn.execute(experiments.update().where(experiments.c.experiment_id == pk)
                         .values(lifecycle_stage=stage.value, last_update_time=now_ms()))

    @staticmethod
    def _require(conn: sa.Connection, pk: int, experiment_id: str) -> None:
        found = conn.execute(sa.select(experiments.c.experiment_id)
                             .where(experiments.c.experiment_id == pk)).first()
        if found is None:
            raise experiment_not_found(experiment_id)

    @staticmethod
    def _refuse_taken_name(conn: sa.Connection, name: str, except_pk: int | None = None) -> None:
        row = conn.execute(sa.select(experiments.c.experiment_id, experiments.c.lifecycle_stage)
                           .where(experiments.c.name == name)).first()
        if row is not None and row.experiment_id != except_pk:
            deleted = row.lifecycle_stage == LifecycleStage.DELETED.value
            hint = " (it is deleted: restore it, or rename it first)" if deleted else ""
            raise AlreadyExists(f"experiment {name!r} already exists with id {row.experiment_id}{hint}")

    @staticmethod
    def _select(conn: sa.Connection, where: sa.ColumnElement[bool]) -> builtins.list[Experiment]:
        rows = conn.execute(sa.select(experiments).where(where)
                            .order_by(experiments.c.experiment_id)).all()
        if not rows:
            return []
        tags: dict[int, dict[str, str]] = {}
        for pk, key, value in conn.execute(
                sa.select(experiment_tags.c.experiment_id, experiment_tags.c.key, experiment_tags.c.value)
                .where(experiment_tags.c.experiment_id.in_([r.experiment_id for r in rows]))):
            tags.setdefault(pk, {})[key] = value
        return [
            Experiment(experiment_id=str(r.experiment_id), name=r.name,
                       lifecycle_stage=LifecycleStage(r.lifecycle_stage), creation_time=r.creation_time,
                       last_update_time=r.last_update_time, tags=tags.get(r.experiment_id, {}), project=r.project)
            for r in rows
        ]
