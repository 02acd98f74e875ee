"""Differences between two profiles, and their rendering as table rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.data import DatasetDiff, Shift, diff_profiles, profile_table, render_diff
from shipyard.data.diff import RENDER_COLUMNS
from shipyard.errors import InvalidInput


@pytest.fixture(scope="module")
def old() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({
        "amount": rng.normal(100, 10, 2000),
        "age": rng.integers(18, 90, 2000),
        "country": rng.choice(["fr", "de", "es"], 2000, p=[0.5, 0.3, 0.2]),
        "churned": rng.random(2000) < 0.2,
        "legacy": np.zeros(2000),
    })


@pytest.fixture(scope="module")
def new(old: pd.DataFrame) -> pd.DataFrame:
    changed = pd.concat([old, old.iloc[:500]], ignore_index=True)
    changed["amount"] = changed["amount"] * 1.5  # every statistic moves by half
    changed.loc[:299, "amount"] = np.nan  # null rate 0% -> 12%
    changed["country"] = changed["country"].replace({"es": "it"})
    changed["age"] = changed["age"].astype("float64")
    changed["score"] = 1.0
    return changed.drop(columns=["legacy"])


def test_identical_profiles_have_no_changes(old: pd.DataFrame) -> None:
    diff = diff_profiles(profile_table(old), profile_table(old))
    assert not diff.changed
    assert render_diff(diff) == []
    assert diff.added == diff.removed == diff.type_changes == ()


def test_what_changed(old: pd.DataFrame, new: pd.DataFrame) -> None:
    diff = diff_profiles(profile_table(old), profile_table(new))
    assert isinstance(diff, DatasetDiff)
    assert diff.changed
    assert diff.rows == Shift(2000, 2500)
    assert diff.rows.absolute == 500
    assert diff.rows.relative == 0.25
    assert diff.added == (("score", "double"),)
    assert diff.removed == (("legacy", "double"),)
    assert [(c.name, c.old_type, c.new_type) for c in diff.type_changes] == [("age", "int64", "double")]

    amount = next(c for c in diff.columns if c.name == "amount")
    assert amount.null_rate.old == 0.0
    assert amount.null_rate.new == pytest.approx(300 / 2500)
    kept = pd.concat([old, old.iloc[:500]], ignore_index=True)["amount"].iloc[300:] * 1.5
    assert amount.stats["mean"].old == pytest.approx(old["amount"].mean())
    assert amount.stats["mean"].new == pytest.approx(kept.mean())
    assert amount.stats["mean"].absolute == pytest.approx(kept.mean() - old["amount"].mean())
    assert amount.stats["p50"].relative == pytest.approx(kept.median() / old["amount"].median() - 1)
    assert set(amount.stats) == {"mean", "std", "min", "max", "p1", "p5", "p25", "p50", "p75", "p95", "p99"}

    country = next(c for c in diff.columns if c.name == "country")
    assert country.new_top_values == ("it",)
    assert country.vanished_top_values == ("es",)
    assert not country.stats["distinct"].changed
    churned = next(c for c in diff.columns if c.name == "churned")
    assert churned.stats["true_rate"].old == pytest.approx(old["churned"].mean())


def test_render_rows(old: pd.DataFrame, new: pd.DataFrame) -> None:
    rows = render_diff(diff_profiles(profile_table(old), profile_table(new)))
    assert RENDER_COLUMNS == ("column", "what", "old", "new", "change")
    assert all(len(row) == len(RENDER_COLUMNS) and all(isinstance(cell, str) for cell in row) for row in rows)
    assert rows[0] == ("", "rows", "2,000", "2,500", "+500 (+25.0%)")
    assert ("score", "added", "", "double", "") in rows
    assert ("legacy", "removed", "double", "", "") in rows
    assert ("age", "type", "int64", "double", "") in rows
    assert ("amount", "null rate", "0.00%", "12.00%", "+12.00 pts") in rows
    assert ("country", "new top values", "", "it", "") in rows
    assert ("country", "vanished top values", "es", "", "") in rows
    mean = next(row for row in rows if row[:2] == ("amount", "mean"))
    assert mean[4].startswith("+")
    assert mean[4].endswith("%)")
    # small shifts can be left out; structural changes always stay
    filtered = render_diff(diff_profiles(profile_table(old), profile_table(new)), min_relative=0.6)
    assert ("amount", "mean") not in {row[:2] for row in filtered}
    assert ("age", "type", "int64", "double", "") in filtered
    assert len(filtered) < len(rows)


def test_categorical_and_type_text(old: pd.DataFrame) -> None:
    diff = diff_profiles(profile_table(old), profile_table(old.astype({"country": "category"})))
    country = next(c for c in diff.columns if c.name == "country")
    assert country.type_changed
    assert not country.stats["distinct"].changed
    assert ("country", "type", "large_string", "large_string (categorical)", "") in render_diff(diff)


def test_shift_arithmetic() -> None:
    assert Shift(0, 0).relative == 0.0
    assert Shift(0, 2).relative is None
    assert Shift(-4, -2).relative == 0.5
    assert Shift(None, 3).absolute is None
    assert not Shift(1.5, 1.5).changed
    assert Shift(None, 1).changed


@pytest.mark.parametrize("bad", [None, {}, {"rows": 3}, {"columns": []}, [1, 2]], ids=str)
def test_not_a_profile(old: pd.DataFrame, bad: object) -> None:
    with pytest.raises(InvalidInput, match="the old profile is not a profile"):
        diff_profiles(bad, profile_table(old))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="the new profile is not a profile"):
        diff_profiles(profile_table(old), bad)  # type: ignore[arg-type]
