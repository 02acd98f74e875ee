"""The Store: per-aggregate interfaces and the registry that picks an implementation."""

from shipyard.store.protocol import (
    DatasetStore,
    DeploymentStore,
    ExperimentStore,
    LineageStore,
    LoggedModelStore,
    MetricStore,
    ModelStore,
    RunStore,
    Store,
)
from shipyard.store.registry import open_store

__all__ = ["DatasetStore", "DeploymentStore", "ExperimentStore", "LineageStore", "LoggedModelStore", "MetricStore",
           "ModelStore", "RunStore", "Store", "open_store"]
