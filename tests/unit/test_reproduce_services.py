"""Reproduce is domain code (#14): it plans from a RegistryService and the store's URIs, no Client
needed; the slow end-to-end runs are in tests/integration/test_reproduce.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from shipyard.auth import Principal
from shipyard.errors import NotFound
from shipyard.models.registry import RegistryService
from shipyard.reproduce import QuietProgress
from shipyard.reproduce.plan import StoreUris
from shipyard.reproduce.runner import reproduce_run


def test_a_dry_run_plans_from_the_services(client: shipyard.Client, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    service = RegistryService(client.store, client.artifacts, Principal("bob"))
    uris = StoreUris(client.settings.tracking_uri, str(tmp_path / "artifacts"))
    run = client.create_run("0", tags={"shipyard.source.entry_point": "train.py",
                                       "shipyard.source.argv": "--depth 3"})
    client.log_param(run.info.run_id, "depth", 3)
    client.set_terminated(run.info.run_id)
    (tmp_path / "train.py").write_text("print('hi')\n")
    monkeypatch.chdir(tmp_path)

    result = reproduce_run(service, run.info.run_id, uris=uris, dry_run=True, checkout=False,
                           progress=QuietProgress())
    assert result.status == "planned"
    assert result.plan.command[1:] == ["train.py", "--depth", "3"]
    assert result.plan.params == {"depth": "3"}
    assert result.plan.env["SHIPYARD_REPRODUCES"] == run.info.run_id
    assert result.plan.env["SHIPYARD_ARTIFACT_URI"] == str(tmp_path / "artifacts")

    with pytest.raises(NotFound, match=r"does not exist in sqlite:///elsewhere\.db"):
        reproduce_run(service, "0" * 32, uris=StoreUris("sqlite:///elsewhere.db", "x"), dry_run=True,
                      progress=QuietProgress())
