"""Turning the table-like objects Shipyard accepts into one Arrow table, and Arrow's canonical types.

Accepted: pandas DataFrames and Series, polars DataFrames and Series, pyarrow Tables and
RecordBatches, numpy arrays (1-D: one column ``"0"``; 2-D: columns ``"0"``, ``"1"``, ...; a
structured array: one column per field), the same columns ``pd.DataFrame(array)`` would have.
Nothing is imported to recognise an object: a pandas frame can only come from a process that
imported pandas.

pandas frames: the index is dropped unless it is named; named index levels become the last
columns, under their names, where pyarrow stores them in a Parquet file (``df.set_index("id")``
keeps ``id``; a ``RangeIndex`` or the row labels left by filtering do not count as data). An
Arrow table carrying pandas metadata (e.g. read from a Parquet file pandas wrote) loses the
columns pyarrow stored for an unnamed index (``__index_level_0__``...) and gets a named
``RangeIndex`` (stored as metadata only) back as a column, as the frame would. In floating-point
columns NaN means missing, as in pandas, and is treated as null everywhere (digest and profile),
whatever the source.

Canonical types make one piece of data one type, whoever produced it: dictionary-encoded
(pandas categorical, polars categorical) becomes its values' type; ``string``, ``large_string``
and ``string_view`` become ``large_string``; the binary ones ``large_binary``; the list ones
``large_list<item: ...>``; run-end encoded and extension types their value / storage type; all
fields nullable and without metadata. Timestamps keep their unit and time zone.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput, ShipyardError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["SUPPORTED", "canonical_column", "canonical_type", "pyarrow", "to_arrow", "to_arrow_keeping_nan"]

SUPPORTED = ("a pandas DataFrame or Series, a polars DataFrame or Series, a pyarrow Table or RecordBatch, "
             "or a numpy array")


def pyarrow() -> Any:
    """The ``pyarrow`` module, or a ``ShipyardError`` saying how to install it."""
    try:
        import pyarrow
        import pyarrow.compute
    except ImportError:  # pragma: no cover - pyarrow is installed wherever the tests run
        raise ShipyardError("digesting and profiling tables needs pyarrow: pip install pyarrow") from None
    return pyarrow


def _instance(obj: Any, module: str, *names: str) -> bool:
    mod = sys.modules.get(module)
    return mod is not None and isinstance(obj, tuple(getattr(mod, name) for name in names))


def to_arrow(obj: Any) -> pa.Table:
    """An Arrow table holding ``obj`` (see the module docstring); ``InvalidInput`` for anything else
    and for data Arrow cannot represent (e.g. an object column mixing numbers and strings)."""
    pa = pyarrow()
    if isinstance(obj, pa.RecordBatch):
        obj = pa.Table.from_batches([obj])
    if isinstance(obj, pa.Table):
        return _pandas_index(obj)
    try:
        if _instance(obj, "pandas", "Series"):
            obj = obj.to_frame()
        if _instance(obj, "pandas", "DataFrame"):
            return _from_pandas(pa, obj)
        if _instance(obj, "polars", "Series"):
            obj = obj.to_frame()
        if _instance(obj, "polars", "DataFrame"):
            return obj.to_arrow()
        if _instance(obj, "polars", "LazyFrame"):
            raise InvalidInput("a polars LazyFrame holds no data yet: pass lazy_frame.collect()")
        if _instance(obj, "numpy", "ndarray"):
            return _from_numpy(pa, obj)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot represent the {type(obj).__name__} as an Arrow table: {exc}") from None
    kind = f"{type(obj).__module__}.{type(obj).__qualname__}"
    raise InvalidInput(f"unsupported data: {kind}; expected {SUPPORTED}")


def to_arrow_keeping_nan(obj: Any) -> pa.Table:
    """:func:`to_arrow`, except that the float32 and float64 columns of a pandas DataFrame (with
    unique string column names and no named index) keep NaN where ``to_arrow`` has a missing value.

    Those columns are then the frame's own memory, not copied nor scanned for NaN (the scan that
    builds their validity was most of the conversion's cost). For callers that treat NaN as
    missing themselves (:func:`shipyard.data.table_digest.nan_as_null`), as the digest and the
    profile do; anything else gets :func:`to_arrow`'s table."""
    import numpy as np

    pa = pyarrow()
    if not _instance(obj, "pandas", "DataFrame") or any(name is not None for name in obj.index.names) \
            or not all(isinstance(name, str) for name in obj.columns) or not obj.columns.is_unique:
        return to_arrow(obj)  # what to_arrow names, or refuses (duplicate names), stays its own
    floats = [isinstance(t, np.dtype) and t.kind == "f" and t.itemsize in (4, 8) for t in obj.dtypes]
    if not any(floats):
        return to_arrow(obj)
    others = [i for i, is_float in enumerate(floats) if not is_float]
    try:
        rest = pa.Table.from_pandas(obj.iloc[:, others], preserve_index=False).columns if others else []
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot represent the {type(obj).__name__} as an Arrow table: {exc}") from None
    converted = iter(rest)
    arrays = [pa.array(obj.iloc[:, i].to_numpy()) if is_float else next(converted) for i, is_float in enumerate(floats)]
    return pa.Table.from_arrays(arrays, names=list(obj.columns))


