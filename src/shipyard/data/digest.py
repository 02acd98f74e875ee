"""Content digests of data: a file, a folder, the files a glob matches, and in-memory tables.

Every digest is ``"sha256:<64 hex>"``; a table's digest names its recipe first (``"t2:sha256:<64 hex>"``).
The recipes, which must never change for a given prefix:

**File**: SHA-256 of its bytes, exactly what ``sha256sum`` prints. Read in 1 MiB chunks into a
reused buffer; ``hashlib`` releases the GIL while hashing, so files hash in parallel on threads.

**Folder** (and **glob**): list the files (relative POSIX paths, see below), hash each as above,
sort by the UTF-8 bytes of the relative path (on POSIX: the file name bytes, as ``os.fsencode``
gives them; no Unicode normalisation), then take SHA-256 over the concatenation, for every file,
of::

    <relative path, UTF-8> 0x00 <file digest, "sha256:<hex>", ASCII> 0x0A

No other metadata (sizes, modes, times, empty folders) enters the digest, so the digest depends
only on the paths and bytes, not on the machine, the creation order or the file system. An empty
folder's digest is SHA-256 of nothing. Relative paths never start with ``./``; a glob's are
relative to its static root (the leading path components without ``*``, ``?`` or ``[``; for a
pattern without those, the folder holding the one file).

**Symlinks** inside a folder are followed when their target, fully resolved, lies inside the
folder: a link to a file counts as a file with the target's bytes under the link's path, a link to
a folder as that folder's files under the link's path (as ``cp -rL`` would copy them). A link
whose target is outside the folder, a broken link, and a link back to a folder above it (a cycle)
are refused with ``InvalidInput`` naming the link: the digest would depend on data that is not
part of the folder. Other special files (FIFOs, sockets, devices) are refused too. Nothing is
ignored: hidden files count (a glob's ``*`` follows Python's ``glob`` and skips them, unless
the pattern names them).

**Cache**: with a :class:`~shipyard.data.cache.DigestCache`, a file whose size, mtime and inode
are those recorded when it was hashed is not read again (one query fetches the entries of the
whole folder; the listing is one ``os.scandir`` pass with one ``stat`` per file).

**Table**: see :mod:`shipyard.data.table_digest` (re-exported here as :func:`digest_table`).
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple, cast

from shipyard.data.cache import CachedDigest, DigestCache
from shipyard.data.table_digest import digest_table, worker_count
from shipyard.errors import InvalidInput, NotFound
from shipyard.hashing import sha256_file

__all__ = ["FileDigest", "FolderDigest", "digest_file", "digest_folder", "digest_glob", "digest_table", "glob_root"]

_FS_ENCODING = sys.getfilesystemencoding()  # what os.fsdecode uses, called directly (once per file)
_GLOB_MAGIC = frozenset("*?[")


class FileDigest(NamedTuple):
    """One file of a folder digest."""

    path: str  # relative, POSIX separators
    digest: str
    size: int


@dataclass(frozen=True)
class FolderDigest:
    """The digest of a set of files and the files it covers, sorted as hashed."""

    digest: str
    files: tuple[FileDigest, ...]
    hashed: int = field(default=0, compare=False)  # files actually read; the rest came from the cache

    @property
    def size(self) -> int:
        """Total bytes of the files."""
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, object]:
        """JSON-serialisable: ``{"digest", "size", "files": [[path, digest, size], ...]}``."""
        return {"digest": self.digest, "size": self.size, "files": [list(f) for f in self.files]}


# One listed file: (path, size, mtime_ns, inode), the path as file system bytes, as walked from
# the root (so the relative path is what follows the root's). A plain tuple: one is built per file.
_Listed = tuple[bytes, int, int, int]


# -- one file ------------------------------------------------------------------------------------


def _read_error(path: str, err: OSError) -> InvalidInput | NotFound:
    if isinstance(err, FileNotFoundError):
        return NotFound(f"no such file: {path!r}", path=path)
    return InvalidInput(f"cannot read {path!r}: {err.strerror or err}", path=path)


def digest_file(path: str | os.PathLike[str]) -> str:
    """``"sha256:<hex>"`` of the file's bytes (what ``sha256sum`` prints).

    ``NotFound`` when nothing is at ``path``; ``InvalidInput`` for a folder or an unreadable file.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except OSError as err:
        raise _read_error(name, err) from None
    if stat.S_ISDIR(mode):
        raise InvalidInput(f"{name!r} is a folder; use digest_folder", path=name)
    if not stat.S_ISREG(mode):
        raise InvalidInput(f"{name!r} is not a regular file", path=name)
    try:
        hexdigest, _, _ = sha256_file(name)
    except OSError as err:
        raise _read_error(name, err) from None
    return f"sha256:{hexdigest}"


# -- listing ---------------------------------------------------------------------------------------
# Paths are handled as bytes from here on: no encoding per file, and names that are not valid
# UTF-8 keep their exact bytes (in the digest, the cache and the sort order).


