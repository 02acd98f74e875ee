"""``DigestCache``: remembers file digests so an unchanged folder is not read again.

An entry maps a file's absolute path to the digest of its bytes, valid while the file's
``(size, mtime_ns, inode)`` are still those it had when it was hashed. It is kept in one SQLite
database (stdlib ``sqlite3``, WAL journal), by default ``$XDG_CACHE_HOME/shipyard/digests.db``
(``~/.cache/shipyard/digests.db`` when ``XDG_CACHE_HOME`` is unset). Several processes may use
the same database at once: readers never block, and each write is one short transaction.

Lookups are batched: all entries below a folder come back in one range query on the primary key
(paths are stored as their bytes, so ``root/`` to ``root0`` is exactly the folder's subtree).

**Racily clean files.** A file rewritten within the file system's timestamp granularity after it
was hashed keeps its size and mtime; trusting the entry would return the old digest. So a digest
is remembered only when the file's mtime is at least :data:`RACY_WINDOW_NS` older than the moment
hashing started (the rule git applies to its index). A file hashed right after it was written is
therefore read again on the next call; from then on the cache answers.

A cache that cannot be opened or written (read-only home, corrupted file) is switched off with a
``RuntimeWarning``: digests are still computed, only not remembered.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from shipyard.config import user_cache_folder

__all__ = ["RACY_WINDOW_NS", "CachedDigest", "DigestCache", "Row", "default_cache_path"]

RACY_WINDOW_NS = 2_000_000_000  # 2 s: covers FAT, HFS+ and NFS timestamp granularity
_BUSY_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    digest TEXT NOT NULL,
    hashed_at_ns INTEGER NOT NULL
) WITHOUT ROWID
"""


def default_cache_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/shipyard/digests.db``, else ``~/.cache/shipyard/digests.db``."""
    return user_cache_folder(environ) / "digests.db"


class CachedDigest(NamedTuple):
    """A digest to remember and the file state it belongs to (see :meth:`DigestCache.update`)."""

    size: int
    mtime_ns: int
    inode: int
    digest: str
    hashed_at_ns: int  # when hashing started

    @property
    def racy(self) -> bool:
        """True when the file changed too shortly before it was hashed for its mtime to be trusted."""
        return self.mtime_ns > self.hashed_at_ns - RACY_WINDOW_NS


# What ``lookup`` returns per path: (path, size, mtime_ns, inode, digest), the row as stored.
Row = tuple[bytes, int, int, int, str]


def _subtree(root: str | bytes) -> tuple[bytes, bytes]:
    """Key range ``[low, high)`` holding every path below the absolute folder ``root``."""
    prefix = os.fsencode(root)
    if not prefix.endswith(b"/"):
        prefix += b"/"
    return prefix, prefix[:-1] + b"0"  # "0" is the byte after "/"


class DigestCache:
    """A digest cache in the SQLite file ``path`` (default: :func:`default_cache_path`).

    Pass it to :func:`shipyard.data.digest_folder` / :func:`~shipyard.data.digest_glob`.
    The connection opens on first use; :meth:`close` (or ``with``) releases it.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._disabled = False

    def __repr__(self) -> str:
        return f"DigestCache({str(self.path)!r})"

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- connection ----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        if self._conn is None and not self._disabled:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                                       check_same_thread=False)
                try:
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")  # a lost entry is only re-hashed
                    conn.execute(_SCHEMA)
                except BaseException:
                    conn.close()
                    raise
            except (OSError, sqlite3.Error) as exc:
                self._disable(exc)
                return None
            self._conn = conn
        return self._conn

    def _disable(self, exc: BaseException) -> None:
        self._disabled = True
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        warnings.warn(f"the digest cache {str(self.path)!r} is not usable ({exc}); digests are computed "
                      "without it", RuntimeWarning, stacklevel=4)

    # -- reading and writing -------------------------------------------------------------------

    def lookup(self, root: str | bytes) -> dict[bytes, Row]:
        """Every entry below the absolute folder ``root``, keyed by the path's bytes: rows
        ``(path, size, mtime_ns, inode, digest)`` (one query; tuples, as it runs per file). An
        entry holds only while the file's size, mtime and inode are the row's."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return {}
            try:
                rows = conn.execute("SELECT path, size, mtime_ns, inode, digest FROM digests "
                                    "WHERE path >= ? AND path < ?", _subtree(root)).fetchall()
            except sqlite3.Error as exc:
                self._disable(exc)
                return {}
        return {row[0]: row for row in rows}

    def update(self, entries: Iterable[tuple[bytes, CachedDigest]], stale: Iterable[bytes] = ()) -> None:
        """Remember ``(path bytes, entry)`` pairs, except racy ones (module docstring), and forget
        the ``stale`` paths, in one transaction."""
        rows = [(path, e.size, e.mtime_ns, e.inode, e.digest, e.hashed_at_ns) for path, e in entries if not e.racy]
        gone = [(path,) for path in stale]
        if not rows and not gone:
            return
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", rows)
                    conn.executemany("DELETE FROM digests WHERE path = ?", gone)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._disable(exc)

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("DELETE FROM digests")
            except sqlite3.Error as exc:
                self._disable(exc)
