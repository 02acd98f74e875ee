"""Stored reference profiles: built once from a dataset version, kept in the artifact store.

A monitor compares every window with a :class:`~shipyard.monitoring.reference.ReferenceProfile`
of its reference data. Building one reads and sorts the whole dataset, so it is done once per
dataset version and the result is stored in the artifact store, under the namespace
``monitors``::

    references/<key>/profile.json       rows, and per column its kind, type, missing count, file
    references/<key>/<i>.arrow          numerical: the sorted finite values; categorical: the
                                        distinct values and their counts (Arrow IPC, zstd)

``<key>`` is derived from the dataset's content digest and the columns kept, so two monitors of
the same training set share one profile, and new content gets a new one. ``profile.json`` is
written last: a profile without it is incomplete and is built again. The profile is exact (the
statistics are those of the raw data) and small next to the data: only what the tests need.

The training dataset of a model version is found through lineage: the run the version was
registered from (``run -> model`` edge), and the datasets that run read (``dataset -> run``
``input`` edges), preferring the one logged with context ``training``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.entities import DatasetVersion, ModelRef, Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring.inputs import Categories
from shipyard.monitoring.reference import ColumnProfile, ReferenceProfile, reference_profile

if TYPE_CHECKING:
    import pyarrow as pa

    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.store.protocol import Store

__all__ = ["NAMESPACE", "TRAINING_CONTEXTS", "build_profile", "dataset_version", "load_profile", "profile_key",
           "read_dataset", "save_profile", "training_dataset"]

NAMESPACE = "monitors"
FORMAT = 1
TRAINING_CONTEXTS = ("training", "train")
_TABULAR = (".parquet", ".pq", ".csv", ".feather", ".arrow", ".ipc")
_CACHE_SIZE = 8
_cache: OrderedDict[str, ReferenceProfile] = OrderedDict()
_cache_lock = threading.Lock()


# -- where the reference comes from ---------------------------------------------------------------------

def dataset_version(store: Store, ref: str) -> DatasetVersion:
    """``NAME@VERSION``, ``NAME@latest`` or ``NAME`` (the latest). Raises ``NotFound`` and
    ``InvalidInput`` naming the reference."""
    name, sep, version = ref.rpartition("@")
    if not sep:
        name, version = ref, "latest"
    if not name:
        raise InvalidInput(f"dataset reference {ref!r} is not valid: expected NAME@VERSION, e.g. train@3")
    if version == "latest":
        versions = store.datasets.list_versions(name)
        return versions[-1]
    if not version.isdigit():
        raise InvalidInput(f"dataset reference {ref!r} is not valid: expected NAME@VERSION, e.g. train@3")
    return store.datasets.get_version(name, int(version))


def training_dataset(store: Store, model: ModelRef) -> DatasetVersion:
    """The dataset version ``model`` was trained on, found through lineage. Raises ``NotFound``
    when its run recorded no input dataset, and ``InvalidInput`` when it read several and none
    was logged with context ``training``: both name what to do instead."""
    node = Node(NodeKind.MODEL, f"{model.model}/{model.version}")
    runs = [e.source for e in store.lineage.edges([node], upstream=True)
            if e.relation is Relation.MODEL and e.source.kind is NodeKind.RUN]
    if not runs:
        run_id = store.models.get_version(model.model, model.version).run_id
        runs = [Node(NodeKind.RUN, run_id)] if run_id else []
    inputs = [e for e in store.lineage.edges(runs, upstream=True)
              if e.relation is Relation.INPUT and e.source.kind is NodeKind.DATASET] if runs else []
    training = [e for e in inputs if e.context.lower() in TRAINING_CONTEXTS] or inputs
    refs = list(dict.fromkeys(e.source.id for e in training))
    hint = ("log the training data in the run that made the model: shipyard.log_dataset(df, 'train', "
            "context='training'), or give the reference yourself: --reference DATASET@VERSION")
    if not refs:
        raise NotFound(f"model version {model} has no training dataset in lineage (its run recorded no input "
                       f"dataset); {hint}", model=str(model))
    if len(refs) > 1:
        raise InvalidInput(f"model version {model} was trained from several datasets ({', '.join(refs)}) and none "
                           f"was logged with context 'training'; {hint}", model=str(model))
    return dataset_version(store, refs[0])


def read_dataset(artifacts: ArtifactStore, version: DatasetVersion, columns: Sequence[str] | None = None) -> pa.Table:
    """The data of ``version``: its snapshot in the artifact store, or else the file it was read
    from, when that is still here. Raises ``InvalidInput`` when neither can be read."""
    import pyarrow as pa

    from shipyard.monitoring.inputs import load

    if version.snapshot_uri:
        from shipyard.models.sources import check_version_source

        run_id, path = check_version_source(version.snapshot_uri)
        files = [e.path for e in artifacts.walk(run_id, path) if not e.is_dir and e.path.lower().endswith(_TABULAR)]
        if not files:
            raise InvalidInput(f"dataset {version.ref}: its snapshot {version.snapshot_uri} holds no Parquet, CSV or "
                               "Arrow file to read a reference from")
        tables = [_read_bytes(artifacts, run_id, f, columns) for f in sorted(files)]
        return pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    from pathlib import Path

    source = Path(version.source)
    if version.kind in ("file", "table") and source.is_file() and source.suffix.lower() in _TABULAR:
        return load(source, columns, label=f"dataset {version.ref}").table
    raise InvalidInput(f"dataset {version.ref} has no snapshot and its source {version.source!r} cannot be read "
                       "here; log it again with snapshot=True (shipyard.log_dataset(..., snapshot=True)) so monitors "
                       "can build a reference from it")


def _read_bytes(artifacts: ArtifactStore, run_id: str, path: str, columns: Sequence[str] | None) -> pa.Table:
    import tempfile
    from pathlib import Path

    from shipyard.monitoring.inputs import load

    with artifacts.open(run_id, path) as stream:
        data = stream.read()
    with tempfile.TemporaryDirectory(prefix="shipyard-reference-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(data)
        return load(local, columns, label=f"snapshot file {path}").table


# -- storing and loading profiles -------------------------------------------------------------------------

def profile_key(digest: str, columns: Sequence[str] | None) -> str:
    """The artifact folder of the profile of the data with content ``digest``, keeping ``columns``."""
    spec = json.dumps([digest, sorted(columns) if columns else None])
    return f"references/{hashlib.sha256(spec.encode()).hexdigest()[:32]}"


def build_profile(store: Store, artifacts: ArtifactStore, version: DatasetVersion,
                  columns: Sequence[str] | None = None) -> str:
    """The key of the stored profile of ``version`` (only ``columns``, when given), building and
    storing it first unless it is there already."""
    key = profile_key(version.digest, columns)
    if _exists(artifacts, key):
        return key
    table = read_dataset(artifacts, version, columns)
    save_profile(artifacts, key, reference_profile(table, columns=columns), source=version.ref)
    return key


def _exists(artifacts: ArtifactStore, key: str) -> bool:
    try:
        return any(e.path == f"{key}/profile.json" for e in artifacts.list(NAMESPACE, key))
    except NotFound:
        return False


def save_profile(artifacts: ArtifactStore, key: str, profile: ReferenceProfile, *, source: str = "") -> None:
    """Write ``profile`` under ``key`` (see the module docstring for the layout)."""
    import pyarrow as pa

    entries = []
    for i, (name, column) in enumerate(profile.columns.items()):
        entry: dict[str, Any] = {"name": name, "kind": column.kind, "type": column.type, "missing": column.missing,
                                 "file": None}
        if column.sorted_values is not None:
            table = pa.table({"values": pa.array(column.sorted_values, pa.float64())})
        elif column.categories is not None:
            table = pa.table({"values": column.categories.values,
                              "counts": pa.array(column.categories.counts, pa.int64())})
        else:
            table = None
        if table is not None:
            entry["file"] = f"{i}.arrow"
            artifacts.log_bytes(NAMESPACE, _ipc_bytes(table), f"{key}/{entry['file']}")
        entries.append(entry)
    manifest = {"format": FORMAT, "rows": profile.rows, "source": source, "columns": entries,
                "invalid": profile.invalid}
    artifacts.log_bytes(NAMESPACE, json.dumps(manifest, indent=1).encode(), f"{key}/profile.json")
    with _cache_lock:
        _cache.pop(key, None)


def _ipc_bytes(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)
    data: bytes = sink.getvalue().to_pybytes()
    return data


def _read(artifacts: ArtifactStore, path: str) -> bytes:
    with artifacts.open(NAMESPACE, path) as stream:
        return stream.read()  # to the end: the digest is checked then


def load_profile(artifacts: ArtifactStore, key: str) -> ReferenceProfile:
    """The profile stored under ``key`` (kept in memory for the next windows). Raises ``NotFound``
    when it is not there."""
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    import pyarrow as pa

    try:
        manifest = json.loads(_read(artifacts, f"{key}/profile.json"))
    except NotFound:
        raise NotFound(f"the reference profile {key} is not in the artifact store; it is rebuilt from its dataset "
                       "at the next evaluation") from None
    columns: dict[str, ColumnProfile] = {}
    for entry in manifest["columns"]:
        sorted_values, categories = None, None
        if entry["file"] is not None:
            table = pa.ipc.open_file(pa.BufferReader(_read(artifacts, f"{key}/{entry['file']}"))).read_all()
            if entry["kind"] == "numerical":
                sorted_values = table.column("values").to_numpy()
            else:
                categories = Categories(table.column("values").combine_chunks(),
                                        table.column("counts").to_numpy(), entry["missing"])
        columns[entry["name"]] = ColumnProfile(entry["kind"], entry["type"], sorted_values, categories,
                                               entry["missing"])
    profile = ReferenceProfile(manifest["rows"], columns, manifest.get("invalid") or {})
    with _cache_lock:
        _cache[key] = profile
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return profile
