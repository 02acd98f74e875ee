"""The one way a file's bytes are hashed: SHA-256 read through a reused buffer.

Datasets (:mod:`shipyard.data.digest`) and artifacts (:mod:`shipyard.artifacts.content`) both
call :func:`sha256_file`; it lives apart from both so that importing the artifact layer does not
import the data layer (``import shipyard`` stays light). ``hashlib`` releases the GIL while
hashing, so files hash in parallel on threads.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["CHUNK", "sha256_file"]

CHUNK = 1 << 20


def sha256_file(path: str | bytes | os.PathLike[str]) -> tuple[str, int, os.stat_result]:
    """``(hex digest, bytes read, fstat after reading)`` of the file's bytes. ``OSError`` passes
    through, for the caller to word."""
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = 0
    with open(path, "rb", buffering=0) as stream:
        while n := stream.readinto(buffer):
            digest.update(view[:n])
            size += n
        after = os.fstat(stream.fileno())
    return digest.hexdigest(), size, after
