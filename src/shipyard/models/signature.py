"""Model signatures: what a model takes and returns, inferred from examples and enforced at predict time.

A :class:`Signature` holds an input :class:`Schema` and an optional output one. A schema is either
``"columns"`` (a table of named, typed columns) or ``"tensor"`` (one array with a dtype and a shape,
``-1`` for any size). Types come from a small portable vocabulary, :data:`DTYPES`.

:func:`enforce` runs on every ``predict``, so it looks at dtypes column by column, never at rows, and
returns its input untouched when nothing needs casting. Its rules:

- Safe casts are applied: numpy's ``"safe"`` casting (int32 → int64, any int → float64, float32 →
  float64, int16 → float32...), except that ``bool`` is never a number and no number is a ``bool``.
- Anything else is refused with :class:`~shipyard.errors.InvalidInput` naming the column and both
  types: floats to ints (even integral ones), numeric strings to numbers, uint64 to int64...
- ``datetime`` takes any ``datetime64`` unit as it is; zone-aware values become naive UTC.
- ``string`` takes pandas string columns, categoricals of strings, and object columns of ``str``.
- ``object`` takes anything; inference uses it only for values that fit no other type.

numpy and pandas are imported when first needed, pyarrow and polars only when handed one of
their objects, so reading a signature from a manifest needs none of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.errors import InvalidInput

__all__ = ["DTYPES", "ColumnSpec", "Schema", "Signature", "enforce", "infer_schema", "infer_signature"]

DTYPES = ("bool", "int32", "int64", "float32", "float64", "string", "binary", "datetime", "object")
_NUMERIC = frozenset({"bool", "int32", "int64", "float32", "float64"})
_SUPPORTED = ("a pandas DataFrame or Series, a numpy array, a dict of columns, a list of dicts (records), "
              "a pyarrow Table or RecordBatch, or a polars DataFrame")
# What pandas.api.types.infer_dtype says about an object column's values -> our type.
_OBJECT_VALUES = {"string": "string", "bytes": "binary", "boolean": "bool", "integer": "int64",
                  "floating": "float64", "mixed-integer-float": "float64", "datetime64": "datetime",
                  "datetime": "datetime"}
# Our type -> the dtype that holds a column of nulls only.
_NULLS_AS = {"bool": "boolean", "int32": "Int32", "int64": "Int64", "float32": "float32", "float64": "float64",
             "string": "str", "datetime": "datetime64[ns]"}
# numpy kind + itemsize -> our type (int8/16 and uint8/16 widen to int32; uint64 has no home).
_BY_KIND = {("b", 1): "bool", ("i", 1): "int32", ("i", 2): "int32", ("i", 4): "int32", ("i", 8): "int64",
            ("u", 1): "int32", ("u", 2): "int32", ("u", 4): "int64", ("f", 2): "float32", ("f", 4): "float32",
            ("f", 8): "float64"}


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


@dataclass(frozen=True)
class ColumnSpec:
    """One column (or the one tensor) of a schema.

    ``optional`` columns may be missing from the input; inference marks a column optional when the
    example had missing values in it. ``shape`` is for tensors only, ``-1`` meaning any size.
    """

    name: str | None
    dtype: str
    shape: tuple[int, ...] | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise InvalidInput(f"column {self.name!r}: unknown dtype {self.dtype!r} (expected one of "
                               f"{', '.join(DTYPES)})")
        if self.shape is not None:
            shape = tuple(self.shape)
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape):
                raise InvalidInput(f"column {self.name!r}: invalid shape {self.shape!r} (dimensions are "
                                   "sizes >= 0, or -1 for any size)")
            object.__setattr__(self, "shape", shape)

    def __str__(self) -> str:
        text = self.dtype if self.shape is None else f"{self.dtype} {_shape_text(self.shape)}"
        if self.name is not None:
            text = f"{self.name}: {text}"
        return text + " (optional)" if self.optional else text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            out["shape"] = list(self.shape)
        if self.optional:
            out["optional"] = True
        return out


@dataclass(frozen=True)
class Schema:
    """Named typed columns (``kind="columns"``) or one typed, shaped array (``kind="tensor"``)."""

    columns: tuple[ColumnSpec, ...]
    kind: Literal["columns", "tensor"] = "columns"

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.kind == "tensor":
            if len(self.columns) != 1 or self.columns[0].shape is None or self.columns[0].optional:
                raise InvalidInput("a tensor schema has exactly one column, with a shape and not optional")
        elif self.kind == "columns":
            names = [c.name for c in self.columns]
            if not names or not all(isinstance(n, str) for n in names):
                raise InvalidInput("a columns schema needs at least one column, each with a name")
            if len(set(names)) != len(names):
                duplicates = sorted({n for n in names if n is not None and names.count(n) > 1})
                raise InvalidInput(f"duplicate column names in schema: {duplicates}")
            if any(c.shape is not None for c in self.columns):
                raise InvalidInput("column shapes are only supported in tensor schemas")
        else:
            raise InvalidInput(f"unknown schema kind {self.kind!r} (expected 'columns' or 'tensor')")

    @property
    def names(self) -> list[str | None]:
        return [c.name for c in self.columns]

    def __str__(self) -> str:
        if self.kind == "tensor":
            return f"tensor {self.columns[0]}"
        return "\n".join(str(c) for c in self.columns)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Schema:
        try:
            columns = tuple(
                ColumnSpec(c.get("name"), c["dtype"], None if c.get("shape") is None else tuple(c["shape"]),
                           bool(c.get("optional", False)))
                for c in raw["columns"])
            return cls(columns, raw["kind"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"not a valid schema: {raw!r} ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class Signature:
    """What a model takes (``inputs``, enforced at predict time) and returns (``outputs``, informative)."""

    inputs: Schema
    outputs: Schema | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, dicts, strings and ints: safe for JSON and ``yaml.safe_dump``."""
        return {"inputs": self.inputs.to_dict(),
                "outputs": None if self.outputs is None else self.outputs.to_dict()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Signature:
        if not isinstance(raw, Mapping) or "inputs" not in raw:
            raise InvalidInput(f"not a valid signature: {raw!r} (expected a mapping with 'inputs')")
        outputs = raw.get("outputs")
        return cls(Schema.from_dict(raw["inputs"]), None if outputs is None else Schema.from_dict(outputs))

    def __str__(self) -> str:
        def block(schema: Schema | None) -> str:
            return " none" if schema is None else "".join(f"\n  {line}" for line in str(schema).splitlines())

        return f"inputs:{block(self.inputs)}\noutputs:{block(self.outputs)}"


# -- inference ---------------------------------------------------------------------------------------

def infer_signature(input_example: Any, prediction: Any = None) -> Signature:
    """The signature of a model from an input example and, if given, its prediction on it."""
    return Signature(infer_schema(input_example), None if prediction is None else infer_schema(prediction))


def infer_schema(data: Any) -> Schema:
    """The schema of ``data``: columns for tables, records and dicts; a tensor for a plain numpy array.

    Raises :class:`InvalidInput` for an unsupported type, or a column whose type has no portable name.
    """
    frame = _as_frame(data)
    if frame is not None:
        if not frame.columns.is_unique:
            raise InvalidInput(f"duplicate column names: {list(frame.columns[frame.columns.duplicated()])}")
        return Schema(tuple(
            ColumnSpec(str(label), _inferred_type(frame[label], str(label)), optional=bool(frame[label].isna().any()))
            for label in frame.columns), "columns")
    array = _as_array(data)
    if array is None:
        raise InvalidInput(f"cannot infer a schema from {_type_name(data)}; supported: {_SUPPORTED}")
    if array.ndim == 0:
        raise InvalidInput("cannot infer a schema from a 0-dimensional array (a scalar): give a batch")
    return Schema((ColumnSpec(None, _inferred_type(array, None), (-1, *array.shape[1:])),), "tensor")


def _inferred_type(values: Any, name: str | None) -> str:
    found = _type_of(values)
    if found is None:
        what = "the array" if name is None else f"column {name!r}"
        raise InvalidInput(f"{what} has type {values.dtype}, which has no portable type "
                           f"(supported: {', '.join(DTYPES)}); cast it first")
    return found


def _type_of(values: Any) -> str | None:
    """Our type for a pandas Series/Index or numpy array, or None when none fits (uint64, timedelta...)."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _type_of(dtype.categories)
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        if isinstance(values, np.ndarray) and values.ndim > 1:
            values = values.ravel()
        return _OBJECT_VALUES.get(pd.api.types.infer_dtype(values, skipna=True), "object")
    np_dtype = _numpy_numeric(dtype)
    if np_dtype is not None:
        return _BY_KIND.get((np_dtype.kind, np_dtype.itemsize))
    kind = getattr(dtype, "kind", "")
    if kind == "M":
        return "datetime"
    if kind == "S" or "binary" in str(dtype):
        return "binary"
    if kind in ("U", "T") or pd.api.types.is_string_dtype(dtype):
        return "string"
    return None


def _numpy_numeric(dtype: Any) -> Any:
    """The numpy dtype of a bool/int/float dtype (numpy, pandas nullable or Arrow-backed), else None."""
    import numpy as np

    np_dtype = dtype if isinstance(dtype, np.dtype) else getattr(dtype, "numpy_dtype", None)
    if isinstance(np_dtype, np.dtype) and np_dtype.kind in "biuf":
        return np_dtype
    return None


# -- conversion to pandas / numpy --------------------------------------------------------------------

def _type_name(data: Any) -> str:
    cls = type(data)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _as_frame(data: Any) -> Any:
    """``data`` as a pandas DataFrame (the same object when it is one), or None when it is not tabular."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, np.ndarray):
        return pd.DataFrame(data) if data.dtype.names else None
    if isinstance(data, Mapping):
        return _frame_from_columns(data)
    if isinstance(data, list) and data and isinstance(data[0], Mapping):
        return _frame_from_records(data)
    package = type(data).__module__.partition(".")[0]
    if package == "pyarrow":
        return _frame_from_arrow(data)
    if package == "polars" and type(data).__name__ in ("DataFrame", "Series"):
        frame = data.to_frame() if type(data).__name__ == "Series" else data
        try:
            return _frame_from_arrow(frame.to_arrow())
        except ImportError as exc:
            raise InvalidInput(f"reading a polars DataFrame needs pyarrow ({exc})") from None
    return None


def _as_array(data: Any) -> Any:
    """``data`` as a plain numpy array (lists converted, tables not), or None."""
    import numpy as np

    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, list | tuple):
        if not data:
            raise InvalidInput("cannot use an empty list as input: give at least one row")
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"the nested lists do not form an array: {exc}") from None
    return None


