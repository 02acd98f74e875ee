"""The drift statistics agree with scipy.stats on random data, and the default decision rule has the
power and the false-alarm rate the docs promise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from shipyard.monitoring import drift, reference_profile
from shipyard.monitoring import stats as ms

TOL = 1e-9


def _close(ours: float | None, theirs: float) -> bool:
    assert ours is not None
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


@pytest.mark.parametrize(("n", "m", "shift", "ties"), [
    (50, 80, 0.0, False), (1_000, 1_000, 0.3, False), (3_000, 7_000, 0.05, False), (10_000, 10_000, 0.0, False),
    (20_000, 15_000, 0.0, False), (40_000, 60_000, 0.03, False), (30_000, 30_000, 0.2, False),
    (5_000, 6_000, 0.0, True), (25_000, 25_000, 0.1, True),
], ids=lambda v: str(v))
def test_ks_and_wasserstein_match_scipy(n: int, m: int, shift: float, ties: bool) -> None:
    rng = np.random.default_rng(n + m)
    a, b = rng.normal(size=n), rng.normal(shift, 1.2 if shift else 1.0, size=m)
    if ties:  # rounded values: many ties, the case where evaluating D inside a tie group goes wrong
        a, b = np.round(a, 1), np.round(b, 1)
    report = drift({"x": a}, {"x": b}, tests={"x": "ks"})
    col = report["x"]
    expected = stats.ks_2samp(a, b)
    assert _close(col.statistic, expected.statistic)
    assert _close(col.p_value, expected.pvalue)
    assert _close(col.wasserstein, stats.wasserstein_distance(a, b) / a.std())


def test_ks_pvalue_shortcut_stays_within_1e10_of_scipy() -> None:
    """Where n * D**2 >= 12 the limiting distribution replaces scipy's slow exact sum; both are tiny."""
    d = np.array([0.012, 0.03])  # n * D**2 = 14.4 and 90 at n = 100,000
    n = np.array([200_000] * 2)
    ours = ms.ks_pvalues(d, n, n)
    theirs = stats.kstwo.sf(d, np.round(n * n / (n + n)))
    assert np.all(np.abs(ours - theirs) < 1e-10)


@pytest.mark.parametrize("k", [2, 5, 40])
def test_chisquare_matches_scipy(k: int) -> None:
    rng = np.random.default_rng(k)
    probs = rng.dirichlet(np.ones(k) * 5)
    ref_counts = rng.multinomial(20_000, probs).astype(float)
    cur_counts = rng.multinomial(7_000, probs).astype(float)
    statistic, dof, p = ms.chi2_homogeneity(ref_counts, cur_counts)
    table = np.vstack([ref_counts, cur_counts])
    contingency = stats.chi2_contingency(table, correction=False)
    assert _close(statistic, contingency.statistic)
    assert dof == contingency.dof
    assert _close(p, contingency.pvalue)
    flat = stats.chisquare(table.ravel(), contingency.expected_freq.ravel(), ddof=table.size - 1 - dof)
    assert _close(statistic, flat.statistic)
    assert _close(p, flat.pvalue)


def test_chisquare_of_a_categorical_column_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    ref = rng.choice(["a", "b", "c", "d"], 30_000, p=[0.4, 0.3, 0.2, 0.1])
    cur = rng.choice(["a", "b", "c", "d"], 20_000, p=[0.38, 0.3, 0.22, 0.1])
    col = drift({"plan": ref}, {"plan": cur})["plan"]
    counts = [[np.sum(ref == v) for v in "abcd"], [np.sum(cur == v) for v in "abcd"]]
    expected = stats.chi2_contingency(counts, correction=False)
    assert col.test == "chisquare"
    assert _close(col.statistic, expected.statistic)
    assert _close(col.p_value, expected.pvalue)
    shares = np.array(counts, dtype=float)
    assert _close(col.jensen_shannon, distance.jensenshannon(shares[0], shares[1], base=2))


def test_rare_categories_are_pooled_before_the_chisquare() -> None:
    ref, cur = np.array([5_000, 3_000, 2, 1], float), np.array([5_100, 2_900, 3, 0], float)
    statistic, dof, p = ms.chi2_homogeneity(ref, cur)
    pooled = stats.chi2_contingency([[5_000, 3_000, 3], [5_100, 2_900, 3]], correction=False)
    assert dof == 2
    assert _close(statistic, pooled.statistic)
    assert _close(p, pooled.pvalue)


def test_psi_and_jensen_shannon_on_reference_deciles() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=20_000), rng.normal(0.5, 1, size=10_000)
    col = drift({"x": a}, {"x": b})["x"]
    edges = np.quantile(a, np.arange(1, 10) / 10)
    p = np.bincount(np.searchsorted(edges, a, side="left"), minlength=10) / len(a)
    q = np.bincount(np.searchsorted(edges, b, side="left"), minlength=10) / len(b)
    assert _close(col.psi, float(np.sum((q - p) * np.log(q / p))))
    assert _close(col.jensen_shannon, distance.jensenshannon(p, q, base=2))


def _frame(rng: np.random.Generator, rows: int, shifted: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({f"x{i}": rng.normal(shifted.get(f"x{i}", 0.0), 1.0, rows) for i in range(10)}
                        | {"plan": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2])})


def test_default_rule_flags_a_tenth_of_a_std_shift_at_100k_rows_and_nothing_else() -> None:
    rng = np.random.default_rng(2024)
    reference = _frame(rng, 100_000, {})
    current = _frame(rng, 100_000, {"x3": 0.1})
    report = drift(reference, current)
    assert report.drifted_columns == ["x3"]
    assert report.dataset_drift
    assert report["x3"].p_value < report["x3"].threshold == pytest.approx(0.05 / 11)
    assert 0.08 < report["x3"].wasserstein < 0.12  # the effect size reads as the shift, in std


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_default_rule_flags_no_unchanged_column_at_100k_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    report = drift(_frame(rng, 100_000, {}), _frame(rng, 100_000, {}))
    assert report.drifted_columns == []
    assert not report.dataset_drift


def test_reference_profile_gives_the_same_report() -> None:
    rng = np.random.default_rng(5)
    reference, current = _frame(rng, 5_000, {}), _frame(rng, 4_000, {"x1": 0.3})
    direct = drift(reference, current)
    profiled = drift(reference_profile(reference), current)
    assert direct.to_dict() == profiled.to_dict()
