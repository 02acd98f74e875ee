"""The data :func:`shipyard.monitoring.drift` compares, read once into Arrow and handed out per column.

Accepted: anything :func:`shipyard.data.to_arrow` takes (pandas, polars, pyarrow, numpy arrays
including structured ones), a mapping of column name to 1-D array-like, or a path to a
``.parquet``/``.pq``, ``.csv``, ``.feather``/``.arrow``/``.ipc`` file (only the wanted columns are
read). A column Arrow cannot represent (e.g. an object column mixing numbers and strings) does not
fail the whole comparison: it is reported, with the reason, and the other columns are compared.

Columns are handed out in the two shapes the statistics need, without a per-row Python loop:

- numerical: the finite values as float64, sorted ascending (null, NaN and +-inf count as missing);
- categorical: the distinct values and their counts (Arrow's hash-based ``value_counts``, on the
  dictionary codes when the column is dictionary-encoded).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from shipyard.data.tables import SUPPORTED, canonical_type, pyarrow, to_arrow
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["Categories", "ColumnKind", "TableSource", "column_kind", "load", "run_counts"]

ColumnKind = Literal["numerical", "categorical", "datetime", "other"]
FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".feather", ".arrow", ".ipc")


@dataclass(frozen=True)
class Categories:
    """The distinct present values of a column (nulls and NaN excluded) and how often each occurs."""

    values: pa.Array  # in the column's canonical Arrow type
    counts: np.ndarray  # int64, aligned with ``values``
    missing: int


def column_kind(t: pa.DataType) -> ColumnKind:
    """How a column of Arrow type ``t`` is compared: numbers by their distribution, strings, booleans
    and dictionary-encoded columns (pandas/polars categoricals) by their category frequencies."""
    pa = pyarrow()
    types = pa.types
    if types.is_dictionary(t):
        return "categorical"
    t = canonical_type(t)
    if types.is_integer(t) or types.is_floating(t) or types.is_decimal(t):
        return "numerical"
    if types.is_boolean(t) or types.is_large_string(t):
        return "categorical"
    if types.is_timestamp(t) or types.is_date(t) or types.is_time(t) or types.is_duration(t):
        return "datetime"
    return "other"


class TableSource:
    """One side of a comparison read into an Arrow table, plus the columns that could not be read."""

    def __init__(self, table: pa.Table, invalid: Mapping[str, str] | None = None, *, label: str = "") -> None:
        names = table.column_names
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise InvalidInput(f"the {label or 'data'} has duplicated column names {duplicated}: rename them")
        self.table = table
        self.invalid: dict[str, str] = dict(invalid or {})
        self.rows = table.num_rows
        self.label = label

    @property
    def names(self) -> list[str]:
        """Every column in order, the unreadable ones included."""
        return [*self.table.column_names, *(n for n in self.invalid if n not in self.table.column_names)]

    def type_name(self, name: str) -> str:
        return str(canonical_type(self.table.schema.field(name).type)) if name in self.table.column_names else "?"

    def kind(self, name: str) -> ColumnKind:
        return column_kind(self.table.schema.field(name).type)

    def sorted_values(self, name: str) -> np.ndarray:
        """The column's finite values as float64, sorted ascending (null, NaN and +-inf left out)."""
        import numpy as np
        import pyarrow.compute as pc

        pa = pyarrow()
        column = self.table.column(name)
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        values = pc.cast(column, pa.float64()).to_numpy()  # nulls become NaN
        if values.flags.writeable and values.flags.owndata:
            values.sort()
        else:
            values = np.sort(values)
        # NaN sorts last, after +inf
        finite: np.ndarray = values[np.searchsorted(values, -np.inf, "right"):np.searchsorted(values, np.inf, "left")]
        return finite

    def categories(self, name: str) -> Categories:
        import pyarrow.compute as pc

        pa = pyarrow()
        column = self.table.column(name)
        counted = pc.value_counts(column)
        values, counts = counted.field("values"), counted.field("counts").to_numpy(zero_copy_only=False)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        present = values.is_valid().to_numpy(zero_copy_only=False)
        missing = int(counts[~present].sum())
        if pa.types.is_floating(values.type):  # NaN is missing, as everywhere else
            nan = pc.is_nan(values).fill_null(False).to_numpy(zero_copy_only=False)
            missing += int(counts[nan].sum())
            present &= ~nan
        values = values.filter(pa.array(present))
        return Categories(values.cast(canonical_type(values.type)), counts[present].astype("int64"), missing)


