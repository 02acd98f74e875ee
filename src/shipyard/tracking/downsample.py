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
    values = history.values
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
    return MetricHistory(history.key, array("q", (history.steps[i] for i in keep)),
                         array("d", (values[i] for i in keep)), array("q", (history.timestamps[i] for i in keep)))
