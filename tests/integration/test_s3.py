"""Artifacts on S3, against moto's standalone S3 server on a free loopback port.

The server runs in a thread of this process (the session's ``moto_endpoint`` fixture,
``tests/conftest.py``), and every client reaches it over real HTTP through the standard AWS
environment variables, exactly as a deployment would reach MinIO or AWS: nothing is mocked inside
boto3 or s3fs. What every artifact store must do runs against S3 in the contract suite
(``tests/contract/test_artifact_stores.py``); this file keeps what is S3's own: the byte-level
storage on fsspec back ends, the URI, the prefix, the sweep, and the team server writing to S3.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

import shipyard
from shipyard.artifacts import CasArtifactStore, open_artifact_store
from shipyard.artifacts.fsspec import FsspecStorage
from shipyard.artifacts.sweep import SweepReport, remove_run_artifacts, sweep_blobs
from shipyard.config import Settings
from shipyard.errors import ArtifactCorrupted, InvalidInput, NotFound
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.ci import require

RUN = "0123456789abcdef0123456789abcdef"
OTHER_RUN = "fedcba9876543210fedcba9876543210"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake credentials and the endpoint, from the same variables an operator would set; any
    real AWS configuration on this machine is kept out."""
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def s3(aws_env: str) -> Any:
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"shipyard-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def keys(s3: Any, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


# -- FsspecStorage: the byte-level contract, on three fsspec back ends ---------------------------


@pytest.fixture(params=["s3", "memory", "local-fs"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FsspecStorage:
    if request.param == "s3":
        endpoint = request.getfixturevalue("aws_env")
        name = request.getfixturevalue("bucket")
        monkeypatch.delenv("AWS_ENDPOINT_URL")  # the endpoint and keys are injected instead
        return FsspecStorage(f"s3://{name}/some/prefix", endpoint_url=endpoint, key="testing", secret="testing",
                             client_kwargs={"region_name": "us-east-1"})
    if request.param == "memory":
        return FsspecStorage(f"memory://shipyard-{uuid.uuid4().hex}/root")
    # fsspec's local file system: not an object store, so writes take the temp-then-move path.
    return FsspecStorage((tmp_path / "fs-root").as_uri())


def test_storage_round_trip(storage: FsspecStorage, tmp_path: Path) -> None:
    assert list(storage.list("")) == []
    storage.put_bytes("a/b.txt", b"hello")
    data = os.urandom((9 << 20) + 3)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    storage.put_file("a/c/big.bin", source)

    with storage.open("a/b.txt") as stream:
        assert stream.read() == b"hello"
    with storage.open("a/c/big.bin") as stream:
        assert b"".join(iter(lambda: stream.read(1 << 20), b"")) == data
    assert storage.exists("a/b.txt")
    assert not storage.exists("a")  # a folder is not an object
    assert not storage.exists("a/nope")
    assert list(storage.list("")) == [("a", True)]
    assert list(storage.list("a")) == [("b.txt", False), ("c", True)]
    assert list(storage.list("a/b.txt")) == []
    assert list(storage.list("missing")) == []
    with pytest.raises(NotFound, match="a/nope"):
        storage.open("a/nope")
    with pytest.raises(NotFound, match="'a'"):
        storage.open("a")

    storage.put_bytes("a/b.txt", b"replaced")
    with storage.open("a/b.txt") as stream:
        assert stream.read() == b"replaced"
    storage.delete("a/b.txt")
    storage.delete("a/b.txt")  # absent: nothing to do
    assert not storage.exists("a/b.txt")
    assert [name for name, _ in storage.list("a")] == ["c"]  # no temp objects left behind


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", "a/./b", "a/../b", "a\\b", "a\x00b", "",
                                 ".shipyard-tmp-" + "0" * 32])
def test_storage_refuses_unsafe_keys(key: str) -> None:
    storage = FsspecStorage(f"memory://shipyard-{uuid.uuid4().hex}")
    with pytest.raises(InvalidInput):
        storage.put_bytes(key, b"x")
    with pytest.raises(InvalidInput):
        storage.open(key)


