"""One window of a deployment's prediction log, as the tables drift and performance need.

The log keeps each row's inputs, outputs and feedback as JSON text
(:mod:`shipyard.predictions.format`). A window reads only the hour files that overlap it and
only the columns it needs (pyarrow, column-pruned), then parses each JSON column in one
vectorised call (``pyarrow.json``): inputs become one column per field, outputs one column
``output`` (a number, string or boolean answer) or ``output.<field>`` per field of an object
answer, and feedback a column ``label``. Shadows' answers are left out: a window is what callers
were answered. A column whose values mix types in one window (a number here, a string there)
cannot be read by Arrow as one column: the rows are parsed one by one then, and the column is
reported as invalid by the drift comparison instead of failing the window.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.artifacts.protocol import ArtifactStore

__all__ = ["ANSWER_ROLES", "Window", "parse_json_column", "read_window"]

ANSWER_ROLES = ("primary", "canary")


@dataclass(frozen=True)
class Window:
    """``[start, end)`` (ms) of one deployment: ``rows`` answered predictions. ``inputs`` and
    ``outputs`` are tables with one row per prediction; ``labels`` the feedback (null where none
    came), aligned with ``outputs``; ``invalid`` names input columns that could not be read, with
    the reason."""

    start: int
    end: int
    rows: int
    inputs: Any  # pa.Table, or a mapping of column to values when some column could not be read
    outputs: pa.Table
    labels: pa.Array
    invalid: dict[str, str]

    @property
    def labelled(self) -> int:
        return len(self.labels) - int(self.labels.null_count)


def read_window(artifacts: ArtifactStore, deployment: str, start: int, end: int) -> Window:
    """The answered predictions of ``deployment`` in ``[start, end)``, with their feedback."""
    import pyarrow as pa

    from shipyard.predictions.reader import prediction_table

    table = prediction_table(artifacts, deployment, start, end, roles=ANSWER_ROLES, columns=["inputs", "outputs"])
    rows = table.num_rows
    if rows == 0:
        return Window(start, end, 0, pa.table({}), pa.table({}), pa.array([], pa.null()), {})
    inputs, invalid = parse_json_column(table.column("inputs"), "inputs")
    outputs, _ = parse_json_column(table.column("outputs"), "output", wrap=True)
    labels, _ = parse_json_column(table.column("feedback"), "label", wrap=True)
    label = labels.column("label") if "label" in labels.column_names else pa.nulls(rows)
    if isinstance(label, pa.ChunkedArray):
        label = label.combine_chunks()
    return Window(start, end, rows, inputs, outputs, label, invalid)


def parse_json_column(column: pa.ChunkedArray, name: str, *, wrap: bool = False) -> tuple[Any, dict[str, str]]:
    """The JSON text values of ``column`` as a table. Objects become one column per field; with
    ``wrap`` every value (objects included) becomes column ``name``, an object's fields
    ``name.<field>``. Nulls stay null rows. Returns (table, unreadable columns with the reason);
    when Arrow cannot give one type to a column, the table is a mapping of column to Python
    values that :func:`shipyard.monitoring.drift` reads column by column, reporting the bad one."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pa_json

    texts = pc.fill_null(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column, "null")
    if wrap:
        texts = pc.binary_join_element_wise(f'{{"{name}":', texts, "}", "")
    else:  # a row that is not an object (null, a list) is a row of nulls
        texts = pc.if_else(pc.starts_with(texts, "{"), texts, "{}")
    data = "\n".join(texts.to_pylist()).encode()
    try:
        options = pa_json.ReadOptions(block_size=max(len(data), 1 << 20))  # one block: one row per line
        table = pa_json.read_json(io.BytesIO(data), read_options=options)
    except pa.ArrowInvalid:
        return _rows_one_by_one(texts.to_pylist(), name), {}
    if table.num_rows != len(texts):
        raise InvalidInput(f"the logged {name} could not be parsed one row per prediction")
    return table.flatten() if wrap else _flatten_top(table), {}


def _flatten_top(table: pa.Table) -> pa.Table:
    """Input objects with nested objects: their fields as ``parent.child`` columns."""
    import pyarrow as pa

    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table


def _rows_one_by_one(texts: list[str], name: str) -> dict[str, Any]:
    """Column -> values, parsed row by row: the way in for a window whose columns mix types. The
    values are object arrays, so that a mixed column stays mixed (and is reported) rather than
    being turned into text."""
    import numpy as np

    rows = [json.loads(t) for t in texts]
    columns: dict[str, list[Any]] = {}
    for i, row in enumerate(rows):
        items = row.items() if isinstance(row, dict) else ()
        for key, value in _flat_items(items):
            columns.setdefault(key, [None] * len(rows))[i] = value
    out = {}
    for key, values in columns.items():
        array = np.empty(len(values), dtype=object)
        array[:] = values
        out[key] = array
    return out


def _flat_items(items: Any, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for key, value in items:
        if isinstance(value, dict):
            out += _flat_items(value.items(), f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
