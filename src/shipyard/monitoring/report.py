"""What a drift comparison found: one :class:`ColumnDrift` per column inside a :class:`DriftReport`.

The report is plain data (frozen dataclasses of floats, strings and lists), so it converts to a
DataFrame, to JSON and to HTML without recomputing anything, and reads the same whichever of
those a person or a script looks at.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ColumnDrift", "ColumnStatus", "Distribution", "DriftReport"]

ColumnStatus = Literal[
    "tested",  # compared; ``drifted`` says the verdict
    "no_data",  # the current data has no rows
    "all_null",  # no value on one side (``message`` says which)
    "missing_in_current",  # in the reference only
    "new_in_current",  # in the current data only
    "type_changed",  # numerical on one side, categorical on the other
    "invalid",  # could not be read (e.g. mixed types in one column)
    "skipped",  # a type or a cardinality drift is not computed for (``message`` says why)
]

#: The columns of :meth:`DriftReport.to_pandas`, in order.
TABLE_COLUMNS = (
    "column", "kind", "test", "statistic", "p_value", "threshold", "drifted", "status", "wasserstein", "psi",
    "jensen_shannon", "missing_reference", "missing_current", "outside_range", "unseen_categories",
    "unseen_share", "n_reference", "n_current", "message",
)


@dataclass(frozen=True)
class Distribution:
    """What the HTML report plots: shares per bin (numerical) or per category (categorical)."""

    labels: list[str]  # one per bin or category
    reference: list[float]  # share of the reference's values in each bin (sums to 1 over present values)
    current: list[float]
    edges: list[float] | None = None  # numerical: the bin edges (len(labels) + 1)


@dataclass(frozen=True)
class ColumnDrift:
    """The comparison of one column. ``drifted`` is the verdict of the decision rule:
    ``p_value < threshold`` for the KS and chi-square tests, ``statistic >= threshold`` for the
    effect-size tests (``psi``, ``jensenshannon``, ``wasserstein``) a column may be given."""

    column: str
    kind: str  # numerical, categorical, datetime, other
    status: ColumnStatus
    test: str | None = None  # ks, chisquare, psi, jensenshannon, wasserstein
    statistic: float | None = None  # KS D, chi-square, or the effect size of an effect-size test
    p_value: float | None = None
    threshold: float | None = None
    drifted: bool = False
    # effect sizes, whatever the test: Wasserstein-1 / reference std (numerical), PSI and
    # Jensen-Shannon distance over the reference's decile bins (numerical) or the categories
    wasserstein: float | None = None
    psi: float | None = None
    jensen_shannon: float | None = None
    # data quality
    missing_reference: float | None = None  # share of rows missing (null, NaN, +-inf)
    missing_current: float | None = None
    outside_range: float | None = None  # share of current values outside the reference's [min, max]
    unseen_categories: int | None = None  # categories in the current data never seen in the reference
    unseen_share: float | None = None  # share of current values in those categories
    n_reference: int = 0  # values compared (rows minus missing)
    n_current: int = 0
    message: str = ""
    distribution: Distribution | None = field(default=None, repr=False)

    def row(self) -> dict[str, Any]:
        """The flat record :meth:`DriftReport.to_pandas` shows (no plot data)."""
        return {name: getattr(self, name) for name in TABLE_COLUMNS}


@dataclass(frozen=True)
class DriftReport:
    """The result of :func:`shipyard.monitoring.drift`."""

    columns: tuple[ColumnDrift, ...]
    dataset_drift: bool
    rule: str  # the dataset-level rule, in words, with this report's numbers
    alpha: float
    correction: str
    rows_reference: int
    rows_current: int
    status: Literal["ok", "no_data"] = "ok"
    missing_columns: tuple[str, ...] = ()  # in the reference, not in the current data
    extra_columns: tuple[str, ...] = ()  # in the current data, not in the reference

    def __getitem__(self, name: str) -> ColumnDrift:
        for column in self.columns:
            if column.column == name:
                return column
        raise KeyError(name)

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the columns the decision rule flagged, in column order."""
        return [c.column for c in self.columns if c.drifted]

    @property
    def tested_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.status == "tested"]

    def to_pandas(self) -> pd.DataFrame:
        """One row per column: column, kind, test, statistic, p_value, threshold, drifted, status,
        the effect sizes, the data-quality fields, the counts compared and a message."""
        import pandas as pd

        return pd.DataFrame([c.row() for c in self.columns], columns=list(TABLE_COLUMNS))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (NaN and infinities become ``None``), plot data included."""
        body = asdict(self)
        body["drifted_columns"] = self.drifted_columns
        finite: dict[str, Any] = _finite(body)
        return finite

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int | None = 2) -> str:
        """The report as JSON; also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)
        if path is not None:
            Path(os.fspath(path)).write_text(text + "\n", encoding="utf-8")
        return text

    def to_html(self, path: str | os.PathLike[str] | None = None, *, title: str = "Data drift report") -> str:
        """One self-contained HTML page (inline SVG, no script, nothing fetched): a summary table and,
        per column, the reference and current distributions. Written to ``path`` when given."""
        from shipyard.monitoring.html import render

        page = render(self, title=title)
        if path is not None:
            Path(os.fspath(path)).write_text(page, encoding="utf-8")
        return page


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
