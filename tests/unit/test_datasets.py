"""Datasets through the SDK: versions by content, snapshots and restore, edges, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.entities import Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound


@pytest.fixture
def client(fluent: str) -> shipyard.Client:
    from shipyard.tracking.fluent import default_client

    return default_client()


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=50), "city": rng.choice(["a", "b", "c"], size=50)})


def test_file_versions_follow_content(fluent: str, client: shipyard.Client, tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    with shipyard.start_run() as run:
        first = shipyard.log_dataset(path, context="training")
        again = shipyard.log_dataset(str(path), context="training")
    assert (first.name, first.version, first.kind, first.num_rows) == ("train", 1, "file", 50)
    assert first.source == str(path.resolve())
    assert again == first
    assert {c["name"] for c in first.schema} == {"x", "city"}
    _frame(1).to_csv(path, index=False)
    with shipyard.start_run():
        second = shipyard.log_dataset(path)
    assert second.version == 2
    assert second.digest != first.digest
    assert client.get_dataset("train").version == 2
    assert client.get_dataset("train@1") == first
    [edge] = client.store.lineage.edges([Node(NodeKind.RUN, run.info.run_id)], upstream=True)
    assert (edge.source, edge.relation, edge.context) == (Node(NodeKind.DATASET, "train@1"), Relation.INPUT,
                                                          "training")


def test_frame_snapshot_restores_byte_for_byte(fluent: str, client: shipyard.Client, tmp_path: Path) -> None:
    frame = _frame()
    with shipyard.start_run():
        version = shipyard.log_dataset(frame, name="features", snapshot=True)
    assert (version.kind, version.num_rows) == ("table", 50)
    assert version.snapshot_uri is not None
    from shipyard.tracking.datasets import restore

    restored = restore(client, version, tmp_path / "out")
    pd.testing.assert_frame_equal(pd.read_parquet(restored), frame)
    with pytest.raises(InvalidInput, match="already exists"):
        restore(client, version, tmp_path / "out")


def test_frame_snapshots_check_with_the_recipe_their_digest_names(fluent: str, client: shipyard.Client,
                                                                  tmp_path: Path) -> None:
    from shipyard.data import digest_table
    from shipyard.errors import ArtifactCorrupted
    from shipyard.tracking.datasets import restore

    frame = _frame().assign(kind=lambda f: f["city"].astype("category"))  # a categorical through Parquet
    with shipyard.start_run():
        version = shipyard.log_dataset(frame, name="features", snapshot=True)
    assert version.digest == digest_table(frame)
    assert version.digest.startswith("t2:sha256:")
    restore(client, version, tmp_path / "current")
    # a version recorded before recipe 2 holds a recipe 1 digest ("sha256:<hex>"): it still checks
    store = client.store.datasets
    old, _ = store.log_version("recorded-v1", digest=digest_table(frame, recipe=1), source=version.source,
                               kind="table", snapshot_uri=version.snapshot_uri)
    restore(client, old, tmp_path / "v1")
    wrong, _ = store.log_version("recorded-v1", digest=digest_table(_frame(1), recipe=1), source=version.source,
                                 kind="table", snapshot_uri=version.snapshot_uri)
    with pytest.raises(ArtifactCorrupted, match="its digest is sha256:"):
        restore(client, wrong, tmp_path / "wrong")


def test_folder_snapshot_and_output_edge(fluent: str, client: shipyard.Client, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"\x00\x01" * 1000)
    (folder / "sub" / "b.bin").write_bytes(b"payload")
    with shipyard.start_run() as run:
        version = shipyard.log_dataset(folder, snapshot=True)
        out = shipyard.log_dataset(_frame(), name="scores", output=True)
    assert version.kind == "folder"
    from shipyard.tracking.datasets import restore

    restored = restore(client, version, tmp_path / "restored")
    assert (restored / "a.bin").read_bytes() == (folder / "a.bin").read_bytes()
    assert (restored / "sub" / "b.bin").read_bytes() == b"payload"
    edges = client.store.lineage.edges([Node(NodeKind.RUN, run.info.run_id)], upstream=False)
    assert [(e.target, e.relation) for e in edges] == [(Node(NodeKind.DATASET, out.ref), Relation.OUTPUT)]


def test_bad_input(fluent: str, client: shipyard.Client, tmp_path: Path) -> None:
    with shipyard.start_run():
        with pytest.raises(InvalidInput, match="does not exist"):
            shipyard.log_dataset(tmp_path / "missing.csv")
        with pytest.raises(InvalidInput, match="pandas or polars DataFrame"):
            shipyard.log_dataset({"not": "a table"}, name="x")
        with pytest.raises(InvalidInput, match="name the dataset"):
            shipyard.log_dataset(_frame())
        plain = shipyard.log_dataset(_frame(), name="plain")
    from shipyard.tracking.datasets import restore

    with pytest.raises(InvalidInput, match="no snapshot"):
        restore(client, plain, tmp_path / "r")
    with pytest.raises(NotFound, match="ghost"):
        client.get_dataset("ghost@1")
    with pytest.raises(InvalidInput, match="<name>@<version>"):
        client.get_dataset("plain@x")


def test_cli_versions_show_diff_get(fluent: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    path = tmp_path / "train.parquet"
    frame = _frame()
    frame.to_parquet(path)
    with shipyard.start_run():
        shipyard.log_dataset(path, snapshot=True)
    frame.assign(x=frame["x"] * 10).to_parquet(path)
    with shipyard.start_run():
        shipyard.log_dataset(path)

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["--tracking-uri", fluent, *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    assert "yes" in run("datasets", "versions", "train")  # version 1 has a snapshot
    shown = run("datasets", "show", "train@1")
    assert "city" in shown
    assert "mean" in shown
    diff = run("datasets", "diff", "train@1", "train@2")
    assert "x" in diff
    assert "mean" in diff
    run("datasets", "get", "train@1", str(tmp_path / "restored"))
    assert (tmp_path / "restored" / "train.parquet").read_bytes() != path.read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "restored" / "train.parquet"), frame)
    missing = CliRunner().invoke(app, ["--tracking-uri", fluent, "datasets", "get", "train@2", str(tmp_path / "r2")])
    assert missing.exit_code == 2
    assert "no snapshot" in missing.output