def _column_from_list(values: list[Any]) -> Any:
    """A column from Python values: ints with None stay ints (nullable Int64), floats use NaN."""
    import numpy as np
    import pandas as pd

    array = pd.array(values)
    np_dtype = _numpy_numeric(array.dtype)
    if np_dtype is not None and not isinstance(array.dtype, np.dtype):
        if not array.isna().any():
            return array.to_numpy(np_dtype)
        if np_dtype.kind == "f":
            return array.to_numpy(np_dtype, na_value=np.nan)
    return array


def _frame_from_records(records: list[Any]) -> Any:
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInput(f"record {i} is a {_type_name(record)}, not a dict: records must all be dicts")
    names = dict.fromkeys(name for record in records for name in record)
    return _frame_from_columns({name: [record.get(name) for record in records] for name in names})


def _frame_from_columns(columns: Mapping[Any, Any]) -> Any:
    import numpy as np
    import pandas as pd

    if columns and all(pd.api.types.is_scalar(v) for v in columns.values()):
        return _frame_from_records([columns])  # one row given as {"age": 3, ...}
    arrays = {}
    for name, values in columns.items():
        if isinstance(values, pd.Series | pd.Index):
            arrays[name] = values.array
        elif isinstance(values, np.ndarray) and values.ndim == 1:
            arrays[name] = values
        elif isinstance(values, list | tuple):
            arrays[name] = _column_from_list(list(values))
        else:
            shape = getattr(values, "shape", None)
            got = f"an array of shape {shape}" if shape is not None else _type_name(values)
            raise InvalidInput(f"column {name!r}: expected a list or one-dimensional array, got {got}")
    try:
        return pd.DataFrame(arrays, copy=False)
    except ValueError as exc:
        raise InvalidInput(f"columns differ in length: {exc}") from None


