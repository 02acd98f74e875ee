"""The artifact-store contract (``artifacts_suite.py``) against every backend: the local folder, S3
(moto's standalone server, over real HTTP), Google Cloud Storage (its emulator, over real HTTP) and
the REST store (an in-process server whose own store is a local folder)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.artifacts import CasArtifactStore, LocalStorage
from shipyard.artifacts.rest import RestArtifactStore
from tests.contract.artifacts_suite import ArtifactBackend, ArtifactStoreContract
from tests.support import BASE, GCS_BUCKET, InProcessServer


class FolderBacking:
    """A local folder, read and written with ``pathlib``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def snapshot(self) -> dict[str, bytes]:
        if not self.root.exists():
            return {}
        return {p.relative_to(self.root).as_posix(): p.read_bytes() for p in self.root.rglob("*") if p.is_file()}

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def remove(self, key: str) -> None:
        (self.root / key).unlink()


class BotoBacking:
    """A prefix of an S3 bucket, read and written with boto3 (not s3fs, which the store uses)."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def snapshot(self) -> dict[str, bytes]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/")
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        return {key.removeprefix(f"{self.prefix}/"): self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                for key in keys}

    def write(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)

    def remove(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")


class FsspecBacking:
    """A folder of an fsspec file system, through a file system instance of its own."""

    def __init__(self, fs: Any, root: str) -> None:
        self.fs, self.root = fs, root

    def snapshot(self) -> dict[str, bytes]:
        found = self.fs.find(self.root)
        return {path.removeprefix(f"{self.root}/"): self.fs.cat_file(path) for path in found}

    def write(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/{key}", data)

    def remove(self, key: str) -> None:
        self.fs.rm_file(f"{self.root}/{key}")


class TestLocalArtifactStore(ArtifactStoreContract):
    __test__ = True

    @pytest.fixture
    def backend(self, tmp_path: Path) -> ArtifactBackend:
        root = tmp_path / "store"
        return ArtifactBackend(CasArtifactStore(LocalStorage(root)), FolderBacking(root),
                               lambda: CasArtifactStore(LocalStorage(root)))


S3_CREDENTIALS = {"key": "testing", "secret": "testing", "client_kwargs": {"region_name": "us-east-1"}}


@pytest.fixture(scope="module")
def s3_bucket(moto_endpoint: str) -> tuple[Any, str]:
    """A boto3 client of the moto server and a bucket of this module's (credentials are passed, not
    read from the environment, so this machine's AWS configuration stays out)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto_endpoint, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    bucket = f"shipyard-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return s3, bucket


class TestS3ArtifactStore(ArtifactStoreContract):
    __test__ = True
    concurrent_files = 40

    @pytest.fixture
    def backend(self, moto_endpoint: str, s3_bucket: tuple[Any, str]) -> ArtifactBackend:
        from shipyard.artifacts.fsspec import FsspecStorage

        s3, bucket = s3_bucket
        prefix = f"artifacts-{uuid.uuid4().hex[:12]}"  # each test its own prefix in the module's bucket
        url = f"s3://{bucket}/{prefix}"

        def open_store() -> CasArtifactStore:
            # skip_instance_cache: fsspec would otherwise hand back the first store's file system.
            return CasArtifactStore(FsspecStorage(url, endpoint_url=moto_endpoint, skip_instance_cache=True,
                                                  **S3_CREDENTIALS))

        return ArtifactBackend(open_store(), BotoBacking(s3, bucket, prefix), open_store)


# gcsfs hands aiohttp a simple upload (under 5 MiB) as one bytes object, and aiohttp warns about that.
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
class TestGcsArtifactStore(ArtifactStoreContract):
    __test__ = True
    concurrent_files = 40

    def supports_resumable_uploads(self) -> bool:
        return False  # the emulator answers 501 (real GCS takes them)

    @pytest.fixture
    def backend(self, gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> ArtifactBackend:
        import gcsfs

        from shipyard.artifacts.fsspec import FsspecStorage

        # The variable Google's own clients read; with it gcsfs skips credentials (and slow probes).
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        root = f"{GCS_BUCKET}/{uuid.uuid4().hex}"

        def open_store() -> CasArtifactStore:
            return CasArtifactStore(FsspecStorage(f"gs://{root}", skip_instance_cache=True))

        backing = FsspecBacking(gcsfs.GCSFileSystem(skip_instance_cache=True, use_listings_cache=False), root)
        return ArtifactBackend(open_store(), backing, open_store)


@pytest.fixture(scope="module")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[InProcessServer, Any]]:
    """One in-process server for the module (tests never assume an empty store) and an SDK client
    of it that creates the runs the tests log into."""
    with InProcessServer(tmp_path_factory.mktemp("rest-artifacts")) as server:
        client = server.client()
        experiment = client.create_experiment(f"artifact-contract-{uuid.uuid4().hex[:8]}")
        yield server, (client, experiment)
        client.close()


class TestRestArtifactStore(ArtifactStoreContract):
    __test__ = True

    @pytest.fixture
    def backend(self, rest_server: tuple[InProcessServer, Any]) -> Iterator[ArtifactBackend]:
        server, (client, experiment) = rest_server
        opened: list[RestArtifactStore] = []

        def open_store() -> RestArtifactStore:
            opened.append(RestArtifactStore(BASE, transport=server.transport))
            return opened[-1]

        yield ArtifactBackend(open_store(), FolderBacking(server.artifact_root), open_store,
                              lambda: client.create_run(experiment).info.run_id)
        for store in opened:
            store.close()
