"""``LocalStorage``: the byte-level ``BlobStorage`` on a local folder.

It knows nothing about runs or digests; ``CasArtifactStore`` sits on top. Two guarantees make
it safe to share one folder between processes and threads:

* **Atomic writes.** Bytes go to a temp file in the destination folder (same file system, so
  ``os.replace`` is a rename), are flushed and fsynced, then renamed over the final name.
  Readers see the old object or the new one, never half of one. Temp files carry a reserved
  name that ``list`` skips and that no key may use.
* **Containment.** Every key is resolved (symlinks included) and must land strictly inside
  ``root``. The layer above already validates artifact paths; this is the second wall, so a bug
  or a crafted key there cannot reach outside the folder.

OS errors are translated here, at the storage boundary, into ``shipyard.errors`` classes.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from shipyard.artifacts.cas import CasArtifactStore
from shipyard.artifacts.protocol import ArtifactStore
from shipyard.errors import InvalidInput, NotFound, ShipyardError

__all__ = ["LocalStorage", "open_local_store"]

_CHUNK = 1 << 20
TMP_PREFIX = ".shipyard-tmp-"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TMP_NAME = re.compile(r"\.shipyard-tmp-[0-9a-f]{32}")


def is_temp_name(name: str) -> bool:
    return _TMP_NAME.fullmatch(name) is not None


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX only; best effort, some file systems refuse)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def _translated(key: str) -> Iterator[None]:
    """Turn OS errors from a write or delete of ``key`` into Shipyard errors."""
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        raise InvalidInput(
            f"storage key {key!r} conflicts with an existing file or folder", key=key
        ) from None
    except OSError as err:
        raise ShipyardError(f"local artifact storage failed on {key!r}: {err}", key=key) from err


class LocalStorage:
    """``BlobStorage`` on the folder ``root`` (created on first write)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    def _path(self, key: str, *, allow_root: bool = False) -> Path:
        """The local path of ``key``; ``InvalidInput`` unless strictly inside ``root``."""
        if not isinstance(key, str) or "\x00" in key:
            raise InvalidInput(f"invalid storage key {key!r}: must be a string without NUL", key=repr(key))
        if any(is_temp_name(segment) for segment in key.split("/")):
            raise InvalidInput(f"invalid storage key {key!r}: the name is reserved for temp files", key=key)
        path = (self.root / key).resolve()
        if path == self.root and allow_root:
            return path
        if path == self.root or not path.is_relative_to(self.root):
            raise InvalidInput(
                f"invalid storage key {key!r}: resolves outside the storage root {str(self.root)!r}",
                key=key,
            )
        return path

    def _write_atomic(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        with _translated(key):
            for attempt in range(3):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.parent / f"{TMP_PREFIX}{os.urandom(16).hex()}"
                try:
                    fd = os.open(tmp, _CREATE_FLAGS, 0o666)  # umask applies, unlike mkstemp's 0o600
                    break
                except FileNotFoundError:
                    # A concurrent ``delete`` pruned the empty folder we just made; make it again.
                    if attempt == 2:
                        raise
            try:
                with os.fdopen(fd, "wb") as out:
                    fill(out)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, target)
            except BaseException:
                with suppress(OSError):
                    os.unlink(tmp)
                raise
            _fsync_dir(target.parent)

    def put_file(self, key: str, source: Path) -> None:
        """Copy ``source`` to ``key`` atomically, streaming in 1 MiB chunks."""
        try:
            src = open(source, "rb")  # noqa: SIM115 - closed by the ``with`` below
        except OSError as err:
            raise InvalidInput(
                f"cannot read {str(source)!r}: {err.strerror or err}", path=str(source)
            ) from None
        with src:
            self._write_atomic(key, lambda out: shutil.copyfileobj(src, out, _CHUNK))

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically."""
        self._write_atomic(key, lambda out: out.write(data))

    def open(self, key: str) -> BinaryIO:
        """Open ``key`` for reading; ``NotFound`` naming the key when it is not a stored object."""
        path = self._path(key)
        try:
            return open(path, "rb")  # the caller owns (and closes) the stream
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no stored object {key!r} in {str(self.root)!r}", key=key) from None
        except OSError as err:
            raise ShipyardError(f"local artifact storage failed on {key!r}: {err}", key=key) from err

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a stored object (a folder is not one)."""
        return self._path(key).is_file()

    def modified(self, key: str) -> float:
        """The object's mtime; ``NotFound`` when ``key`` is not a stored object."""
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no stored object {key!r} in {str(self.root)!r}", key=key) from None
        except OSError as err:
            raise ShipyardError(f"local artifact storage failed on {key!r}: {err}", key=key) from err
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no stored object {key!r} in {str(self.root)!r}", key=key)
        return st.st_mtime

    def touch(self, key: str) -> bool:
        """Set the object's mtime to now (one ``utime``, no rewrite); ``False`` when absent.
        ``utime`` rather than ``exists`` then ``utime``: the check and the mark are one call, so
        a sweep cannot delete the object between them unnoticed."""
        path = self._path(key)
        if path.is_dir():
            return False
        try:
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        except PermissionError:
            # Read-only shared content (owned by another user) still dedupes; it just cannot be
            # marked young, as on object stores.
            return path.is_file()
        except OSError as err:
            raise ShipyardError(f"local artifact storage failed on {key!r}: {err}", key=key) from err
        return True

    def list(self, prefix: str) -> Iterator[tuple[str, bool]]:
        """Immediate children of folder ``prefix`` (``""`` = root) as ``(name, is_dir)``, sorted
        by name, skipping in-progress temp files. Nothing when the folder is absent.

        Not a generator on purpose: the key is checked, and the folder read, at the call."""
        folder = self._path(prefix, allow_root=True)
        try:
            with os.scandir(folder) as entries:
                children = sorted(
                    (entry.name, entry.is_dir()) for entry in entries if not is_temp_name(entry.name)
                )
        except (FileNotFoundError, NotADirectoryError):
            children = []
        except OSError as err:
            raise ShipyardError(f"local artifact storage failed on {prefix!r}: {err}", key=prefix) from err
        return iter(children)

    def delete(self, key: str) -> None:
        """Remove ``key`` if present, then prune folders it leaves empty (folders exist only
        while they hold objects, as on object stores)."""
        path = self._path(key)
        with _translated(key):
            path.unlink(missing_ok=True)
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


def open_local_store(uri: str) -> ArtifactStore:
    """Registry factory: a local path or ``file://`` URI -> ``CasArtifactStore(LocalStorage)``,
    creating the folder."""
    location = uri
    if uri[:5].lower() == "file:":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"unsupported file URI {uri!r}: only local files (file:///path)", uri=uri)
        location = unquote(parts.path)
        if re.match(r"/[A-Za-z]:", location):  # file:///C:/x on Windows
            location = location[1:]
        if not location.startswith("/") and not re.match(r"[A-Za-z]:", location):
            raise InvalidInput(f"file URI {uri!r} must hold an absolute path (file:///path)", uri=uri)
    root = Path(location).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InvalidInput(f"cannot create artifact folder {str(root)!r}: {err}", uri=uri) from None
    return CasArtifactStore(LocalStorage(root))
