"""The diff of two dataset versions as the dataset pages show it.

The comparison itself is the domain's (:func:`shipyard.data.diff_profiles`, the same as
``shipyard datasets diff``); this module only lays it out: the schema changes (columns added,
removed, retyped) and, per column in both versions, its nulls, number statistics and categories
old → new, with the columns that changed first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.data import ColumnDiff, DatasetDiff, Shift, diff_profiles
from shipyard.entities import DatasetVersion

__all__ = ["SHOWN_STATS", "ColumnRow", "DiffView", "Stat", "diff_view"]

SHOWN_STATS = ("mean", "min", "max", "std", "distinct", "true_rate")


@dataclass(frozen=True)
class Stat:
    """One statistic of one column, old → new."""

    name: str
    old: float | None
    new: float | None
    change: float | None  # new - old
    relative: float | None  # (new - old) / |old|
    percent: bool = False  # a rate, shown in percent

    @classmethod
    def of(cls, name: str, shift: Shift, *, percent: bool = False) -> Stat:
        return cls(name, shift.old, shift.new, shift.absolute, shift.relative, percent)

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class ColumnRow:
    """A column in both versions."""

    name: str
    old_type: str
    new_type: str
    type_changed: bool
    nulls: Stat
    stats: tuple[Stat, ...]
    new_categories: tuple[Any, ...]
    vanished_categories: tuple[Any, ...]
    changed: bool


@dataclass(frozen=True)
class DiffView:
    old: DatasetVersion
    new: DatasetVersion
    profiled: bool  # both versions carry a profile (files and folders carry only a digest)
    same_content: bool
    rows: Stat | None = None
    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    retyped: tuple[ColumnRow, ...] = ()
    columns: tuple[ColumnRow, ...] = field(default_factory=tuple)

    @property
    def changed_columns(self) -> int:
        return sum(1 for c in self.columns if c.changed)


def _type_text(kind: str, categorical: bool) -> str:
    return f"{kind} (categorical)" if categorical else kind


def _row(column: ColumnDiff, old: Mapping[str, Any], new: Mapping[str, Any]) -> ColumnRow:
    nulls = Shift(old.get("nulls"), new.get("nulls")) if "nulls" in old or "nulls" in new else column.null_rate
    stats = tuple(Stat.of(key, column.stats[key], percent=key == "true_rate")
                  for key in SHOWN_STATS if key in column.stats)
    return ColumnRow(column.name, _type_text(column.old_type, column.old_categorical),
                     _type_text(column.new_type, column.new_categorical), column.type_changed,
                     Stat.of("nulls", nulls), stats, column.new_top_values, column.vanished_top_values, column.changed)


def _by_name(profile: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for column in profile.get("columns", []):
        found.setdefault(column["name"], column)
    return found


def _is_profile(profile: Any) -> bool:
    return isinstance(profile, Mapping) and isinstance(profile.get("columns"), list) and "rows" in profile


def diff_view(old: DatasetVersion, new: DatasetVersion) -> DiffView:
    """What changed from ``old`` to ``new`` (two versions of one dataset, or of two)."""
    same = old.digest == new.digest
    if not (_is_profile(old.profile) and _is_profile(new.profile)):
        return DiffView(old, new, profiled=False, same_content=same)
    diff: DatasetDiff = diff_profiles(old.profile, new.profile)
    old_columns, new_columns = _by_name(old.profile), _by_name(new.profile)
    rows = [_row(c, old_columns[c.name], new_columns[c.name]) for c in diff.columns]
    rows.sort(key=lambda r: not r.changed)  # stable: the changed columns first, each group in the new order
    return DiffView(old, new, profiled=True, same_content=same, rows=Stat.of("rows", diff.rows), added=diff.added,
                    removed=diff.removed, retyped=tuple(r for r in rows if r.type_changed), columns=tuple(rows))
