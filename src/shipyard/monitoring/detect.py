"""``drift(reference, current)``: which columns changed distribution, by a rule that controls false alarms.

The rules (``docs/monitoring.md`` explains them with measured numbers):

- **Test per column**, unless ``tests`` says otherwise: a numerical column with more than
  :data:`DISCRETE_MAX_VALUES` distinct values in the reference gets the two-sample
  Kolmogorov-Smirnov test; a numerical column with fewer (counts, flags, ratings), a string,
  boolean or dictionary-encoded column gets the chi-square test of homogeneity of the category
  counts. A categorical column whose reference has more than :data:`IDENTIFIER_MIN_VALUES`
  distinct values, more than half its values (an identifier or free text), is skipped.
- **Decision**: every p-value test is one member of a family, and the family-wise false-alarm
  rate is held at ``alpha``: with Bonferroni (the default), a column drifts when its p-value is
  below ``alpha / k`` for ``k`` tested columns; ``correction="holm"`` is the uniformly more
  powerful step-down variant; ``"none"`` tests each column at ``alpha``. A column given an
  effect-size test (``psi``, ``jensenshannon``, ``wasserstein``) drifts when the effect is at least
  its threshold (:data:`EFFECT_THRESHOLDS` unless given) and is outside the family.
- **Dataset drift**: at least one column drifts (so, with the default correction, a dataset
  with no change is flagged with probability at most ``alpha``); ``drift_share=0.5`` asks for at
  least half of the tested columns instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.monitoring import stats
from shipyard.monitoring.inputs import Categories, TableSource, load, run_counts
from shipyard.monitoring.reference import ReferenceProfile
from shipyard.monitoring.report import ColumnDrift, Distribution, DriftReport

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CORRECTIONS", "DISCRETE_MAX_VALUES", "EFFECT_THRESHOLDS", "TESTS", "drift"]

Test = Literal["ks", "chisquare", "psi", "jensenshannon", "wasserstein"]
TESTS: tuple[str, ...] = ("ks", "chisquare", "psi", "jensenshannon", "wasserstein")
P_VALUE_TESTS = frozenset({"ks", "chisquare"})
EFFECT_THRESHOLDS = {"psi": 0.2, "jensenshannon": 0.1, "wasserstein": 0.1}
CORRECTIONS = ("bonferroni", "holm", "none")
DISCRETE_MAX_VALUES = 10
IDENTIFIER_MIN_VALUES = 1000
BINS = 10  # reference decile bins for PSI and Jensen-Shannon on numerical columns
PLOT_BINS = 30
PLOT_CATEGORIES = 20

Source = TableSource | ReferenceProfile


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    tests: Mapping[str, str | tuple[str, float]] | None = None,
    alpha: float = 0.05,
    correction: str = "bonferroni",
    drift_share: float | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; see the module docstring for the rules.

    ``reference``: a pandas, polars or pyarrow table, a numpy structured array, a mapping of column
    name to array, a path to a Parquet/CSV/Feather file, or a :class:`ReferenceProfile`.
    ``current``: the same, except a profile. ``columns``: compare only these. ``tests``: per
    column, one of ``ks``, ``chisquare``, ``psi``, ``jensenshannon``, ``wasserstein``, or a pair
    ``(test, threshold)`` for the effect-size ones. Raises ``InvalidInput`` for options that break a
    rule and unreadable data; bad columns are reported in the result, not raised.
    """
    _check_options(alpha, correction, drift_share)
    _require_scipy()
    if isinstance(reference, ReferenceProfile):
        ref: Source = reference.select(columns)
    else:
        ref = load(reference, columns, label="reference")
    cur = load(current, columns, label="current")
    names = list(dict.fromkeys([*ref.names, *cur.names]))
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise InvalidInput(f"columns {unknown} are in neither the reference nor the current data")
    overrides = _parse_tests(tests, names)
    if ref.rows == 0:
        raise InvalidInput("the reference data has no rows: there is nothing to compare the current data with")

    results: dict[str, ColumnDrift] = {}
    numerical: list[str] = []
    for name in names:
        early = _precheck(name, ref, cur, overrides.get(name))
        if early is not None:
            results[name] = early
        elif ref.kind(name) == "numerical":
            numerical.append(name)
        else:
            results[name] = _categorical(name, ref, cur, overrides.get(name))
    results.update(_numerical(numerical, ref, cur, overrides))
    ordered = _decide([results[n] for n in names], alpha, correction)
    return _report(ordered, ref, cur, alpha, correction, drift_share)


