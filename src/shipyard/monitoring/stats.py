"""The drift statistics, vectorised over blocks of columns with numpy (scipy for distributions only).

Numerical columns arrive as their finite values sorted ascending (sorted once; a reference
profile keeps them sorted). Two samples are merged with one stable ``argsort`` of the two
concatenated sorted arrays (timsort sees two runs and merges them in linear time); the running
count of reference values along the merged array gives both empirical CDFs at every point, from
which come:

- the two-sample Kolmogorov-Smirnov statistic ``D = max |F_ref - F_cur|``, read where the merged
  value changes (the end of each group of ties), exactly what ``scipy.stats.ks_2samp`` computes;
- the Wasserstein-1 distance ``sum |F_ref - F_cur| * (x[k+1] - x[k])``, exactly the sum
  ``scipy.stats.wasserstein_distance`` takes over the same points.

p-values follow ``ks_2samp(method="auto")``: the exact distribution while the larger sample has
at most :data:`KS_EXACT_MAX_N` values (scipy's own exact computation, cheap at that size), and
beyond that scipy's asymptotic choice, the one-sample distribution ``kstwo`` at
``n = round(n1 * n2 / (n1 + n2))``. One shortcut, which changes no decision: where
``n * D**2 >= 12`` scipy spends up to a second per column (a double-double sum over ``n`` terms)
to get a p-value below ``2 * exp(-24) < 1e-10`` (the Dvoretzky-Kiefer-Wolfowitz-Massart bound);
there the limiting Kolmogorov distribution is used, which is below the same bound, so the two
differ by less than 1e-10.

Categorical data (and discrete numbers) are compared on aligned category counts: the chi-square
test of homogeneity of the 2 x k table (what ``scipy.stats.chi2_contingency(correction=False)``
computes), with the categories whose expected count is below 5 in either sample pooled into one
cell first (Cochran's rule, so that the chi-square approximation holds).

Effect sizes: PSI and the Jensen-Shannon distance (base 2, in [0, 1], as
``scipy.spatial.distance.jensenshannon``) over the same bins, row-wise over 2-D count matrices.

Each column is its own 1-D pass: measured with numpy 2, a 2-D ``argsort``/``take_along_axis``/
``cumsum`` over a block of columns was slower than the same calls per row (fancy indexing and
strided accumulation), and one column at a time also bounds the temporaries to one column.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "KS_EXACT_MAX_N",
    "MIN_EXPECTED",
    "PSI_FLOOR",
    "chi2_homogeneity",
    "jensen_shannon",
    "ks_exact_pvalue",
    "ks_pvalues",
    "ks_wasserstein",
    "psi",
    "quantile_edges",
    "sorted_bin_counts",
]

KS_EXACT_MAX_N = 10_000  # scipy's MAX_AUTO_N: above it, ks_2samp(method="auto") goes asymptotic
MIN_EXPECTED = 5.0  # Cochran: every expected cell count at least 5
PSI_FLOOR = 1e-4  # an empty bin's share in PSI (the log of 0 is undefined)
_KOLMOGOROV_LIMIT = 12.0  # n * D**2 from which the limiting distribution replaces kstwo (see above)


def ks_wasserstein(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """KS statistic and Wasserstein-1 distance of two sorted 1-D samples of finite values (neither empty)."""
    import numpy as np

    n, m = len(ref), len(cur)
    both = np.concatenate([ref, cur])
    order = np.argsort(both, kind="stable")  # merges the two sorted runs in linear time
    merged = both.take(order)
    from_ref = order < n
    del both, order
    count = np.cumsum(from_ref, dtype=np.int64)  # reference values up to each merged point
    del from_ref
    gap = count / n
    count -= np.arange(1, n + m + 1)  # minus the current values up to each point
    gap += count / m  # F_ref - F_cur
    del count
    np.abs(gap, out=gap)
    deltas = np.diff(merged)
    del merged
    gap = gap[:-1]
    d = float(gap[deltas > 0].max(initial=0.0))  # at the end of each group of ties
    return d, float(np.dot(gap, deltas))


def ks_exact_pvalue(ref: np.ndarray, cur: np.ndarray) -> float:
    """The p-value of ``scipy.stats.ks_2samp(ref, cur)`` (method "auto": exact at these sizes)."""
    from scipy import stats

    with warnings.catch_warnings():  # scipy warns when it falls back to the asymptotic method
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ks_2samp(ref, cur, method="auto").pvalue)


def ks_pvalues(d: np.ndarray, n_ref: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """Asymptotic two-sided KS p-values, as ``ks_2samp`` computes them for large samples."""
    import numpy as np
    from scipy import special, stats

    big = np.maximum(n_ref, n_cur).astype(np.float64)
    small = np.minimum(n_ref, n_cur).astype(np.float64)
    n = np.round(big * small / (big + small))
    out = np.full(len(d), np.nan)
    far = n * d * d >= _KOLMOGOROV_LIMIT
    out[far] = special.kolmogorov(np.sqrt(n[far]) * d[far])
    near = ~far & np.isfinite(d)
    if near.any():
        out[near] = stats.kstwo.sf(d[near], n[near])
    clipped: np.ndarray = np.clip(out, 0.0, 1.0)
    return clipped


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """The ``bins - 1`` interior edges of equal-frequency bins of a sorted 1-D array (the values
    ``np.quantile`` gives, read by index since the array is sorted)."""
    import numpy as np

    pos = np.arange(1, bins) / bins * (len(values) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    edges: np.ndarray = values[lo] + (values[hi] - values[lo]) * (pos - lo)
    return edges


def sorted_bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of a sorted 1-D array in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    import numpy as np

    cuts = np.searchsorted(values, edges, side="right")
    return np.diff(np.concatenate(([0], cuts, [len(values)])))


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Population stability index per row of two count matrices (empty bins count as PSI_FLOOR)."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.maximum(ref_counts / ref_counts.sum(axis=-1, keepdims=True), PSI_FLOOR)
        q = np.maximum(cur_counts / cur_counts.sum(axis=-1, keepdims=True), PSI_FLOOR)
        index: np.ndarray = np.sum((q - p) * np.log(q / p), axis=-1)
        return index


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance (base 2) per row, as ``scipy.spatial.distance.jensenshannon``."""
    import numpy as np
    from scipy import special

    with np.errstate(invalid="ignore", divide="ignore"):
        p = ref_counts / ref_counts.sum(axis=-1, keepdims=True)
        q = cur_counts / cur_counts.sum(axis=-1, keepdims=True)
        m = (p + q) / 2.0
        js = np.sum(special.rel_entr(p, m) + special.rel_entr(q, m), axis=-1) / 2.0
        distance: np.ndarray = np.sqrt(js / np.log(2.0))
        return distance


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test that two count vectors come from one distribution: ``(statistic, dof, p)``.

    Categories with an expected count below :data:`MIN_EXPECTED` in either sample are pooled
    into one cell; a table left with one cell gives ``(0.0, 0, 1.0)``.
    """
    import numpy as np
    from scipy import stats

    ref_counts = np.asarray(ref_counts, dtype=np.float64)
    cur_counts = np.asarray(cur_counts, dtype=np.float64)
    n_ref, n_cur = ref_counts.sum(), cur_counts.sum()
    totals = ref_counts + cur_counts
    small = min(n_ref, n_cur) * totals / (n_ref + n_cur) < MIN_EXPECTED
    if small.any():
        ref_counts = np.append(ref_counts[~small], ref_counts[small].sum())
        cur_counts = np.append(cur_counts[~small], cur_counts[small].sum())
    observed = np.vstack([ref_counts, cur_counts])
    observed = observed[:, observed.sum(axis=0) > 0]
    if observed.shape[1] < 2:
        return 0.0, 0, 1.0
    expected = observed.sum(axis=1, keepdims=True) * observed.sum(axis=0, keepdims=True) / observed.sum()
    statistic = float(((observed - expected) ** 2 / expected).sum())
    dof = observed.shape[1] - 1
    return statistic, dof, float(stats.chi2.sf(statistic, dof))
