"""What changed between two profiles (:func:`shipyard.data.profile_table`) of a dataset.

:func:`diff_profiles` compares by column name (the first column of a name, if names repeat) and
returns a :class:`DatasetDiff`: columns added and removed, type changes, the row count, and for
each column in both: the null rate, the number statistics (``mean``, ``std``, ``min``, ``max``
and the quantiles), the distinct count and the true rate, each as a :class:`Shift` (old, new,
absolute and relative change), and the top values that appeared in or vanished from the
recorded top values. :func:`render` turns it into rows for a table (the CLI prints them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["RENDER_COLUMNS", "ColumnDiff", "DatasetDiff", "Shift", "diff_profiles", "render"]

RENDER_COLUMNS = ("column", "what", "old", "new", "change")
_NUMBER_STATS = ("mean", "std", "min", "max")


@dataclass(frozen=True)
class Shift:
    """A value in the old and the new profile (``None`` where there is none)."""

    old: float | None
    new: float | None

    @property
    def absolute(self) -> float | None:
        """``new - old``."""
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def relative(self) -> float | None:
        """``(new - old) / |old|``; ``None`` when ``old`` is 0 (or either is missing), unless both are 0."""
        change = self.absolute
        if change is None or self.old is None:
            return None
        if self.old == 0:
            return 0.0 if change == 0 else None
        return change / abs(self.old)

    @property
    def changed(self) -> bool:
        return self.old != self.new


@dataclass(frozen=True)
class ColumnDiff:
    """One column present in both profiles."""

    name: str
    old_type: str
    new_type: str
    old_categorical: bool = False
    new_categorical: bool = False
    null_rate: Shift = field(default_factory=lambda: Shift(0.0, 0.0))
    stats: dict[str, Shift] = field(default_factory=dict)  # mean, std, min, max, p1 ... p99, distinct, true_rate
    new_top_values: tuple[Any, ...] = ()
    vanished_top_values: tuple[Any, ...] = ()

    @property
    def type_changed(self) -> bool:
        return self.old_type != self.new_type or self.old_categorical != self.new_categorical

    @property
    def changed(self) -> bool:
        return (self.type_changed or self.null_rate.changed or any(s.changed for s in self.stats.values())
                or bool(self.new_top_values or self.vanished_top_values))


@dataclass(frozen=True)
class DatasetDiff:
    """Everything :func:`diff_profiles` found."""

    rows: Shift
    added: tuple[tuple[str, str], ...] = ()  # (name, type)
    removed: tuple[tuple[str, str], ...] = ()
    columns: tuple[ColumnDiff, ...] = ()  # the columns in both, in the new order

    @property
    def type_changes(self) -> tuple[ColumnDiff, ...]:
        return tuple(c for c in self.columns if c.type_changed)

    @property
    def changed(self) -> bool:
        return self.rows.changed or bool(self.added or self.removed) or any(c.changed for c in self.columns)


def _columns(profile: Mapping[str, Any], which: str) -> dict[str, Mapping[str, Any]]:
    if not isinstance(profile, Mapping) or not isinstance(profile.get("columns"), list) or "rows" not in profile:
        raise InvalidInput(f"the {which} profile is not a profile: expected a dict with 'rows' and 'columns' "
                           "(from profile_table)")
    out: dict[str, Mapping[str, Any]] = {}
    for column in profile["columns"]:
        out.setdefault(column["name"], column)
    return out


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _true_rate(column: Mapping[str, Any]) -> float | None:
    if "true" not in column:
        return None
    present = column["true"] + column["false"]
    return column["true"] / present if present else None


def _column_diff(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> ColumnDiff:
    stats: dict[str, Shift] = {}
    for key in _NUMBER_STATS:
        if key in old or key in new:
            a, b = _number(old.get(key)), _number(new.get(key))
            if a is not None or b is not None:
                stats[key] = Shift(a, b)
    old_q, new_q = old.get("quantiles") or {}, new.get("quantiles") or {}
    for key in dict.fromkeys([*old_q, *new_q]):
        stats[key] = Shift(_number(old_q.get(key)), _number(new_q.get(key)))
    if "distinct" in old or "distinct" in new:
        stats["distinct"] = Shift(old.get("distinct"), new.get("distinct"))
    if "true" in old or "true" in new:
        stats["true_rate"] = Shift(_true_rate(old), _true_rate(new))
    old_top = [value for value, _ in old.get("top", [])]
    new_top = [value for value, _ in new.get("top", [])]
    return ColumnDiff(
        name=name,
        old_type=old["type"],
        new_type=new["type"],
        old_categorical=bool(old.get("categorical")),
        new_categorical=bool(new.get("categorical")),
        null_rate=Shift(old.get("null_rate", 0.0), new.get("null_rate", 0.0)),
        stats=stats,
        new_top_values=tuple(v for v in new_top if v not in old_top),
        vanished_top_values=tuple(v for v in old_top if v not in new_top),
    )


def diff_profiles(old: Mapping[str, Any], new: Mapping[str, Any]) -> DatasetDiff:
    """Compare two profiles; ``InvalidInput`` when either is not one."""
    old_columns, new_columns = _columns(old, "old"), _columns(new, "new")
    return DatasetDiff(
        rows=Shift(old["rows"], new["rows"]),
        added=tuple((name, c["type"]) for name, c in new_columns.items() if name not in old_columns),
        removed=tuple((name, c["type"]) for name, c in old_columns.items() if name not in new_columns),
        columns=tuple(_column_diff(name, old_columns[name], c) for name, c in new_columns.items()
                      if name in old_columns),
    )


# -- rendering -------------------------------------------------------------------------------------


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.6g}"


def _change(shift: Shift, *, percent_points: bool = False) -> str:
    change = shift.absolute
    if change is None:
        return ""
    if percent_points:
        return f"{change * 100:+.2f} pts"
    text = f"+{_fmt(change)}" if change >= 0 else _fmt(change)
    relative = shift.relative
    return f"{text} ({relative * 100:+.1f}%)" if relative is not None else text


def _type_text(kind: str, categorical: bool) -> str:
    return f"{kind} (categorical)" if categorical else kind


def render(diff: DatasetDiff, *, min_relative: float = 0.0) -> list[tuple[str, str, str, str, str]]:
    """Rows ``(column, what, old, new, change)`` (:data:`RENDER_COLUMNS`), only for what changed.
    Statistic shifts whose relative change is below ``min_relative`` (e.g. ``0.01``) are left out."""
    rows: list[tuple[str, str, str, str, str]] = []
    if diff.rows.changed:
        rows.append(("", "rows", _fmt(diff.rows.old), _fmt(diff.rows.new), _change(diff.rows)))
    rows += [(name, "added", "", kind, "") for name, kind in diff.added]
    rows += [(name, "removed", kind, "", "") for name, kind in diff.removed]
    for column in diff.columns:
        if column.type_changed:
            rows.append((column.name, "type", _type_text(column.old_type, column.old_categorical),
                         _type_text(column.new_type, column.new_categorical), ""))
        if column.null_rate.changed:
            rate = column.null_rate
            rows.append((column.name, "null rate", f"{(rate.old or 0) * 100:.2f}%", f"{(rate.new or 0) * 100:.2f}%",
                         _change(rate, percent_points=True)))
        for key, shift in column.stats.items():
            if not shift.changed:
                continue
            relative = shift.relative
            if min_relative and relative is not None and abs(relative) < min_relative:
                continue
            if key == "true_rate":
                rows.append((column.name, "true rate", f"{(shift.old or 0) * 100:.2f}%",
                             f"{(shift.new or 0) * 100:.2f}%", _change(shift, percent_points=True)))
            else:
                rows.append((column.name, key, _fmt(shift.old), _fmt(shift.new), _change(shift)))
        if column.new_top_values:
            rows.append((column.name, "new top values", "", ", ".join(map(str, column.new_top_values)), ""))
        if column.vanished_top_values:
            rows.append((column.name, "vanished top values", ", ".join(map(str, column.vanished_top_values)), "",
                         ""))
    return rows
