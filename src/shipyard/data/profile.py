"""Schema and statistical profile of a table, as plain JSON-serialisable dicts.

``profile_table(table)`` returns::

    {"format": "shipyard-profile-v1", "rows": 5000000, "columns": [
        {"name": "price", "type": "double", "kind": "number", "nulls": 12, "null_rate": 2.4e-06,
         "count": 4999988, "min": 0.5, "max": 990.0, "mean": 101.3, "std": 40.2,
         "quantiles": {"p1": ..., "p5": ..., "p25": ..., "p50": ..., "p75": ..., "p95": ..., "p99": ...}},
        {"name": "city", "type": "large_string", "kind": "string", "categorical": true, "nulls": 0,
         "null_rate": 0.0, "distinct": 200, "top": [["paris", 25311], ...]},
        {"name": "active", "type": "bool", "kind": "boolean", ..., "true": 2500123, "false": 2499877},
        {"name": "seen", "type": "timestamp[us]", "kind": "datetime", ..., "min": "2024-01-01 00:00:00.000000",
         "max": "..."},
        ...]}

Columns keep their order (names may repeat in Arrow). ``type`` is the canonical Arrow type of
:mod:`shipyard.data.tables` (so a Parquet round trip does not change it); ``categorical`` is
present, and true, for dictionary-encoded columns (pandas and polars categoricals). ``kind`` is
``number`` (integers, floats, decimals), ``boolean``, ``string``, ``binary``, ``datetime``
(timestamps, dates, times) or ``other`` (lists, structs, durations, nulls: only null counts).

Rules: NaN in floats counts as null (as in pandas). Number statistics are over the finite
values (``count`` of them; infinities, if any, are counted in ``infinite``); ``std`` is the
sample standard deviation (``ddof=1``, as pandas; ``None`` below two values); quantiles are
numpy's default (linear interpolation); statistics are ``None`` when there is no value, and
when they overflow float64 (values near its limits). Strings
and categoricals get ``distinct`` (distinct present values) and ``top``: the 10 most frequent
values with their counts, ties broken by first appearance. Datetimes get ``min``/``max`` as ISO
strings. Columns are profiled one after the other by default: the work is bound by memory
bandwidth, and on the 2-core machine the benchmark runs on two threads were no faster (often
slower); ``workers=N`` profiles N columns at a time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.data.numeric import CHUNK, extremes, summarize
from shipyard.data.table_digest import worker_count
from shipyard.data.tables import canonical_column, canonical_type, pyarrow, to_arrow
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["FORMAT", "QUANTILES", "TABLE_SUFFIXES", "TOP_VALUES", "profile_column", "profile_file", "profile_table",
           "schema_of"]

FORMAT = "shipyard-profile-v1"
QUANTILES = (0.01, 0.05, 0.25, 0.50, 0.75, 0.95, 0.99)
TOP_VALUES = 10
TABLE_SUFFIXES = (".parquet", ".pq", ".csv", ".feather", ".arrow", ".ipc")
_PARALLEL_MIN_CELLS = 200_000
_BINCOUNT_MAX = 1 << 16  # categories counted by np.bincount; more: by Arrow's hash table
_PREFIX = 1 << 14  # rows read for the order of first appearance of the categories


def quantile_key(q: float) -> str:
    """``0.05`` -> ``"p5"``."""
    return f"p{round(q * 100):d}"


def schema_of(table: Any) -> list[dict[str, Any]]:
    """``[{"name", "type", "nullable"}, ...]`` in column order: canonical Arrow type names, and
    whether the schema allows nulls (pandas columns always do)."""
    schema = to_arrow(table).schema
    return [{"name": f.name, "type": str(canonical_type(f.type)), "nullable": f.nullable} for f in schema]


def profile_table(table: Any, *, workers: int | None = 1) -> dict[str, Any]:
    """The profile of ``table`` (any object :func:`shipyard.data.digest_table` takes); the shape
    is in the module docstring. ``workers``: columns profiled at a time (``None``: one per core).
    ``InvalidInput`` for unsupported objects."""
    pa = pyarrow()
    data = to_arrow(table)
    names, columns = data.column_names, list(data.columns)
    threads = min(worker_count(workers), len(columns))
    jobs = list(zip(names, columns, strict=True))
    try:
        if threads <= 1 or data.num_rows * data.num_columns < _PARALLEL_MIN_CELLS:
            profiles = [profile_column(name, column) for name, column in jobs]
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shipyard-profile") as pool:
                profiles = list(pool.map(lambda job: profile_column(*job), jobs))
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot profile the table: {exc}") from None
    return {"format": FORMAT, "rows": data.num_rows, "columns": profiles}


def profile_file(path: str | os.PathLike[str], *, workers: int | None = 1) -> dict[str, Any] | None:
    """The profile of a ``.parquet``/``.pq``, ``.csv``, ``.feather`` or ``.arrow``/``.ipc`` file,
    read with pyarrow; ``None`` for a folder or any other kind of file (nothing to profile).
    In a CSV file an empty field is missing (null), as pandas reads it. ``workers``: as for
    :func:`profile_table`.

    ``NotFound`` when nothing is at ``path``; ``InvalidInput`` when the file cannot be read as
    its suffix says.
    """
    name = Path(os.fspath(path)).expanduser()
    if not name.exists():
        raise NotFound(f"no such file: {str(name)!r}", path=str(name))
    suffix = name.suffix.lower()
    if name.is_dir() or suffix not in TABLE_SUFFIXES:
        return None
    pa = pyarrow()
    try:
        table = _read(pa, name, suffix)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {str(name)!r} as {suffix.lstrip('.')}: {exc}", path=str(name)) from None
    return profile_table(table, workers=workers)


def _read(pa: Any, path: Path, suffix: str) -> pa.Table:
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).read()  # not pq.read_table: that imports pyarrow.dataset, and pandas
    if suffix == ".csv":
        import pyarrow.csv as csv

        # an empty field is missing, as pandas reads it (pyarrow's default keeps "" for strings)
        return csv.read_csv(path, convert_options=csv.ConvertOptions(strings_can_be_null=True))
    if suffix == ".feather":
        import pyarrow.feather as feather

        return feather.read_table(path)
    with pa.memory_map(str(path)) as source:  # .arrow / .ipc: the IPC file format, else the stream format
        try:
            return pa.ipc.open_file(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_stream(source).read_all()


# -- one column ------------------------------------------------------------------------------------


def _kind(pa: Any, t: pa.DataType) -> str:
    types = pa.types
    if types.is_integer(t) or types.is_floating(t) or types.is_decimal(t):
        return "number"
    if types.is_boolean(t):
        return "boolean"
    if types.is_large_string(t):
        return "string"
    if types.is_large_binary(t) or types.is_fixed_size_binary(t):
        return "binary"
    if types.is_timestamp(t) or types.is_date(t) or types.is_time(t):
        return "datetime"
    return "other"


def profile_column(name: str, column: pa.ChunkedArray, canonical: pa.Array | None = None) -> dict[str, Any]:
    """The profile of one column (an entry of ``profile_table(...)["columns"]``); ``canonical``: its
    :func:`~shipyard.data.tables.canonical_column` (kept dictionary-encoded, or not, for a
    dictionary column), when the caller already has it."""
    import pyarrow.compute as pc

    pa = pyarrow()
    categorical = pa.types.is_dictionary(column.type)
    array: Any  # a pyarrow Array (the local ``pa`` hides the module's name from annotations)
    if categorical:  # counted on the dictionary's codes: no need to decode every value
        encoded = canonical is not None and pa.types.is_dictionary(canonical.type)
        array = canonical if encoded else canonical_column(column, dictionary=True)
        kind, type_name = _kind(pa, canonical_type(column.type)), str(canonical_type(column.type))
        nulls = array.null_count
    else:
        array = canonical_column(column) if canonical is None else canonical
        kind, type_name = _kind(pa, array.type), str(array.type)
        nulls = array.null_count
    rows = len(array)
    out: dict[str, Any] = {"name": name, "type": type_name, "kind": kind}
    if categorical:
        out["categorical"] = True
    stats: dict[str, Any] = {}
    if kind == "number" and not categorical:
        stats, nan = _numbers(pa, array)
        nulls += nan
    elif kind == "boolean" and not categorical:
        true = int(pc.sum(array).as_py() or 0)
        stats = {"true": true, "false": rows - nulls - true}
    elif kind == "datetime" and not categorical:
        stats = _min_max_text(pc, array)
    if kind == "string" or categorical:
        stats = _values(pa, pc, array)
    out.update(nulls=nulls, null_rate=nulls / rows if rows else 0.0, **stats)
    return out


def _numbers(pa: Any, array: pa.Array) -> tuple[dict[str, Any], int]:
    """(statistics, NaN count) of a number column."""
    import numpy as np

    if pa.types.is_decimal(array.type):
        array = array.cast(pa.float64())
    values = (array.drop_null() if array.null_count else array).to_numpy(zero_copy_only=False)
    nan = infinite = 0
    ends = extremes(values) if values.size else None
    if values.dtype.kind == "f" and ends is not None and not (np.isfinite(ends[0]) and np.isfinite(ends[1])):
        nan = int(np.isnan(values).sum())  # NaN or infinities somewhere: count and drop them
        finite = np.isfinite(values)
        infinite = int(values.size - nan - finite.sum())
        values = values[finite]
        ends = extremes(values) if values.size else None
    out: dict[str, Any] = {"count": int(values.size)}
    if infinite:
        out["infinite"] = infinite
    if not values.size:
        return {**out, "min": None, "max": None, "mean": None, "std": None,
                "quantiles": {quantile_key(q): None for q in QUANTILES}}, nan
    summary = summarize(values, QUANTILES, ends)
    return {
        **out,
        "min": summary.min.item(),
        "max": summary.max.item(),
        "mean": summary.mean,
        "std": summary.std,
        "quantiles": {quantile_key(q): v if np.isfinite(v) else None  # interpolation overflowing float64
                      for q, v in zip(QUANTILES, summary.quantiles, strict=True)},
    }, nan


def _min_max_text(pc: Any, array: pa.Array) -> dict[str, Any]:
    import pyarrow as pa

    extremes = pc.min_max(array)
    return {key: None if not extremes[key].is_valid else extremes[key].cast(pa.string()).as_py()
            for key in ("min", "max")}


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _values(pa: Any, pc: Any, array: pa.Array) -> dict[str, Any]:
    """Distinct count and top values; for a dictionary array, counted on its codes."""

    present = array.drop_null() if array.null_count else array
    if pa.types.is_dictionary(array.type):
        dictionary = present.dictionary
        if dictionary.null_count or len(pc.unique(dictionary)) != len(dictionary):
            present = present.cast(canonical_type(array.type))  # rare: decode, then count values
        else:
            codes, counts = _code_counts(pc, present.indices, len(dictionary))
            return _top(dictionary.take(codes), counts)
    counts = pc.value_counts(present)
    return _top(counts.field("values"), counts.field("counts").to_numpy(zero_copy_only=False))


def _code_counts(pc: Any, indices: pa.Array, size: int) -> tuple[Any, np.ndarray]:
    """The codes present in ``indices`` (no nulls, each below ``size``) in first-appearance order,
    and how often each appears: what ``pc.value_counts(indices)`` gives, but counted by
    ``np.bincount`` a chunk at a time (a hash table per row cost several times more), and
    ordered from the first rows alone when every present code appears in them (the usual case)."""
    import numpy as np

    def by_arrow() -> tuple[Any, np.ndarray]:
        by_code = pc.value_counts(indices)
        return by_code.field("values"), by_code.field("counts").to_numpy(zero_copy_only=False)

    codes = indices.to_numpy(zero_copy_only=False)
    if size > _BINCOUNT_MAX or codes.size <= _PREFIX:
        return by_arrow()
    counts = np.zeros(size, np.int64)
    for start in range(0, codes.size, CHUNK):  # a chunk's cast to intp stays in cache
        counts += np.bincount(codes[start:start + CHUNK], minlength=size)
    seen, first = np.unique(codes[:_PREFIX], return_index=True)
    if len(seen) < np.count_nonzero(counts):  # a code first appears later on: Arrow finds the order
        return by_arrow()
    order = seen[np.argsort(first, kind="stable")]
    return order, counts[order]


def _top(values: pa.Array, frequencies: np.ndarray) -> dict[str, Any]:
    """``distinct`` and the :data:`TOP_VALUES` most frequent of ``values`` (in first-appearance
    order, which breaks ties) with their ``frequencies``."""
    import numpy as np

    distinct = len(frequencies)
    if distinct > TOP_VALUES:
        threshold = np.partition(frequencies, distinct - TOP_VALUES)[distinct - TOP_VALUES]
        above = np.flatnonzero(frequencies > threshold)
        ties = np.flatnonzero(frequencies == threshold)[: TOP_VALUES - len(above)]
        chosen = np.sort(np.concatenate([above, ties]))
    else:
        chosen = np.arange(distinct)
    chosen = chosen[np.argsort(-frequencies[chosen], kind="stable")]
    top = [[_json_value(values[int(i)].as_py()), int(frequencies[i])] for i in chosen]
    return {"distinct": distinct, "top": top}
