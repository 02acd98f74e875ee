"""The one rule for artifact paths.

An artifact path arrives from a user (SDK argument, CLI flag, URL segment) and ends up as part
of a storage key and, on download, of a local file name. It is made safe here, once, in a fixed
order: **decode** percent-escapes once, **canonicalise** (drop empty and ``.`` segments), then
**validate**. Validating last means no later step can turn an accepted path into a dangerous one.

The result is always ``/``-separated, relative, free of ``..``, and a fixed point of this
function (``normalize_artifact_path(p) == p`` for every result ``p``). That last property is why
a percent-escape left over after the one decode is rejected: otherwise a listed path handed
back to ``open`` would be decoded a second time and name a different file.

Storing a file under a *new* name takes :func:`new_artifact_path`, which adds the shapes that are
harmless here but that another client, proxy or operating system can later read as a traversal
or as another file. They are refused on the way in only, so what an older version stored stays
readable and deletable by its name.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path
from urllib.parse import unquote

from shipyard.errors import InvalidInput

__all__ = ["download_destination", "new_artifact_path", "normalize_artifact_path"]

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
_DRIVE = re.compile(r"^[A-Za-z]:")
# Invisible characters that change how a name is displayed (a "txt.exe" shown as "exe.txt") or
# where a line ends: line and paragraph separators and the bidirectional controls.
_DISPLAY_CONTROLS = frozenset("\u2028\u2029\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e"
                              "\u2066\u2067\u2068\u2069")


def _reject(path: str, rule: str) -> InvalidInput:
    return InvalidInput(f"invalid artifact path {path!r}: {rule}", path=path, rule=rule)


def normalize_artifact_path(path: str, *, allow_root: bool = False) -> str:
    """Return the canonical form of ``path`` (``"./a//b/"`` -> ``"a/b"``).

    Raises ``InvalidInput`` naming the path and the rule it breaks: absolute paths (``/x``,
    ``C:\\x``, ``C:x``, ``\\\\server``), a ``..`` segment, a backslash, a NUL or other control
    character, a percent-escape that survives one decode (double encoding), or an empty result
    unless ``allow_root`` (then ``""`` means the run's root folder).
    """
    if not isinstance(path, str):
        raise InvalidInput(f"invalid artifact path {path!r}: must be a string", path=repr(path))
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise _reject(path, "percent-escapes must decode to UTF-8") from None
    if _ESCAPE.search(decoded):
        raise _reject(path, "percent-escapes are decoded once; double encoding is not allowed")
    if any(unicodedata.category(ch) == "Cc" for ch in decoded):
        raise _reject(path, "control characters (including NUL) are not allowed")
    if "\\" in decoded:
        raise _reject(path, "backslashes are not allowed; use '/' to separate folders")
    if decoded.startswith("/"):
        raise _reject(path, "must be relative (no leading '/')")
    segments = [seg for seg in decoded.split("/") if seg not in ("", ".")]
    if ".." in segments:
        raise _reject(path, "'..' segments are not allowed")
    result = "/".join(segments)
    if _DRIVE.match(result):
        raise _reject(path, "must be relative (no drive letter such as 'C:')")
    if not result and not allow_root:
        raise _reject(path, "must name a file or folder (empty path)")
    return result


def new_artifact_path(path: str) -> str:
    """:func:`normalize_artifact_path` for a file about to be stored, with the rules for new
    names on top; every way in (SDK, native API, MLflow artifact proxy) stores through it.

    Also raises ``InvalidInput`` for a segment made only of dots (``...``: ``....//`` is ``../``
    to a filter that strips ``../`` once), a segment holding ``;`` (``..;`` is ``..`` to servlet
    containers and some proxies), U+FFFD (what a server's URL decoding leaves of bytes that were
    not UTF-8, such as the overlong ``%c0%af``), and line separators or bidirectional controls.
    """
    result = normalize_artifact_path(path)
    for segment in result.split("/"):
        if segment.strip(".") == "":
            raise _reject(path, f"a segment made only of dots ({segment!r}) is not allowed: some clients and "
                                "proxies strip '..' from it and read a parent folder")
        if ";" in segment:
            raise _reject(path, "';' is not allowed in a name: proxies and servlet containers cut a segment "
                                "at ';' ('..;' becomes '..')")
    if "\ufffd" in result:
        raise _reject(path, "must be valid UTF-8: U+FFFD stands for bytes that were not (such as the overlong "
                            "'%c0%af')")
    if any(ch in _DISPLAY_CONTROLS for ch in result):
        raise _reject(path, "line separators and bidirectional control characters (U+2028, U+202E...) are "
                            "not allowed")
    return result


def download_destination(dst_path: str | os.PathLike[str] | None) -> Path:
    """Where a download goes: ``dst_path``, created if needed, or a new temporary folder."""
    dest = Path(dst_path) if dst_path is not None else Path(tempfile.mkdtemp(prefix="shipyard-"))
    dest.mkdir(parents=True, exist_ok=True)
    return dest
