"""What logging a dataset computes, in one go: the digest and the profile of a table or a file.

``describe_table(obj)`` equals ``(digest_table(obj), profile_table(obj))`` exactly, but converts to
Arrow once, brings each column to its canonical form once for both, and runs one job per column
(its digest, then its profile) on a thread pool, largest columns first. Hashing releases the GIL
and so do the array kernels of the profile, so both cores stay busy until the last column is done:
one after the other, the profile left one core idle while it ran.

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
from shipyard.data.table_digest import column_digest, combine, worker_count
from shipyard.data.tables import canonical_column, pyarrow, to_arrow
from shipyard.errors import InvalidInput

__all__ = ["describe_file", "describe_table"]

_PARALLEL_MIN_CELLS = 200_000  # below this, threads cost more than they save


def describe_table(obj: Any, *, workers: int | None = None) -> tuple[str, dict[str, Any]]:
    """``(digest_table(obj), profile_table(obj))``, computed together on up to ``workers`` threads
    (default ``os.cpu_count()``). Takes what :func:`shipyard.data.digest_table` takes and raises
    what it raises (``InvalidInput``)."""
    pa = pyarrow()
    table = to_arrow(obj)
    names, columns = table.column_names, list(table.columns)
    threads = min(worker_count(workers), len(columns))

    def job(index: int) -> tuple[bytes, dict[str, Any]]:
        canonical = canonical_column(columns[index])
        return column_digest(columns[index], canonical), profile_column(names[index], columns[index], canonical)

    order = sorted(range(len(columns)), key=lambda i: columns[i].nbytes, reverse=True)  # the slowest first
    try:
        if threads <= 1 or table.num_rows * table.num_columns < _PARALLEL_MIN_CELLS:
            done = {i: job(i) for i in order}
        else:
            with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="shipyard-describe") as pool:
                done = dict(zip(order, pool.map(job, order), strict=True))
    except pa.ArrowException as exc:
        raise InvalidInput(f"cannot digest and profile the table: {exc}") from None
    parts = [done[i] for i in range(len(columns))]
    digest = combine(table, [part[0] for part in parts])
    return digest, {"format": PROFILE_FORMAT, "rows": table.num_rows, "columns": [part[1] for part in parts]}


def describe_file(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any] | None]:
    """``(digest_file(path), profile_file(path))``, the hash on a second thread while the table is
    read and profiled (the profile is ``None`` for a file that is not a table). Raises what those two
    raise: ``NotFound``, ``InvalidInput``."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-describe") as pool:
        digest = pool.submit(digest_file, path)
        profile = profile_file(path, workers=None)  # should it raise, leaving the block still waits for the hash
        return digest.result(), profile
