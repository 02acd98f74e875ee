"""Creating several runs in one transaction: the bulk half of ``RunStore.write_many``.

The SDK's background writer hands over the runs it deferred (a tuning loop ends hundreds of
short runs a second) to be written together: one commit for all of them instead of one each (a
durable PostgreSQL commit alone costs about 2 ms). Whatever the number of runs, this is one
statement each for their experiments, their parents, the runs, their tags, their params, their
metric values and their latest values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.entities import Edge, LifecycleStage, Node, NodeKind, Relation, RunInfo, RunStatus, RunWrite
from shipyard.errors import AlreadyExists
from shipyard.store.not_found import experiment_deleted, experiment_not_found
from shipyard.store.sql.experiments import experiment_pk
from shipyard.store.sql.lineage import record_edges
from shipyard.store.sql.metric_rows import append_runs_metrics
from shipyard.store.sql.tables import experiments, params, run_tags, runs
from shipyard.store.sql.upsert import insert_rows

_RUN_COLUMNS = ("run_id", "experiment_id", "name", "status", "start_time", "end_time", "lifecycle_stage",
                "parent_run_id", "user_id", "source")
_KEY_VALUE = ("run_id", "key", "value")


def create_runs(conn: sa.Connection, writes: Sequence[tuple[RunWrite, Mapping[str, str]]]) -> list[RunInfo]:
    """Create the run of each write (its ``create``) with its params (given checked, as key ->
    value), tags, metrics, status and end time, as ``RunStore.write`` would one by one. Raises
    what ``write`` raises; when it does, which run caused it is not said (the caller's transaction
    is rolled back whole)."""
    if not writes:
        return []
    made: list[RunInfo] = []
    pks: dict[str, int] = {}
    for write, _wanted in writes:
        info = write.create
        assert info is not None
        pk = pks.setdefault(info.experiment_id, experiment_pk(info.experiment_id))
        made.append(replace(info, experiment_id=str(pk), status=RunStatus(write.status or RunStatus.RUNNING),
                            end_time=write.end_time, lifecycle_stage=LifecycleStage.ACTIVE))
    stages = dict(conn.execute(sa.select(experiments.c.experiment_id, experiments.c.lifecycle_stage)
                               .where(experiments.c.experiment_id.in_(set(pks.values())))).all())
    for experiment_id, pk in pks.items():
        if pk not in stages:
            raise experiment_not_found(experiment_id)
        if stages[pk] == LifecycleStage.DELETED.value:
            raise experiment_deleted(experiment_id)
    ids = {info.run_id for info in made}
    parents = {info.parent_run_id for info in made if info.parent_run_id is not None}
    # As for one run: only a parent in this store (or in this batch) gets a lineage edge.
    here = parents & ids
    if parents - ids:
        here |= set(conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.in_(parents - ids))).scalars())
    try:
        insert_rows(conn, runs, _RUN_COLUMNS, [
            (i.run_id, int(i.experiment_id), i.run_name, i.status.value, i.start_time, i.end_time,
             LifecycleStage.ACTIVE.value, i.parent_run_id, i.user_id, i.source) for i in made])
    except sa_exc.IntegrityError:
        raise AlreadyExists("a run of this batch already exists") from None
    edges = [Edge(Node(NodeKind.RUN, i.parent_run_id), Node(NodeKind.RUN, i.run_id), Relation.CHILD)
             for i in made if i.parent_run_id in here]
    if edges:
        record_edges(conn, edges)
    insert_rows(conn, run_tags, _KEY_VALUE, [(w.run_id, key, value) for w, _wanted in writes
                                             for key, value in {t.key: t.value for t in w.tags}.items()])
    insert_rows(conn, params, _KEY_VALUE, [(w.run_id, key, value) for w, wanted in writes
                                           for key, value in wanted.items()])
    append_runs_metrics(conn, [(w.run_id, w.metrics) for w, _wanted in writes], new_runs=True)
    return made