# -- options and the columns that cannot be compared -------------------------------------------------


def _check_options(alpha: float, correction: str, drift_share: float | None) -> None:
    if not 0.0 < alpha < 1.0:
        raise InvalidInput(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}; 0.05 is the usual choice")
    if correction not in CORRECTIONS:
        raise InvalidInput(f"unknown correction {correction!r}: choose one of {', '.join(CORRECTIONS)}")
    if drift_share is not None and not 0.0 < drift_share <= 1.0:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share!r}")


def _require_scipy() -> None:
    try:
        import scipy  # noqa: F401
    except ImportError:  # pragma: no cover - installed wherever the tests run
        raise ShipyardError("drift statistics need scipy: pip install 'shipyard-mlops[monitoring]'") from None


def _parse_tests(tests: Mapping[str, Any] | None, names: list[str]) -> dict[str, tuple[str, float | None]]:
    out: dict[str, tuple[str, float | None]] = {}
    for column, spec in (tests or {}).items():
        test, threshold = (spec, None) if isinstance(spec, str) else tuple(spec)
        if test not in TESTS:
            raise InvalidInput(f"unknown test {test!r} for column {column!r}: choose one of {', '.join(TESTS)}")
        if threshold is not None:
            if test in P_VALUE_TESTS:
                raise InvalidInput(f"{test} is decided by its p-value and alpha; a threshold for column "
                                   f"{column!r} applies to psi, jensenshannon and wasserstein only")
            threshold = float(threshold)
        if column not in names:
            raise InvalidInput(f"tests names column {column!r}, which is in neither the reference nor the "
                               "current data")
        out[column] = (test, threshold)
    return out


def _precheck(name: str, ref: Source, cur: TableSource, override: tuple[str, float | None] | None,
              ) -> ColumnDrift | None:
    """The result of a column that cannot be tested, or ``None`` when it can."""
    if name not in cur.names:
        return ColumnDrift(name, _kind_of(ref, name), "missing_in_current",
                           message="in the reference but not in the current data")
    if name not in ref.names:
        return ColumnDrift(name, _kind_of(cur, name), "new_in_current",
                           message="in the current data but not in the reference")
    for side in (ref, cur):
        if name in side.invalid:
            return ColumnDrift(name, "other", "invalid", message=f"{side.label}: {side.invalid[name]}")
    kind, cur_kind = ref.kind(name), cur.kind(name)
    for side, other in ((ref, cur), (cur, ref)):
        if side.type_name(name) == "null":  # every value missing: no type to compare
            return ColumnDrift(name, other.kind(name), "all_null", missing_reference=1.0 if side is ref else None,
                               missing_current=1.0 if side is cur else None,
                               message=f"no value in the {'reference' if side is ref else 'current data'} "
                                       "(every row is missing)")
    if kind != cur_kind:
        return ColumnDrift(name, kind, "type_changed", message=(
            f"{kind} in the reference ({ref.type_name(name)}), {cur_kind} in the current data "
            f"({cur.type_name(name)}): cast one side to the other's type to compare them"))
    if kind == "datetime":
        return ColumnDrift(name, kind, "skipped", message=(
            "dates and times move with time, so they always drift; compare a derived number instead "
            "(e.g. age in days)"))
    if kind == "other":
        return ColumnDrift(name, kind, "skipped", message=f"values of type {ref.type_name(name)} are not compared")
    if override is not None and kind == "categorical" and override[0] in ("ks", "wasserstein"):
        raise InvalidInput(f"{override[0]} needs numbers, and column {name!r} is categorical "
                           f"({ref.type_name(name)}): use chisquare, psi or jensenshannon")
    if cur.rows == 0:
        return ColumnDrift(name, kind, "no_data", message="the current data has no rows")
    return None


