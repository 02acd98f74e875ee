"""``digest_table``: one digest for the same tabular data, whatever holds it.

The data is turned into an Arrow table with canonical types (:mod:`shipyard.data.tables`: pandas
index dropped unless named, categorical = its values, one string type, NaN = null), then hashed
from the Arrow buffers, normalised so that nothing but the values counts (not the chunking, the
slicing, the bytes under null slots, the schema metadata, the string offsets' width).

The recipe (``shipyard-table-v1``)::

    digest  = SHA-256( b"shipyard-table-v1\\n" + header + b"\\n" + column_1 + ... + column_k )
    header  = compact JSON {"columns": [[name, type], ...], "rows": n}  (keys sorted, UTF-8,
              type = Arrow's name of the canonical type, e.g. "double", "large_string",
              "timestamp[us, tz=UTC]", "large_list<item: int64>")
    column_i = the 32-byte SHA-256 of the column's encoding, where each part below is framed
              as its length (8 bytes, little-endian) followed by its bytes:

    encode(array) = validity, then by type:
      validity        empty when nothing is missing, else the bitmap (1 = present, least
                      significant bit first, trailing bits 0); NaN counts as missing in floats
      null            nothing more
      boolean         the values as a bitmap like the validity (missing = 0)
      fixed width     (integers, floats, decimals, dates, times, timestamps, durations,
                      fixed-size binary) the values' little-endian bytes, missing ones zeroed
      strings/binary  the offsets: n + 1 int64, starting at 0, each value ending where the
                      next starts (a missing value is empty); then the values' bytes
      lists, maps     the offsets as for strings (counted in list items), then encode(the items
                      of the present lists, in order)
      structs         encode(field) for each field in order, with the struct's missing rows
                      missing in the fields too

The columns are hashed in parallel (one thread per column, up to ``os.cpu_count()``), which is
why each column has its own SHA-256 and the digest hashes those. Caveats: the same instants in
different timestamp units are different types, and so are ``int32`` and ``int64``; a categorical
column equals a string column with the same values (the categories themselves are not data);
``-0.0`` and ``0.0`` differ; union types are refused. Arrow buffers are native-endian: the
recipe assumes a little-endian machine (every mainstream one).
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from shipyard.data.tables import canonical_column, canonical_type, pyarrow, to_arrow
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = ["FORMAT", "column_digest", "combine", "digest_table", "worker_count"]

FORMAT = "shipyard-table-v1"
_PARALLEL_MIN_CELLS = 200_000  # below this, threads cost more than they save
_CHUNK_ROWS = 1 << 17  # rows zeroed at a time under missing slots (1 MiB of float64)


def worker_count(workers: int | None) -> int:
    """``workers``, or ``os.cpu_count()`` for ``None``; ``InvalidInput`` unless a positive integer."""
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive integer or None, got {workers!r}")
    return workers


def digest_table(obj: Any, *, workers: int | None = None) -> str:
    """``"sha256:<hex>"`` of a table's data (recipe in the module docstring).

    ``obj``: a pandas or polars DataFrame or Series, a pyarrow Table or RecordBatch, or a numpy
    array. ``InvalidInput`` for anything else, for columns Arrow cannot represent, and for union
    columns. Columns are hashed on up to ``workers`` threads (default ``os.cpu_count()``).
    """
    pa = pyarrow()
    table = to_arrow(obj)
    threads = min(worker_count(workers), table.num_columns)
    columns = list(table.columns)
    try:
        if threads <= 1 or table.num_rows * table.num_columns < _PARALLEL_MIN_CELLS:
            parts = [column_digest(c) for c in columns]
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shipyard-digest") as pool:
                parts = list(pool.map(column_digest, columns))
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot digest the table: {exc}") from None
    return combine(table, parts)


def combine(table: pa.Table, parts: list[bytes]) -> str:
    """The table's digest from the :func:`column_digest` of each of its columns, in order."""
    types = [canonical_type(field.type) for field in table.schema]
    header = json.dumps({"columns": [[name, str(t)] for name, t in zip(table.column_names, types, strict=True)],
                         "rows": table.num_rows}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{FORMAT}\n{header}\n".encode())
    for part in parts:
        digest.update(part)
    return f"sha256:{digest.hexdigest()}"


def column_digest(column: pa.ChunkedArray | pa.Array, canonical: pa.Array | None = None) -> bytes:
    """The 32-byte SHA-256 of one column's encoding; ``canonical``: its :func:`canonical_column`,
    when the caller already has it."""
    digest = hashlib.sha256()
    _encode(digest, canonical_column(column) if canonical is None else canonical)
    return digest.digest()


def _frame(digest: Any, data: Any) -> None:
    view = memoryview(data).cast("B")
    digest.update(len(view).to_bytes(8, "little"))
    digest.update(view)


def _present(array: pa.Array) -> np.ndarray | None:
    """Boolean mask of present values (NaN counts as missing in floats), or None if all present."""
    import numpy as np
    import pyarrow.compute as pc

    pa = pyarrow()
    valid = pc.is_valid(array) if array.null_count else None
    if pa.types.is_floating(array.type):
        nan = pc.is_nan(array)
        if pc.any(nan).as_py():
            not_nan = pc.invert(pc.fill_null(nan, False))
            valid = not_nan if valid is None else pc.and_(valid, not_nan)
    if valid is None:
        return None
    mask = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=bool)
    return None if mask.all() else mask


