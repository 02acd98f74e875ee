"""``digest_table``: one digest for the same tabular data, whatever holds it.

The data is turned into an Arrow table with canonical types (:mod:`shipyard.data.tables`: pandas
index dropped unless named, one string type, NaN = null), then hashed from the Arrow buffers,
normalised so that nothing but the values counts (not the chunking, the slicing, the bytes under
null slots, the schema metadata, the string offsets' width).

A digest names the recipe that made it, and a recipe never changes once released: a digest
recorded with one recipe is checked with that recipe (:func:`verify_table`), whatever the
current one is. :func:`recipe_of` reads it from the digest.

==========  =========================  ================================================
recipe      digest                     made by
==========  =========================  ================================================
1           ``sha256:<64 hex>``        Shipyard before 2026-12 (``shipyard-table-v1``)
2           ``t2:sha256:<64 hex>``     ``digest_table`` today (``shipyard-table-v2``)
==========  =========================  ================================================

Recipe 1 (``shipyard-table-v1``)::

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

    A dictionary-encoded column (pandas or polars categorical) is hashed as its decoded values:
    it equals a plain column holding the same values.

Recipe 2 (``shipyard-table-v2``) is recipe 1 with the preamble ``shipyard-table-v2`` and one
change: a dictionary-encoded column (at the top level) is a type of its own, hashed from its
codes rather than from every decoded value (the benchmark's 5,000,000-row categorical is 5 MB
of codes against 70 MB of decoded strings and their offsets)::

    header type     "dictionary<T>", or "dictionary<T, ordered>" for an ordered one, where T
                    is the canonical type of the values (e.g. "dictionary<large_string>")
    encode(column)  = validity (as above), then encode(categories), then the codes: one
                      unsigned little-endian integer per row, the position of its value among
                      the categories (missing = 0), 1 byte wide for up to 256 categories, 2 for
                      up to 65,536, else 4
    categories      the dictionary's values: sorted (Arrow's order) when the dictionary is not
                    ordered, as they are when it is; a dictionary holding a missing value or
                    the same value twice is first rebuilt from the column's values (in the
                    order they first appear)

So the categories are part of the type, as in pandas (``CategoricalDtype``): a categorical
column differs from a string column with the same values, and from a categorical with another
set of categories (an unused one included); the order of the categories counts only when they
are ordered. A Parquet round trip keeps them. Everything else hashes exactly as in recipe 1.

The columns are hashed in parallel (one thread per column, up to ``os.cpu_count()``), which is
why each column has its own SHA-256 and the digest hashes those. Caveats (both recipes): the
same instants in different timestamp units are different types, and so are ``int32`` and
``int64``; ``-0.0`` and ``0.0`` differ; union types are refused. Arrow buffers are
native-endian: the recipes assume a little-endian machine (every mainstream one).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from shipyard.data.tables import canonical_column, canonical_type, pyarrow, to_arrow
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa
    from pyarrow import ChunkedArray

__all__ = ["FORMAT", "FORMATS", "RECIPE", "column_digest", "combine", "digest_table", "nan_as_null", "prepare",
           "recipe_of", "verify_table", "worker_count"]

RECIPE = 2  # what digest_table uses unless told otherwise
FORMATS = {1: "shipyard-table-v1", 2: "shipyard-table-v2"}  # each recipe's preamble
FORMAT = FORMATS[RECIPE]
_TAGS = {1: "sha256:", 2: "t2:sha256:"}  # what a digest of each recipe starts with
_DIGEST = re.compile(r"(?:t([2-9]|[1-9][0-9]+):)?sha256:[0-9a-f]{64}")  # recipe 1 has no tag: "t1:" is no digest
_PARALLEL_MIN_CELLS = 200_000  # below this, threads cost more than they save


def worker_count(workers: int | None) -> int:
    """``workers``, or ``os.cpu_count()`` for ``None``; ``InvalidInput`` unless a positive integer."""
    if workers is None:
        return os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise InvalidInput(f"workers must be a positive integer or None, got {workers!r}")
    return workers


def recipe_of(digest: str) -> int:
    """The recipe a table digest was made with (module docstring): ``1`` for ``sha256:<hex>``,
    ``2`` for ``t2:sha256:<hex>``. ``InvalidInput`` for anything else, including a recipe this
    version of Shipyard does not know."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise InvalidInput(f"{digest!r} is not a table digest: expected sha256:<64 hex> or t2:sha256:<64 hex>")
    recipe = int(match[1]) if match[1] is not None else 1
    if recipe not in FORMATS:
        raise InvalidInput(f"{digest!r} was made by table recipe {recipe}, which this version of Shipyard "
                           f"does not know (it knows {', '.join(map(str, FORMATS))}): upgrade to check it")
    return recipe


def _check_recipe(recipe: int) -> int:
    if isinstance(recipe, bool) or recipe not in FORMATS:
        raise InvalidInput(f"recipe must be one of {', '.join(map(str, FORMATS))}, got {recipe!r}")
    return recipe