def _kind_of(source: Source, name: str) -> str:
    return "other" if name in source.invalid else source.kind(name)


# -- numerical columns ----------------------------------------------------------------------------------


def _numerical(names: list[str], ref: Source, cur: TableSource,
               overrides: Mapping[str, tuple[str, float | None]]) -> dict[str, ColumnDrift]:
    import numpy as np

    out: dict[str, ColumnDrift] = {}
    pending: list[tuple[str, float, int, int]] = []  # KS columns waiting for an asymptotic p-value
    for name in names:  # one column at a time: every step inside is a numpy pass over its values
        r, c = ref.sorted_values(name), cur.sorted_values(name)
        ks_d, wasserstein = stats.ks_wasserstein(r, c) if len(r) and len(c) else (math.nan, math.nan)
        result = _numerical_column(name, r, c, ref.rows, cur.rows, ks_d, wasserstein, overrides.get(name))
        if result.test == "ks" and result.p_value is None and result.status == "tested":
            pending.append((name, ks_d, len(r), len(c)))
        out[name] = result
        del r, c
    if pending:  # one vectorised call for all of them
        p_values = stats.ks_pvalues(np.array([p[1] for p in pending]), np.array([p[2] for p in pending]),
                                    np.array([p[3] for p in pending]))
        for (name, *_), p in zip(pending, p_values, strict=True):
            out[name] = replace(out[name], p_value=float(p))
    return out


def _numerical_column(name: str, r: np.ndarray, c: np.ndarray, ref_rows: int, cur_rows: int, ks_d: float,
                      wasserstein: float, override: tuple[str, float | None] | None) -> ColumnDrift:
    import numpy as np

    n, m = len(r), len(c)
    base = ColumnDrift(name, "numerical", "tested", missing_reference=(ref_rows - n) / ref_rows,
                       missing_current=(cur_rows - m) / cur_rows, n_reference=n, n_current=m)
    if n == 0 or m == 0:
        side = "reference" if n == 0 else "current data"
        return replace(base, status="all_null", message=f"no value in the {side} (every row is missing)")
    notes = []
    std = float(r.std())
    if std > 0:
        normed: float | None = wasserstein / std
    else:
        normed = 0.0 if wasserstein == 0 else None
        notes.append(f"constant in the reference ({r[0]:g}): the normalised Wasserstein distance is undefined")
    outside = (int(np.searchsorted(c, r[0], "left")) + m - int(np.searchsorted(c, r[-1], "right"))) / m
    ref_values, ref_counts = run_counts(r)
    test = override[0] if override else ("chisquare" if len(ref_values) <= DISCRETE_MAX_VALUES else "ks")
    fields: dict[str, Any] = {"wasserstein": normed, "outside_range": outside}
    if test == "chisquare" or (test in ("psi", "jensenshannon") and len(ref_values) <= DISCRETE_MAX_VALUES):
        import pyarrow as pa

        cur_values, cur_counts = run_counts(c)
        cats = _align(Categories(pa.array(ref_values), ref_counts, 0), Categories(pa.array(cur_values), cur_counts, 0))
        fields |= _category_fields(*cats)
        if test == "chisquare":
            statistic, _, p = stats.chi2_homogeneity(cats[1], cats[2])
            fields |= {"statistic": statistic, "p_value": p}
    else:
        edges = stats.quantile_edges(r, BINS)
        counts = np.vstack([stats.sorted_bin_counts(r, edges), stats.sorted_bin_counts(c, edges)])
        fields |= {"psi": float(stats.psi(counts[0], counts[1])),
                   "jensen_shannon": float(stats.jensen_shannon(counts[0], counts[1])),
                   "distribution": _histogram(r, c)}
        if test == "ks":
            fields["statistic"] = ks_d
            if max(n, m) <= stats.KS_EXACT_MAX_N:
                fields["p_value"] = stats.ks_exact_pvalue(r, c)
    result = replace(base, test=test, message="; ".join(notes), **fields)
    return _effect_decision(result, override)


