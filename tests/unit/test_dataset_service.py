"""DatasetService: built from a store, an artifact store and a principal, who is recorded as the
user of each version it creates; the module functions still take the SDK's Client (#14)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import shipyard
from shipyard.auth import Principal
from shipyard.entities import Node, NodeKind, Relation
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.tracking.datasets import DatasetService, as_datasets, log_dataset, restore


def _service(client: shipyard.Client, name: str = "bob") -> DatasetService:
    return DatasetService(client.store, client.artifacts, Principal(name))


def test_versions_record_the_principal_not_the_process_login(client: shipyard.Client, tmp_path: Path) -> None:
    run_id = client.create_run("0", "train").info.run_id
    service = _service(client)
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    logged = service.log(run_id, frame, name="train", context="training")
    registered, created = service.log_version("remote", digest="sha256:" + "0" * 64, source="s3://bucket/remote",
                                              kind="file")
    assert created
    assert registered.user == logged.user == "bob"
    assert [v.user for v in client.store.datasets.list_versions("train")] == ["bob"]
    # The same content again is the same version: its user stays the one who created it.
    assert _service(client, "carol").log(run_id, frame, name="train").user == "bob"
    edges = client.store.lineage.edges([Node(NodeKind.RUN, run_id)], upstream=True)
    assert [(e.source, e.relation, e.context) for e in edges] == [
        (Node(NodeKind.DATASET, logged.ref), Relation.INPUT, "training")]


def test_a_client_is_accepted_where_a_service_is(client: shipyard.Client, tmp_path: Path) -> None:
    assert as_datasets(client).principal == client.principal
    service = _service(client)
    assert as_datasets(service) is service
    run_id = client.create_run("0", "train").info.run_id
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n2\n")
    by_client = log_dataset(client, run_id, tmp_path / "data" / "a.csv", snapshot=True)
    by_service = log_dataset(service, run_id, tmp_path / "data" / "a.csv", snapshot=True)
    assert by_client == by_service
    assert by_client.snapshot_uri
    assert restore(client, by_client, tmp_path / "one").read_text() == "x\n1\n2\n"
    assert restore(service, by_client, tmp_path / "two").read_text() == "x\n1\n2\n"
    assert client.get_dataset("a") == service.get("a@1") == service.get("a@latest") == service.get_version("a", 1)
    assert service.list_versions("a") == [by_client]
    assert [v.name for v in service.list_datasets()] == ["a"]


def test_rules_hold_through_the_service(client: shipyard.Client, tmp_path: Path) -> None:
    service = _service(client)
    with pytest.raises(InvalidInput, match="dataset name"):
        service.log_version("a/b", digest="sha256:" + "0" * 64, source="x", kind="file")
    with pytest.raises(InvalidInput, match="not valid"):
        service.get("train@first")
    with pytest.raises(NotFound):
        service.log("0" * 32, pd.DataFrame({"x": [1]}), name="orphan")
    folder = tmp_path / "linked"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a")
    (folder / "b.bin").symlink_to(folder / "a.bin")
    run_id = client.create_run("0", "train").info.run_id
    with pytest.raises(InvalidInput, match="symbolic link"):  # as log_artifacts refuses it
        service.log(run_id, folder, snapshot=True)
    assert client.list_artifacts(run_id) == []


def test_a_finished_runs_snapshot_is_not_replaced(client: shipyard.Client, tmp_path: Path) -> None:
    run_id = client.create_run("0", "train").info.run_id
    service = _service(client)
    (tmp_path / "a.csv").write_text("x\n1\n")
    first = service.log(run_id, tmp_path / "a.csv", snapshot=True)
    client.set_terminated(run_id)
    # The same content has its snapshot already; nothing is written again.
    assert service.log(run_id, tmp_path / "a.csv", snapshot=True) == first
    client.log_text(run_id, "taken", "_shipyard/datasets/b/v1/b.csv")
    (tmp_path / "b.csv").write_text("x\n2\n")
    with pytest.raises(Conflict, match="immutable"):
        service.log(run_id, tmp_path / "b.csv", snapshot=True)