def _frame_from_arrow(data: Any) -> Any:
    """An Arrow Table/RecordBatch as pandas; integer and bool columns with nulls become nullable dtypes."""
    import pandas as pd
    import pyarrow as pa

    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        return None
    frame = data.to_pandas()
    nullable = {pa.bool_(): pd.BooleanDtype(), pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(),
                pa.uint16(): pd.UInt16Dtype(), pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}
    for i, field in enumerate(data.schema):
        if field.type in nullable and data.column(i).null_count:
            frame.isetitem(i, data.column(i).to_pandas(types_mapper=nullable.get))
    return frame


# -- enforcement -------------------------------------------------------------------------------------

def enforce(schema: Schema, data: Any) -> Any:
    """``data`` made to fit ``schema``, ready for the model, or :class:`InvalidInput` naming what is wrong.

    A columns schema gives a pandas DataFrame with the schema's columns in schema order (extras
    dropped, optional ones skipped when absent), safe casts applied; a DataFrame that already fits
    is returned as is. A tensor schema gives a numpy array of the schema's dtype whose shape matches.
    """
    if schema.kind == "tensor":
        return _enforce_tensor(schema.columns[0], data)
    frame = _as_frame(data)
    if frame is None:
        raise InvalidInput(f"expected a table with columns {schema.names}, got {_type_name(data)}; "
                           f"supported: {_SUPPORTED}")
    if not frame.columns.is_unique:
        raise InvalidInput(f"duplicate column names: {list(frame.columns[frame.columns.duplicated()])}")
    labels = {label if isinstance(label, str) else str(label): label for label in frame.columns}
    missing = [c for c in schema.columns if c.name not in labels and not c.optional]
    if missing:
        listed = ", ".join(f"{c.name!r} (expected {c.dtype})" for c in missing)
        raise InvalidInput(f"missing column{'s' if len(missing) > 1 else ''} {listed}",
                           missing=[c.name for c in missing])
    present, casts = [], {}
    for spec in schema.columns:
        if spec.name not in labels:
            continue
        label = labels[spec.name]
        series = frame[label]
        conformed = _conform(spec, series)
        if conformed is not series:
            casts[label] = conformed
        present.append(label)
    if not casts and list(frame.columns) == present:
        return frame
    out = frame[present]  # lazy under copy-on-write: no data is copied here
    for label, values in casts.items():
        out[label] = values
    return out


