"""One definition per concept. Plain, frozen records with no I/O."""

from shipyard.entities.artifact import ArtifactEntry
from shipyard.entities.experiment import Experiment
from shipyard.entities.registry import (
    DEFAULT_PROTECTED_ALIASES,
    EVENT_KINDS,
    Approval,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    VersionStatus,
)
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
from shipyard.entities.search import (
    MODEL_GRAMMAR,
    RUN_GRAMMAR,
    VERSION_GRAMMAR,
    Comparison,
    Grammar,
    Op,
    OrderBy,
    Page,
    RunFilter,
    RunQuery,
)

__all__ = [
    "DEFAULT_PROTECTED_ALIASES",
    "EVENT_KINDS",
    "MODEL_GRAMMAR",
    "RUN_GRAMMAR",
    "VERSION_GRAMMAR",
    "Approval",
    "ArtifactEntry",
    "Comparison",
    "Experiment",
    "Grammar",
    "LifecycleStage",
    "Metric",
    "ModelVersion",
    "Op",
    "OrderBy",
    "Page",
    "Param",
    "RegisteredModel",
    "RegistryEvent",
    "RegistryQuery",
    "Run",
    "RunData",
    "RunFilter",
    "RunInfo",
    "RunQuery",
    "RunStatus",
    "RunTag",
    "VersionStatus",
    "ViewType",
]
