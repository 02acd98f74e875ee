"""Reading the model registry: rows to records (children loaded in one query per kind) and
registry searches compiled to one parameterised SELECT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.entities import (
    Approval,
    Comparison,
    ModelVersion,
    Page,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    VersionStatus,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.not_found import model_not_found
from shipyard.store.sql.search import condition, decode_page_token, encode_page_token, keyed_match
from shipyard.store.sql.tables import (
    model_aliases,
    model_version_tags,
    model_versions,
    protected_aliases,
    registered_model_tags,
    registered_models,
    registry_events,
)
from shipyard.tracking.validation import check_projects

_MODEL_COLUMNS: dict[str, sa.Column[Any]] = {
    "name": registered_models.c.name,
    "description": registered_models.c.description,
    "creation_time": registered_models.c.creation_time,
    "last_update_time": registered_models.c.last_update_time,
}
_VERSION_COLUMNS: dict[str, sa.Column[Any]] = {
    "name": registered_models.c.name,
    "version": model_versions.c.version,
    "run_id": model_versions.c.run_id,
    "status": model_versions.c.status,
    "source": model_versions.c.source,
    "creation_time": model_versions.c.creation_time,
    "last_update_time": model_versions.c.last_update_time,
}
_STATUS = {s.value: s for s in VersionStatus}


def model_row(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(registered_models).where(registered_models.c.name == name)).first()
    if row is None:
        raise model_not_found(name)
    return row


def version_row(conn: sa.Connection, model: Any, version: int) -> Any:
    row = conn.execute(sa.select(model_versions, registered_models.c.name)
                       .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
                       .where(model_versions.c.model_id == model.model_id,
                              model_versions.c.version == version)).first()
    if row is None:
        raise NotFound(f"model {model.name!r} has no version {version}")
    return row


def load_models(conn: sa.Connection, rows: Sequence[Any]) -> list[RegisteredModel]:
    ids = [r.model_id for r in rows]
    if not ids:
        return []
    tags: dict[int, dict[str, str]] = {i: {} for i in ids}
    aliases: dict[int, dict[str, int]] = {i: {} for i in ids}
    protected: dict[int, list[str]] = {i: [] for i in ids}
    for pk, key, value in conn.execute(sa.select(registered_model_tags).where(
            registered_model_tags.c.model_id.in_(ids))).all():
        tags[pk][key] = value
    for pk, alias, version in conn.execute(sa.select(model_aliases).where(model_aliases.c.model_id.in_(ids))
                                           .order_by(model_aliases.c.alias)).all():
        aliases[pk][alias] = version
    for pk, alias in conn.execute(sa.select(protected_aliases).where(protected_aliases.c.model_id.in_(ids))
                                  .order_by(protected_aliases.c.alias)).all():
        protected[pk].append(alias)
    latest = dict(conn.execute(
        sa.select(model_versions.c.model_id, sa.func.max(model_versions.c.version))
        .where(model_versions.c.model_id.in_(ids)).group_by(model_versions.c.model_id)).all())
    return [RegisteredModel(r.name, r.description, r.creation_time, r.last_update_time, tags[r.model_id],
                            aliases[r.model_id], latest.get(r.model_id), tuple(protected[r.model_id]), r.project)
            for r in rows]


def load_versions(conn: sa.Connection, rows: Sequence[Any]) -> list[ModelVersion]:
    """``rows`` are model_versions rows with the model's ``name``."""
    if not rows:
        return []
    wanted = [(r.model_id, r.version) for r in rows]
    tags: dict[tuple[int, int], dict[str, str]] = {k: {} for k in wanted}
    aliases: dict[tuple[int, int], list[str]] = {k: [] for k in wanted}
    pairs = sa.tuple_(model_version_tags.c.model_id, model_version_tags.c.version)
    for pk, version, key, value in conn.execute(sa.select(model_version_tags).where(pairs.in_(wanted))).all():
        tags[(pk, version)][key] = value
    alias_pairs = sa.tuple_(model_aliases.c.model_id, model_aliases.c.version)
    for pk, alias, version in conn.execute(sa.select(model_aliases).where(alias_pairs.in_(wanted))
                                           .order_by(model_aliases.c.alias)).all():
        aliases[(pk, version)].append(alias)
    out = []
    for r in rows:
        key = (r.model_id, r.version)
        approval = Approval(r.approved_by, r.approval_time, r.approval_comment or "") if r.approved_by else None
        out.append(ModelVersion(r.name, r.version, r.source, r.run_id, _STATUS[r.status], r.description,
                                r.creation_time, r.last_update_time, tags[key], tuple(aliases[key]),
                                approval, r.card))
    return out