def _show(path: bytes) -> str:
    return os.fsdecode(path)


def _inside(real: bytes, root_real: bytes) -> bool:
    return real == root_real or real.startswith(root_real.rstrip(b"/") + b"/")


def _walk(root_real: bytes) -> list[_Listed]:
    """Every file below ``root_real`` (a resolved folder), following symlinks that stay inside.
    The loop runs once per file and is kept lean: a regular file costs one ``stat``."""
    listed: list[_Listed] = []
    append = listed.append
    # (folder path as walked, its real path, real folders a symlink was followed from)
    pending: list[tuple[bytes, bytes, tuple[bytes, ...]]] = [(root_real, root_real, ())]
    while pending:
        folder, folder_real, hops = pending.pop()
        entry = None
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_file(follow_symlinks=False):  # a regular file (from the directory entry)
                        info = entry.stat(follow_symlinks=False)
                        append((entry.path, info.st_size, info.st_mtime_ns, info.st_ino))
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, folder_real + b"/" + entry.name, hops))
                    elif entry.is_symlink():
                        followed = _follow(entry, root_real, folder_real, hops, pending)
                        if followed is not None:
                            append((entry.path, followed.st_size, followed.st_mtime_ns, followed.st_ino))
                    else:
                        shown = _show(entry.path)
                        raise InvalidInput(f"{shown!r} is not a regular file (a FIFO, socket or device); it "
                                           "cannot be part of a dataset", path=shown)
        except OSError as err:
            shown = _show(entry.path if entry is not None else folder)
            raise InvalidInput(f"cannot read {shown!r}: {err.strerror or err}", path=shown) from None
    return listed


def _follow(entry: os.DirEntry[bytes], root_real: bytes, folder_real: bytes, hops: tuple[bytes, ...],
            pending: list[tuple[bytes, bytes, tuple[bytes, ...]]]) -> os.stat_result | None:
    """The stat of a symlinked file, or ``None`` after queueing a symlinked folder; refusals
    (outside, broken, cycle) as ``InvalidInput``."""
    shown = _show(entry.path)
    target = os.path.realpath(entry.path)
    if not _inside(target, root_real):
        raise InvalidInput(f"symlink {shown!r} points outside the folder {_show(root_real)!r} (to "
                           f"{_show(target)!r}); copy the data in, or digest the target instead", path=shown)
    try:
        info = os.stat(entry.path)
    except FileNotFoundError:
        raise InvalidInput(f"symlink {shown!r} is broken (its target {_show(target)!r} does not exist)",
                           path=shown) from None
    if stat.S_ISREG(info.st_mode):
        return info
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"symlink {shown!r} leads to {_show(target)!r}, which is not a regular file (a FIFO, "
                           "socket or device); it cannot be part of a dataset", path=shown)
    chain = (*hops, folder_real)
    if any(_inside(real, target) for real in chain):
        raise InvalidInput(f"symlink {shown!r} leads back into a folder it is in ({_show(target)!r}): a cycle",
                           path=shown)
    pending.append((entry.path, target, chain))
    return None


def _resolve_folder(path: str | os.PathLike[str]) -> bytes:
    name = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.exists(name):
        raise NotFound(f"no such folder: {name!r}", path=name)
    if not os.path.isdir(name):
        raise InvalidInput(f"{name!r} is a file, not a folder; use digest_file", path=name)
    return os.fsencode(os.path.realpath(name))


# -- hashing many ----------------------------------------------------------------------------------


def _hash_listed(item: _Listed) -> str:
    path, expected_size, mtime_ns, _ = item
    try:
        hexdigest, size, after = sha256_file(path)
    except OSError as err:
        raise _read_error(_show(path), err) from None
    if size != expected_size or (after.st_size, after.st_mtime_ns) != (expected_size, mtime_ns):
        shown = _show(path)
        raise InvalidInput(f"{shown!r} changed while it was being hashed; digest it again once it is no longer "
                           "being written", path=shown)
    return f"sha256:{hexdigest}"


