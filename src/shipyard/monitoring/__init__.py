"""Monitoring: what deployments answered, how it compares with the truth, and what drifted.

    from shipyard.monitoring import drift, read_predictions

    frame = read_predictions(client, "churn-api", since="1h")
    report = drift("train.parquet", frame)            # report.drifted_columns, report.to_html(...)

Imports nothing heavy until used: pyarrow, pandas and scipy load on first access to a function.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.clock import parse_time
    from shipyard.monitoring.detect import drift
    from shipyard.monitoring.reference import ReferenceProfile, reference_profile
    from shipyard.monitoring.report import ColumnDrift, DriftReport
    from shipyard.predictions.reader import export_predictions, find_prediction, read_feedback, read_predictions

__all__ = [
    "ColumnDrift",
    "DriftReport",
    "ReferenceProfile",
    "drift",
    "export_predictions",
    "find_prediction",
    "parse_time",
    "read_feedback",
    "read_predictions",
    "reference_profile",
]

_EXPORTS = {
    **dict.fromkeys(
        ["export_predictions", "find_prediction", "read_feedback", "read_predictions"],
        "shipyard.predictions.reader"),
    "parse_time": "shipyard.clock",
    "drift": "shipyard.monitoring.detect",
    "ReferenceProfile": "shipyard.monitoring.reference",
    "reference_profile": "shipyard.monitoring.reference",
    "ColumnDrift": "shipyard.monitoring.report",
    "DriftReport": "shipyard.monitoring.report",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
