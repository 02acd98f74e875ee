"""The DatasetStore and LineageStore part of the store contract (mixed into StoreContract)."""

from __future__ import annotations

import threading
import uuid

import pytest

from shipyard.entities import Edge, Node, NodeKind, Relation
from shipyard.errors import NotFound
from shipyard.store import Store


def _name(prefix: str = "data") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _digest() -> str:
    return f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}"


class DataStoreContract:
    __test__ = False

    # -- datasets ------------------------------------------------------------------------
    def test_versions_follow_content(self, store: Store) -> None:
        name, first, second = _name(), _digest(), _digest()
        schema = [{"name": "x", "type": "double", "nullable": False}]
        v1, created = store.datasets.log_version(name, digest=first, source="/data/train.parquet", kind="file",
                                                 num_rows=10, size_bytes=1234, schema=schema,
                                                 profile={"rows": 10}, user="ana")
        assert created
        assert (v1.name, v1.version, v1.digest, v1.kind, v1.num_rows, v1.size_bytes) == \
            (name, 1, first, "file", 10, 1234)
        assert (list(v1.schema), dict(v1.profile), v1.snapshot_uri) == (schema, {"rows": 10}, None)
        again, created = store.datasets.log_version(name, digest=first, source="/elsewhere", kind="file")
        assert not created
        assert again == v1  # same content: the same version, as first recorded
        v2, created = store.datasets.log_version(name, digest=second, source="/data/train.parquet", kind="file")
        assert created
        assert v2.version == 2
        assert [v.version for v in store.datasets.list_versions(name)] == [1, 2]
        assert store.datasets.get_version(name, 1) == v1
        latest = {d.name: d.version for d in store.datasets.list_datasets()}
        assert latest[name] == 2

    def test_snapshot_added_to_an_existing_version(self, store: Store) -> None:
        name, digest = _name(), _digest()
        store.datasets.log_version(name, digest=digest, source="/d", kind="folder")
        run_id = self.new_run(store).info.run_id
        snap = f"runs:/{run_id}/_shipyard/datasets/{name}/1"
        version, created = store.datasets.log_version(name, digest=digest, source="/d", kind="folder",
                                                      snapshot_uri=snap)
        assert not created
        assert version.snapshot_uri == snap

    def test_unknown_dataset(self, store: Store) -> None:
        name = _name("missing")
        with pytest.raises(NotFound, match=name):
            store.datasets.list_versions(name)
        with pytest.raises(NotFound, match=name):
            store.datasets.get_version(name, 1)
        known = _name()
        store.datasets.log_version(known, digest=_digest(), source="/d", kind="file")
        with pytest.raises(NotFound, match="no version 5"):
            store.datasets.get_version(known, 5)

    def test_concurrent_first_use_of_a_name(self, store: Store) -> None:
        name = _name()
        digests = [_digest() for _ in range(6)]
        errors: list[BaseException] = []

        def log(d: str) -> None:
            try:
                store.datasets.log_version(name, digest=d, source="/d", kind="file")
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=log, args=(d,)) for d in digests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(v.version for v in store.datasets.list_versions(name)) == list(range(1, 7))

    # -- lineage -------------------------------------------------------------------------
    def test_edges_both_ways_and_idempotent(self, store: Store) -> None:
        run = Node(NodeKind.RUN, uuid.uuid4().hex)
        data = Node(NodeKind.DATASET, f"{_name()}@1")
        out = Node(NodeKind.DATASET, f"{_name()}@1")
        store.lineage.add_edges([Edge(data, run, Relation.INPUT, "training"), Edge(run, out, Relation.OUTPUT)])
        store.lineage.add_edges([Edge(data, run, Relation.INPUT, "training")])  # recorded once
        [into] = store.lineage.edges([run], upstream=True)
        assert (into.source, into.target, into.relation, into.context) == (data, run, Relation.INPUT, "training")
        assert into.timestamp > 0
        assert [e.target for e in store.lineage.edges([run], upstream=False)] == [out]
        assert store.lineage.edges([Node(NodeKind.RUN, "nothing")], upstream=True) == []

    def test_events_write_their_edges(self, store: Store) -> None:
        parent = self.new_run(store)
        child = self.new_run(store, parent.info.experiment_id, parent_run_id=parent.info.run_id)
        parent_node, child_node = Node(NodeKind.RUN, parent.info.run_id), Node(NodeKind.RUN, child.info.run_id)
        [edge] = store.lineage.edges([child_node], upstream=True)
        assert (edge.source, edge.relation) == (parent_node, Relation.CHILD)
        name = _name("model")
        store.models.create_model(name)
        source = self.model_source(store)
        run_id = source.split("/")[1]
        store.models.create_version(name, source=source, run_id=run_id)
        [edge] = store.lineage.edges([Node(NodeKind.MODEL, f"{name}/1")], upstream=True)
        assert (edge.source, edge.relation) == (Node(NodeKind.RUN, run_id), Relation.MODEL)
        store.models.rename_model(name, name + "-v2")
        [edge] = store.lineage.edges([Node(NodeKind.RUN, run_id)], upstream=False)
        assert edge.target == Node(NodeKind.MODEL, f"{name}-v2/1")
