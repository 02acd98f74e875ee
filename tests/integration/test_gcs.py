"""Artifacts on ``gs://``, against a local Google Cloud Storage emulator over real HTTP.

``gcp-storage-emulator`` (a dev dependency) serves GCS's JSON API from memory in a subprocess on
a free loopback port (the session's ``gcs_emulator`` fixture, ``tests/conftest.py``); gcsfs reaches
it through ``STORAGE_EMULATOR_HOST``, the variable Google's own clients read, so nothing inside
gcsfs is mocked. What every artifact store must do (dedup, delete, a second client seeing the
first's files…) runs against GCS in the contract suite (``tests/contract/test_artifact_stores.py``);
this file keeps the SDK configured with a ``gs://`` artifact URI.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

import shipyard
from shipyard.artifacts import CasArtifactStore
from tests.ci import require
from tests.support import GCS_BUCKET

require("gcsfs")
require("gcp_storage_emulator")


@pytest.fixture
def gcs(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    return f"gs://{GCS_BUCKET}/{time.time_ns()}"


def test_a_run_logs_and_reads_artifacts_on_gs(gcs: str, tmp_path: Path) -> None:
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_uri=gcs)
    try:
        assert isinstance(client.artifacts, CasArtifactStore)
        run_id = client.create_run(client.create_experiment("gcs")).info.run_id
        data = b"model weights " * 1000
        local = tmp_path / "weights.bin"
        local.write_bytes(data)
        entry = client.log_artifact(run_id, local, "model")
        client.log_text(run_id, "same", "a.txt")

        assert entry.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert [e.path for e in client.artifacts.walk(run_id)] == ["a.txt", "model/weights.bin"]
        with client.artifacts.open(run_id, "model/weights.bin") as stream:
            assert stream.read() == data
        restored = client.artifacts.download(run_id, "model", tmp_path / "restored")
        assert (restored / "weights.bin").read_bytes() == data
    finally:
        client.close()
