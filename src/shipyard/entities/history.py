"""A metric's history as columns: three parallel arrays instead of one object per point."""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.entities.run import Metric

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class MetricHistory:
    """Every value of one metric of one run, ordered by step then timestamp (as
    :meth:`MetricStore.history`), as ``array('q')`` steps and timestamps and ``array('d')``
    values (NaN for NaN). 100,000 points are three buffers, not 100,000 objects; build the
    objects with :meth:`metrics` only when they are wanted, or view the buffers with
    :meth:`to_numpy` without copying."""

    key: str
    steps: array[int]
    values: array[float]
    timestamps: array[int]

    def __len__(self) -> int:
        return len(self.steps)

    def metrics(self) -> list[Metric]:
        key = self.key
        return [Metric(key, v, s, t) for s, v, t in zip(self.steps, self.values, self.timestamps, strict=True)]

    def to_numpy(self) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        """(steps int64, values float64, timestamps int64), sharing memory with the arrays."""
        import numpy as np

        return (np.frombuffer(self.steps, dtype=np.int64), np.frombuffer(self.values, dtype=np.float64),
                np.frombuffer(self.timestamps, dtype=np.int64))
