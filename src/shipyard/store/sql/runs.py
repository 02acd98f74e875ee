"""RunStore on SQL: runs, their params and tags, and search.

``write`` is the fast path of the SDK: a run created with its params, tags and first metrics
(or ended with its last ones) in one transaction.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities import (
    Edge,
    LifecycleStage,
    Metric,
    Node,
    NodeKind,
    Page,
    Param,
    Relation,
    Run,
    RunData,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    RunWrite,
)
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, RunNotActive, ShipyardError, StoreUnavailable
from shipyard.store.not_found import experiment_deleted, experiment_not_found, param_change_conflict, run_not_found
from shipyard.store.run_writes import check_distinct, write_each
from shipyard.store.sql.database import Database
from shipyard.store.sql.driver_rows import driver_rows
from shipyard.store.sql.experiments import experiment_pk
from shipyard.store.sql.id_lists import bound_ids, listed
from shipyard.store.sql.lineage import record_edges
from shipyard.store.sql.metric_rows import append_metrics
from shipyard.store.sql.planner import find_runs
from shipyard.store.sql.records import maker
from shipyard.store.sql.run_batch import create_runs
from shipyard.store.sql.search import decode_page_token, encode_page_token
from shipyard.store.sql.tables import experiments, latest_metrics, params, run_tags, runs
from shipyard.store.sql.upsert import upsert

# Children of many runs are loaded with IN (...) lists of at most this many ids.
_CHUNK = 1000


def require_run(conn: sa.Connection, run_id: str, *, writable: bool = True) -> None:
    """Raise ``NotFound`` unless the run exists; with ``writable``, ``RunNotActive`` when it is
    deleted (whether a finished run takes a write is the domain's rule, not the store's)."""
    row = conn.execute(sa.select(runs.c.lifecycle_stage).where(runs.c.run_id == run_id)).first()
    if row is None:
        raise run_not_found(run_id)
    if writable and row.lifecycle_stage == LifecycleStage.DELETED.value:
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before writing to it")


_STATUS = {s.value: s for s in RunStatus}
_STAGE = {s.value: s for s in LifecycleStage}


@functools.cache
def _children(dialect: str) -> tuple[str, str, str]:
    """The driver's SQL reading the params, tags and latest metrics of the ids bound with
    :func:`bound_ids`, each row led by its run's place in the list (from 0) rather than its id:
    13,000 ids of 32 characters less to send and decode for a page of 1,000 runs."""
    page, place, run_id = listed(dialect)
    params_of, tags_of, latest_of = (
        f"SELECT {place}, t.key, t.value{extra} FROM {page} JOIN {table.name} AS t ON t.run_id = {run_id}"
        for table, extra in ((params, ""), (run_tags, ""), (latest_metrics, ", t.step, t.timestamp")))
    return params_of, tags_of, latest_of


_RUN_BY_ID = sa.select(runs).where(runs.c.run_id == sa.bindparam("run_id", type_=sa.String))


_run_info, _metric, _run_data, _run = maker(RunInfo), maker(Metric), maker(RunData), maker(Run)


def _info(row: Any) -> RunInfo:
    # Positional unpacking (the column order of ``runs``) is much faster than attribute access.
    run_id, experiment_id, name, status, start, end, stage, parent, user, source, _deleted = row
    return _run_info(run_id, str(experiment_id), name, _STATUS[status], start, end, _STAGE[stage], parent,
                     user, source)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a page of runs is built: tens of thousands of
    new objects, none of them in a cycle, would otherwise trigger collections that only walk
    them (and, now and then, the whole heap: a 20-50 ms stall in one search out of a few)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def load_runs(conn: sa.Connection, rows: Sequence[Any]) -> list[Run]:
    """Runs with their params, tags and latest metrics, in three queries per chunk of ids
    (each fetched whole: iterating a result fetches row by row)."""
    with _no_collection():
        return _load_runs(conn, rows)


def _load_runs(conn: sa.Connection, rows: Sequence[Any]) -> list[Run]:
    ids = [row[0] for row in rows]
    run_params: list[dict[str, str]] = [{} for _ in ids]
    tags: list[dict[str, str]] = [{} for _ in ids]
    latest: list[dict[str, Metric]] = [{} for _ in ids]
    nan = float("nan")
    dialect = conn.dialect.name
    params_of, tags_of, latest_of = _children(dialect)
    metric = _metric
    for start in range(0, len(ids), _CHUNK):
        bound = bound_ids(dialect, ids[start:start + _CHUNK])
        for place, key, value in driver_rows(conn, params_of, (bound,)):
            run_params[start + place][key] = value
        for place, key, value in driver_rows(conn, tags_of, (bound,)):
            tags[start + place][key] = value
        for place, key, value, step, ts in driver_rows(conn, latest_of, (bound,)):
            latest[start + place][key] = metric(key, nan if value is None else value, step, ts)
    return [_run(_info(row), _run_data(p, t, m)) for row, p, t, m in zip(rows, run_params, tags, latest, strict=True)]


class SqlRunStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def create(
        self,
        experiment_id: str,
        *,
        run_name: str,
        start_time: int,
        user_id: str = "",
        source: str = "",
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        info = RunInfo(run_id=uuid.uuid4().hex, experiment_id=experiment_id, run_name=run_name,
                       status=RunStatus.RUNNING, start_time=start_time, parent_run_id=parent_run_id,
                       user_id=user_id, source=source)
        with self._db.write() as conn:
            info = _insert_run(conn, info)
            if tags:
                conn.execute(run_tags.insert(),
                             [{"run_id": info.run_id, "key": k, "value": v} for k, v in tags.items()])
        return Run(info, RunData(tags=dict(tags or {})))

    def write(
        self,
        run_id: str,
        *,
        create: RunInfo | None = None,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
        status: RunStatus | None = None,
        end_time: int | None = None,
    ) -> RunInfo:
        write = RunWrite(run_id, create, params, tags, metrics, status, end_time)
        wanted = _checked(write)
        with self._db.write() as conn:
            return _write(conn, write, wanted)

    def write_many(self, writes: Sequence[RunWrite]) -> list[RunInfo | ShipyardError]:
        # One transaction; the runs to create are inserted together (run_batch.py). When it fails
        # for another reason than the database, one transaction per run tells which run failed.
        check_distinct(writes)
        if not writes:
            return []
        try:
            checked = [(write, _checked(write)) for write in writes]
            with self._db.write() as conn:
                made = iter(create_runs(conn, [(w, wanted) for w, wanted in checked if w.create is not None]))
                return [next(made) if w.create is not None else _write(conn, w, wanted) for w, wanted in checked]
        except StoreUnavailable:
            raise
        except ShipyardError:
            pass
        return write_each(self, writes)

    def get(self, run_id: str) -> Run:
        with self._db.read() as conn:
            row = conn.execute(_RUN_BY_ID, {"run_id": run_id}).first()
            if row is None:
                raise run_not_found(run_id)
            return load_runs(conn, [row])[0]

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = RunStatus(status).value
        if end_time is not None:
            values["end_time"] = end_time
        if run_name is not None:
            values["name"] = run_name
        changed: int | None
        with self._db.write() as conn:
            if values:
                changed = conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values)).rowcount
            else:
                changed = conn.execute(sa.select(sa.func.count()).where(runs.c.run_id == run_id)).scalar()
            if not changed:
                raise run_not_found(run_id)
            return _info(conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one())

    def delete(self, run_id: str) -> None:
        self._set_stage(run_id, LifecycleStage.DELETED, now_ms())

    def restore(self, run_id: str) -> None:
        self._set_stage(run_id, LifecycleStage.ACTIVE, None)

    def _set_stage(self, run_id: str, stage: LifecycleStage, deleted_time: int | None) -> None:
        with self._db.write() as conn:
            changed = conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                lifecycle_stage=stage.value, deleted_time=deleted_time)).rowcount
        if not changed:
            raise run_not_found(run_id)

    def log_params(self, run_id: str, params_: Sequence[Param]) -> None:
        wanted = _unique(run_id, params_)
        if not wanted:
            return
        with self._db.write() as conn:
            require_run(conn, run_id)
            _insert_params(conn, run_id, wanted)

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        if not tags:
            return
        rows = {t.key: {"run_id": run_id, "key": t.key, "value": t.value} for t in tags}
        with self._db.write() as conn:
            require_run(conn, run_id)
            upsert(conn, run_tags, list(rows.values()), keys=("run_id", "key"))

    def delete_tag(self, run_id: str, key: str) -> None:
        with self._db.write() as conn:
            require_run(conn, run_id)
            deleted = conn.execute(run_tags.delete().where(run_tags.c.run_id == run_id,
                                                           run_tags.c.key == key)).rowcount
        if not deleted:
            raise NotFound(f"run '{run_id}' has no tag {key!r}")

    def search(self, query: RunQuery) -> Page[Run]:
        if not query.experiment_ids:
            return Page([])
        offset = decode_page_token(query.page_token)
        with self._db.read() as conn:
            rows, _plan = find_runs(conn, query, offset)
            more = len(rows) > query.max_results
            found = load_runs(conn, rows[:query.max_results])
        token = encode_page_token(offset + query.max_results) if more else None
        return Page(found, token)


def _checked(write: RunWrite) -> dict[str, str]:
    """The write's params as key -> value; ``InvalidInput`` for a ``create`` of another run or
    a param given twice with two values."""
    if write.create is not None and write.create.run_id != write.run_id:
        raise InvalidInput(f"the run to create is '{write.create.run_id}', not '{write.run_id}'")
    return _unique(write.run_id, write.params)


def _write(conn: sa.Connection, write: RunWrite, wanted: Mapping[str, str]) -> RunInfo:
    """One ``RunStore.write`` inside the caller's transaction."""
    run_id, create, metrics, status, end_time = write.run_id, write.create, write.metrics, write.status, write.end_time
    tag_rows = list({t.key: {"run_id": run_id, "key": t.key, "value": t.value} for t in write.tags}.values())
    if create is not None:
        # Status and end time go into the new row itself: one statement fewer.
        info = _insert_run(conn, replace(
            create, status=RunStatus(status) if status is not None else RunStatus.RUNNING,
            end_time=end_time, lifecycle_stage=LifecycleStage.ACTIVE))
        if tag_rows:
            conn.execute(run_tags.insert(), tag_rows)
    else:
        # As update does, a status change alone is taken by a deleted run too.
        require_run(conn, run_id, writable=bool(wanted or tag_rows or metrics))
        upsert(conn, run_tags, tag_rows, keys=("run_id", "key"))
    _insert_params(conn, run_id, wanted, new_run=create is not None)
    append_metrics(conn, run_id, metrics, new_run=create is not None)
    if create is None:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = RunStatus(status).value
        if end_time is not None:
            values["end_time"] = end_time
        if values:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(**values))
        info = _info(conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).one())
    return info


