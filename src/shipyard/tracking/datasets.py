"""Logging a dataset to a run: digest, schema and profile, an optional snapshot, the edge.

Paths (files, folders, globs) are hashed by streaming, with the local digest cache; in-memory
tables (pandas, polars, pyarrow, numpy) from their canonical Arrow encoding. A snapshot stores
the data itself as the run's artifacts under ``_shipyard/datasets/<name>/v<version>/``, so it is
content-addressed and deduplicated like every artifact, and ``shipyard datasets get`` can
restore it byte for byte.

:class:`DatasetService` holds these operations, built from a Store, an ArtifactStore and the
acting principal (recorded as the user of each version it creates), like the other domain
services: the SDK's ``Client.datasets`` builds one for its user, the server one per request.
The module functions taking a ``Client`` are the SDK's spelling of the same calls
(:func:`as_datasets`).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shipyard.entities import DatasetVersion, Edge, Node, NodeKind, Relation
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.auth import Principal
    from shipyard.store.protocol import Store

__all__ = ["SNAPSHOT_PREFIX", "DatasetService", "Described", "HasDatasets", "as_datasets", "describe",
           "link_dataset", "log_dataset", "record_dataset", "restore"]

SNAPSHOT_PREFIX = "_shipyard/datasets"
SUPPORTED = ("a file, a folder or a glob pattern (str or os.PathLike), or a pandas or polars DataFrame, "
             "a pyarrow Table or a numpy array")
_TABULAR = (".parquet", ".pq", ".csv", ".feather", ".arrow")


@dataclass(frozen=True)
class Described:
    """What logging needs to know of a source before it touches the store."""

    kind: str
    digest: str
    source: str
    num_rows: int | None = None
    size_bytes: int | None = None
    schema: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None  # the folder (or file) to snapshot; None for in-memory data
    files: list[str] = field(default_factory=list)  # relative paths under root to snapshot
    table: Any = None  # in-memory data, snapshotted as Parquet


def describe(source: Any) -> Described:
    """Digest, schema and profile of ``source``; ``InvalidInput`` for anything unsupported."""
    from shipyard import data

    if isinstance(source, str | os.PathLike):
        text = os.fspath(source)
        path = Path(text).expanduser()
        if any(c in text for c in "*?[") and not path.exists():
            with data.DigestCache() as cache:
                found = data.digest_glob(text, cache=cache)
            return Described("glob", found.digest, os.path.abspath(text), size_bytes=found.size,
                             root=Path(data.glob_root(text)), files=[f.path for f in found.files])
        if path.is_dir():
            # The local digest cache (by path, size, mtime, inode): an unchanged folder is not re-read.
            with data.DigestCache() as cache:
                found = data.digest_folder(path, cache=cache)
            return Described("folder", found.digest, str(path.resolve()), size_bytes=found.size, root=path,
                             files=[f.path for f in found.files])
        if path.is_file():
            digest, profiled = data.describe_file(path)  # hashed while the table in it is read and profiled
            return Described("file", digest, str(path.resolve()), size_bytes=path.stat().st_size,
                             num_rows=None if profiled is None else profiled["rows"],
                             schema=_schema(profiled), profile=profiled or {}, root=path.parent, files=[path.name])
        raise InvalidInput(f"dataset path {text!r} does not exist (or is not a file or folder)")
    if _is_table(source):
        from shipyard.data.tables import to_arrow

        table = to_arrow(source)
        digest, profiled = data.describe_table(table)  # one job per column on every core
        return Described("table", digest, f"<{type(source).__module__}."
                         f"{type(source).__qualname__}>", num_rows=table.num_rows, size_bytes=table.nbytes,
                         schema=_schema(profiled), profile=profiled, table=table)
    raise InvalidInput(f"cannot log a {type(source).__qualname__} as a dataset: expected {SUPPORTED}")


def _schema(profiled: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [{"name": c["name"], "type": c["type"]} for c in (profiled or {}).get("columns", [])]


def _is_table(obj: Any) -> bool:
    module = type(obj).__module__.partition(".")[0]
    return module in ("pandas", "polars", "pyarrow", "numpy")


class DatasetService:
    """Dataset versions in ``store``, their snapshots in ``artifacts``, created as ``principal``."""

    def __init__(self, store: Store, artifacts: ArtifactStore, principal: Principal) -> None:
        self.store = store
        self.artifacts = artifacts
        self.principal = principal

    def log(self, run_id: str, source: Any, name: str | None = None, *, context: str = "",
            snapshot: bool = False, output: bool = False) -> DatasetVersion:
        """Record that run ``run_id`` read (or, with ``output``, wrote) ``source`` (see
        :func:`describe`): the version for its name and content digest and the lineage edge.
        ``snapshot`` also stores the data as the run's artifacts, deduplicated, for :meth:`restore`.
        Raises ``InvalidInput`` for a bad name or source, ``NotFound`` for an unknown run."""
        def store_snapshot(described: Described, path: str) -> None:
            self._snapshot(run_id, described, path)

        return record_dataset(self.store, self.principal, run_id, source, name, context=context, output=output,
                              snapshot=store_snapshot if snapshot else None)

    def log_version(self, name: str, *, digest: str, source: str, kind: str, num_rows: int | None = None,
                    size_bytes: int | None = None, schema: Sequence[Mapping[str, Any]] = (),
                    profile: Mapping[str, Any] | None = None, snapshot_uri: str | None = None,
                    project: str = DEFAULT_PROJECT) -> tuple[DatasetVersion, bool]:
        """The version of ``name`` with content ``digest`` computed elsewhere (a remote client, an
        MLflow dataset), created now as the principal's when it is new, and whether it was. The
        shape of a digest and a snapshot URI coming over the wire is the edge's to check.
        Raises ``InvalidInput`` for a bad name."""
        from shipyard.tracking import validation as rules

        rules.check_dataset_name(name)
        return self.store.datasets.log_version(
            name, digest=digest, source=source, kind=kind, num_rows=num_rows, size_bytes=size_bytes, schema=schema,
            profile=profile, snapshot_uri=snapshot_uri, user=self.principal.name, project=project)

    def link(self, run_id: str, version: DatasetVersion, *, context: str = "", output: bool = False) -> Edge:
        """Record the lineage edge: ``version`` is an input of run ``run_id`` (an output with
        ``output``), in ``context`` (e.g. ``training``). An edge already recorded is kept."""
        return link_dataset(self.store, run_id, version, context=context, output=output)

    def get(self, ref: str) -> DatasetVersion:
        """``name@version``, ``name@latest`` or ``name`` (the latest). Raises ``InvalidInput`` for
        a malformed reference, ``NotFound`` naming the dataset or version."""
        name, _, version = ref.rpartition("@") if "@" in ref else (ref, "", "latest")
        if version == "latest":
            return self.store.datasets.list_versions(name)[-1]
        if not version.isdigit():
            raise InvalidInput(f"dataset reference {ref!r} is not valid: expected <name>@<version>, e.g. train@3")
        return self.store.datasets.get_version(name, int(version))

    def get_version(self, name: str, version: int) -> DatasetVersion:
        """Raises ``NotFound`` naming the dataset and version."""
        return self.store.datasets.get_version(name, version)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Oldest first. Raises ``NotFound`` for an unknown dataset."""
        return self.store.datasets.list_versions(name)

    def list_datasets(self, *, projects: Sequence[str] | None = None) -> list[DatasetVersion]:
        """The latest version of every dataset (of ``projects``), by name."""
        return self.store.datasets.list_datasets(projects=projects)

    def restore(self, version: DatasetVersion, dest: str | os.PathLike[str]) -> Path:
        """Put the snapshot of ``version`` into the folder ``dest`` (created if needed) and check
        its digest; returns the restored file (kind ``file``/``table``) or folder. Raises
        ``InvalidInput`` without a snapshot or when ``dest`` holds a file of the same name,
        ``ArtifactCorrupted`` when the digest differs."""
        import shutil

        from shipyard.errors import ArtifactCorrupted
        from shipyard.models.sources import check_version_source

        if not version.snapshot_uri:
            raise InvalidInput(f"dataset {version.ref} has no snapshot: it was logged without snapshot=True; its "
                               f"data is where it was read from, {version.source}")
        run_id, path = check_version_source(version.snapshot_uri)
        target = Path(dest)
        target.mkdir(parents=True, exist_ok=True)
        self.store.runs.get(run_id)  # NotFound naming the run
        with tempfile.TemporaryDirectory(prefix="shipyard-restore-") as tmp:
            fetched = self.artifacts.download(run_id, path, Path(tmp))
            for item in sorted(fetched.iterdir()):
                destination = target / item.name
                if destination.exists():
                    raise InvalidInput(f"{destination} already exists: restore into an empty folder")
                shutil.move(str(item), destination)
        restored, found = _digest_restored(version, target)
        if found != version.digest:
            raise ArtifactCorrupted(f"restored {version.ref} into {target} but its digest is {found}, not "
                                    f"{version.digest}")
        return restored

    def _snapshot(self, run_id: str, described: Described, path: str) -> None:
        from shipyard.artifacts.paths import normalize_artifact_path
        from shipyard.tracking.artifact_rules import check_artifact_write, folder_files

        with tempfile.TemporaryDirectory(prefix="shipyard-dataset-") as tmp:
            if described.table is not None:
                import pyarrow.parquet as pq

                parquet = Path(tmp) / "data.parquet"
                pq.write_table(described.table, parquet)
                files = [(parquet, f"{path}/data.parquet")]
            else:
                assert described.root is not None
                if described.kind == "folder":
                    found = folder_files(described.root)  # refuses a symbolic link inside, as log_artifacts does
                    files = [(f, f"{path}/{f.relative_to(described.root).as_posix()}") for f in found]
                else:
                    files = [(described.root / r, f"{path}/{Path(r).as_posix()}") for r in described.files]
            targets = [normalize_artifact_path(t) for _, t in files]
            for target in targets:  # all checked before any is stored: a refused snapshot stores nothing
                check_artifact_write(self.store, self.artifacts, run_id, target)
            for (local, _), target in zip(files, targets, strict=True):
                self.artifacts.log_file(run_id, local, target)


