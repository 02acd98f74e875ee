"""Summary statistics of a large numeric array in few passes: min, max, mean, std, exact quantiles.

:func:`summarize` reads the values twice, a chunk of :data:`CHUNK` at a time into small reused
buffers (on large arrays, fresh temporaries cost more in page faults and memory traffic than the
arithmetic): once for the minimum and maximum, once for everything else. The mean and the sample
standard deviation (``ddof=1``) combine per-chunk means and squared deviations (Chan et al.'s
pairwise update, stable like numpy's two-pass formula).

Quantiles are bit-for-bit ``np.quantile(values, qs)`` (the default "linear" method), found by
radix selection rather than by partitioning the whole array: the values map to unsigned integer
keys in the same order (floats through their IEEE bits, sign folded), are counted in up to 65,536
buckets of the keys' top bits, and only the values of the few buckets holding the wanted order
statistics are picked (one gather over the stored bucket numbers) and partitioned together. For
floats the buckets are roughly logarithmic, so skewed data (prices, latencies) spreads well; when
every value is above zero a float's bits already order like it, and the key costs one subtraction.
Integers spanning at most 65,536 values take one counting pass and nothing else: the counts are
the whole distribution, so the mean (exact, then rounded once), the deviation and the quantiles
come from them. When the wanted buckets hold most values anyway (e.g. two distinct values), it
partitions the array directly, as numpy would.

Floats whose values are not crowded near the quantiles (checked on a sample of 4,096 of them;
normal-like data, not long tails) use 4,096 buckets of equal width instead, ``trunc((x - min) *
scale)``: two array operations a chunk, and, 4 mantissa bits being too coarse where most values
lie, far fewer values to pick (16,000 rather than 200,000 of 5,000,000 normal values). Any map
that never decreases gives the same order statistics, so the results stay those of
``np.quantile``; the one thing a partition can tell apart among equal values is the sign of a
zero, so when a wanted value is zero and both ``-0.0`` and ``0.0`` are among those picked, the
quantiles are picked again through the keys, as before.

Expects a 1-D array of finite floats or of integers, without missing values, and not empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = ["CHUNK", "Summary", "extremes", "quantiles", "summarize"]

CHUNK = 1 << 16  # values per chunk: 512 KiB of float64, so that a chunk's passes stay in cache
_BUCKET_BITS = 16
_SMALL = 4096  # below this many values, numpy's own functions are as fast
_LINEAR_BUCKETS = 1 << 12
_SAMPLE = 4096  # values read to choose between equal-width buckets and the keys' buckets
_CROWDED = _SAMPLE // 25  # sampled values near the quantiles past which equal-width buckets pick too many


@dataclass(frozen=True)
class Summary:
    count: int
    min: Any  # numpy scalars of the array's dtype (``.item()`` gives the Python value)
    max: Any
    mean: float | None  # None if it overflows float64
    std: float | None  # None below two values, or if it overflows float64
    quantiles: tuple[float, ...]


def extremes(values: np.ndarray) -> tuple[Any, Any]:
    """``(values.min(), values.max())`` of a non-empty array (NaN when it holds one), reading it from
    memory once: both of a chunk's passes, the second in cache. When either is a zero, the whole
    array's own reductions decide which zero (a chunk's may pick the other)."""
    import numpy as np

    if values.size <= CHUNK:
        return values.min(), values.max()
    lows, highs = [], []
    for start in range(0, values.size, CHUNK):
        chunk = values[start:start + CHUNK]
        lows.append(chunk.min())
        highs.append(chunk.max())
    low, high = np.min(lows), np.max(highs)  # NaN propagates, as through values.min()
    if values.dtype.kind == "f" and (low == 0 or high == 0):
        return values.min(), values.max()
    return low, high


def _keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys sorting like ``values`` (a small array; the big one goes through :class:`_Buckets`)."""
    import numpy as np

    top = np.uint64(1 << 63)
    if values.dtype.kind == "f":
        bits = values.astype(np.float64).view(np.uint64)
        # negative floats: flip every bit (larger magnitude sorts first); positive: set the top bit
        keys: np.ndarray = bits ^ (np.negative(bits >> np.uint64(63)) | top)
        return keys
    if values.dtype.kind == "i":
        return values.astype(np.int64).view(np.uint64) ^ top
    return values.astype(np.uint64)