def digest_table(obj: Any, *, workers: int | None = None, recipe: int = RECIPE) -> str:
    """The digest of a table's data, ``"t2:sha256:<hex>"`` (recipe 2, the default; module
    docstring), or ``"sha256:<hex>"`` with ``recipe=1``.

    ``obj``: a pandas or polars DataFrame or Series, a pyarrow Table or RecordBatch, or a numpy
    array. ``InvalidInput`` for anything else, for columns Arrow cannot represent, for union
    columns and for an unknown recipe. Columns are hashed on up to ``workers`` threads (default
    ``os.cpu_count()``).
    """
    pa = pyarrow()
    _check_recipe(recipe)
    table = to_arrow(obj)
    threads = min(worker_count(workers), table.num_columns)
    columns = list(table.columns)

    def one(column: ChunkedArray) -> bytes:
        return column_digest(column, prepare(column, recipe), recipe=recipe)

    try:
        if threads <= 1 or table.num_rows * table.num_columns < _PARALLEL_MIN_CELLS:
            parts = [one(c) for c in columns]
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shipyard-digest") as pool:
                parts = list(pool.map(one, columns))
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot digest the table: {exc}") from None
    return combine(table, parts, recipe=recipe)


def verify_table(obj: Any, digest: str, *, workers: int | None = None) -> bool:
    """Whether ``obj`` holds the data ``digest`` was made from, with the recipe that made it
    (:func:`recipe_of`), so that digests recorded by an earlier Shipyard still check.
    ``InvalidInput`` as for :func:`digest_table` and :func:`recipe_of`."""
    return digest_table(obj, workers=workers, recipe=recipe_of(digest)) == digest


def prepare(column: pa.ChunkedArray | pa.Array, recipe: int = RECIPE) -> pa.Array:
    """The column as the recipe hashes it: its :func:`~shipyard.data.tables.canonical_column`,
    dictionary-encoded columns kept encoded in recipe 2."""
    return canonical_column(column, dictionary=recipe >= 2)


def header_type(t: pa.DataType, recipe: int = RECIPE) -> str:
    """A column's type as the digest's header names it."""
    pa = pyarrow()
    if recipe >= 2 and pa.types.is_dictionary(t):
        values = canonical_type(t.value_type)
        return f"dictionary<{values}, ordered>" if t.ordered else f"dictionary<{values}>"
    return str(canonical_type(t))


