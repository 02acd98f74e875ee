"""Original against reproduced: each metric's deltas and verdict, params that differ, the result."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.reproduce.plan import Plan

__all__ = ["MetricComparison", "ParamDifference", "ReproductionResult", "compare_metrics", "compare_params"]

PASS, FAIL, PLANNED = "pass", "fail", "planned"


@dataclass(frozen=True)
class MetricComparison:
    """One metric (latest value) of the original run against the reproduction.

    ``rel_delta`` is ``|reproduced - original| / |original|``, or the absolute delta when the
    original is 0; the metric passes when it is at most the tolerance. A metric the
    reproduction did not log fails, with ``reproduced`` and the deltas ``None``.
    """

    key: str
    original: float
    reproduced: float | None
    abs_delta: float | None
    rel_delta: float | None
    passed: bool


@dataclass(frozen=True)
class ParamDifference:
    """A param whose value differs (``None``: not logged by that run). Re-running the same code
    with the same command line should give none; one is reported as a warning, not a failure."""

    key: str
    original: str | None
    reproduced: str | None


@dataclass(frozen=True)
class ReproductionResult:
    """What ``reproduce`` found. ``status`` is ``pass`` (every metric within tolerance), ``fail``,
    or ``planned`` for a dry run (nothing ran)."""

    original_run_id: str
    reproduction_run_id: str | None
    status: str
    tolerance: float
    plan: Plan
    metrics: list[MetricComparison] = field(default_factory=list)
    params: list[ParamDifference] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    returncode: int | None = None  # the entry point's exit status (None: it did not run)
    message: str = ""  # why it failed, when it did for another reason than a metric

    @property
    def passed(self) -> bool:
        return self.status == PASS


def compare_metrics(original: Mapping[str, float], reproduced: Mapping[str, float],
                    tolerance: float) -> list[MetricComparison]:
    rows = []
    for key in sorted(original):
        before, after = float(original[key]), reproduced.get(key)
        if after is None:
            rows.append(MetricComparison(key, before, None, None, None, False))
            continue
        after = float(after)
        absolute, relative = _deltas(before, after)
        rows.append(MetricComparison(key, before, after, absolute, relative,
                                     relative is not None and relative <= tolerance))
    return rows


def _deltas(before: float, after: float) -> tuple[float | None, float | None]:
    if math.isnan(before) or math.isnan(after):
        return (0.0, 0.0) if math.isnan(before) and math.isnan(after) else (None, None)
    if before == after:  # also equal infinities
        return 0.0, 0.0
    absolute = abs(after - before)
    if math.isinf(absolute):
        return math.inf, math.inf
    return absolute, absolute / abs(before) if before != 0 else absolute


def compare_params(original: Mapping[str, str], reproduced: Mapping[str, str]) -> list[ParamDifference]:
    return [ParamDifference(key, original.get(key), reproduced.get(key))
            for key in sorted(set(original) | set(reproduced)) if original.get(key) != reproduced.get(key)]