def _digest_listed(root: bytes, listed: list[_Listed], cache: DigestCache | None, workers: int | None,
                   prune: bool, started_ns: int) -> FolderDigest:
    threads = worker_count(workers)
    if cache is not None and not isinstance(cache, DigestCache):
        raise InvalidInput(f"cache must be a DigestCache or None, got {type(cache).__name__}")
    listed = sorted(listed)  # by path bytes, so by relative path: the digest's order
    known = cache.lookup(root) if cache is not None else {}
    get = known.get
    digests: list[str | None] = []
    todo: list[int] = []
    found = 0
    for index, item in enumerate(listed):  # runs once per file: plain tuples, no calls
        row = get(item[0])  # (path, size, mtime_ns, inode, digest) against (path, size, mtime_ns, inode)
        if row is None:
            digests.append(None)
            todo.append(index)
            continue
        found += 1
        if row[1] == item[1] and row[2] == item[2] and row[3] == item[3]:
            digests.append(row[4])
        else:
            digests.append(None)
            todo.append(index)
    todo.sort(key=lambda index: listed[index][1], reverse=True)  # big files first: threads finish together
    pending = [listed[index] for index in todo]
    if threads == 1 or len(pending) <= 1:
        fresh = [_hash_listed(item) for item in pending]
    else:
        with ThreadPoolExecutor(max_workers=min(threads, len(pending)), thread_name_prefix="shipyard-digest") as pool:
            fresh = list(pool.map(_hash_listed, pending))
    for index, digest in zip(todo, fresh, strict=True):
        digests[index] = digest
    if cache is not None:
        stale = known.keys() - {item[0] for item in listed} if prune and found < len(known) else ()
        cache.update(((path, CachedDigest(size, mtime_ns, inode, digest, started_ns))
                      for (path, size, mtime_ns, inode), digest in zip(pending, fresh, strict=True)),
                     stale=stale)
    done = cast("list[str]", digests)
    cut = len(root.rstrip(b"/")) + 1  # the relative path follows "<root>/"
    combined = hashlib.sha256(b"".join([item[0][cut:] + b"\0" + digest.encode("ascii") + b"\n"
                                        for item, digest in zip(listed, done, strict=True)]))
    new = tuple.__new__  # NamedTuple's own __new__ is slow, and this runs per file
    files = tuple([new(FileDigest, (item[0][cut:].decode(_FS_ENCODING, "surrogateescape"), digest, item[1]))
                   for item, digest in zip(listed, done, strict=True)])
    return FolderDigest(f"sha256:{combined.hexdigest()}", files, hashed=len(pending))


def digest_folder(path: str | os.PathLike[str], *, cache: DigestCache | None = None,
                  workers: int | None = None) -> FolderDigest:
    """Digest every file below the folder ``path`` (recipe in the module docstring).

    Files are hashed on ``workers`` threads (default ``os.cpu_count()``). With a ``cache``
    (:class:`DigestCache`), files whose size, mtime and inode are unchanged are not read again,
    and entries of files no longer in the folder are dropped from it.

    ``NotFound`` when ``path`` does not exist; ``InvalidInput`` when it is a file, or holds an
    unreadable file, a symlink leading outside it, a broken or cyclic symlink, or a special file.
    """
    started = time.time_ns()
    root = _resolve_folder(path)
    return _digest_listed(root, _walk(root), cache, workers, prune=True, started_ns=started)


# -- glob ------------------------------------------------------------------------------------------


def _static_root(pattern: str) -> str:
    parts = pattern.split("/")
    static: list[str] = []
    for part in parts:
        if _GLOB_MAGIC.intersection(part):
            break
        static.append(part)
    else:  # no magic at all: one path; its folder is the root
        static = parts[:-1]
    root = "/".join(static) or ("/" if pattern.startswith("/") else ".")
    return os.path.abspath(root)


def glob_root(pattern: str) -> str:
    """The absolute static root of a glob pattern: its leading components without ``*``, ``?`` or
    ``[`` (for a pattern without them, the folder of the one path). :func:`digest_glob`'s relative
    paths are relative to it."""
    return _static_root(os.path.expanduser(pattern))


def digest_glob(pattern: str, *, cache: DigestCache | None = None, workers: int | None = None) -> FolderDigest:
    """Digest the files matching ``pattern`` (Python ``glob``, ``**`` recursive), with paths
    relative to its static root; same recipe as a folder. Folders that match are skipped (their
    files count only when the pattern matches them too, e.g. ``data/**``).

    ``InvalidInput`` when nothing matches, for an empty pattern, and for the same files as
    :func:`digest_folder` (a symlink out of the static root, an unreadable file...).
    """
    import glob

    if not isinstance(pattern, str) or not pattern:
        raise InvalidInput(f"pattern must be a non-empty glob string, got {pattern!r}")
    started = time.time_ns()
    expanded = os.path.expanduser(pattern)
    root = _static_root(expanded)
    root_real = os.path.realpath(root)
    listed = []
    for match in sorted(set(glob.glob(expanded, recursive=True))):
        absolute = os.path.abspath(match)
        try:
            info = os.stat(absolute)
        except FileNotFoundError:
            raise InvalidInput(f"{absolute!r} (matched by {pattern!r}) is a broken symlink", path=absolute) from None
        except OSError as err:
            raise _read_error(absolute, err) from None
        if stat.S_ISDIR(info.st_mode):
            continue
        real = os.path.realpath(absolute)
        if not _inside(os.fsencode(real), os.fsencode(root_real)):
            raise InvalidInput(f"{absolute!r} (matched by {pattern!r}) resolves to {real!r}, outside the "
                               f"pattern's root {root!r}", path=absolute)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(f"{absolute!r} is not a regular file", path=absolute)
        listed.append((os.fsencode(absolute), info.st_size, info.st_mtime_ns, info.st_ino))
    if not listed:
        raise InvalidInput(f"no files match {pattern!r}", pattern=pattern)
    return _digest_listed(os.fsencode(root), listed, cache, workers, prune=False, started_ns=started)