def combine(table: pa.Table, parts: list[bytes], *, recipe: int = RECIPE) -> str:
    """The table's digest from the :func:`column_digest` of each of its columns, in order."""
    types = [header_type(field.type, recipe) for field in table.schema]
    header = json.dumps({"columns": [[name, t] for name, t in zip(table.column_names, types, strict=True)],
                         "rows": table.num_rows}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(f"{FORMATS[recipe]}\n{header}\n".encode())
    for part in parts:
        digest.update(part)
    return f"{_TAGS[recipe]}{digest.hexdigest()}"


def column_digest(column: pa.ChunkedArray | pa.Array, prepared: pa.Array | None = None, *,
                  recipe: int = RECIPE) -> bytes:
    """The 32-byte SHA-256 of one column's encoding; ``prepared``: its :func:`prepare`, when the
    caller already has it."""
    pa = pyarrow()
    array = prepare(column, recipe) if prepared is None else prepared
    digest = hashlib.sha256()
    if pa.types.is_dictionary(array.type):
        _encode_dictionary(digest, array)
    else:
        _encode(digest, array)
    return digest.digest()


# -- the encoding ------------------------------------------------------------------------------------
# Every step works on whole Arrow buffers (hashlib releases the GIL on them); nothing runs per row
# in Python.


def _frame(digest: Any, data: Any) -> None:
    view = memoryview(data).cast("B")
    digest.update(len(view).to_bytes(8, "little"))
    digest.update(view)


def nan_as_null(array: pa.Array) -> pa.Array:
    """The array with NaN (in floats) made missing, the rule for every float column."""
    import pyarrow.compute as pc

    pa = pyarrow()
    if not pa.types.is_floating(array.type) or not len(array):
        return array
    if array.type.bit_width == 64:
        import numpy as np

        # NaN propagates through min: one pass, nothing allocated, where is_nan writes a bitmap
        # (the bytes under missing slots count here too: NaN there only costs the exact check)
        raw = np.frombuffer(array.buffers()[1], dtype=np.float64, count=len(array), offset=array.offset * 8)
        if not np.isnan(raw.min()):
            return array
    nan = pc.is_nan(array)
    if not pc.any(nan).as_py():
        return array
    return pc.if_else(nan, pa.scalar(None, array.type), array)


def _bitmap(buffer: pa.Buffer, offset: int, n: int) -> bytes | memoryview | None:
    """The ``n`` bits from bit ``offset`` of an Arrow bitmap, least significant first, trailing bits 0;
    ``None`` when they do not start on a byte (the caller then packs them itself)."""
    if offset % 8:
        return None
    start, size = offset // 8, (n + 7) // 8
    view = memoryview(buffer)[start:start + size]
    if n % 8 == 0:
        return view
    last = view[-1] & ((1 << (n % 8)) - 1)  # the bits past the end are unspecified in Arrow
    return bytes(view[:-1]) + bytes([last])


def _validity(array: pa.Array) -> bytes | memoryview:
    """The validity part: empty when nothing is missing, else the bitmap."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(array)
    if not array.null_count:
        return b""
    buffer = array.buffers()[0]
    if buffer is None:  # a null-typed array: nothing is present
        return bytes((n + 7) // 8)
    bits = _bitmap(buffer, array.offset, n)
    if bits is not None:
        return bits
    return np.packbits(pc.is_valid(array).to_numpy(zero_copy_only=False), bitorder="little").tobytes()


def _zero(t: pa.DataType, width: int) -> pa.Scalar:
    """A value of the fixed-width type ``t`` whose bytes are all zero."""
    pa = pyarrow()
    return pa.Array.from_buffers(t, 1, [None, pa.py_buffer(bytes(width))])[0]


def _fixed(array: pa.Array, width: int) -> memoryview | bytes:
    """The values' bytes, the ones under missing slots zeroed."""
    import numpy as np
    import pyarrow.compute as pc

    pa = pyarrow()
    n = len(array)
    if not n:
        return b""
    if array.null_count:
        try:
            array = pc.fill_null(array, _zero(array.type, width))
        except pa.ArrowNotImplementedError:  # a type fill_null lacks: zero them in numpy
            raw = np.frombuffer(array.buffers()[1], dtype=np.uint8, count=n * width,
                                offset=array.offset * width).reshape(n, width).copy()
            raw[~np.asarray(pc.is_valid(array).to_numpy(zero_copy_only=False), dtype=bool)] = 0
            return memoryview(raw).cast("B")  # type: ignore[arg-type]  # ndarray has the buffer protocol
    return memoryview(array.buffers()[1])[array.offset * width:(array.offset + n) * width]


def _booleans(array: pa.Array) -> bytes | memoryview:
    """The values as a bitmap, missing = 0."""
    import numpy as np
    import pyarrow.compute as pc

    n = len(array)
    if array.null_count:
        array = pc.fill_null(array, False)
    bits = _bitmap(array.buffers()[1], array.offset, n) if n else b""
    if bits is not None:
        return bits
    return np.packbits(array.to_numpy(zero_copy_only=False), bitorder="little").tobytes()


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
    array = nan_as_null(array)
    t = array.type
    types = pa.types
    _frame(digest, _validity(array))
    if types.is_null(t):
        return
    if types.is_boolean(t):
        _frame(digest, _booleans(array))
    elif types.is_large_string(t) or types.is_large_binary(t):
        if array.null_count:  # values under missing slots are not data
            array = pc.fill_null(array, pa.scalar(b"" if types.is_large_binary(t) else "", t))
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
        _frame(digest, _fixed(array, width))


def _encode_dictionary(digest: Any, array: pa.DictionaryArray) -> None:
    """Recipe 2's encoding of a dictionary column (module docstring)."""
    import numpy as np
    import pyarrow.compute as pc

    pa = pyarrow()
    categories, indices = array.dictionary, array.indices
    if categories.null_count or nan_as_null(categories).null_count \
            or len(pc.unique(categories)) != len(categories):
        rebuilt = pc.dictionary_encode(nan_as_null(array.cast(categories.type)))
        categories, indices = rebuilt.dictionary, rebuilt.indices
    _frame(digest, _validity(indices))  # a row is missing when its code is
    position = None
    if not array.type.ordered and len(categories) > 1:
        order = pc.sort_indices(categories).to_numpy(zero_copy_only=False)
        if (order != np.arange(len(order))).any():  # only then are the codes rewritten
            position = np.empty(len(order), dtype=np.int64)
            position[order] = np.arange(len(order))
            categories = categories.take(pa.array(order))
    if indices.null_count:  # a missing row's code is 0 once rewritten: fill with the code that becomes 0
        indices = pc.fill_null(indices, pa.scalar(0 if position is None else int(order[0]), indices.type))
    codes = indices.to_numpy(zero_copy_only=False)
    if position is not None:
        codes = position[codes]
    _encode(digest, categories)
    width = np.dtype(np.uint8 if len(categories) <= 1 << 8 else np.uint16 if len(categories) <= 1 << 16
                     else np.uint32).newbyteorder("<")
    # present codes are never negative, so a signed code of the same width has the same bytes
    codes = codes.view(width) if codes.dtype.itemsize == width.itemsize else codes.astype(width)
    _frame(digest, np.ascontiguousarray(codes))
