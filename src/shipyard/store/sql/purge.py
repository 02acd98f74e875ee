"""Permanently remove soft-deleted runs: the database half of ``shipyard gc``.

Deleting a run or an experiment only marks it (it can be restored); this is the step after, for
what was deleted long enough ago. Accountability outranks disk space: a deleted run that a
registered model version or a live logged model came from is kept, with the reason, because
the version's files live in the run's artifacts and its lineage starts there.

A deleted experiment goes too once none of its runs and logged models is left: its id is never
handed out again (a PostgreSQL sequence; on SQLite, AUTOINCREMENT since migration 0007), so no
URL or script that held it can reach another experiment. One whose run a model still needs
stays, deleted, with that run. The Default experiment (id 0) always stays.

Planning and purging are separate so that the caller can remove the runs' artifacts between the
two: if it stops half-way, the runs are still here (deleted) and the next ``gc`` finishes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shipyard.entities import DEFAULT_EXPERIMENT_ID, LifecycleStage
from shipyard.store.sql.database import Database
from shipyard.store.sql.tables import (
    experiment_tags,
    experiments,
    lineage_edges,
    logged_models,
    model_versions,
    registered_models,
    runs,
)

__all__ = ["PurgePlan", "plan_purge", "purge", "still_due"]

_DELETED = LifecycleStage.DELETED.value
_CHUNK = 500  # ids per IN list: far below any dialect's bound-parameter limit


@dataclass(frozen=True)
class PurgePlan:
    """What a purge would remove; ``kept`` maps the ids of the runs due that stay to why."""

    run_ids: tuple[str, ...]
    logged_model_ids: tuple[str, ...]
    kept: dict[str, str] = field(default_factory=dict)
    experiment_ids: tuple[str, ...] = ()  # deleted experiments left with nothing once the runs go


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield list(ids[start:start + _CHUNK])


def _due(conn: sa.Connection, cutoff_ms: int) -> list[str]:
    """The runs deleted before the cutoff, and those of experiments deleted before it (an
    experiment's runs go with it whatever their own stage)."""
    old_experiments = (sa.select(experiments.c.experiment_id)
                       .where(experiments.c.lifecycle_stage == _DELETED, experiments.c.last_update_time <= cutoff_ms))
    return list(conn.execute(sa.select(runs.c.run_id).where(sa.or_(
        sa.and_(runs.c.lifecycle_stage == _DELETED, runs.c.deleted_time <= cutoff_ms),
        runs.c.experiment_id.in_(old_experiments))).order_by(runs.c.run_id)).scalars())


def _reasons_to_keep(conn: sa.Connection, run_ids: Sequence[str]) -> dict[str, str]:
    kept: dict[str, str] = {}
    for chunk in _chunks(run_ids):
        registered = conn.execute(
            sa.select(model_versions.c.run_id, registered_models.c.name, model_versions.c.version)
            .join(registered_models, registered_models.c.model_id == model_versions.c.model_id)
            .where(model_versions.c.run_id.in_(chunk))
            .order_by(registered_models.c.name, model_versions.c.version))
        for run_id, name, version in registered:
            kept.setdefault(run_id, f"model version {name}/{version} was registered from it; "
                                    "delete that version first to purge the run")
        live = conn.execute(
            sa.select(logged_models.c.run_id, logged_models.c.model_id)
            .where(logged_models.c.run_id.in_(chunk), logged_models.c.lifecycle_stage != _DELETED))
        for run_id, model_id in live:
            kept.setdefault(run_id, f"logged model {model_id} keeps its files in it and is not deleted")
    return kept


def plan_purge(db: Database, *, cutoff_ms: int) -> PurgePlan:
    """The runs deleted at or before ``cutoff_ms`` (epoch ms), or in experiments deleted by then,
    that can go."""
    with db.read() as conn:
        due = _due(conn, cutoff_ms)
        kept = _reasons_to_keep(conn, due)
        run_ids = [run_id for run_id in due if run_id not in kept]
        # Deleted logged models keep their files in their run: once the run goes, they point at nothing.
        model_ids = [model_id for chunk in _chunks(run_ids) for model_id in conn.execute(
            sa.select(logged_models.c.model_id).where(logged_models.c.run_id.in_(chunk))).scalars()]
        experiment_ids = _emptied_experiments(conn, cutoff_ms, set(run_ids))
    return PurgePlan(tuple(run_ids), tuple(sorted(model_ids)), kept, experiment_ids)


def _old_deleted_experiments(cutoff_ms: int) -> sa.Select[Any]:
    return sa.select(experiments.c.experiment_id).where(
        experiments.c.lifecycle_stage == _DELETED, experiments.c.last_update_time <= cutoff_ms,
        experiments.c.experiment_id != int(DEFAULT_EXPERIMENT_ID))


def _emptied_experiments(conn: sa.Connection, cutoff_ms: int, purged_runs: set[str]) -> tuple[str, ...]:
    """The deleted experiments whose runs and logged models all go with this plan."""
    found = []
    for experiment_id in conn.execute(_old_deleted_experiments(cutoff_ms).order_by(experiments.c.experiment_id)
                                      ).scalars():
        holders = set(conn.execute(sa.select(runs.c.run_id).where(runs.c.experiment_id == experiment_id)).scalars())
        holders |= set(conn.execute(sa.select(logged_models.c.run_id)
                                    .where(logged_models.c.experiment_id == experiment_id)).scalars())
        if holders <= purged_runs:
            found.append(str(experiment_id))
    return tuple(found)


def purge(db: Database, plan: PurgePlan) -> None:
    """Remove the planned rows in one transaction: the runs (their params, tags and metrics go
    with them), the lineage edges that touch them, their logged models, and the deleted
    experiments left empty. Runs and experiments restored since the plan was made are left alone."""
    with db.write() as conn:
        still_deleted = _still_due(conn, plan.run_ids)
        nodes = [f"run:{run_id}" for run_id in still_deleted]
        for chunk in _chunks(nodes):
            conn.execute(lineage_edges.delete().where(
                sa.or_(lineage_edges.c.source.in_(chunk), lineage_edges.c.target.in_(chunk))))
        for chunk in _chunks(still_deleted):
            conn.execute(logged_models.delete().where(logged_models.c.run_id.in_(chunk)))
            conn.execute(runs.delete().where(runs.c.run_id.in_(chunk)))
        # Only what is still deleted and empty now: an experiment restored, or given a run,
        # since the plan was made stays.
        emptied = (sa.select(experiments.c.experiment_id).where(
            experiments.c.experiment_id.in_([int(e) for e in plan.experiment_ids]),
            experiments.c.lifecycle_stage == _DELETED,
            ~sa.exists().where(runs.c.experiment_id == experiments.c.experiment_id),
            ~sa.exists().where(logged_models.c.experiment_id == experiments.c.experiment_id)))
        doomed = list(conn.execute(emptied).scalars())
        for chunk in _chunks(doomed):
            conn.execute(experiment_tags.delete().where(experiment_tags.c.experiment_id.in_(chunk)))
            conn.execute(experiments.delete().where(experiments.c.experiment_id.in_(chunk)))


def still_due(db: Database, run_ids: Sequence[str]) -> list[str]:
    """Those of ``run_ids`` still deleted (or in a deleted experiment): a run restored after the
    plan was made must keep its artifacts."""
    with db.read() as conn:
        return _still_due(conn, run_ids)


def _still_due(conn: sa.Connection, run_ids: Sequence[str]) -> list[str]:
    found: list[str] = []
    for chunk in _chunks(run_ids):
        found += conn.execute(
            sa.select(runs.c.run_id)
            .join(experiments, experiments.c.experiment_id == runs.c.experiment_id)
            .where(runs.c.run_id.in_(chunk),
                   sa.or_(runs.c.lifecycle_stage == _DELETED, experiments.c.lifecycle_stage == _DELETED))).scalars()
    return found