def _bits(mask: np.ndarray) -> bytes:
    import numpy as np

    return np.packbits(mask, bitorder="little").tobytes()


def _offsets(array: pa.Array) -> np.ndarray:
    """The n + 1 int64 offsets of a large_string/large_binary array, rebased to start at 0
    (zero-copy unless the array is a slice)."""
    import numpy as np

    offsets = np.frombuffer(array.buffers()[1], dtype="<i8", count=len(array) + 1, offset=array.offset * 8)
    return offsets - offsets[0] if offsets[0] else offsets


def _encode(digest: Any, array: pa.Array) -> None:
    import numpy as np
    import pyarrow.compute as pc

    pa = pyarrow()
    t = array.type
    types = pa.types
    present = _present(array)
    _frame(digest, _bits(present) if present is not None else b"")
    n = len(array)
    if types.is_null(t):
        return
    if types.is_boolean(t):
        values = pc.fill_null(array, False).to_numpy(zero_copy_only=False)
        if present is not None:
            values = values & present
        _frame(digest, _bits(np.asarray(values, dtype=bool)))
    elif types.is_large_string(t) or types.is_large_binary(t):
        if present is not None:  # values under missing slots are not data
            array = pc.if_else(pa.array(present), array, pa.scalar(b"" if types.is_large_binary(t) else "", t))
        offsets = _offsets(array)
        _frame(digest, offsets)
        start = int(np.frombuffer(array.buffers()[1], dtype="<i8", count=1, offset=array.offset * 8)[0])
        data = array.buffers()[2]
        _frame(digest, memoryview(data)[start:start + int(offsets[-1])] if data is not None else b"")
    elif types.is_large_list(t) or types.is_fixed_size_list(t) or types.is_map(t):
        if types.is_map(t):  # the same layout as a list of (key, value) structs
            array = array.view(pa.list_(pa.field("entries", pa.struct([t.key_field, t.item_field]), nullable=False)))
        lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy(zero_copy_only=False)
        _frame(digest, np.concatenate([[0], np.cumsum(lengths, dtype="<i8")]).astype("<i8", copy=False))
        _encode(digest, array.flatten())  # the values of present lists only
    elif types.is_struct(t):
        for child in array.flatten():  # the struct's missing rows are missing in each child
            _encode(digest, child)
    else:
        try:
            width = t.bit_width // 8
        except ValueError:
            raise InvalidInput(f"cannot digest a column of type {t}") from None
        raw = np.frombuffer(array.buffers()[1], dtype=np.uint8, count=n * width, offset=array.offset * width) \
            if n else np.zeros(0, dtype=np.uint8)
        if present is None:
            _frame(digest, raw)
            return
        # zero the values under missing slots, a chunk at a time (one small reused buffer, not a copy)
        digest.update((n * width).to_bytes(8, "little"))
        rows = raw.reshape(n, width)
        for start in range(0, n, _CHUNK_ROWS):
            chunk = rows[start:start + _CHUNK_ROWS].copy()
            chunk[~present[start:start + _CHUNK_ROWS]] = 0
            digest.update(memoryview(chunk).cast("B"))
