"""ModelStore on SQL: registered models, versions, aliases, approvals and their history.

Every change is written with its history event in one transaction, so the history can
never miss a change nor record one that did not happen.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities import (
    DEFAULT_PROTECTED_ALIASES,
    Edge,
    ModelVersion,
    Node,
    NodeKind,
    Page,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    Relation,
    VersionStatus,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.not_found import deployed_model_conflict
from shipyard.store.sql import registry_read as read
from shipyard.store.sql.database import Database, inserted_key
from shipyard.store.sql.deployments import deployments_running
from shipyard.store.sql.lineage import record_edges, rename_nodes
from shipyard.store.sql.runs import require_run
from shipyard.store.sql.tables import (
    model_aliases,
    model_version_tags,
    model_versions,
    protected_aliases,
    registered_model_tags,
    registered_models,
    registry_events,
)
from shipyard.store.sql.upsert import upsert
from shipyard.tracking.validation import check_project

# Events that change only one version's own record: they move that version's last_update_time,
# not the model's (as in MLflow, where editing a version's description leaves its model alone).
_VERSION_ONLY_EVENTS = frozenset({"version_updated", "version_approved"})


def _record(conn: sa.Connection, model: Any, kind: str, user: str, *, version: int | None = None,
            alias: str | None = None, previous_version: int | None = None, detail: str = "",
            name: str | None = None) -> None:
    now = now_ms()
    conn.execute(registry_events.insert().values(
        model_id=model.model_id, model_name=name or model.name, kind=kind, timestamp=now, user_id=user or "",
        version=version, alias=alias, previous_version=previous_version, detail=detail[:5000]))
    if kind not in _VERSION_ONLY_EVENTS:
        conn.execute(registered_models.update().where(registered_models.c.model_id == model.model_id)
                     .values(last_update_time=now))


def _aliases_of(conn: sa.Connection, model_id: int, version: int | None = None) -> dict[str, int]:
    stmt = sa.select(model_aliases.c.alias, model_aliases.c.version).where(model_aliases.c.model_id == model_id)
    if version is not None:
        stmt = stmt.where(model_aliases.c.version == version)
    return dict(conn.execute(stmt.order_by(model_aliases.c.alias)).all())


class SqlModelStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- registered models ---------------------------------------------------------------
    def create_model(self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     user: str = "", project: str = DEFAULT_PROJECT) -> RegisteredModel:
        check_project(project)
        now = now_ms()
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(registered_models.c.model_id)
                                .where(registered_models.c.name == name)).first():
                    raise AlreadyExists(f"registered model {name!r} already exists")
                pk = inserted_key(conn.execute(registered_models.insert().values(
                    name=name, description=description, creation_time=now, last_update_time=now,
                    last_version=0, project=project)))
                if tags:
                    conn.execute(registered_model_tags.insert(),
                                 [{"model_id": pk, "key": k, "value": v} for k, v in tags.items()])
                conn.execute(protected_aliases.insert(),
                             [{"model_id": pk, "alias": a} for a in DEFAULT_PROTECTED_ALIASES])
                _record(conn, read.model_row(conn, name), "model_created", user)
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"registered model {name!r} already exists") from None
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self._db.read() as conn:
            return read.load_models(conn, [read.model_row(conn, name)])[0]

    def search_models(self, query: RegistryQuery) -> Page[RegisteredModel]:
        with self._db.read() as conn:
            return read.search_models(conn, query)

    def update_model(self, name: str, *, description: str, user: str = "") -> RegisteredModel:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            conn.execute(registered_models.update().where(registered_models.c.model_id == model.model_id)
                         .values(description=description))
            _record(conn, model, "model_updated", user, detail="description")
        return self.get_model(name)

    def rename_model(self, name: str, new_name: str, *, user: str = "") -> RegisteredModel:
        try:
            with self._db.write() as conn:
                model = read.model_row(conn, name)
                if new_name != name:
                    _refuse_if_deployed(conn, name, action="rename")
                    if conn.execute(sa.select(registered_models.c.model_id)
                                    .where(registered_models.c.name == new_name)).first():
                        raise AlreadyExists(f"registered model {new_name!r} already exists")
                conn.execute(registered_models.update().where(registered_models.c.model_id == model.model_id)
                             .values(name=new_name))
                rename_nodes(conn, f"{NodeKind.MODEL.value}:{name}/", f"{NodeKind.MODEL.value}:{new_name}/")
                _record(conn, model, "model_renamed", user, detail=name, name=new_name)
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"registered model {new_name!r} already exists") from None
        return self.get_model(new_name)

    def delete_model(self, name: str, *, force: bool = False, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            _refuse_if_deployed(conn, name)
            aliases = _aliases_of(conn, model.model_id)
            if aliases and not force:
                held = ", ".join(f"{a} -> version {v}" for a, v in aliases.items())
                raise Conflict(f"model {name!r} still has aliases ({held}); move or delete them first, "
                               "or delete with force")
            _record(conn, model, "model_deleted", user, detail=", ".join(aliases))
            conn.execute(registered_models.delete().where(registered_models.c.model_id == model.model_id))

    def set_model_tags(self, name: str, tags: Mapping[str, str], *, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            upsert(conn, registered_model_tags,
                   [{"model_id": model.model_id, "key": k, "value": v} for k, v in tags.items()],
                   keys=("model_id", "key"))
            if tags:
                _record(conn, model, "model_tag_set", user, detail=", ".join(tags))

    def delete_model_tag(self, name: str, key: str, *, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            deleted = conn.execute(registered_model_tags.delete().where(
                registered_model_tags.c.model_id == model.model_id, registered_model_tags.c.key == key)).rowcount
            if not deleted:
                raise NotFound(f"registered model {name!r} has no tag {key!r}")
            _record(conn, model, "model_tag_deleted", user, detail=key)

    # -- versions ------------------------------------------------------------------------
    def create_version(self, name: str, *, source: str, run_id: str | None = None, description: str = "",
                       tags: Mapping[str, str] | None = None,
                       status: VersionStatus = VersionStatus.READY, user: str = "") -> ModelVersion:
        now = now_ms()
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            if run_id is not None:
                require_run(conn, run_id, writable=False)
            # An UPDATE ... RETURNING takes the row lock: concurrent registrations get distinct numbers.
            version = conn.execute(
                registered_models.update().where(registered_models.c.model_id == model.model_id)
                .values(last_version=registered_models.c.last_version + 1)
                .returning(registered_models.c.last_version)).scalar_one()
            conn.execute(model_versions.insert().values(
                model_id=model.model_id, version=version, source=source, run_id=run_id,
                status=VersionStatus(status).value, description=description, card="", creation_time=now,
                last_update_time=now))
            if tags:
                conn.execute(model_version_tags.insert(), [
                    {"model_id": model.model_id, "version": version, "key": k, "value": v} for k, v in tags.items()])
            _record(conn, model, "version_created", user, version=version, detail=source)
            if run_id is not None:
                record_edges(conn, [Edge(Node(NodeKind.RUN, run_id), Node(NodeKind.MODEL, f"{name}/{version}"),
                                         Relation.MODEL)])
        return self.get_version(name, version)

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self._db.read() as conn:
            return read.load_versions(conn, [read.version_row(conn, read.model_row(conn, name), version)])[0]

    def search_versions(self, query: RegistryQuery) -> Page[ModelVersion]:
        with self._db.read() as conn:
            return read.search_versions(conn, query)

    def update_version(self, name: str, version: int, *, description: str | None = None,
                       status: VersionStatus | None = None, card: str | None = None,
                       user: str = "") -> ModelVersion:
        changes: dict[str, Any] = {}
        if description is not None:
            changes["description"] = description
        if status is not None:
            changes["status"] = VersionStatus(status).value
        if card is not None:
            changes["card"] = card
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            if changes:
                conn.execute(model_versions.update().where(model_versions.c.model_id == model.model_id,
                                                           model_versions.c.version == version)
                             .values(**changes, last_update_time=now_ms()))
                _record(conn, model, "version_updated", user, version=version, detail=", ".join(changes))
        return self.get_version(name, version)

    def delete_version(self, name: str, version: int, *, force: bool = False, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            _refuse_if_deployed(conn, name, version)
            aliases = _aliases_of(conn, model.model_id, version)
            if aliases and not force:
                raise Conflict(f"version {version} of model {name!r} holds the aliases {', '.join(aliases)}; "
                               "point them at another version or delete them first, or delete with force")
            for alias in aliases:
                _record(conn, model, "alias_deleted", user, alias=alias, previous_version=version)
            conn.execute(model_versions.delete().where(model_versions.c.model_id == model.model_id,
                                                       model_versions.c.version == version))
            _record(conn, model, "version_deleted", user, version=version)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            upsert(conn, model_version_tags,
                   [{"model_id": model.model_id, "version": version, "key": k, "value": v} for k, v in tags.items()],
                   keys=("model_id", "version", "key"))
            if tags:
                # A version's tags (its stage on the MLflow side among them) are part of it.
                conn.execute(model_versions.update().where(model_versions.c.model_id == model.model_id,
                                                           model_versions.c.version == version)
                             .values(last_update_time=now_ms()))
                _record(conn, model, "version_tag_set", user, version=version, detail=", ".join(tags))

    def delete_version_tag(self, name: str, version: int, key: str, *, user: str = "") -> None:
        t = model_version_tags
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            deleted = conn.execute(t.delete().where(t.c.model_id == model.model_id, t.c.version == version,
                                                    t.c.key == key)).rowcount
            if not deleted:
                raise NotFound(f"version {version} of model {name!r} has no tag {key!r}")
            _record(conn, model, "version_tag_deleted", user, version=version, detail=key)

    # -- approvals and aliases -----------------------------------------------------------
    def approve_version(self, name: str, version: int, *, user: str, comment: str = "") -> ModelVersion:
        if not user or not user.strip():
            raise InvalidInput("an approval must name who approves (user)")
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            now = now_ms()
            conn.execute(model_versions.update().where(model_versions.c.model_id == model.model_id,
                                                       model_versions.c.version == version)
                         .values(approved_by=user, approval_time=now, approval_comment=comment, last_update_time=now))
            _record(conn, model, "version_approved", user, version=version, detail=comment)
        return self.get_version(name, version)

    def protect_alias(self, name: str, alias: str, protected: bool = True, *, user: str = "") -> RegisteredModel:
        t = protected_aliases
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            present = conn.execute(sa.select(t.c.alias).where(t.c.model_id == model.model_id,
                                                              t.c.alias == alias)).first() is not None
            if protected and not present:
                conn.execute(t.insert().values(model_id=model.model_id, alias=alias))
                _record(conn, model, "alias_protected", user, alias=alias)
            elif not protected and present:
                conn.execute(t.delete().where(t.c.model_id == model.model_id, t.c.alias == alias))
                _record(conn, model, "alias_unprotected", user, alias=alias)
        return self.get_model(name)

    def set_alias(self, name: str, alias: str, version: int, *, user: str = "") -> ModelVersion:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            read.version_row(conn, model, version)
            previous = _aliases_of(conn, model.model_id).get(alias)
            if previous != version:
                upsert(conn, model_aliases, [{"model_id": model.model_id, "alias": alias, "version": version}],
                       keys=("model_id", "alias"))
                _record(conn, model, "alias_set", user, version=version, alias=alias, previous_version=previous)
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str, *, user: str = "") -> None:
        with self._db.write() as conn:
            model = read.model_row(conn, name)
            previous = _aliases_of(conn, model.model_id).get(alias)
            if previous is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            conn.execute(model_aliases.delete().where(model_aliases.c.model_id == model.model_id,
                                                      model_aliases.c.alias == alias))
            _record(conn, model, "alias_deleted", user, alias=alias, previous_version=previous)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self._db.read() as conn:
            model = read.model_row(conn, name)
            version = _aliases_of(conn, model.model_id).get(alias)
            if version is None:
                raise NotFound(f"model {name!r} has no alias {alias!r}")
            return read.load_versions(conn, [read.version_row(conn, model, version)])[0]

    def history(self, name: str) -> list[RegistryEvent]:
        with self._db.read() as conn:
            return read.load_events(conn, read.model_row(conn, name).model_id)


def _refuse_if_deployed(conn: sa.Connection, name: str, version: int | None = None, *,
                        action: str = "delete") -> None:
    """``Conflict`` while a deployment names what would be deleted or renamed: it loads versions
    by model name and number, and could no longer start or swap (``force`` does not override
    this; it only removes aliases)."""
    what = f"version {version} of model {name!r}" if version is not None else f"model {name!r}"
    serving = deployments_running(conn, name, version)
    if serving:
        raise deployed_model_conflict(f"{action} {what}", (f"{d.name} ({d.status.value.lower()})" for d in serving),
                                      (d.name for d in serving))
