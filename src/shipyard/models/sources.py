"""Where a model version comes from: a logged model inside the store, never anywhere else.

A registered version points at the package a run logged, ``runs:/<run_id>/<artifact path>``.
The registry (SDK and server alike) records only that form, canonicalised, so a version can
never name a file on the server's disk (``file:///etc/passwd``), another bucket (``s3://...``),
a web address, or a path that climbs out of its run (``runs:/<id>/../../x``).

:func:`check_version_source` is the shape rule (no I/O); :func:`resolve_version_source` adds the
checks that need the stored state: the run exists and has ``<path>/MLmodel``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.models.manifest import ModelManifest
    from shipyard.store.protocol import Store

__all__ = ["ACCEPTED", "MAX_SOURCE_LENGTH", "check_version_source", "package_tags", "resolve_version_source",
           "stored_manifest"]

ACCEPTED = "runs:/<run_id>/<artifact path> (a model logged to a run of this store, e.g. runs:/3f2a.../model)"
MAX_SOURCE_LENGTH = 1000  # model_versions.source
_PREFIX = "runs:/"
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def _refuse(uri: object, why: str) -> InvalidInput:
    shown = uri if isinstance(uri, str) and len(uri) <= 200 else f"{str(uri)[:200]}..."
    return InvalidInput(f"model version source {shown!r} is refused: {why}; a source must be {ACCEPTED}",
                        source=str(shown))


def check_version_source(uri: str) -> tuple[str, str]:
    """``(run_id, artifact path)`` of ``runs:/<run_id>/<path>``, the path in canonical form
    (``runs:/<id>/./model/`` gives ``"model"``).

    Raises ``InvalidInput`` saying what is accepted for anything else: another scheme
    (``file://``, ``s3://``, ``http(s)://``), a bare or absolute path, a run id that is not 32
    lowercase hex characters, an empty path, and any path the artifact rules refuse (``..``
    segments, backslashes, control characters, double percent-encoding).
    """
    from shipyard.artifacts.paths import normalize_artifact_path

    if not isinstance(uri, str):
        raise _refuse(uri, f"expected a string, got {type(uri).__name__}")
    if not uri.startswith(_PREFIX):
        scheme = uri.partition("://")[0] if "://" in uri else ""
        why = f"the {scheme}:// scheme points outside the store" if scheme else "it is not a runs:/ URI"
        raise _refuse(uri, why)
    rest = uri[len(_PREFIX):]
    run_id, slash, path = rest.partition("/")
    if not _RUN_ID.fullmatch(run_id):
        raise _refuse(uri, f"{run_id!r} is not a run id (32 lowercase hexadecimal characters)")
    if not slash or not path:
        raise _refuse(uri, "the artifact path is empty (name the folder the model was logged to)")
    try:
        clean = normalize_artifact_path(path)
    except InvalidInput as err:
        raise _refuse(uri, f"its artifact path breaks a rule ({err.details.get('rule', err.message)})") from None
    if len(_PREFIX) + len(run_id) + 1 + len(clean) > MAX_SOURCE_LENGTH:
        raise _refuse(uri, f"it is longer than {MAX_SOURCE_LENGTH} characters")
    return run_id, clean


def resolve_version_source(store: Store, artifacts: ArtifactStore, uri: str) -> tuple[str, str]:
    """:func:`check_version_source`, then the stored state: the run must exist (``NotFound``)
    and hold a logged model at that path, i.e. ``<path>/MLmodel`` (``InvalidInput`` otherwise,
    also when the folder is missing or is a file).
    Returns ``(run_id, path)``; the canonical source is ``f"runs:/{run_id}/{path}"``."""
    from shipyard.models.manifest import MANIFEST

    run_id, path = check_version_source(uri)
    store.runs.get(run_id)  # NotFound naming the run
    try:
        listed = {entry.path for entry in artifacts.list(run_id, path)}
    except NotFound:  # no such folder, or a file: the run exists, the model does not
        listed = set()
    if f"{path}/{MANIFEST}" not in listed:
        raise InvalidInput(f"{uri} is not a logged model: run '{run_id}' has no {path}/{MANIFEST} "
                           "(log it with shipyard.log_model first)", run_id=run_id, path=path)
    return run_id, path


def stored_manifest(artifacts: ArtifactStore, run_id: str, path: str) -> ModelManifest:
    """The ``MLmodel`` manifest of the package a run logged at ``path``, read alone (the
    model's files are not downloaded; for an MLflow-format package, its small requirement files
    and the stored digests are read too). Raises ``NotFound``, or ``InvalidInput`` for a file
    that is not a manifest."""
    from shipyard.models.manifest import MANIFEST, ModelManifest

    with artifacts.open(run_id, f"{path}/{MANIFEST}") as stream:
        text = stream.read().decode("utf-8", errors="replace")
    return ModelManifest.parse(text, f"runs:/{run_id}/{path}/{MANIFEST}", _StoredFiles(artifacts, run_id, path))


@dataclass(frozen=True)
class _StoredFiles:
    """The files of a package in a run's artifacts (``PackageFiles``), read without downloading it."""

    artifacts: ArtifactStore
    run_id: str
    path: str

    def digests(self) -> dict[str, str]:
        from shipyard.models.manifest import MANIFEST

        prefix = f"{self.path}/"
        return {e.path[len(prefix):]: e.digest for e in self.artifacts.walk(self.run_id, self.path)
                if e.digest is not None and e.path.rpartition("/")[2] != MANIFEST}

    def read_text(self, name: str) -> str | None:
        try:
            with self.artifacts.open(self.run_id, f"{self.path}/{name}") as stream:
                return stream.read().decode("utf-8", errors="replace")
        except NotFound:
            return None


def package_tags(artifacts: ArtifactStore, run_id: str, path: str) -> dict[str, str]:
    """The version tags every registration records from its package: its flavor, and whether
    loading it unpickles code (so API clients see it without reading the package)."""
    manifest = stored_manifest(artifacts, run_id, path)
    return {FLAVOR_TAG: manifest.flavor, PICKLE_TAG: "true" if manifest.pickle_based else "false"}


FLAVOR_TAG = "shipyard.flavor"
PICKLE_TAG = "shipyard.pickle_based"