def _value(key: int, dtype: np.dtype) -> Any:
    """The value of a key (the inverse of :func:`_keys`), in ``dtype``."""
    import numpy as np

    top = 1 << 63
    if dtype.kind == "f":
        bits = key ^ top if key & top else ~key & 0xFFFF_FFFF_FFFF_FFFF
        return np.array([bits], dtype=np.uint64).view(np.float64).astype(dtype)[0]
    if dtype.kind == "i":
        return np.array([key ^ top], dtype=np.uint64).view(np.int64).astype(dtype)[0]
    return np.array([key], dtype=np.uint64).astype(dtype)[0]


def _lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's own interpolation for the "linear" method (so that the results are identical)."""
    import numpy as np

    diff = b - a
    out = np.add(a, diff * t)
    np.subtract(b, diff * (1 - t), out=out, where=t >= 0.5)
    result: np.ndarray = out
    return result


class _SignedZeros(Exception):
    """A wanted order statistic is a zero, and both zeros are among the values picked for it."""


class _Linear:
    """Buckets of equal width in value, ``trunc((x - low) * scale)``, for floats; ``None`` from
    :meth:`fit` when they would pick too many values (module docstring)."""

    def __init__(self, low: Any, high: Any) -> None:
        import numpy as np

        self.size = _LINEAR_BUCKETS
        self.low = np.float64(low)
        # at high, (high - low) * scale is at most size - 1 and a few ulps: below size
        self.scale = np.float64((self.size - 1) / (float(high) - float(low)))
        self.diff = np.empty(CHUNK, np.float64)
        self.ids = np.empty(CHUNK, np.intp)

    @classmethod
    def fit(cls, values: np.ndarray, qs: Sequence[float], low: Any, high: Any) -> _Linear | None:
        import numpy as np

        span = float(high) - float(low)
        if not (0 < span < np.inf) or not np.isfinite((_LINEAR_BUCKETS - 1) / span):
            return None
        sample = np.sort(values[:: max(1, values.size // _SAMPLE)])
        at = sample[(np.asarray(qs) * (sample.size - 1)).astype(np.intp)]
        width = span / (_LINEAR_BUCKETS - 1)
        near = np.searchsorted(sample, at + width, side="right") - np.searchsorted(sample, at - width)
        return cls(low, high) if near.sum() <= _CROWDED else None

    def of(self, chunk: np.ndarray) -> np.ndarray:
        """The bucket of each value of ``chunk`` (a view of an internal buffer, valid until the next call)."""
        import numpy as np

        diff, ids = self.diff[: len(chunk)], self.ids[: len(chunk)]
        np.subtract(chunk, self.low, out=diff)  # each step rounds monotonically: the map never decreases
        np.multiply(diff, self.scale, out=ids, casting="unsafe")  # >= 0: truncation is the floor
        return ids


class _Buckets:
    """Bucket numbers of chunks of values, computed in place in two reused uint64 buffers."""

    def __init__(self, dtype: np.dtype, low_value: Any, high_value: Any) -> None:
        import numpy as np

        if dtype.kind == "f":  # min/max may return either zero; -0.0 has the smaller key
            low_value = -0.0 if low_value == 0 else low_value
            high_value = 0.0 if high_value == 0 else high_value
        ends = _keys(np.array([low_value, high_value], dtype=dtype))
        self.low = ends[0]
        span = int(ends[1] - self.low)
        self.shift = np.uint64(max(0, span.bit_length() - _BUCKET_BITS))
        self.size = (span >> int(self.shift)) + 1
        self.exact = self.shift == 0  # one key per bucket
        # every value above zero: the float's bits alone order like the values (no sign to fold)
        self.positive = dtype.kind == "f" and low_value > 0
        self.low_bits = np.array([low_value], dtype=np.float64).view(np.uint64)[0] if self.positive else None
        self.low_value = low_value
        self.key = np.empty(CHUNK, np.uint64)
        self.tmp = np.empty(CHUNK, np.uint64)

    def of(self, chunk: np.ndarray) -> np.ndarray:
        """The bucket of each value of ``chunk`` (a view of an internal buffer, valid until the next call)."""
        import numpy as np

        key, tmp = self.key[: len(chunk)], self.tmp[: len(chunk)]
        if chunk.dtype.kind == "f":
            bits = chunk.astype(np.float64, copy=False).view(np.uint64)
            if self.positive:
                assert self.low_bits is not None  # set whenever positive
                np.subtract(bits, self.low_bits, out=key)
            else:
                # the sign smeared over the word with the top bit set: XOR with it flips every bit
                # of a negative value and sets the top bit of a positive one (the key's order)
                np.right_shift(bits.view(np.int64), 63, out=tmp.view(np.int64))
                np.bitwise_or(tmp, np.uint64(1 << 63), out=tmp)
                np.bitwise_xor(bits, tmp, out=key)
                np.subtract(key, self.low, out=key)
        elif chunk.dtype.kind == "i":  # value - minimum, wrapped into uint64: the key minus the lowest key
            np.subtract(chunk.astype(np.int64, copy=False), np.int64(self.low_value), out=key.view(np.int64))
        else:
            np.copyto(key, chunk, casting="unsafe")
            np.subtract(key, self.low, out=key)
        if self.shift:
            np.right_shift(key, self.shift, out=key)
        return key.view(np.int64)


def _ranked(ranks: np.ndarray, buckets: _Buckets, counts: np.ndarray, dtype: np.dtype) -> dict[int, Any]:
    """``{rank: value}`` when each bucket holds one key: the counts alone place every rank."""
    import numpy as np

    where = np.searchsorted(np.cumsum(counts), ranks, side="right")
    return {int(rank): _value(int(buckets.low) + int(bucket), dtype) for rank, bucket in zip(ranks, where, strict=True)}


def _order_statistics(values: np.ndarray, ranks: np.ndarray, buckets: _Buckets | _Linear, counts: np.ndarray,
                      ids: np.ndarray) -> dict[int, Any]:
    """``{rank: the rank-th smallest value}`` for the 0-based ``ranks`` (sorted, unique), from the
    bucket ``counts`` and each value's bucket ``ids``. ``_SignedZeros`` (equal-width buckets
    only) when a zero is wanted and both zeros were picked."""
    import numpy as np

    cumulative = np.cumsum(counts)
    where = np.searchsorted(cumulative, ranks, side="right")  # the bucket holding each rank
    if isinstance(buckets, _Buckets) and buckets.exact:  # one key per bucket (e.g. integers spanning
        return _ranked(ranks, buckets, counts, values.dtype)  # <= 65,536 values): counting was enough
    needed = np.unique(where)
    if counts[needed].sum() > values.size // 2:  # crowded buckets (e.g. two distinct values): select directly
        parted = np.partition(values, ranks)
        return {int(rank): parted[rank] for rank in ranks}
    wanted = np.zeros(buckets.size, dtype=bool)
    wanted[needed] = True
    # One gather over the bucket numbers, then one partition of the few values picked: the buckets
    # are ranges of values in order, so sorted, the picked values run bucket after bucket, and a
    # rank's place among them is its place in its bucket plus the picked values of lower buckets.
    # A chunk at a time: the bucket numbers' cast to indices stays in cache.
    picked = np.concatenate([values[start:start + CHUNK][wanted.take(ids[start:start + CHUNK])]
                             for start in range(0, values.size, CHUNK)])
    picked_below = np.cumsum(counts[needed]) - counts[needed]
    local = (ranks - (cumulative[where] - counts[where]) + picked_below[np.searchsorted(needed, where)])
    parted = np.partition(picked, np.unique(local))
    stats = {int(rank): parted[k] for rank, k in zip(ranks, local, strict=True)}
    if isinstance(buckets, _Linear) and 0 in stats.values():
        signs = np.signbit(picked[picked == 0])
        if signs.any() and not signs.all():
            raise _SignedZeros
    return stats


def _interpolate(values: np.ndarray, qs: Sequence[float], pick: Any) -> np.ndarray:
    """np.quantile's "linear" method, given ``pick(ranks) -> {rank: value}``."""
    import numpy as np

    q = np.asarray(qs, dtype=np.float64)
    virtual = q * (values.size - 1)
    previous = np.floor(virtual).astype(np.int64)
    following = np.minimum(previous + 1, values.size - 1)
    stats = pick(np.unique(np.concatenate([previous, following])))
    a = np.array([stats[int(i)] for i in previous], dtype=values.dtype)
    b = np.array([stats[int(i)] for i in following], dtype=values.dtype)
    return _lerp(a, b, virtual - previous)


def summarize(values: np.ndarray, qs: Sequence[float], extremes: tuple[Any, Any] | None = None) -> Summary:
    """Count, min, max, mean, sample std and ``np.quantile(values, qs)`` of ``values``;
    ``extremes``: ``(values.min(), values.max())``, when the caller already has them."""
    import numpy as np

    n = values.size
    if n < _SMALL:
        with np.errstate(over="ignore", invalid="ignore"):
            mean = float(np.mean(values, dtype=np.float64))
            std = float(np.std(values, dtype=np.float64, ddof=1)) if n > 1 else None
            small = tuple(float(v) for v in np.quantile(values, qs))
        return Summary(n, values.min(), values.max(), mean if np.isfinite(mean) else None,
                       std if std is not None and np.isfinite(std) else None, small)
    low, high = extremes if extremes is not None else (values.min(), values.max())
    keys = _Buckets(values.dtype, low, high)
    if keys.exact and values.dtype.kind in "iu":
        return _counted(values, qs, keys, low, high)
    linear = _Linear.fit(values, qs, low, high) if values.dtype.kind == "f" and not keys.exact else None
    buckets: _Buckets | _Linear = linear or keys
    counts = np.zeros(buckets.size, dtype=np.int64)
    ids = np.empty(n, np.uint16)  # < 65,536 buckets
    centred = np.empty(CHUNK, np.float64)
    mean = squares = 0.0
    seen = 0
    with np.errstate(over="ignore", invalid="ignore"):  # sums past the float64 range: inf, then None
        for start in range(0, n, CHUNK):
            chunk = values[start:start + CHUNK]
            size = len(chunk)
            chunk_mean = float(chunk.mean(dtype=np.float64))
            part = centred[:size]
            np.subtract(chunk, chunk_mean, out=part)
            # not np.dot: that is BLAS, whose worker threads spin on every call (several times this
            # function's own CPU time) and take the other cores from the digest's hashing threads
            np.multiply(part, part, out=part)
            chunk_squares = float(part.sum())  # pairwise summation, as numpy's own var
            delta = chunk_mean - mean  # Chan et al.: merge (seen, mean, squares) with this chunk's
            total = seen + size
            mean += delta * size / total
            squares += chunk_squares + delta * delta * seen * size / total
            seen = total
            _tally(buckets, chunk, counts, ids[start:start + size])
        try:
            result = _interpolate(values, qs, lambda ranks: _order_statistics(values, ranks, buckets, counts, ids))
        except _SignedZeros:  # which zero a partition returns depends on the values around it: as before
            counts = np.zeros(keys.size, dtype=np.int64)
            for start in range(0, n, CHUNK):
                _tally(keys, values[start:start + CHUNK], counts, ids[start:start + CHUNK])
            result = _interpolate(values, qs, lambda ranks: _order_statistics(values, ranks, keys, counts, ids))
    std = float(np.sqrt(squares / (n - 1)))
    return Summary(n, low, high, mean if np.isfinite(mean) else None, std if np.isfinite(std) else None,
                   tuple(float(v) for v in result))


def _tally(buckets: _Buckets | _Linear, chunk: np.ndarray, counts: np.ndarray, ids: np.ndarray) -> None:
    """Count ``chunk``'s values into ``counts`` by bucket, and write each one's bucket into ``ids``."""
    import numpy as np

    bucket = buckets.of(chunk)
    counts += np.bincount(bucket, minlength=buckets.size)
    ids[:] = bucket


def _counted(values: np.ndarray, qs: Sequence[float], buckets: _Buckets, low: Any, high: Any) -> Summary:
    """:func:`summarize` of integers spanning at most 65,536 values: one counting pass, after which
    the counts are the whole distribution (mean, deviation and quantiles come from them)."""
    import numpy as np

    n = values.size
    counts = np.zeros(buckets.size, dtype=np.int64)
    for start in range(0, n, CHUNK):
        counts += np.bincount(buckets.of(values[start:start + CHUNK]), minlength=buckets.size)
    above = int(np.dot(np.arange(buckets.size, dtype=np.int64), counts))  # sum of (value - low): exact
    mean = (int(low) * n + above) / n  # Python integers: the exact sum, rounded once
    shift = above / n  # mean - low, the centre of the squared deviations
    squares = float(np.sum(counts * (np.arange(buckets.size, dtype=np.float64) - shift) ** 2))
    std = float(np.sqrt(squares / (n - 1)))
    result = _interpolate(values, qs, lambda ranks: _ranked(ranks, buckets, counts, values.dtype))
    return Summary(n, low, high, mean if np.isfinite(mean) else None, std if np.isfinite(std) else None,
                   tuple(float(v) for v in result))


def quantiles(values: np.ndarray, qs: Sequence[float]) -> np.ndarray:
    """``np.quantile(values, qs)``, exactly (see :func:`summarize`)."""
    import numpy as np

    return np.array(summarize(values, qs).quantiles, dtype=np.float64)
