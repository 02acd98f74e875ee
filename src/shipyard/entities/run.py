from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)


class LifecycleStage(enum.StrEnum):
    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    """Which lifecycle stages a listing or search includes."""

    ACTIVE_ONLY = "active_only"
    DELETED_ONLY = "deleted_only"
    ALL = "all"

    def stages(self) -> tuple[LifecycleStage, ...]:
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


@dataclass(frozen=True, slots=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Metric:
    """One measurement. ``value`` may be NaN or ±inf; ``timestamp`` is milliseconds since the epoch."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    parent_run_id: str | None = None
    user_id: str = ""
    source: str = ""


@dataclass(frozen=True, slots=True)
class RunData:
    """Params, tags and the latest value of each metric."""

    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    latest_metrics: Mapping[str, Metric] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """The latest value of each metric, by key (derived from ``latest_metrics``)."""
        return {key: metric.value for key, metric in self.latest_metrics.items()}


@dataclass(frozen=True, slots=True)
class Run:
    info: RunInfo
    data: RunData = field(default_factory=RunData)

    @property
    def run_id(self) -> str:
        return self.info.run_id


@dataclass(frozen=True, slots=True)
class RunWrite:
    """One run's part of ``RunStore.write_many``: the arguments of one ``RunStore.write``."""

    run_id: str
    create: RunInfo | None = None
    params: Sequence[Param] = ()
    tags: Sequence[RunTag] = ()
    metrics: Sequence[Metric] = ()
    status: RunStatus | None = None
    end_time: int | None = None