def run_counts(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted 1-D array and how often each occurs (one pass, no hashing)."""
    import numpy as np

    if len(sorted_values) == 0:
        return sorted_values[:0], np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], sorted_values[1:] != sorted_values[:-1])))
    counts = np.diff(np.append(starts, len(sorted_values)))
    return sorted_values[starts], counts.astype(np.int64)


# -- loading ---------------------------------------------------------------------------------------


def load(data: Any, columns: Sequence[str] | None, *, label: str) -> TableSource:
    """``data`` as a :class:`TableSource`, keeping only ``columns`` (all when ``None``) that exist."""
    pa = pyarrow()
    wanted = None if columns is None else list(dict.fromkeys(columns))
    if isinstance(data, str | os.PathLike):
        return TableSource(_read_file(pa, Path(os.fspath(data)).expanduser(), wanted, label), label=label)
    if isinstance(data, Mapping):
        return _from_columns(pa, {str(k): v for k, v in data.items()}, wanted, label)
    if _is_pandas_frame(data):
        frame = data if wanted is None else data.loc[:, [c for c in data.columns if str(c) in wanted]]
        try:
            table = to_arrow(frame)
        except InvalidInput:  # some column mixes types: read the others, report that one
            return _from_columns(pa, {str(c): frame[c] for c in frame.columns}, wanted, label)
        return TableSource(_rename(pa, table), label=label)
    try:
        table = to_arrow(data)
    except InvalidInput as exc:
        raise InvalidInput(f"cannot read the {label} data: {exc}; pass {SUPPORTED}, a mapping of column "
                           "names to arrays, or a path to a Parquet or CSV file") from None
    return TableSource(_select(table, wanted), label=label)


def _is_pandas_frame(obj: Any) -> bool:
    import sys

    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(obj, pandas.DataFrame)


def _rename(pa: Any, table: pa.Table) -> pa.Table:
    names = [str(n) for n in table.column_names]
    return table if names == table.column_names else table.rename_columns(names)


def _select(table: pa.Table, wanted: list[str] | None) -> pa.Table:
    return table if wanted is None else table.select([n for n in table.column_names if n in wanted])


def _from_columns(pa: Any, columns: Mapping[str, Any], wanted: list[str] | None, label: str) -> TableSource:
    import numpy as np

    arrays: dict[str, Any] = {}
    invalid: dict[str, str] = {}
    for name, values in columns.items():
        if wanted is not None and name not in wanted:
            continue
        try:
            array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(
                values if hasattr(values, "dtype") else np.asarray(values), from_pandas=True)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            invalid[name] = _mixed_reason(values, exc)
            continue
        if getattr(array, "ndim", 1) != 1 and not isinstance(array, pa.Array | pa.ChunkedArray):
            raise InvalidInput(f"column {name!r} of the {label} data is not 1-D")
        arrays[name] = array
    lengths = {len(a) for a in arrays.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"the columns of the {label} data have different lengths {sorted(lengths)}")
    return TableSource(pa.table(arrays) if arrays else pa.table({}), invalid, label=label)


def _mixed_reason(values: Any, exc: Exception) -> str:
    import sys

    pandas = sys.modules.get("pandas")
    inferred = ""
    if pandas is not None:
        try:
            inferred = f" (pandas infers {pandas.api.types.infer_dtype(values, skipna=True)!r})"
        except (TypeError, ValueError):
            pass
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return (f"mixed types in one column{inferred}: {first}; cast the column to one type first, "
            "e.g. df[col].astype(str) or pd.to_numeric(df[col], errors='coerce')")


def _read_file(pa: Any, path: Path, wanted: list[str] | None, label: str) -> pa.Table:
    if not path.exists():
        raise NotFound(f"no such file: {str(path)!r} (the {label} data)", path=str(path))
    suffix = path.suffix.lower()
    if path.is_dir() or suffix not in FILE_SUFFIXES:
        raise InvalidInput(f"cannot read {str(path)!r} as a table: expected a file ending in "
                           f"{', '.join(FILE_SUFFIXES)}")
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            source = pq.ParquetFile(path)
            present = source.schema_arrow.names
            table = source.read(columns=None if wanted is None else [c for c in present if c in wanted])
        elif suffix == ".csv":
            import pyarrow.csv as csv

            header = csv.open_csv(path).schema.names if wanted is not None else None
            include = None if header is None else [c for c in header if c in wanted]  # type: ignore[operator]
            # an empty field is missing, as pandas reads it
            table = csv.read_csv(path, convert_options=csv.ConvertOptions(
                strings_can_be_null=True, include_columns=include))
        else:
            import pyarrow.feather as feather

            table = _select(feather.read_table(path), wanted)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {str(path)!r} as {suffix.lstrip('.')}: {exc}", path=str(path)) from None
    return to_arrow(table)  # drops the columns pyarrow stored for an unnamed pandas index

