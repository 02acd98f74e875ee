"""LoggedModelStore on SQL: logged models, their tags and params, and their search.

Searches are composed from the run search's pieces (:func:`~shipyard.store.sql.search.condition`,
:func:`~shipyard.store.sql.search.keyed_match`, the page tokens), so the three searches share
one comparison compiler and one token format.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.clock import now_ms
from shipyard.entities import (
    LOGGED_MODEL_GRAMMAR,
    Comparison,
    LifecycleStage,
    LoggedModel,
    LoggedModelDataset,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    OrderBy,
    Page,
    RunLink,
    RunLinkKind,
    ViewType,
)
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store.not_found import experiment_not_found, logged_model_not_found, runs_not_found
from shipyard.store.sql.database import Database
from shipyard.store.sql.experiments import experiment_pk
from shipyard.store.sql.id_lists import among, bound_ids
from shipyard.store.sql.search import condition, decode_page_token, encode_page_token, keyed_match
from shipyard.store.sql.tables import (
    experiments,
    logged_model_metrics,
    logged_model_params,
    logged_model_tags,
    logged_models,
    run_links,
)
from shipyard.store.sql.upsert import insert_new, upsert
from shipyard.tracking import validation as rules

_MODEL_ID = re.compile(r"m-[0-9a-f]{32}")
# What artifact stores accept as a run id, bounded by the runs.run_id column.
_RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_MAX_ARTIFACT_PATH = 1000
_MAX_STATUS_MESSAGE = 5000
_MAX_MODEL_TYPE = 256
_MAX_DATASET_NAME = 500
_MAX_DATASET_DIGEST = 64
_MAX_LINK_REF = 300
# Children of many models are loaded with IN (...) lists of at most this many ids.
_CHUNK = 1000


@functools.cache
def _links_of(dialect: str) -> sa.Select[Any]:
    """Built once per dialect: runs/get and runs/search ask for the links of the runs they return."""
    return sa.select(run_links).where(among(dialect, run_links.c.run_id, "run_ids"))


_COLUMNS: dict[str, Any] = {
    "model_id": logged_models.c.model_id,
    "name": logged_models.c.name,
    "status": logged_models.c.status,
    "source_run_id": logged_models.c.source_run_id,
    "model_type": logged_models.c.model_type,
    # A string attribute in the grammar (LIKE and IN take text), an integer in the table.
    "experiment_id": sa.cast(logged_models.c.experiment_id, sa.String),
    "creation_time": logged_models.c.creation_time,
    "last_update_time": logged_models.c.last_update_time,
}
_CHILDREN = {"tag": logged_model_tags, "param": logged_model_params}
_ALIASES = dict(LOGGED_MODEL_GRAMMAR.aliases)
_STATUS = {s.value: s for s in LoggedModelStatus}
_STAGE = {s.value: s for s in LifecycleStage}



# -- shape rules (the run rules of tracking.validation, plus the id formats) ----------------------
def _check_model_id(model_id: Any) -> str:
    if not isinstance(model_id, str) or not _MODEL_ID.fullmatch(model_id):
        raise InvalidInput(f"logged model id {model_id!r} is not valid: expected 'm-' and 32 lowercase hex digits")
    return model_id


def _check_run_id(kind: str, run_id: Any) -> str:
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
        raise InvalidInput(f"{kind} {run_id!r} is not valid: expected 1-32 characters from [A-Za-z0-9_-]")
    return run_id


def _bounded(kind: str, value: Any, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{kind} must be a string, got {type(value).__name__} {value!r}")
    if len(value) > limit:
        raise InvalidInput(f"{kind} is {len(value)} characters long; at most {limit} are allowed")
    return value


def _check_time(kind: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidInput(f"{kind} must be a whole number of milliseconds since the epoch (0: now), got {value!r}")
    return value


def _tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {rules.check_key("tag", k): rules.tag_value(k, v) for k, v in tags.items()}


def _params(params: Mapping[str, str]) -> dict[str, str]:
    return {rules.check_key("param", k): rules.param_value(k, v) for k, v in params.items()}


def _checked(model: LoggedModel) -> LoggedModel:
    """``model`` with every field checked and the artifact path in canonical form."""
    path = normalize_artifact_path(model.artifact_path, allow_root=True)
    return LoggedModel(
        model_id=_check_model_id(model.model_id),
        experiment_id=model.experiment_id,
        name=rules.check_name("logged model name", model.name),
        run_id=_check_run_id("run id", model.run_id),
        artifact_path=_bounded("artifact path", path, _MAX_ARTIFACT_PATH),
        source_run_id=None if model.source_run_id is None else _check_run_id("source run id", model.source_run_id),
        status=rules.check_choice("logged model status", model.status, LoggedModelStatus),
        status_message=_bounded("status message", model.status_message, _MAX_STATUS_MESSAGE),
        model_type=_bounded("model type", model.model_type, _MAX_MODEL_TYPE),
        creation_time=_check_time("creation_time", model.creation_time),
        last_update_time=_check_time("last_update_time", model.last_update_time),
        tags=_tags(model.tags),
        params=_params(model.params),
    )


# -- reading ------------------------------------------------------------------------------------
def _load(conn: sa.Connection, rows: Sequence[Any]) -> list[LoggedModel]:
    """Models with their tags and params, in one query per kind and chunk of ids."""
    ids = [r.model_id for r in rows]
    children: dict[str, dict[str, dict[str, str]]] = {kind: {i: {} for i in ids} for kind in _CHILDREN}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start:start + _CHUNK]
        for kind, table in _CHILDREN.items():
            for model_id, key, value in conn.execute(
                    sa.select(table.c.model_id, table.c.key, table.c.value).where(table.c.model_id.in_(chunk))).all():
                children[kind][model_id][key] = value
    metrics: dict[str, list[LoggedModelMetric]] = {i: [] for i in ids}
    m = logged_model_metrics
    for start in range(0, len(ids), _CHUNK):
        stmt = (sa.select(m.c.model_id, m.c.key, m.c.value, m.c.step, m.c.timestamp, m.c.run_id, m.c.dataset_name,
                          m.c.dataset_digest)
                .where(m.c.model_id.in_(ids[start:start + _CHUNK])).order_by(m.c.timestamp, m.c.step, m.c.key))
        for row in conn.execute(stmt).all():
            value = float("nan") if row.value is None else row.value
            metrics[row.model_id].append(LoggedModelMetric(row.key, value, row.step, row.timestamp, row.run_id,
                                                           row.dataset_name, row.dataset_digest))
    return [LoggedModel(r.model_id, str(r.experiment_id), r.name, r.run_id, r.artifact_path, r.source_run_id,
                        _STATUS[r.status], r.status_message, r.model_type, r.creation_time, r.last_update_time,
                        _STAGE[r.lifecycle_stage], children["tag"][r.model_id], children["param"][r.model_id],
                        tuple(metrics[r.model_id]))
            for r in rows]


def _require(conn: sa.Connection, model_id: str) -> None:
    if conn.execute(sa.select(logged_models.c.model_id).where(logged_models.c.model_id == model_id)).first() is None:
        raise logged_model_not_found(model_id)


def _touch(conn: sa.Connection, model_id: str, **values: Any) -> None:
    """Write ``values`` and move ``last_update_time``; ``NotFound`` when there is no such model."""
    changed = conn.execute(logged_models.update().where(logged_models.c.model_id == model_id)
                           .values(**values, last_update_time=now_ms())).rowcount
    if not changed:
        raise logged_model_not_found(model_id)


def _attribute(key: str) -> str:
    return _ALIASES.get(key.lower(), key.lower())


def _clause(cmp: Comparison) -> sa.ColumnElement[bool]:
    if cmp.kind == "attribute":
        column = _COLUMNS.get(_attribute(cmp.key))
        if column is None:
            raise InvalidInput(f"unknown logged model attribute {cmp.key!r}; known: {', '.join(sorted(_COLUMNS))}")
        value = cmp.value
        if _attribute(cmp.key) == "status":  # statuses are stored upper case; accept 'ready'
            value = tuple(v.upper() for v in value) if isinstance(value, tuple) else \
                value.upper() if isinstance(value, str) else value
        return condition(column, cmp.op, value)
    table = _CHILDREN.get(cmp.kind)
    if table is None:
        raise InvalidInput(f"a logged model search cannot filter on {cmp.kind}s; use tags, params or attributes")
    return keyed_match(logged_models.c.model_id, sa.select(table.c.model_id).where(table.c.key == cmp.key),
                       table.c.value, cmp)


def _on_datasets(datasets: Sequence[LoggedModelDataset]) -> sa.ColumnElement[bool]:
    """The models with a metric logged on one of ``datasets``."""
    m = logged_model_metrics
    wanted = [sa.and_(m.c.dataset_name == d.name, *([m.c.dataset_digest == d.digest] if d.digest else []))
              for d in datasets]
    return logged_models.c.model_id.in_(sa.select(m.c.model_id).where(sa.or_(*wanted)))


def _ordering(order_by: Sequence[OrderBy]) -> list[Any]:
    ordering = []
    for order in order_by:
        column = _COLUMNS.get(_attribute(order.key)) if order.kind == "attribute" else None
        if column is None:
            raise InvalidInput(f"cannot order logged models by {order.kind} {order.key!r}; order by an attribute: "
                               f"{', '.join(sorted(_COLUMNS))}")
        ordering.append((column.asc() if order.ascending else column.desc()).nulls_last())
    # Always end on the unique id, so pages never skip or repeat a model of equal sort keys.
    return [*ordering, logged_models.c.creation_time.desc(), logged_models.c.model_id.asc()]


class SqlLoggedModelStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(self, model: LoggedModel) -> LoggedModel:
        model = _checked(model)
        pk = experiment_pk(model.experiment_id)
        now = now_ms()
        try:
            with self._db.write() as conn:
                stage = conn.execute(sa.select(experiments.c.lifecycle_stage)
                                     .where(experiments.c.experiment_id == pk)).scalar()
                if stage is None:
                    raise experiment_not_found(model.experiment_id)
                if stage == LifecycleStage.DELETED.value:
                    raise Conflict(f"experiment '{model.experiment_id}' is deleted; restore it to add logged models")
                if conn.execute(sa.select(logged_models.c.model_id)
                                .where(logged_models.c.model_id == model.model_id)).first():
                    raise AlreadyExists(f"logged model '{model.model_id}' already exists")
                conn.execute(logged_models.insert().values(
                    model_id=model.model_id, experiment_id=pk, name=model.name, run_id=model.run_id,
                    artifact_path=model.artifact_path, source_run_id=model.source_run_id,
                    status=model.status.value, status_message=model.status_message, model_type=model.model_type,
                    creation_time=model.creation_time or now, last_update_time=model.last_update_time or now,
                    lifecycle_stage=LifecycleStage.ACTIVE.value))
                for kind, values in (("tag", model.tags), ("param", model.params)):
                    if values:
                        conn.execute(_CHILDREN[kind].insert(),
                                     [{"model_id": model.model_id, "key": k, "value": v} for k, v in values.items()])
        except sa_exc.IntegrityError:  # a concurrent create of the same id won the INSERT
            raise AlreadyExists(f"logged model '{model.model_id}' already exists") from None
        return self.get(model.model_id)

    def get(self, model_id: str) -> LoggedModel:
        with self._db.read() as conn:
            row = conn.execute(sa.select(logged_models).where(logged_models.c.model_id == model_id)).first()
            if row is None:
                raise logged_model_not_found(model_id)
            return _load(conn, [row])[0]

    def update(self, model_id: str, *, status: LoggedModelStatus | None = None,
               status_message: str | None = None) -> LoggedModel:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = rules.check_choice("logged model status", status, LoggedModelStatus).value
        if status_message is not None:
            values["status_message"] = _bounded("status message", status_message, _MAX_STATUS_MESSAGE)
        with self._db.write() as conn:
            if values:
                _touch(conn, model_id, **values)
            else:
                _require(conn, model_id)
        return self.get(model_id)

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in _tags(tags).items()]
        with self._db.write() as conn:
            if not rows:
                _require(conn, model_id)
                return
            _touch(conn, model_id)
            upsert(conn, logged_model_tags, rows, keys=("model_id", "key"))

    def delete_tag(self, model_id: str, key: str) -> None:
        t = logged_model_tags
        with self._db.write() as conn:
            _require(conn, model_id)
            if not conn.execute(t.delete().where(t.c.model_id == model_id, t.c.key == key)).rowcount:
                raise NotFound(f"logged model '{model_id}' has no tag {key!r}")
            _touch(conn, model_id)

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        wanted = _params(params)
        p = logged_model_params
        with self._db.write() as conn:
            if not wanted:
                _require(conn, model_id)
                return
            _touch(conn, model_id)
            # Insert what is new, then compare everything stored: a value written meanwhile by a
            # concurrent call is seen too, and raising rolls back this call's rows.
            insert_new(conn, p, [{"model_id": model_id, "key": k, "value": v} for k, v in wanted.items()],
                       keys=("model_id", "key"))
            stored = dict(conn.execute(sa.select(p.c.key, p.c.value)
                                       .where(p.c.model_id == model_id, p.c.key.in_(list(wanted)))).all())
            for key, value in wanted.items():
                if stored[key] != value:
                    raise InvalidInput(
                        f"param {key!r} of logged model '{model_id}' is already {stored[key]!r}; it cannot change "
                        f"to {value!r} (params are immutable: use a new key, or a new model)",
                        key=key, old_value=stored[key], new_value=value)

    def delete(self, model_id: str) -> None:
        with self._db.write() as conn:
            _touch(conn, model_id, lifecycle_stage=LifecycleStage.DELETED.value)

    def search(self, query: LoggedModelQuery) -> Page[LoggedModel]:
        if not query.experiment_ids:
            return Page([])
        offset = decode_page_token(query.page_token)
        pks = [experiment_pk(e) for e in query.experiment_ids]
        stages = [s.value for s in ViewType(query.view).stages()]
        stmt = sa.select(logged_models).where(logged_models.c.experiment_id.in_(pks),
                                              logged_models.c.lifecycle_stage.in_(stages))
        for cmp in query.filter:
            stmt = stmt.where(_clause(cmp))
        if query.datasets:
            stmt = stmt.where(_on_datasets(query.datasets))
        stmt = stmt.order_by(*_ordering(query.order_by)).limit(query.max_results + 1).offset(offset)
        with self._db.read() as conn:
            rows = conn.execute(stmt).all()
            found = _load(conn, rows[:query.max_results])
        more = len(rows) > query.max_results
        return Page(found, encode_page_token(offset + query.max_results) if more else None)

    def list_for_run(self, run_id: str, view: ViewType = ViewType.ACTIVE_ONLY) -> list[LoggedModel]:
        stmt = (sa.select(logged_models)
                .where(logged_models.c.source_run_id == run_id,
                       logged_models.c.lifecycle_stage.in_([s.value for s in ViewType(view).stages()]))
                .order_by(logged_models.c.creation_time, logged_models.c.model_id))
        with self._db.read() as conn:
            return _load(conn, conn.execute(stmt).all())

    def log_metrics(self, model_id: str, metrics: Sequence[LoggedModelMetric]) -> None:
        rows = [_metric_row(model_id, m) for m in metrics]
        with self._db.write() as conn:
            _require(conn, model_id)
            insert_new(conn, logged_model_metrics, rows, keys=("model_id", "key", "timestamp", "step", "run_id"))

    def add_run_links(self, links: Sequence[RunLink]) -> None:
        rows = [_link_row(link) for link in links]
        if not rows:
            return
        try:
            with self._db.write() as conn:
                insert_new(conn, run_links, rows, keys=("run_id", "kind", "ref"))
        except sa_exc.IntegrityError:  # the run's foreign key: one of the runs is not there
            raise runs_not_found(r["run_id"] for r in rows) from None

    def run_links(self, run_ids: Sequence[str]) -> dict[str, list[RunLink]]:
        found: dict[str, list[RunLink]] = {run_id: [] for run_id in run_ids}
        ids = sorted(found)
        rows: list[sa.Row[Any]] = []
        with self._db.read() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                rows += conn.execute(_links_of(conn.dialect.name),
                                     {"run_ids": bound_ids(conn.dialect.name, chunk)}).all()
        for row in sorted(rows, key=lambda r: r.link_id):
            found[row.run_id].append(RunLink(row.run_id, RunLinkKind(row.kind), row.ref, row.step,
                                             json.loads(row.tags)))
        return found


def _metric_row(model_id: str, m: LoggedModelMetric) -> dict[str, Any]:
    value = m.value if isinstance(m.value, int | float) and not isinstance(m.value, bool) else None
    if value is None:
        raise InvalidInput(f"metric {m.key!r} of logged model '{model_id}' must be a number, got {m.value!r}")
    return {"model_id": model_id, "key": rules.check_metric_key(m.key),
            "timestamp": _check_time("metric timestamp", m.timestamp), "step": _check_step(m.step),
            "run_id": _check_run_id("run id", m.run_id), "value": None if value != value else float(value),
            "dataset_name": _bounded("dataset name", m.dataset_name, _MAX_DATASET_NAME),
            "dataset_digest": _bounded("dataset digest", m.dataset_digest, _MAX_DATASET_DIGEST)}


def _check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not -2**63 <= step < 2**63:
        raise InvalidInput(f"metric step must be a whole number, got {step!r}")
    return step


def _link_row(link: RunLink) -> dict[str, Any]:
    try:
        kind = RunLinkKind(link.kind)
    except ValueError:
        raise InvalidInput(f"run link kind {link.kind!r} is not valid; use one of "
                           + ", ".join(k.value for k in RunLinkKind)) from None
    tags = {rules.check_key("input tag", k): rules.tag_value(k, v) for k, v in link.tags.items()}
    return {"run_id": _check_run_id("run id", link.run_id), "kind": kind.value,
            "ref": rules.check_name("run link reference", link.ref, _MAX_LINK_REF), "step": _check_step(link.step),
            "tags": json.dumps(tags, sort_keys=True)}