def test_missing_backend_is_invalid_input() -> None:
    require("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInput, match="gcsfs"):
            open_artifact_store("gs://bucket/prefix")
    else:  # pragma: no cover - only where gcsfs happens to be installed
        pytest.skip("gcsfs is installed")


# -- garbage collection: removing a run's pointers and sweeping blobs ------------------------------


def test_sweep_frees_only_unreferenced_content(storage: FsspecStorage) -> None:
    """On S3 the grace period is the only guard (``touch`` cannot renew ``LastModified``), and
    pointers are read by a thread pool: the same outcome as on local storage is the point."""
    store = CasArtifactStore(storage)
    shared, unique = b"shared by runs A and B", b"only run A has these bytes"
    store.log_bytes(RUN, shared, "data/shared.txt")
    store.log_bytes(RUN, unique, "model/unique.bin")
    store.log_bytes(OTHER_RUN, shared, "copy.txt")
    store.log_bytes("predictions", b"rows", "deployment=d/x.parquet")
    unique_key = f"blobs/sha256/{hashlib.sha256(unique).hexdigest()[:2]}/{hashlib.sha256(unique).hexdigest()}"
    assert abs(time.time() - storage.modified(unique_key)) < 120
    assert storage.touch(unique_key)
    assert not storage.touch("blobs/sha256/00/missing")
    with pytest.raises(NotFound):
        storage.modified("blobs/sha256/00/missing")
    with pytest.raises(NotFound):
        storage.modified("blobs/sha256")  # a folder is not an object

    assert remove_run_artifacts(store, RUN) == 2
    assert remove_run_artifacts(store, RUN) == 0
    young = sweep_blobs(store)  # everything was written moments ago
    assert (young.blobs_seen, young.blobs_deleted, young.blobs_too_young) == (3, 0, 1)
    dry = sweep_blobs(store, grace_seconds=0, dry_run=True)
    assert storage.exists(unique_key)
    report = sweep_blobs(store, grace_seconds=0)
    assert report == SweepReport(blobs_seen=3, blobs_referenced=2, blobs_deleted=1, bytes_freed=len(unique),
                                 blobs_too_young=0, dry_run=False)
    assert dry == dataclasses.replace(report, dry_run=True)
    assert not storage.exists(unique_key)
    with store.open(OTHER_RUN, "copy.txt") as stream:  # digest verified at the end of the stream
        assert stream.read() == shared
    with store.open("predictions", "deployment=d/x.parquet") as stream:
        assert stream.read() == b"rows"
    assert sweep_blobs(store, grace_seconds=0).blobs_deleted == 0

    store.log_bytes(RUN, unique, "again.bin")
    assert remove_run_artifacts(store, RUN) == 1
    storage.put_bytes(f"runs/{OTHER_RUN}/files/broken.txt", b"not a pointer")
    with pytest.raises(ArtifactCorrupted, match=f"runs/{OTHER_RUN}/files/broken"):
        sweep_blobs(store, grace_seconds=0)
    assert storage.exists(unique_key)  # unreferenced, old enough, and still kept


# -- CasArtifactStore over S3 (the contract suite runs the rest: tests/contract/test_artifact_stores.py) --


def test_an_s3_uri_opens_a_content_addressed_store_below_its_prefix(s3: Any, bucket: str, tmp_path: Path) -> None:
    store = open_artifact_store(f"s3://{bucket}/artifacts")
    assert isinstance(store, CasArtifactStore)
    store.log_bytes(RUN, b"same bytes", "a.txt")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(6 << 20))
    entry = store.log_file(RUN, weights, "model/weights.bin")
    assert entry.size == 6 << 20
    assert entry.digest is not None

    stored = keys(s3, bucket)
    assert all(k.startswith("artifacts/") for k in stored)  # nothing outside the prefix
    assert f"artifacts/runs/{RUN}/files/model/weights.bin" in stored
    assert f"artifacts/blobs/sha256/{entry.digest[7:9]}/{entry.digest[7:]}" in stored


# -- the team server writing to S3 ----------------------------------------------------------------


@pytest.fixture
def s3_server(bucket: str, tmp_path: Path) -> Iterator[ASGITransport]:
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=f"s3://{bucket}/team", server_allowed_hosts="testserver")
    app = create_app(settings)
    transport = ASGITransport(app)
    yield transport
    app.state.client.close()
    transport.close()


def test_server_proxies_uploads_and_downloads_to_s3(s3: Any, bucket: str, s3_server: ASGITransport,
                                                    tmp_path: Path) -> None:
    client = shipyard.Client(tracking_uri="http://testserver",
                             store=RestStore("http://testserver", transport=s3_server))
    try:
        run_id = client.create_run(client.create_experiment("s3")).info.run_id
        src = tmp_path / "src"
        (src / "nested").mkdir(parents=True)
        (src / "config.json").write_text('{"lr": 0.1}')
        (src / "nested" / "data.bin").write_bytes(os.urandom(5 << 20))
        logged = client.log_artifacts(run_id, src, "bundle")
        assert [e.path for e in logged] == ["bundle/config.json", "bundle/nested/data.bin"]

        stored = keys(s3, bucket)
        assert all(k.startswith("team/") for k in stored)  # only below the server's prefix
        assert f"team/runs/{run_id}/files/bundle/nested/data.bin" in stored

        folder = client.download_artifacts(run_id, "bundle", tmp_path / "out")
        assert (folder / "nested" / "data.bin").read_bytes() == (src / "nested" / "data.bin").read_bytes()
        assert [e.path for e in client.artifacts.walk(run_id)] == [e.path for e in logged]

        raw = httpx.Client(base_url="http://testserver", transport=s3_server)  # closing it would close the app's
        refused = raw.put(f"/api/v1/runs/{run_id}/artifacts/..%2f..%2fescape", content=b"x",
                          headers={"content-type": "application/octet-stream"})
        assert refused.status_code == 400
        assert keys(s3, bucket) == stored

        digest = logged[0].digest
        assert digest is not None
        s3.put_object(Bucket=bucket, Key=f"team/blobs/sha256/{digest[7:9]}/{digest[7:]}", Body=b'{"lr": 9.9}')
        with pytest.raises(ArtifactCorrupted):
            client.download_artifacts(run_id, "bundle/config.json", tmp_path / "dl")
        assert not (tmp_path / "dl" / "config.json").exists()
    finally:
        client.close()
