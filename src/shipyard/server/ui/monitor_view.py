"""What the monitoring pages show, computed from a monitor's stored evaluations and alerts.

The drift score of a column in a window is what :mod:`shipyard.monitoring.monitor_report` draws:
``-log10`` of the test's p-value (higher = stronger evidence of change), with the level the
column is flagged above (``-log10`` of the threshold); for effect-size tests (PSI, distance
tests without a p-value) the statistic itself against its threshold. Each column is one chart
(one unit per chart), given to the page as JSON in the shape the compare charts use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.entities.monitor import MonitorEvaluation

__all__ = ["P_FLOOR", "DriftSeries", "drift_series", "score_of", "status_class"]

P_FLOOR = 1e-300  # -log10 of a p-value of 0 would be infinite: 300 is "as certain as it gets"

# How an evaluation's or an alert's status looks (a CSS class of .badge).
STATUS_CLASSES = {"ok": "good", "breach": "bad", "error": "bad", "no_data": "", "delivered": "good",
                  "logged": "", "suppressed": "", "failed": "bad", "promoted": "good", "not_promoted": "warn"}


def status_class(status: str) -> str:
    """The badge class of an evaluation status, an alert status or an alert state."""
    return {"OK": "good", "FIRING": "bad", "RESOLVED": "warn"}.get(status, STATUS_CLASSES.get(status, ""))


def score_of(score: Mapping[str, Any]) -> tuple[float | None, float | None, str]:
    """``(score, flag level, unit)`` of one column's stored score in one window; ``(None, None, unit)``
    when the column was not tested there (skipped, missing, constant)."""
    if score.get("status", "tested") != "tested":
        return None, None, ""
    p_value, threshold = score.get("p_value"), score.get("threshold")
    if isinstance(p_value, int | float):
        limit = -math.log10(threshold) if isinstance(threshold, int | float) and 0 < threshold < 1 else None
        return -math.log10(max(float(p_value), P_FLOOR)), limit, "-log10 p"
    statistic = score.get("statistic")
    if isinstance(statistic, int | float) and math.isfinite(statistic):
        limit = float(threshold) if isinstance(threshold, int | float) and math.isfinite(threshold) else None
        return float(statistic), limit, f"{score.get('test') or 'effect'} statistic"
    return None, None, ""


@dataclass(frozen=True)
class DriftSeries:
    """One column's drift over the windows: its chart payload and a summary for the table."""

    column: str
    unit: str
    payload: dict[str, Any]
    latest: float | None
    limit: float | None
    drifted: bool  # in the latest window that compared it
    windows: int  # how many windows compared it


def drift_series(evaluations: Sequence[MonitorEvaluation]) -> list[DriftSeries]:
    """Per column (inputs first, then ``output.*``, each in first-seen order), its score in every
    window that compared it, and the flag level, as chart payloads with times in seconds."""
    columns = list(dict.fromkeys(c for e in evaluations for c in e.scores))
    columns.sort(key=lambda c: c.startswith("output."))
    found = []
    for column in columns:
        times: list[float] = []
        values: list[float] = []
        limits: list[float | None] = []
        unit = ""
        drifted = False
        for e in evaluations:
            score = e.scores.get(column)
            if not score:
                continue
            value, limit, kind = score_of(score)
            if value is None:
                continue
            unit = unit or kind
            times.append(e.window_start / 1000)
            values.append(round(value, 6))
            limits.append(None if limit is None else round(limit, 6))
            drifted = bool(score.get("drifted"))
        if not times:
            continue
        series = [{"name": column, "steps": times, "values": values}]
        if any(v is not None for v in limits):
            series.append({"name": "flagged above", "steps": times, "values": limits, "color": "#b42318",
                           "dash": [6, 4]})
        found.append(DriftSeries(column, unit, {"key": column, "time": True, "series": series},
                                 values[-1], limits[-1], drifted, len(times)))
    return found