def load_events(conn: sa.Connection, model_id: int) -> list[RegistryEvent]:
    rows = conn.execute(sa.select(registry_events).where(registry_events.c.model_id == model_id)
                        .order_by(registry_events.c.event_id)).all()
    return [RegistryEvent(r.model_name, r.kind, r.timestamp, r.user_id, r.version, r.alias, r.previous_version,
                          r.detail) for r in rows]


def _clause(cmp: Comparison, columns: dict[str, sa.Column[Any]], tag_match: Any) -> sa.ColumnElement[bool]:
    if cmp.kind == "attribute":
        value = cmp.value
        if cmp.key == "status" and isinstance(value, str):
            value = value.upper()
        return condition(columns[cmp.key], cmp.op, value)
    clause: sa.ColumnElement[bool] = tag_match(cmp)
    return clause


def _ordering(query: RegistryQuery, columns: dict[str, sa.Column[Any]]) -> list[Any]:
    ordering = []
    for order in query.order_by:
        if order.kind != "attribute" or order.key not in columns:
            raise InvalidInput(f"cannot order by {order.kind} {order.key!r}; order by one of "
                               + ", ".join(sorted(columns)))
        column = columns[order.key]
        ordering.append(column.asc() if order.ascending else column.desc())
    return ordering


def _in_projects(query: RegistryQuery) -> list[sa.ColumnElement[bool]]:
    """The project terms of a search: part of the SELECT, so pages and their tokens count only
    the models (and versions) of those projects."""
    wanted = check_projects(query.projects)
    return [] if wanted is None else [registered_models.c.project.in_(wanted)]


def search_models(conn: sa.Connection, query: RegistryQuery) -> Page[RegisteredModel]:
    offset = decode_page_token(query.page_token)
    stmt = sa.select(registered_models).where(*_in_projects(query))

    def tag_match(cmp: Comparison) -> sa.ColumnElement[bool]:
        t = registered_model_tags
        return keyed_match(registered_models.c.model_id, sa.select(t.c.model_id).where(t.c.key == cmp.key),
                           t.c.value, cmp, missing_is_unequal=True)

    for cmp in query.filter:
        stmt = stmt.where(_clause(cmp, _MODEL_COLUMNS, tag_match))
    ordering = [*_ordering(query, _MODEL_COLUMNS), registered_models.c.name]
    rows = conn.execute(stmt.order_by(*ordering).limit(query.max_results + 1).offset(offset)).all()
    return _page(load_models(conn, rows[:query.max_results]), len(rows) > query.max_results,
                 offset + query.max_results)


def search_versions(conn: sa.Connection, query: RegistryQuery) -> Page[ModelVersion]:
    offset = decode_page_token(query.page_token)
    stmt = (sa.select(model_versions, registered_models.c.name)
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .where(*_in_projects(query)))

    def tag_match(cmp: Comparison) -> sa.ColumnElement[bool]:
        t = model_version_tags
        return keyed_match(sa.tuple_(model_versions.c.model_id, model_versions.c.version),
                           sa.select(t.c.model_id, t.c.version).where(t.c.key == cmp.key), t.c.value, cmp,
                           missing_is_unequal=True)

    for cmp in query.filter:
        stmt = stmt.where(_clause(cmp, _VERSION_COLUMNS, tag_match))
    # Newest first unless told otherwise; ties of any order fall to the model's name, then its
    # newest version, so a page never depends on when rows happened to be written.
    ordering = _ordering(query, _VERSION_COLUMNS) or [model_versions.c.creation_time.desc()]
    stmt = stmt.order_by(*ordering, registered_models.c.name, model_versions.c.version.desc())
    rows = conn.execute(stmt.limit(query.max_results + 1).offset(offset)).all()
    return _page(load_versions(conn, rows[:query.max_results]), len(rows) > query.max_results,
                 offset + query.max_results)


def _page(items: list[Any], more: bool, next_offset: int) -> Page[Any]:
    return Page(items, encode_page_token(next_offset) if more else None)