def _insert_run(conn: sa.Connection, info: RunInfo) -> RunInfo:
    """Insert the run ``info`` describes into its experiment; ``NotFound`` for an unknown
    experiment, ``RunNotActive`` for a deleted one, ``AlreadyExists`` when the id is taken."""
    pk = experiment_pk(info.experiment_id)
    stage = conn.execute(sa.select(experiments.c.lifecycle_stage).where(experiments.c.experiment_id == pk)).scalar()
    if stage is None:
        raise experiment_not_found(info.experiment_id)
    if stage == LifecycleStage.DELETED.value:
        raise experiment_deleted(info.experiment_id)
    parent = info.parent_run_id
    # A parent that is not (or no longer) in this store is kept as given (MLflow clients
    # name parents from other servers); only a parent that is here gets a lineage edge.
    parent_here = parent is not None and conn.execute(
        sa.select(runs.c.run_id).where(runs.c.run_id == parent)).first() is not None
    try:
        conn.execute(runs.insert().values(
            run_id=info.run_id, experiment_id=pk, name=info.run_name, status=info.status.value,
            start_time=info.start_time, end_time=info.end_time, lifecycle_stage=LifecycleStage.ACTIVE.value,
            parent_run_id=parent, user_id=info.user_id, source=info.source))
    except sa_exc.IntegrityError:
        raise AlreadyExists(f"a run with the id '{info.run_id}' already exists", run_id=info.run_id) from None
    if parent_here and parent is not None:
        record_edges(conn, [Edge(Node(NodeKind.RUN, parent), Node(NodeKind.RUN, info.run_id), Relation.CHILD)])
    return replace(info, experiment_id=str(pk))


def _insert_params(conn: sa.Connection, run_id: str, wanted: Mapping[str, str], *, new_run: bool = False) -> None:
    """Insert the params not yet recorded; ``Conflict`` when one is recorded with another value
    (a run created in this transaction (``new_run``) has none to compare with)."""
    if not wanted:
        return
    existing: dict[str, str] = {} if new_run else dict(conn.execute(
        sa.select(params.c.key, params.c.value)
        .where(params.c.run_id == run_id, params.c.key.in_(list(wanted)))).all())
    for key, value in wanted.items():
        if key in existing and existing[key] != value:
            raise param_change_conflict(run_id, key, existing[key], value)
    new = [{"run_id": run_id, "key": k, "value": v} for k, v in wanted.items() if k not in existing]
    if new:
        conn.execute(params.insert(), new)


def _unique(run_id: str, params_: Iterable[Param]) -> dict[str, str]:
    wanted: dict[str, str] = {}
    for p in params_:
        if p.key in wanted and wanted[p.key] != p.value:
            raise InvalidInput(f"param {p.key!r} is given twice for run '{run_id}' with different values "
                               f"{wanted[p.key]!r} and {p.value!r}")
        wanted[p.key] = p.value
    return wanted
