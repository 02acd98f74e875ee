"""One definition per concept. Plain, frozen records with no I/O."""

from shipyard.entities.artifact import ArtifactEntry
from shipyard.entities.experiment import Experiment
from shipyard.entities.run import (
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from shipyard.entities.search import Comparison, Op, OrderBy, Page, RunFilter, RunQuery

__all__ = [
    "ArtifactEntry",
    "Comparison",
    "Experiment",
    "LifecycleStage",
    "Metric",
    "Op",
    "OrderBy",
    "Page",
    "Param",
    "Run",
    "RunData",
    "RunFilter",
    "RunInfo",
    "RunQuery",
    "RunStatus",
    "RunTag",
    "ViewType",
]
