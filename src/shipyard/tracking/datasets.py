"""Logging a dataset to a run: digest, schema and profile, an optional snapshot, the edge.

Paths (files, folders, globs) are hashed by streaming, with the local digest cache; in-memory
tables (pandas, polars, pyarrow, numpy) from their canonical Arrow encoding. A snapshot stores
the data itself as the run's artifacts under ``_shipyard/datasets/<name>/v<version>/``, so it is
content-addressed and deduplicated like every artifact, and ``shipyard datasets get`` can
restore it byte for byte.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.entities import DatasetVersion, Edge, Node, NodeKind, Relation
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

    from shipyard.auth import Principal
    from shipyard.store.protocol import Store
    from shipyard.tracking.client import Client

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


def log_dataset(client: Client, run_id: str, source: Any, name: str | None = None, *, context: str = "",
                snapshot: bool = False, output: bool = False) -> DatasetVersion:
    def store_snapshot(described: Described, path: str) -> None:
        _snapshot(client, run_id, described, path)

    return record_dataset(client.store, client.principal, run_id, source, name, context=context, output=output,
                          snapshot=store_snapshot if snapshot else None)


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
    data, run = Node(NodeKind.DATASET, version.ref), Node(NodeKind.RUN, run_id)
    edge = Edge(run, data, Relation.OUTPUT, context) if output else Edge(data, run, Relation.INPUT, context)
    store.lineage.add_edges([edge])
    return version


def _snapshot(client: Client, run_id: str, described: Described, path: str) -> None:
    if described.table is not None:
        import pyarrow.parquet as pq

        with tempfile.TemporaryDirectory(prefix="shipyard-dataset-") as tmp:
            target = Path(tmp) / "data.parquet"
            pq.write_table(described.table, target)
            client.log_artifact(run_id, target, path)
        return
    assert described.root is not None
    if described.kind == "folder":
        client.log_artifacts(run_id, described.root, path)
        return
    for relative in described.files:
        parent = str(Path(relative).parent)
        client.log_artifact(run_id, described.root / relative, path if parent == "." else f"{path}/{parent}")


def restore(client: Client, version: DatasetVersion, dest: str | os.PathLike[str]) -> Path:
    """Put the snapshot of ``version`` into the folder ``dest`` (created if needed) and check
    its digest; returns the restored file (kind ``file``/``table``) or folder."""
    import shutil

    from shipyard.errors import ArtifactCorrupted
    from shipyard.models.sources import check_version_source

    if not version.snapshot_uri:
        raise InvalidInput(f"dataset {version.ref} has no snapshot: it was logged without snapshot=True; its "
                           f"data is where it was read from, {version.source}")
    run_id, path = check_version_source(version.snapshot_uri)
    target = Path(dest)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="shipyard-restore-") as tmp:
        fetched = client.download_artifacts(run_id, path, tmp)
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