def _histogram(r: np.ndarray, c: np.ndarray) -> Distribution:
    """Shares of both samples in :data:`PLOT_BINS` equal bins spanning the bulk of both (0.5 % of
    each tail folded into the end bins, so that an outlier does not flatten the plot)."""
    import numpy as np

    def at(values: np.ndarray, q: float) -> float:
        return float(values[min(int(q * len(values)), len(values) - 1)])

    lo, hi = min(at(r, 0.005), at(c, 0.005)), max(at(r, 0.995), at(c, 0.995))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, PLOT_BINS + 1)
    shares = [stats.sorted_bin_counts(v, edges[1:-1]) / len(v) for v in (r, c)]
    labels = [f"{a:.4g} to {b:.4g}" for a, b in itertools.pairwise(edges)]
    return Distribution(labels, shares[0].tolist(), shares[1].tolist(), edges.tolist())


# -- categorical columns --------------------------------------------------------------------------------


def _categorical(name: str, ref: Source, cur: TableSource, override: tuple[str, float | None] | None,
                 ) -> ColumnDrift:
    rc, cc = ref.categories(name), cur.categories(name)
    n, m = int(rc.counts.sum()), int(cc.counts.sum())
    base = ColumnDrift(name, "categorical", "tested", missing_reference=rc.missing / ref.rows,
                       missing_current=cc.missing / cur.rows, n_reference=n, n_current=m)
    if n == 0 or m == 0:
        side = "reference" if n == 0 else "current data"
        return replace(base, status="all_null", message=f"no value in the {side} (every row is missing)")
    labels, ref_counts, cur_counts = _align(rc, cc)
    fields = _category_fields(labels, ref_counts, cur_counts)
    distinct = len(rc.values)
    if override is None and distinct > IDENTIFIER_MIN_VALUES and distinct > n / 2:
        return replace(base, status="skipped", **fields, message=(
            f"{distinct:,} distinct values in {n:,} reference values: an identifier or free text, whose "
            f"frequencies say nothing; pass tests={{{name!r}: 'chisquare'}} to test it anyway"))
    test = override[0] if override else "chisquare"
    if test == "chisquare":
        statistic, _, p = stats.chi2_homogeneity(ref_counts, cur_counts)
        fields |= {"statistic": statistic, "p_value": p}
    return _effect_decision(replace(base, test=test, **fields), override)