def _from_pandas(pa: Any, frame: Any) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    named = [i for i, name in enumerate(frame.index.names) if name is not None]
    if not named:
        return table
    arrays = [pa.array(frame.index.get_level_values(i), from_pandas=True) for i in named]
    names = [str(frame.index.names[i]) for i in named]
    return pa.Table.from_arrays([*table.columns, *arrays], names=[*table.column_names, *names])


def _pandas_index(table: pa.Table) -> pa.Table:
    """Apply the index rule to a table pandas wrote: drop the columns of an unnamed index, and
    rebuild a named ``RangeIndex`` (kept as metadata only) as a column."""
    raw = (table.schema.metadata or {}).get(b"pandas")
    if raw is None:
        return table
    try:
        index = json.loads(raw).get("index_columns", [])
    except (ValueError, AttributeError):
        return table
    unnamed = {c for c in index if isinstance(c, str) and c.startswith("__index_level_")}
    if unnamed:
        table = table.select([i for i, name in enumerate(table.column_names) if name not in unnamed])
    for level in index:
        if isinstance(level, dict) and level.get("kind") == "range" and level.get("name") is not None:
            import numpy as np

            values = np.arange(level["start"], level["stop"], level["step"], dtype=np.int64)
            if len(values) == table.num_rows:
                table = table.append_column(str(level["name"]), pyarrow().array(values))
    return table


def _from_numpy(pa: Any, array: Any) -> pa.Table:
    import numpy as np

    if array.dtype.names:
        if array.ndim != 1:
            raise InvalidInput(f"a structured numpy array must be 1-D, this one has shape {array.shape}")
        columns = {name: array[name] for name in array.dtype.names}
    elif array.ndim == 1:
        columns = {"0": array}
    elif array.ndim == 2:
        rows = np.ascontiguousarray(array.T)  # one contiguous row per column
        columns = {str(i): rows[i] for i in range(rows.shape[0])}
    else:
        raise InvalidInput(f"a numpy array must be 1-D or 2-D to be a table, this one has shape {array.shape}")
    return pa.table({name: pa.array(values, from_pandas=True) for name, values in columns.items()})


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The canonical form of an Arrow type (module docstring)."""
    pa = pyarrow()
    types = pa.types
    if types.is_dictionary(t):
        return canonical_type(t.value_type)
    if types.is_string(t) or types.is_large_string(t) or types.is_string_view(t):
        return pa.large_string()
    if types.is_binary(t) or types.is_large_binary(t) or types.is_binary_view(t):
        return pa.large_binary()
    if types.is_list(t) or types.is_large_list(t) or types.is_list_view(t) or types.is_large_list_view(t):
        return pa.large_list(pa.field("item", canonical_type(t.value_type)))
    if types.is_fixed_size_list(t):
        return pa.list_(pa.field("item", canonical_type(t.value_type)), t.list_size)
    if types.is_map(t):
        return pa.map_(canonical_type(t.key_type), canonical_type(t.item_type))
    if types.is_struct(t):
        return pa.struct([pa.field(t.field(i).name, canonical_type(t.field(i).type)) for i in range(t.num_fields)])
    if types.is_run_end_encoded(t):
        return canonical_type(t.value_type)
    if isinstance(t, pa.BaseExtensionType):
        return canonical_type(t.storage_type)
    return t


def canonical_column(column: pa.ChunkedArray | pa.Array, *, dictionary: bool = False) -> pa.Array:
    """One contiguous array of the column, in its canonical type; with ``dictionary``, a
    dictionary-encoded column stays encoded (one dictionary for all of it, its values in their
    canonical type) instead of being decoded."""
    pa = pyarrow()
    import pyarrow.compute as pc

    if dictionary and pa.types.is_dictionary(column.type):
        return _one_dictionary(pa, column)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if isinstance(column.type, pa.BaseExtensionType):
        chunks = [chunk.storage for chunk in chunks]
    if chunks and pa.types.is_run_end_encoded(chunks[0].type):
        chunks = [pc.run_end_decode(chunk) for chunk in chunks]
    start_type = chunks[0].type if chunks else column.type
    if isinstance(start_type, pa.BaseExtensionType):
        start_type = start_type.storage_type
    if pa.types.is_run_end_encoded(start_type):
        start_type = start_type.value_type
    if len(chunks) == 1:
        array = chunks[0]
    elif chunks:
        array = pa.concat_arrays(chunks)
    else:
        array = pa.array([], type=start_type)
    wanted = canonical_type(array.type)
    if array.type != wanted:
        try:
            array = array.cast(wanted)
        except pa.ArrowException as exc:
            raise InvalidInput(f"unsupported column type {array.type}: {exc}") from None
    return array


def _one_dictionary(pa: Any, column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A dictionary column as one ``DictionaryArray`` whose dictionary holds canonical values."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            column = column.chunk(0)
        elif column.num_chunks == 0:
            column = pa.array([], type=column.type)
        else:  # chunks read from a file may each carry their own dictionary
            column = pa.concat_arrays(column.unify_dictionaries().chunks)
    wanted = canonical_type(column.type.value_type)
    if column.dictionary.type != wanted:
        try:
            values = column.dictionary.cast(wanted)
        except pa.ArrowException as exc:
            raise InvalidInput(f"unsupported column type {column.type}: {exc}") from None
        column = pa.DictionaryArray.from_arrays(column.indices, values, ordered=column.type.ordered)
    return column
