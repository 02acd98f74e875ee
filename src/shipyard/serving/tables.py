"""The fast path for table inputs: each request's rows checked against the signature in plain
Python, and one DataFrame built per batch instead of one per request.

Building a one-row DataFrame costs more than predicting it with scikit-learn on an array, and a
model fitted on a DataFrame validates feature names and dtypes once per ``predict`` call whatever
the number of rows. So for a signature whose columns are all ``float64``, ``int64``, ``bool`` or
``string`` (a :class:`TableLayout`), a request's rows (``dataframe_split``, records, an object of
columns, Open Inference Protocol tensors) are checked value by value against the column types and
kept as a :class:`TableRows` block in the signature's column order: a 2-D numpy array when every
column has the same numeric type, else one list (or array) per column. The batcher joins the
blocks of concurrent requests with :meth:`TableRows.join` into one DataFrame, in the signature's
column order, and the model predicts it once.

The check accepts exactly what :func:`~shipyard.models.signature.enforce` accepts without a
conversion it would refuse, and builds the same dtypes: an integer in a ``float64`` column
becomes a float, any other mismatch (a string for a number, a float in an ``int64`` column, a
boolean for a number), a missing value, a missing or duplicated column, a ragged row or an
unfamiliar shape makes :meth:`TableLayout.rows_of` answer ``None``. The caller then takes the
general path (a DataFrame per request, through ``enforce``), which gives the precise error, or
the right answer for the rare input this path does not cover (nulls in optional columns, absent
optional columns), so both paths always agree on what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.models.signature import Schema

__all__ = ["Split", "TableLayout", "TableRows"]

_FLOAT, _INT, _BOOL, _STRING = "float64", "int64", "bool", "string"
_FAST_TYPES = frozenset({_FLOAT, _INT, _BOOL, _STRING})
_INT64_MIN, _INT64_END, _UINT64_END = -(2**63), 2**63, 2**64
# The value types a column of each kind takes whatever the value (ints need a range check).
_TAKEN_AS_IS = {_FLOAT: frozenset({float}), _BOOL: frozenset({bool})}


class Split:
    """A ``dataframe_split`` body, not yet a DataFrame: ``columns`` (or None) and ``data`` rows."""

    __slots__ = ("columns", "data")

    def __init__(self, columns: list[Any] | None, data: list[Any]) -> None:
        self.columns = columns
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def frame(self) -> Any:
        """The DataFrame pandas makes of it (the general path), or InvalidInput."""
        import pandas as pd

        from shipyard.errors import InvalidInput

        try:
            return pd.DataFrame(self.data, columns=self.columns)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f'"dataframe_split" does not form a table: {exc}') from None


def _fits(kind: str, value: Any) -> bool:
    """Whether ``enforce`` would take ``value`` (as parsed from JSON) in a column of ``kind`` as is."""
    t = type(value)
    if kind == _FLOAT:
        # pandas reads JSON integers as int64 or uint64, which cast safely to float64; larger ones do not.
        return t is float or (t is int and _INT64_MIN <= value < _UINT64_END)
    if kind == _INT:
        return t is int and _INT64_MIN <= value < _INT64_END
    if kind == _BOOL:
        return t is bool
    return t is str


class TableLayout:
    """The columns of a signature the fast path can check and build, in signature order."""

    __slots__ = ("_index", "_name_list", "dtype", "kinds", "names")

    def __init__(self, names: Sequence[str], kinds: Sequence[str]) -> None:
        import numpy as np

        self.names = tuple(names)
        self._name_list = list(names)
        self.kinds = tuple(kinds)
        self._index: Any = None
        # Every column of one numeric type: the whole block is one 2-D array of it.
        homogeneous = len(set(self.kinds)) == 1 and self.kinds[0] != _STRING
        self.dtype = np.dtype(self.kinds[0]) if homogeneous else None

    @classmethod
    def of(cls, schema: Schema | None) -> TableLayout | None:
        """The layout of a columns ``schema`` whose types the fast path covers, else None."""
        if schema is None or schema.kind != "columns":
            return None
        if not all(c.dtype in _FAST_TYPES and isinstance(c.name, str) for c in schema.columns):
            return None
        return cls([str(c.name) for c in schema.columns], [c.dtype for c in schema.columns])

    @property
    def index(self) -> Any:
        if self._index is None:
            import pandas as pd

            self._index = pd.Index(self.names)
        return self._index

    # -- checking one request --------------------------------------------------------------------------
    def rows_of(self, data: Any) -> TableRows | None:
        """``data`` as decoded from a request (a :class:`Split`, records, an object of column
        lists, or a dict of 1-D arrays from tensors) as a block, or None: take the general path."""
        try:
            if isinstance(data, Split):
                return self._from_split(data)
            if isinstance(data, list):
                return self._from_records(data) if data and type(data[0]) is dict else None
            if isinstance(data, Mapping):
                return self._from_columns(data)
        except (KeyError, TypeError, ValueError, OverflowError):
            return None
        return None

    def _from_split(self, split: Split) -> TableRows | None:
        columns, data = split.columns, split.data
        if columns is None or not data or len(set(columns)) != len(columns):
            return None
        width = len(columns)
        if columns == self._name_list:
            picked = data
            if any(type(row) is not list or len(row) != width for row in data):
                return None
        else:
            where = {name: i for i, name in enumerate(columns)}
            positions = [where[name] for name in self.names]  # KeyError: a column is missing
            if any(type(row) is not list or len(row) != width for row in data):
                return None
            picked = [[row[i] for i in positions] for row in data]
        return self._from_row_lists(picked)

    def _from_records(self, records: list[Any]) -> TableRows | None:
        names = self.names
        picked = []
        for record in records:
            if type(record) is not dict:
                return None
            picked.append([record[name] for name in names])  # KeyError: a column is missing
        return self._from_row_lists(picked)

    def _from_row_lists(self, rows: list[list[Any]]) -> TableRows | None:
        kinds = self.kinds
        if self.dtype is not None:
            kind = kinds[0]
            exact = _TAKEN_AS_IS.get(kind)
            for row in rows:
                # One set of the row's value types (C speed) settles the common case; the values of
                # a row holding anything else are checked one by one.
                if exact is None or not set(map(type, row)) <= exact:
                    for value in row:
                        if not _fits(kind, value):
                            return None
            import numpy as np

            return TableRows(self, len(rows), array=np.array(rows, dtype=self.dtype))
        for row in rows:
            for kind, value in zip(kinds, row, strict=True):
                if not _fits(kind, value):
                    return None
        return TableRows(self, len(rows), columns=[list(c) for c in zip(*rows, strict=True)])

    def _from_columns(self, columns: Mapping[Any, Any]) -> TableRows | None:
        import numpy as np

        picked = [columns[name] for name in self.names]  # KeyError: a column is missing
        lengths = {len(values) for values in picked}
        if len(lengths) != 1 or 0 in lengths:
            return None
        rows = lengths.pop()
        checked: list[Any] = []
        for kind, values in zip(self.kinds, picked, strict=True):
            if type(values) is list:
                if not all(_fits(kind, v) for v in values):
                    return None
                checked.append(values)
            elif isinstance(values, np.ndarray) and values.ndim == 1:
                array = self._array_column(kind, values)
                if array is None:
                    return None
                checked.append(array)
            else:
                return None
        if self.dtype is not None:
            return TableRows(self, rows, array=np.column_stack([np.asarray(c, dtype=self.dtype) for c in checked]))
        return TableRows(self, rows, columns=checked)

    @staticmethod
    def _array_column(kind: str, values: Any) -> Any:
        """A 1-D array (an Open Inference Protocol tensor) cast as ``enforce`` would, or None."""
        import numpy as np

        if kind == _STRING:
            return values if values.dtype.kind == "O" else None  # BYTES tensors hold str only
        return _safe_cast(values, np.dtype(kind))

    def rows_of_array(self, values: Any) -> TableRows | None:
        """One ``[n, number of columns]`` tensor, columns in signature order, as a block, or None."""
        if self.dtype is None or values.ndim != 2 or values.shape[1] != len(self.names) or not values.shape[0]:
            return None
        cast = _safe_cast(values, self.dtype)
        return None if cast is None else TableRows(self, int(values.shape[0]), array=cast)


def _safe_cast(values: Any, target: Any) -> Any:
    """``values`` as ``target`` when ``enforce``'s casting rules allow it (numpy's "safe", and no
    mixing of booleans and numbers), else None."""
    import numpy as np

    source = values.dtype
    if source.kind not in "biuf" or (source.kind == "b") != (target.kind == "b"):
        return None
    if not np.can_cast(source, target, casting="safe"):
        return None
    return values if source == target else values.astype(target)


class TableRows:
    """One request's checked rows, in signature column order (see the module docstring)."""

    __slots__ = ("array", "columns", "layout", "rows")

    def __init__(self, layout: TableLayout, rows: int, *, array: Any = None, columns: list[Any] | None = None) -> None:
        self.layout = layout
        self.rows = rows
        self.array = array
        self.columns = columns

    def __len__(self) -> int:
        return self.rows

    @property
    def batch_key(self) -> Any:
        return self.layout

    @staticmethod
    def join(parts: Sequence[TableRows]) -> Any:
        """One DataFrame of every part's rows, in order, with the signature's columns and types."""
        import numpy as np
        import pandas as pd

        layout = parts[0].layout
        if layout.dtype is not None:
            array = parts[0].array if len(parts) == 1 else np.concatenate([p.array for p in parts])
            return pd.DataFrame(array, columns=layout.index, copy=False)
        data = {}
        for i, (name, kind) in enumerate(zip(layout.names, layout.kinds, strict=True)):
            pieces = [p.columns[i] for p in parts]  # type: ignore[index]
            if all(type(piece) is list for piece in pieces):
                values: Any = pieces[0] if len(pieces) == 1 else list(chain.from_iterable(pieces))
            else:
                values = np.concatenate([np.asarray(piece, dtype=object if kind == _STRING else kind)
                                         for piece in pieces])
            # Strings as a list: pandas infers its string dtype, as it does for a dataframe_split.
            if kind == _STRING:
                data[name] = values if type(values) is list else values.tolist()
            else:
                data[name] = np.asarray(values, dtype=kind)
        return pd.DataFrame(data, columns=layout.index)

    def records(self) -> list[dict[str, Any]]:
        """The rows as ``{column: value}`` with JSON types (for the prediction log)."""
        names = self.layout.names
        if self.array is not None:
            return [dict(zip(names, row, strict=True)) for row in self.array.tolist()]
        assert self.columns is not None
        columns = [c.tolist() if hasattr(c, "tolist") else c for c in self.columns]
        floats = [i for i, kind in enumerate(self.layout.kinds) if kind == _FLOAT]
        for i in floats:  # an integer given for a float column is logged as the float the model saw
            if any(type(v) is int for v in columns[i]):
                columns[i] = [float(v) for v in columns[i]]
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
