"""Runs as a pandas DataFrame (pandas is optional and imported only here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shipyard.entities import Run
from shipyard.errors import InvalidInput


def runs_to_dataframe(runs: Sequence[Run]) -> Any:
    """One row per run: its attributes, then ``metrics.<key>``, ``params.<key>``, ``tags.<key>``
    columns (missing values are NaN/None), as MLflow's ``search_runs`` returns them."""
    try:
        import pandas as pd
    except ImportError:
        raise InvalidInput("output_format='pandas' needs pandas: pip install pandas") from None
    rows = [
        {
            "run_id": r.info.run_id,
            "experiment_id": r.info.experiment_id,
            "run_name": r.info.run_name,
            "status": r.info.status.value,
            "start_time": pd.to_datetime(r.info.start_time, unit="ms", utc=True),
            "end_time": pd.to_datetime(r.info.end_time, unit="ms", utc=True) if r.info.end_time else pd.NaT,
            **{f"metrics.{k}": v for k, v in r.data.metrics.items()},
            **{f"params.{k}": v for k, v in r.data.params.items()},
            **{f"tags.{k}": v for k, v in r.data.tags.items()},
        }
        for r in runs
    ]
    columns = ["run_id", "experiment_id", "run_name", "status", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=columns + sorted({c for row in rows for c in row} - set(columns)))