class HasDatasets(Protocol):
    """What hands out a :class:`DatasetService`: the SDK's ``Client``."""

    @property
    def datasets(self) -> DatasetService: ...


def as_datasets(source: DatasetService | HasDatasets) -> DatasetService:
    """``source`` itself, or the dataset service of a ``Client`` (the SDK's spelling)."""
    return source if isinstance(source, DatasetService) else source.datasets


def log_dataset(client: DatasetService | HasDatasets, run_id: str, source: Any, name: str | None = None, *,
                context: str = "", snapshot: bool = False, output: bool = False) -> DatasetVersion:
    """:meth:`DatasetService.log` on a service or a ``Client``."""
    return as_datasets(client).log(run_id, source, name, context=context, snapshot=snapshot, output=output)


def record_dataset(store: Store, principal: Principal, run_id: str, source: Any, name: str | None = None, *,
                   context: str = "", output: bool = False,
                   snapshot: Callable[[Described, str], None] | None = None) -> DatasetVersion:
    """Record that run ``run_id`` read (or, with ``output``, wrote) ``source``, as ``principal``:
    the dataset version (the existing one for the same name and content) and the lineage edge.
    ``snapshot`` stores the data under the path it is given, when the version has no snapshot yet."""
    from shipyard.tracking import validation as rules

    if name is None:
        if not isinstance(source, str | os.PathLike):
            raise InvalidInput("name the dataset: log_dataset(frame, name='churn-train')")
        name = Path(os.fspath(source).rstrip("/*")).stem or "dataset"
    rules.check_dataset_name(name)
    store.runs.get(run_id)  # NotFound before any hashing
    described = describe(source)
    datasets = store.datasets
    version, _ = datasets.log_version(
        name, digest=described.digest, source=described.source, kind=described.kind, num_rows=described.num_rows,
        size_bytes=described.size_bytes, schema=described.schema, profile=described.profile, user=principal.name)
    if snapshot is not None and version.snapshot_uri is None:
        path = f"{SNAPSHOT_PREFIX}/{name}/v{version.version}"
        snapshot(described, path)
        version, _ = datasets.log_version(name, digest=described.digest, source=described.source,
                                          kind=described.kind, snapshot_uri=f"runs:/{run_id}/{path}")
    link_dataset(store, run_id, version, context=context, output=output)
    return version


