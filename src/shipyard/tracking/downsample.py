"""Thin a long metric history for a chart without hiding its spikes.

A chart of 100,000 points is drawn on a few hundred pixels; sending every point makes the page
slow and shows nothing more. :func:`min_max` keeps, per bucket of consecutive points, the first
and last point and the lowest and highest value, in step order: every spike and dip that a
full-resolution line would show stays, and the line's shape between buckets is kept.
"""

from __future__ import annotations

import math
from array import array

from shipyard.entities.history import MetricHistory
from shipyard.errors import InvalidInput
from shipyard.installed import importable

MIN_POINTS = 4  # first, lowest, highest and last of one bucket


def min_max(history: MetricHistory, max_points: int) -> MetricHistory:
    """At most ``max_points`` points of ``history`` (returned as is when it is that short):
    ``max_points // 4`` buckets of consecutive points, each reduced to its first, lowest,
    highest and last point (NaN values are kept where they are first or last). Raises
    ``InvalidInput`` when ``max_points`` is below 4."""
    if isinstance(max_points, bool) or not isinstance(max_points, int) or max_points < MIN_POINTS:
        raise InvalidInput(f"max_points must be a whole number of at least {MIN_POINTS}, got {max_points!r}")
    n = len(history)
    if n <= max_points:
        return history
    buckets = max_points // MIN_POINTS
    keep = _kept_numpy(history, buckets) if importable("numpy") else _kept(history.values, buckets)
    return MetricHistory(history.key, array("q", (history.steps[i] for i in keep)),
                         array("d", (history.values[i] for i in keep)),
                         array("q", (history.timestamps[i] for i in keep)))


def _kept(values: array[float], buckets: int) -> list[int]:
    """The indexes :func:`min_max` keeps, point by point (without NumPy)."""
    n = len(values)
    keep: list[int] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        low = high = -1
        for i in range(lo, hi):
            v = values[i]
            if math.isnan(v):
                continue
            if low < 0 or v < values[low]:
                low = i
            if high < 0 or v > values[high]:
                high = i
        keep.extend(sorted({lo, hi - 1, *(i for i in (low, high) if i >= 0)}))
    return keep


def _kept_numpy(history: MetricHistory, buckets: int) -> list[int]:
    """:func:`_kept` as whole-array operations: each bucket's lowest and highest value by
    ``reduceat``, the first point holding it by a search among the points equal to it."""
    import numpy as np

    values = np.frombuffer(history.values, dtype=np.float64)
    n = len(values)
    starts = np.arange(buckets, dtype=np.int64) * n // buckets
    ends = np.arange(1, buckets + 1, dtype=np.int64) * n // buckets
    nan = np.isnan(values)
    found = [starts, ends - 1]
    for fill, reduce in ((np.inf, np.minimum), (-np.inf, np.maximum)):
        filled = np.where(nan, fill, values)
        extreme = reduce.reduceat(filled, starts)
        sizes = ends - starts
        holders = np.flatnonzero((filled == np.repeat(extreme, sizes)) & ~nan)
        first = np.searchsorted(holders, starts)  # the first holder at or after each bucket's start
        index = holders[np.minimum(first, len(holders) - 1)] if len(holders) else starts
        inside = (first < len(holders)) & (index < ends)
        found.append(np.where(inside, index, starts))  # an all-NaN bucket: its first point stands in
    # Buckets are consecutive and disjoint, so sorting all indexes keeps each bucket's together, in order.
    return [int(i) for i in np.unique(np.concatenate(found))]
