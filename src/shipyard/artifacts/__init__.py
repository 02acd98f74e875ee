"""Artifact storage: content-addressed blobs plus per-run pointers, over byte-level backends.

``open_artifact_store(uri)`` picks a backend by URI scheme from ``_BACKENDS``, a table of
``(scheme, "dotted.module:factory")`` entries. Entries are imported on first use only, so a
backend with heavy dependencies (fsspec for ``s3://``, ``gs://``) costs nothing until it is
asked for, and registering one is adding a line here, not an import-time side effect.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

from shipyard.artifacts.cas import CasArtifactStore
from shipyard.artifacts.local import LocalStorage
from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.artifacts.protocol import ArtifactStore, BlobStorage
from shipyard.errors import InvalidInput

__all__ = [
    "ArtifactStore",
    "BlobStorage",
    "CasArtifactStore",
    "LocalStorage",
    "normalize_artifact_path",
    "open_artifact_store",
]

# scheme -> "module:attr" of a factory ``(uri: str) -> ArtifactStore``; a URI without a scheme
# is a local path and uses "file". ``http(s)://`` is a Shipyard server: artifacts go through its
# proxy routes and land in whatever store the server is configured with.
_BACKENDS: tuple[tuple[str, str], ...] = (
    ("file", "shipyard.artifacts.local:open_local_store"),
    ("s3", "shipyard.artifacts.fsspec:open_fsspec_store"),
    ("gs", "shipyard.artifacts.fsspec:open_fsspec_store"),
    ("memory", "shipyard.artifacts.fsspec:open_fsspec_store"),
    ("http", "shipyard.artifacts.rest:open_rest_store"),
    ("https", "shipyard.artifacts.rest:open_rest_store"),
)
_resolved: dict[str, Callable[[str], ArtifactStore]] = {}

# A scheme is two or more characters, so a Windows drive (``C:\x``) reads as a path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


def _factory(scheme: str) -> Callable[[str], ArtifactStore]:
    if scheme not in _resolved:
        target = dict(_BACKENDS).get(scheme)
        if target is None:
            supported = ", ".join(f"{name}://" for name, _ in _BACKENDS)
            raise InvalidInput(
                f"unsupported artifact store scheme {scheme!r}: supported are {supported} and local paths",
                scheme=scheme,
            )
        module, _, attr = target.partition(":")
        _resolved[scheme] = getattr(importlib.import_module(module), attr)
    return _resolved[scheme]


def open_artifact_store(uri: str) -> ArtifactStore:
    """The artifact store at ``uri``: a local path or ``file://`` URI (folder created if
    missing), ``s3://bucket/prefix``, ``gs://bucket/prefix`` or ``memory://`` (fsspec; credentials
    from the usual environment, see :mod:`shipyard.artifacts.fsspec`), or ``http(s)://`` (the
    proxy of a Shipyard server). ``InvalidInput`` for an empty URI or an unknown scheme, naming
    the supported ones."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput(f"invalid artifact store location {uri!r}: empty", uri=repr(uri))
    match = _SCHEME.match(uri)
    scheme = match.group(1).lower() if match else "file"
    return _factory(scheme)(uri)