def link_dataset(store: Store, run_id: str, version: DatasetVersion, *, context: str = "",
                 output: bool = False) -> Edge:
    """The lineage edge between dataset ``version`` and run ``run_id``, recorded."""
    data, run = Node(NodeKind.DATASET, version.ref), Node(NodeKind.RUN, run_id)
    edge = Edge(run, data, Relation.OUTPUT, context) if output else Edge(data, run, Relation.INPUT, context)
    store.lineage.add_edges([edge])
    return edge


def restore(client: DatasetService | HasDatasets, version: DatasetVersion, dest: str | os.PathLike[str]) -> Path:
    """:meth:`DatasetService.restore` on a service or a ``Client``."""
    return as_datasets(client).restore(version, dest)


def _digest_restored(version: DatasetVersion, target: Path) -> tuple[Path, str]:
    from shipyard import data

    if version.kind in ("folder", "glob"):  # a glob's files keep their paths below its static root
        return target, data.digest_folder(target).digest
    if version.kind == "table":
        import pyarrow.parquet as pq

        restored = target / "data.parquet"
        # with the recipe the recorded digest names: a version logged by an earlier Shipyard still checks
        return restored, data.digest_table(pq.read_table(restored), recipe=data.recipe_of(version.digest))
    restored = target / Path(version.source).name
    return restored, data.digest_file(restored)
