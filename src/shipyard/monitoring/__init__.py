"""Monitoring: what deployments answered, and how it compares with the truth.

    from shipyard.monitoring import read_predictions

    frame = read_predictions(client, "churn-api", since="1h")

Imports nothing heavy until used: pyarrow and pandas load on first access to a reader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.monitoring.predictions import (
        export_predictions,
        find_prediction,
        parse_time,
        read_feedback,
        read_predictions,
    )

__all__ = ["export_predictions", "find_prediction", "parse_time", "read_feedback", "read_predictions"]

_EXPORTS = dict.fromkeys(__all__, "shipyard.monitoring.predictions")


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.monitoring' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
