"""Where a model version comes from, and which sources the registry accepts.

A version made from a package in this store points at it as ``runs:/<run_id>/<artifact path>``
(canonicalised); Shipyard's loaders, gates and lineage read it there. A version may also name a
package the store does not hold (``s3://…``, ``gs://…``, ``https://…``, ``models:/…``,
``mlflow-artifacts:/…``, or ``runs:/<id>/<path>`` of a run that is not here), as an MLflow
registry accepts: it is recorded as *external* (:data:`EXTERNAL_TAG`), with no lineage edge to a
run that is not there, and nothing reads it at registration. Refused everywhere: a local path or
``file://`` URI (it would make the server read its own disk, the path-traversal CVE class of
MLflow registries), and a URI whose path climbs (a ``..`` segment, ``.``, NUL, after
percent-decoding until nothing changes).

:func:`plan_version_source` is that rule, the one the SDK, the native API and the MLflow API
call. :func:`check_version_source` is the strict shape of a stored package's URI (no I/O);
:func:`resolve_version_source` adds the checks that need the stored state: the run exists and
has ``<path>/MLmodel``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.models.manifest import ModelManifest
    from shipyard.store.protocol import Store

__all__ = ["ACCEPTED", "EXTERNAL_TAG", "MAX_SOURCE_LENGTH", "VersionSource", "check_version_source",
           "package_tags", "plan_version_source", "resolve_version_source", "stored_manifest"]

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


EXTERNAL_TAG = "shipyard.external_source"
_MAX_DECODES = 10  # a source encoded more deeply than this is refused, not decoded forever
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class VersionSource:
    """What a registration records: the ``source`` text, the ``run_id`` of a run in this store
    (the lineage edge; ``None`` when the source names no run that is here), and the version
    tags the source implies (package flavor, or :data:`EXTERNAL_TAG`)."""

    source: str
    run_id: str | None = None
    path: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def external(self) -> bool:
        return self.path is None


def _refused(uri: str, why: str, rule: str) -> InvalidInput:
    shown = uri if len(uri) <= 200 else f"{uri[:200]}..."
    return InvalidInput(f"model version source {shown!r} is refused: {why}", source=shown, rule=rule)


def _is_local(uri: str, scheme: str) -> bool:
    return scheme in ("", "file") or bool(_WINDOWS_DRIVE.match(uri))


def _check_remote_path(uri: str) -> None:
    """Refuse a URI whose path, once every percent-escape is decoded, climbs or hides a NUL:
    the store behind the URI (an object store, a web server, a registry) may resolve ``..``
    where this server cannot see it."""
    decoded = uri
    for _ in range(_MAX_DECODES):
        once = unquote(decoded.replace("+", " "))
        if once == decoded:
            break
        decoded = once
    else:
        raise _refused(uri, "it is percent-encoded more deeply than any real location", "relative_path")
    # Every segment of the whole text, not only the parsed path: a decoded "%3f" turns the rest
    # of the path into a "query" that a store behind the URI may still resolve as a path.
    segments = re.split(r"[/\\?#]", decoded)
    if "\x00" in decoded or any(s in ("..", ".") for s in segments):
        raise _refused(uri, "its path has a '..' or '.' segment or a NUL character once percent-decoded; "
                            "give the absolute location", "relative_path")


def plan_version_source(store: Store, artifacts: ArtifactStore, uri: object) -> VersionSource:
    """The one registry rule for a version's source (see the module docstring).

    ``runs:/<id>/<path>`` of a run in this store links the version to the run; when the run
    holds a package at that path, its flavor tags are recorded too. A source that names nothing
    here is external. Raises ``InvalidInput`` (with ``rule`` in its details: ``local_source``,
    ``remote_file_host``, ``relative_path``, ``too_long`` or ``not_a_string``) for what is refused.
    """
    if not isinstance(uri, str) or not uri:
        raise InvalidInput(f"model version source must be a non-empty string, got {uri!r:.100}",
                           rule="not_a_string")
    if len(uri) > MAX_SOURCE_LENGTH:
        raise _refused(uri, f"it is longer than {MAX_SOURCE_LENGTH} characters", "too_long")
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "file" and parts.hostname not in (None, "", "localhost", "127.0.0.1"):
        raise _refused(uri, f"{uri!r} is not a valid remote uri: file:// names a file system, and "
                            "this server reads none but its own store", "remote_file_host")
    if _is_local(uri, scheme):
        raise _refused(uri, "a local path or file:// URI would make the server read its own disk; register "
                            f"the model logged to a run instead ({ACCEPTED})", "local_source")
    if scheme == "runs" and uri.startswith(_PREFIX):
        run_id = uri[len(_PREFIX):].partition("/")[0]
        if _RUN_ID.fullmatch(run_id):  # canonicalised by the artifact path rule, which refuses climbing
            return _run_source(store, artifacts, uri, run_id)
    _check_remote_path(uri)
    return VersionSource(uri, tags={EXTERNAL_TAG: "true"})


def _run_source(store: Store, artifacts: ArtifactStore, uri: str, run_id: str) -> VersionSource:
    _, path = check_version_source(uri)  # a path that breaks the artifact rules is refused, never external
    try:
        store.runs.get(run_id)
    except NotFound:
        return VersionSource(uri, tags={EXTERNAL_TAG: "true"})  # a run of another server
    canonical = f"{_PREFIX}{run_id}/{path}"
    try:
        resolve_version_source(store, artifacts, canonical)
    except (InvalidInput, NotFound):  # the run is here, the package is not (yet): link, do not read
        return VersionSource(canonical, run_id=run_id, tags={EXTERNAL_TAG: "true"})
    return VersionSource(canonical, run_id=run_id, path=path, tags=package_tags(artifacts, run_id, path))