def _mismatch(what: str, expected: str, given: str) -> InvalidInput:
    return InvalidInput(f"{what}: expected {expected}, got {given}", expected=expected, given=given)


def _safe(source: Any, target: Any) -> bool:
    import numpy as np

    return (source.kind == "b") == (target.kind == "b") and bool(np.can_cast(source, target, casting="safe"))


def _conform(spec: ColumnSpec, series: Any) -> Any:
    """``series`` (the same object when it fits) cast to ``spec.dtype``, or a mismatch error."""
    import numpy as np
    import pandas as pd

    expected = spec.dtype
    if expected == "object":
        return series
    dtype = series.dtype
    source = _numpy_numeric(dtype)
    if expected in _NUMERIC and source is not None:
        target = np.dtype(expected)
        if source == target:
            return series
        if not _safe(source, target):
            raise _column_mismatch(spec, str(source))
        if target.kind in "iu" and not isinstance(dtype, np.dtype):  # nullable ints stay nullable
            return series.astype(target.name.capitalize())
        return series.astype(target)
    given = _type_of(series)
    if given == "object" and bool(series.isna().all()):  # only nulls, e.g. records with None: typed nulls
        return series.astype(_NULLS_AS.get(expected, object))
    if expected in _NUMERIC and isinstance(dtype, np.dtype) and dtype.kind == "O" and given in _NUMERIC:
        if not _safe(np.dtype(given), np.dtype(expected)):
            raise _column_mismatch(spec, given)
        has_na = bool(series.isna().any())
        if has_na and expected == "bool":
            return series.astype("boolean")
        return series.astype(expected.capitalize() if has_na and expected != "float32" and expected != "float64"
                             else expected)
    if given != expected:
        raise _column_mismatch(spec, given or str(dtype))
    if isinstance(dtype, pd.DatetimeTZDtype):
        return series.dt.tz_convert("UTC").dt.tz_localize(None)
    if expected == "datetime" and getattr(dtype, "kind", "") != "M":
        try:
            return pd.to_datetime(series, utc=True).dt.tz_localize(None)
        except (ValueError, TypeError) as exc:
            raise _column_mismatch(spec, f"object values that are not datetimes ({exc})") from None
    return series


def _column_mismatch(spec: ColumnSpec, given: str) -> InvalidInput:
    error = _mismatch(f"column {spec.name!r}", spec.dtype, given)
    error.details["column"] = spec.name
    return error


def _enforce_tensor(spec: ColumnSpec, data: Any) -> Any:
    import numpy as np
    import pandas as pd

    array = data.to_numpy() if isinstance(data, pd.DataFrame | pd.Series) else _as_array(data)
    if array is None:
        raise InvalidInput(f"expected a numpy array, got {_type_name(data)}")
    if array.dtype.names:
        raise InvalidInput(f"expected a plain array of {spec.dtype}, got a structured array with fields "
                           f"{list(array.dtype.names)}")
    expected_shape = spec.shape or ()
    if len(array.shape) != len(expected_shape) or any(
            want not in (-1, got) for want, got in zip(expected_shape, array.shape, strict=True)):
        raise InvalidInput(f"input shape {_shape_text(array.shape)} does not match expected "
                           f"{_shape_text(expected_shape)}", expected=list(expected_shape), given=list(array.shape))
    expected = spec.dtype
    if expected == "object":
        return array
    if expected in _NUMERIC and array.dtype.kind in "biuf":
        target = np.dtype(expected)
        if array.dtype == target:
            return array
        if _safe(array.dtype, target):
            return array.astype(target)
        raise _mismatch("input array", expected, str(array.dtype))
    given = _type_of(array)
    if expected in _NUMERIC and given in _NUMERIC and _safe(np.dtype(given), np.dtype(expected)):
        try:  # an object array of Python numbers
            return array.astype(expected)
        except (TypeError, ValueError):
            raise _mismatch("input array", expected, f"{given} with missing values") from None
    if given != expected:
        raise _mismatch("input array", expected, given or str(array.dtype))
    return array
