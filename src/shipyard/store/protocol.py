"""The Store: one small interface per aggregate.

Every implementation (``SqlStore`` on SQLite and PostgreSQL, ``RestStore`` over HTTP) passes
the same contract test suite in ``tests/contract/``. Methods take and return the typed
records of :mod:`shipyard.entities` and raise only :mod:`shipyard.errors`.
Shape rules (name lengths, key characters) are checked above the store, by the tracking
domain; the store enforces what needs the stored state: existence, uniqueness,
immutability of params and that a run is still active.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from shipyard.entities import (
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    ViewType,
)

__all__ = ["ExperimentStore", "MetricStore", "RunStore", "Store"]


class ExperimentStore(Protocol):
    def create(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        """Create an active experiment. Raises ``AlreadyExists`` when the name is taken
        (deleted experiments keep their name until purged)."""
        ...

    def get(self, experiment_id: str) -> Experiment:
        """Raises ``NotFound`` naming the id."""
        ...

    def get_by_name(self, name: str) -> Experiment | None:
        """The experiment with that exact name (active or deleted), or ``None``."""
        ...

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        """Experiments in the view, oldest first."""
        ...

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        """Raises ``NotFound``, or ``AlreadyExists`` when ``new_name`` is taken."""
        ...

    def delete(self, experiment_id: str) -> None:
        """Soft delete: the experiment and its runs leave the active view. Raises ``NotFound``."""
        ...

    def restore(self, experiment_id: str) -> None:
        """Undo :meth:`delete`. Raises ``NotFound``."""
        ...

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite tags. Raises ``NotFound``."""
        ...

    def delete_tag(self, experiment_id: str, key: str) -> None:
        """Raises ``NotFound`` for an unknown experiment or tag."""
        ...


class RunStore(Protocol):
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
        """Create a RUNNING run. Raises ``NotFound`` for an unknown experiment or parent, and
        ``RunNotActive`` when the experiment is deleted."""
        ...

    def get(self, run_id: str) -> Run:
        """The run with params, tags and latest metrics. Raises ``NotFound`` naming the id."""
        ...

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        """Change status, end time or name. Raises ``NotFound``."""
        ...

    def delete(self, run_id: str) -> None:
        """Soft delete. Raises ``NotFound``."""
        ...

    def restore(self, run_id: str) -> None:
        """Undo :meth:`delete`. Raises ``NotFound``."""
        ...

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        """Record params atomically. Re-logging an identical value is a no-op; a different
        value raises ``Conflict`` naming both values and nothing is written. Raises
        ``NotFound`` and ``RunNotActive``."""
        ...

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        """Insert or overwrite tags. Raises ``NotFound`` and ``RunNotActive`` (deleted runs)."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Raises ``NotFound`` for an unknown run or tag."""
        ...

    def search(self, query: RunQuery) -> Page[Run]:
        """Runs of ``query.experiment_ids`` matching the filter, ordered (default: newest
        first), one page at a time. Raises ``InvalidInput`` for a bad page token."""
        ...


class MetricStore(Protocol):
    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Append metric values in one transaction and move each key's latest value (the one
        with the highest step, then timestamp). Raises ``NotFound`` and ``RunNotActive``."""
        ...

    def history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key``, ordered by step then timestamp. Raises ``NotFound`` for an
        unknown run; an unknown key gives an empty list."""
        ...


@runtime_checkable
class Store(Protocol):
    """The aggregate interfaces of one tracking backend."""

    experiments: ExperimentStore
    runs: RunStore
    metrics: MetricStore

    def close(self) -> None:
        """Release connections."""
        ...
