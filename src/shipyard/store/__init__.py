"""The Store: per-aggregate interfaces and the registry that picks an implementation."""

from shipyard.store.protocol import ExperimentStore, MetricStore, ModelStore, RunStore, Store
from shipyard.store.registry import open_store

__all__ = ["ExperimentStore", "MetricStore", "ModelStore", "RunStore", "Store", "open_store"]
