"""What logging a dataset computes, in one go: the digest and the profile of a table or a file.

``describe_table(obj)`` equals ``(digest_table(obj), profile_table(obj))`` exactly, but converts to
Arrow once (a pandas frame's float columns without a copy: NaN is made missing per column, on the
pool's threads, not by a serial scan in the conversion), brings each column to its canonical form
once for both, and runs the column digests
and the column profiles as separate jobs on one thread pool, the most expensive first. Hashing
releases the GIL and so do the array kernels of the profile, so every core stays busy until the
last job is done; with one job per column (its digest, then its profile), a frame whose columns
differ in cost left a core idle at the end.

``describe_file(path)`` equals ``(digest_file(path), profile_file(path))``: the file's bytes are
hashed on a second thread while the table in it is read and its columns profiled, several at a time.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shipyard.data.digest import digest_file
from shipyard.data.profile import FORMAT as PROFILE_FORMAT
from shipyard.data.profile import profile_column, profile_file
from shipyard.data.table_digest import RECIPE, column_digest, combine, nan_as_null, prepare, worker_count
from shipyard.data.tables import canonical_type, pyarrow, to_arrow_keeping_nan
from shipyard.errors import InvalidInput

__all__ = ["describe_file", "describe_table"]

_PARALLEL_MIN_CELLS = 200_000  # below this, threads cost more than they save


def _cost(array: Any, profile: bool) -> float:
    """A rough relative cost of a job, to start the longest first: bytes hashed for a digest;
    for a profile, bytes read a few times over for numbers (the quantiles), and hashed into a
    table for strings, and next to nothing for a categorical (counted on its codes)."""
    pa = pyarrow()
    if not profile:
        return float(array.nbytes)
    if pa.types.is_dictionary(array.type):
        return 0.5 * len(array)
    t = canonical_type(array.type)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return 1.6 * float(array.nbytes)
    if pa.types.is_integer(t):
        return 0.6 * float(array.nbytes)
    if pa.types.is_large_string(t) or pa.types.is_large_binary(t):
        return 1.5 * float(array.nbytes)
    return 0.05 * float(array.nbytes)


def _ready(column: Any) -> Any:
    """The column as both the digest and the profile read it: :func:`prepare`, NaN as missing."""
    return nan_as_null(prepare(column, RECIPE))


def describe_table(obj: Any, *, workers: int | None = None) -> tuple[str, dict[str, Any]]:
    """``(digest_table(obj), profile_table(obj))``, computed together on up to ``workers`` threads
    (default ``os.cpu_count()``). Takes what :func:`shipyard.data.digest_table` takes and raises
    what it raises (``InvalidInput``)."""
    pa = pyarrow()
    table = to_arrow_keeping_nan(obj)  # NaN made missing below, once for both, on the pool's threads
    names, columns = table.column_names, list(table.columns)
    threads = min(worker_count(workers), 2 * len(columns))
    serial = threads <= 1 or table.num_rows * table.num_columns < _PARALLEL_MIN_CELLS

    def job(task: tuple[int, bool]) -> Any:
        index, profile = task
        array = prepared[index] if serial else ready[index].result()
        if profile:
            return profile_column(names[index], columns[index], array)
        return column_digest(columns[index], array, recipe=RECIPE)

    try:
        if serial:
            prepared = [_ready(c) for c in columns]
            digests = [job((i, False)) for i in range(len(columns))]
            profiles = [job((i, True)) for i in range(len(columns))]
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shipyard-describe") as pool:
                # queued before every job, so a job only ever waits for one that is running: no
                # barrier after them (a column with NaN to mask took several times the others)
                ready = [pool.submit(_ready, c) for c in columns]
                tasks = sorted(((i, profile) for i in range(len(columns)) for profile in (False, True)),
                               key=lambda task: _cost(columns[task[0]], task[1]), reverse=True)
                done = dict(zip(tasks, pool.map(job, tasks), strict=True))
            digests = [done[i, False] for i in range(len(columns))]
            profiles = [done[i, True] for i in range(len(columns))]
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot digest and profile the table: {exc}") from None
    digest = combine(table, digests, recipe=RECIPE)
    return digest, {"format": PROFILE_FORMAT, "rows": table.num_rows, "columns": profiles}


def describe_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """``(digest_file(path), profile_file(path))``, the hash on a second thread while the table is
    read and profiled (the profile is ``None`` for a file that is not a table). Raises what those two
    raise: ``NotFound``, ``InvalidInput``."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-describe") as pool:
        digest = pool.submit(digest_file, path)
        profile = profile_file(path, workers=None)  # should it raise, leaving the block still waits for the hash
        return digest.result(), profile
