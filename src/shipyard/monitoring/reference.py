"""A reference profile: what :func:`shipyard.monitoring.drift` needs of the reference data, computed once.

    profile = reference_profile(training_frame)          # sorts and counts once
    for window in windows:
        report = drift(profile, window)                  # each window costs only its own rows

Per numerical column it keeps the finite values sorted (an exact profile: every statistic is the
same as from the raw data), per categorical column the distinct values and their counts, and per
column the count of missing values. It is the shape a stored reference (a monitor's reference
built from a model version's training data) takes; it answers the same questions as the raw
table (:class:`shipyard.monitoring.inputs.TableSource`), so the comparison does not care which
it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.inputs import Categories, ColumnKind, TableSource, load, run_counts

if TYPE_CHECKING:
    import numpy as np

__all__ = ["ColumnProfile", "ReferenceProfile", "reference_profile"]


@dataclass(frozen=True)
class ColumnProfile:
    """One column of a :class:`ReferenceProfile`."""

    kind: ColumnKind
    type: str  # the canonical Arrow type name
    sorted_values: np.ndarray | None  # numerical: the finite values, ascending
    categories: Categories | None  # categorical: distinct values and counts
    missing: int


class ReferenceProfile:
    """The reference side of a comparison, ready to compare any number of current windows with."""

    def __init__(self, rows: int, columns: dict[str, ColumnProfile], invalid: dict[str, str] | None = None) -> None:
        self.rows = rows
        self.columns = columns
        self.invalid: dict[str, str] = dict(invalid or {})
        self.label = "reference"

    def __repr__(self) -> str:
        return f"ReferenceProfile(rows={self.rows}, columns={list(self.columns)})"

    @property
    def names(self) -> list[str]:
        return [*self.columns, *(n for n in self.invalid if n not in self.columns)]

    def kind(self, name: str) -> ColumnKind:
        return self.columns[name].kind

    def type_name(self, name: str) -> str:
        column = self.columns.get(name)
        return column.type if column is not None else "?"

    def sorted_values(self, name: str) -> np.ndarray:
        values = self.columns[name].sorted_values
        if values is None:
            raise KeyError(name)
        return values

    def categories(self, name: str) -> Categories:
        column = self.columns[name]
        if column.categories is not None:
            return column.categories
        import pyarrow as pa

        # an empty list counts as an empty array does
        values, counts = run_counts(column.sorted_values if column.sorted_values is not None else [])  # type: ignore[arg-type]
        return Categories(pa.array(values), counts, column.missing)

    def select(self, columns: Sequence[str] | None) -> ReferenceProfile:
        """The profile of ``columns`` only (all when ``None``)."""
        if columns is None:
            return self
        keep = set(columns)
        return ReferenceProfile(self.rows, {n: c for n, c in self.columns.items() if n in keep},
                                {n: r for n, r in self.invalid.items() if n in keep})


def profile_source(source: TableSource) -> ReferenceProfile:
    columns: dict[str, ColumnProfile] = {}
    for name in source.table.column_names:
        kind = source.kind(name)
        if kind == "numerical":
            values = source.sorted_values(name)
            if values.base is not None:  # a slice of the sorted column: keep only the values
                values = values.copy()
            columns[name] = ColumnProfile(kind, source.type_name(name), values, None, source.rows - len(values))
        elif kind == "categorical":
            categories = source.categories(name)
            columns[name] = ColumnProfile(kind, source.type_name(name), None, categories, categories.missing)
        else:
            nulls = source.table.column(name).null_count
            columns[name] = ColumnProfile(kind, source.type_name(name), None, None, nulls)
    return ReferenceProfile(source.rows, columns, source.invalid)


def reference_profile(data: Any, *, columns: Sequence[str] | None = None) -> ReferenceProfile:
    """The profile of ``data`` (any input :func:`~shipyard.monitoring.drift` takes), to pass as its
    ``reference`` any number of times; ``columns`` keeps only those columns."""
    return profile_source(load(data, columns, label="reference"))
