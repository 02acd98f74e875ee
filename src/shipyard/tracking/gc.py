"""``shipyard gc``: permanently remove runs deleted long enough ago and free their storage.

Three steps, in an order that a crash at any point leaves safe to run again:
1. plan: the deleted runs due (and the runs of deleted experiments), minus those a model needs;
2. remove the planned runs' artifact trees (their pointers), then their rows;
3. sweep the blobs no pointer references any more (see ``artifacts/sweep.py`` for why a grace
   period protects concurrent writers).

It works on the stores themselves (the database and the artifact root), as ``shipyard db``
does: a team server's administrator runs it where the server's credentials are.

Domain code: :func:`collect_garbage` takes the
:class:`~shipyard.models.registry.RegistryService` (its store and artifact store), or a
``Client``, the SDK's spelling (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.errors import InvalidInput
from shipyard.models.registry import HasRegistry, RegistryService, as_registry

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.artifacts.sweep import SweepReport
    from shipyard.store.protocol import Store

__all__ = ["GcReport", "collect_garbage"]

Progress = Callable[[str, int, int], None]  # (step, done, total)
_BATCH = 50  # runs whose deletion is re-checked at once before their artifacts go


@dataclass(frozen=True)
class GcReport:
    runs_purged: tuple[str, ...]
    logged_models_purged: tuple[str, ...]
    artifact_files_removed: int
    sweep: SweepReport
    kept: dict[str, str] = field(default_factory=dict)  # run id -> why it stays
    dry_run: bool = False
    experiments_purged: tuple[str, ...] = ()  # deleted experiments left with no run: gone, ids never reused


def _stores(store: Store, artifacts: ArtifactStore) -> tuple[Any, Any]:
    from shipyard.artifacts.cas import CasArtifactStore
    from shipyard.store.sql.store import SqlStore

    if not isinstance(store, SqlStore):
        raise InvalidInput(f"gc works on the database itself, not through a server ({getattr(store, 'uri', store)}); "
                           "run it with --tracking-uri set to the server's database (sqlite:/// or postgresql://)")
    if not isinstance(artifacts, CasArtifactStore):
        raise InvalidInput(f"gc works on the artifact storage itself, not through a server ({artifacts!r}); "
                           "run it with --artifact-uri set to the server's artifact root (a folder or s3://...)")
    return store, artifacts


def collect_garbage(registry: RegistryService | HasRegistry, *, cutoff_ms: int, grace_seconds: float = 3600.0,
                    dry_run: bool = False, progress: Progress | None = None) -> GcReport:
    """Purge the runs deleted at or before ``cutoff_ms`` (epoch ms), and those of experiments
    deleted by then (then those experiments, once empty), and free the blobs nobody
    references. ``dry_run`` reports the same figures and changes nothing."""
    from shipyard.artifacts.sweep import check_grace, remove_run_artifacts, sweep_blobs
    from shipyard.store.sql.purge import plan_purge, purge, still_due

    check_grace(grace_seconds)  # before anything is purged, not after
    if cutoff_ms > now_ms():
        raise InvalidInput("older-than: the cutoff is in the future; give a duration back from now (30d) "
                           "or a past time")
    service = as_registry(registry)
    store, artifacts = _stores(service.store, service.artifacts)
    plan = plan_purge(store.db, cutoff_ms=cutoff_ms)
    removed = 0
    if not dry_run:
        total = len(plan.run_ids)
        for start in range(0, total, _BATCH):
            batch = plan.run_ids[start:start + _BATCH]
            for run_id in still_due(store.db, batch):  # not one restored meanwhile
                removed += remove_run_artifacts(artifacts, run_id)
            if progress is not None:
                progress("removing artifacts of purged runs", min(start + _BATCH, total), total)
        purge(store.db, plan)

    def sweep_progress(done: int, total: int) -> None:
        if progress is not None:
            progress("sweeping unreferenced blobs", done, total)

    report = sweep_blobs(artifacts, grace_seconds=grace_seconds, dry_run=dry_run,
                         ignoring_runs=plan.run_ids if dry_run else (), progress=sweep_progress)
    return GcReport(plan.run_ids, plan.logged_model_ids, removed, report, dict(plan.kept), dry_run,
                    plan.experiment_ids)