def _align(ref: Categories, cur: Categories) -> tuple[Any, np.ndarray, np.ndarray]:
    """Both samples' counts over the same categories: the reference's, then those new in the current."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    values = cur.values.cast(ref.values.type) if cur.values.type != ref.values.type else cur.values
    index = pc.index_in(values, value_set=ref.values).fill_null(-1).to_numpy(zero_copy_only=False)
    unseen = index < 0
    k = len(ref.values)
    cur_counts = np.zeros(k + int(unseen.sum()), dtype=np.int64)
    cur_counts[index[~unseen]] = cur.counts[~unseen]
    cur_counts[k:] = cur.counts[unseen]
    ref_counts = np.concatenate([ref.counts, np.zeros(int(unseen.sum()), dtype=np.int64)])
    labels = pa.concat_arrays([ref.values, values.filter(pa.array(unseen))])
    return labels, ref_counts, cur_counts


def _category_fields(labels: Any, ref_counts: np.ndarray, cur_counts: np.ndarray) -> dict[str, Any]:
    import numpy as np

    unseen = ref_counts == 0
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    top = np.argsort(-np.maximum(ref_share, cur_share), kind="stable")[:PLOT_CATEGORIES]
    names = [_label(v) for v in labels.take(top).to_pylist()]
    ref_plot, cur_plot = ref_share[top].tolist(), cur_share[top].tolist()
    if len(labels) > len(top):
        names.append(f"(other {len(labels) - len(top):,})")
        ref_plot.append(max(0.0, 1.0 - sum(ref_plot)))
        cur_plot.append(max(0.0, 1.0 - sum(cur_plot)))
    return {"psi": float(stats.psi(ref_counts, cur_counts)),
            "jensen_shannon": float(stats.jensen_shannon(ref_counts, cur_counts)),
            "unseen_categories": int(unseen.sum()), "unseen_share": float(cur_share[unseen].sum()),
            "distribution": Distribution(names, ref_plot, cur_plot)}


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- the decision -----------------------------------------------------------------------------------------


def _effect_decision(result: ColumnDrift, override: tuple[str, float | None] | None) -> ColumnDrift:
    """Decide a column given an effect-size test (outside the p-value family)."""
    if result.test not in EFFECT_THRESHOLDS:
        return result
    threshold = override[1] if override and override[1] is not None else EFFECT_THRESHOLDS[str(result.test)]
    value = {"psi": result.psi, "jensenshannon": result.jensen_shannon, "wasserstein": result.wasserstein}[
        str(result.test)]
    if value is None:
        return replace(result, statistic=None, threshold=threshold,
                       message="; ".join(filter(None, [result.message, f"no {result.test} to decide on"])))
    return replace(result, statistic=value, threshold=threshold, drifted=value >= threshold)


def _decide(results: list[ColumnDrift], alpha: float, correction: str) -> list[ColumnDrift]:
    family = [i for i, r in enumerate(results) if r.status == "tested" and r.test in P_VALUE_TESTS]
    k = len(family)
    decided = list(results)
    if correction == "holm":
        order = sorted(family, key=lambda i: p if (p := results[i].p_value) is not None else 1.0)
        rejecting = True
        for rank, i in enumerate(order):
            level = alpha / (k - rank)
            p = results[i].p_value
            rejecting = rejecting and p is not None and p < level
            decided[i] = replace(results[i], threshold=level, drifted=rejecting)
        return decided
    level = alpha / k if correction == "bonferroni" and k else alpha
    for i in family:
        p = results[i].p_value
        decided[i] = replace(results[i], threshold=level, drifted=p is not None and p < level)
    return decided


def _report(results: list[ColumnDrift], ref: Source, cur: TableSource, alpha: float, correction: str,
            drift_share: float | None) -> DriftReport:
    tested = [r for r in results if r.status == "tested" and r.threshold is not None]
    drifted = [r for r in tested if r.drifted]
    family = sum(1 for r in tested if r.test in P_VALUE_TESTS)
    if cur.rows == 0:
        rule, flagged = "no data: the current data has no rows, so nothing is compared", False
    elif drift_share is None:
        flagged = bool(drifted)
        per_column = {"bonferroni": f"each p-value below alpha/{family} = {alpha / max(family, 1):.3g}",
                      "holm": "Holm's step-down levels alpha/k ... alpha/1",
                      "none": f"each p-value below alpha = {alpha:g}, uncorrected"}[correction]
        rule = (f"dataset drift when at least one column drifts: {len(drifted)} of {len(tested)} tested columns "
                f"did ({family} by p-value, {per_column}; family-wise false-alarm rate at most {alpha:g}"
                f"{'' if correction != 'none' else ' per column, not per dataset'})")
    else:
        share = len(drifted) / len(tested) if tested else 0.0
        flagged = bool(tested) and share >= drift_share
        rule = (f"dataset drift when at least {drift_share:.0%} of the tested columns drift: "
                f"{len(drifted)} of {len(tested)} did ({share:.0%})")
    return DriftReport(
        columns=tuple(results), dataset_drift=flagged, rule=rule, alpha=alpha, correction=correction,
        rows_reference=ref.rows, rows_current=cur.rows, status="no_data" if cur.rows == 0 else "ok",
        missing_columns=tuple(r.column for r in results if r.status == "missing_in_current"),
        extra_columns=tuple(r.column for r in results if r.status == "new_in_current"))
