"""TrackingService: experiments, runs, params, tags, metrics and artifacts as a principal, built
from a store, an artifact store and that principal (#14). The SDK's Client and both server APIs
go through it; the Client only adds its batching (the metric writer, deferred runs) on top."""

from __future__ import annotations

from pathlib import Path

import pytest

import shipyard
from shipyard.auth import Principal
from shipyard.entities import Metric, Param, RunInfo, RunStatus, RunTag
from shipyard.errors import Conflict, InvalidInput, NotFound, RunNotActive
from shipyard.tracking.service import TrackingService, new_run_info

SIGNED_IN = Principal("bob", anonymous=False)
HEX_ID = "0123456789abcdef0123456789abcdef"


def _service(client: shipyard.Client, principal: Principal = SIGNED_IN) -> TrackingService:
    return TrackingService(client.store, client.artifacts, principal)


def test_a_signed_in_principal_is_the_runs_user_whatever_the_caller_claims(client: shipyard.Client) -> None:
    service = _service(client)
    experiment = service.create_experiment("svc", {"team": "growth"})
    made = service.create_run(experiment, "r", user_id="mallory", tags={"k": 1})
    assert made.info.user_id == "bob"
    assert made.data.tags["k"] == "1"  # tag values are strings, as the SDK's
    written = service.write_run(HEX_ID, create=RunInfo(HEX_ID, experiment, "w", RunStatus.RUNNING, 5,
                                                       user_id="mallory"))
    assert written.user_id == "bob"
    assert written.start_time == 5
    # Unauthenticated (the SDK's own principal, a server without --auth): the claim, as sent.
    local = _service(client, Principal("local"))
    assert local.create_run(experiment, user_id="sdk-login").info.user_id == "sdk-login"


def test_write_run_checks_everything_before_the_one_transaction(client: shipyard.Client) -> None:
    service = _service(client)
    run_id = service.create_run("0", "r").info.run_id
    with pytest.raises(InvalidInput, match="metric"):
        service.write_run(run_id, params=[("lr", 0.1)], tags=[("t", "x")], metrics=[Metric("", 1.0, 0, 1)])
    with pytest.raises(InvalidInput, match="32 lowercase hexadecimal"):
        service.write_run("not-an-id", create=new_run_info(SIGNED_IN, "0", "x"))
    stored = service.get_run(run_id)
    assert stored.data.params == {}
    assert stored.data.tags.get("t") is None
    service.log_batch(run_id, metrics=[Metric("loss", 1, 3, 7)], params=[Param("lr", "0.1")],
                      tags=[RunTag("t", "x")])
    stored = service.get_run(run_id)
    assert stored.data.params == {"lr": "0.1"}
    assert stored.data.tags["t"] == "x"
    assert [(m.value, m.step) for m in service.get_metric_history(run_id, "loss")] == [(1.0, 3)]
    assert type(service.get_metric_history(run_id, "loss")[0].value) is float
    with pytest.raises(Conflict):
        service.log_params(run_id, {"lr": 0.2})  # params are immutable


def test_runs_and_experiments_through_the_service(client: shipyard.Client) -> None:
    service = _service(client)
    experiment = service.get_or_create_experiment("svc")
    assert service.get_or_create_experiment("svc").experiment_id == experiment.experiment_id
    assert service.resolve_experiment("svc") == service.resolve_experiment(experiment.experiment_id)
    with pytest.raises(NotFound, match="'nope'"):
        service.resolve_experiment("nope")
    runs = [service.create_run(experiment.experiment_id, f"r{i}").info.run_id for i in range(3)]
    service.log_batch(runs[1], metrics=[Metric("acc", 0.9, 0, 1)])
    found = service.search_runs(experiment.experiment_id, "metrics.acc > 0.5")
    assert [r.info.run_id for r in found] == [runs[1]]
    assert found.token is None
    service.update_run(runs[0], status="finished", end_time=9)
    assert service.get_run(runs[0]).info.status is RunStatus.FINISHED
    with pytest.raises(InvalidInput, match="unknown run status"):
        service.update_run(runs[0], status="done")
    service.delete_run(runs[2])
    with pytest.raises(RunNotActive, match="restore it"):
        service.check_loggable(runs[2])
    service.restore_run(runs[2])
    assert service.check_loggable(runs[2]).run_id == runs[2]


def test_artifacts_follow_the_one_artifact_rule(client: shipyard.Client, tmp_path: Path) -> None:
    service = _service(client)
    run_id = service.create_run("0", "r").info.run_id
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("a")
    service.log_artifacts(run_id, tmp_path / "d", "data")
    service.log_text(run_id, "hello", "notes/hello.txt")
    assert sorted(e.path for e in service.list_artifacts(run_id, "data")) == ["data/a.txt"]
    service.update_run(run_id, status=RunStatus.FINISHED)
    with pytest.raises(Conflict, match="immutable"):  # a finished run's files are its record
        service.log_text(run_id, "changed", "notes/hello.txt")
    service.log_text(run_id, "new", "notes/new.txt")  # new files are still taken
    assert (service.download_artifacts(run_id, "notes/new.txt", tmp_path / "out")).read_text() == "new"
    with pytest.raises(NotFound):
        service.list_artifacts("f" * 32)


def test_the_client_applies_the_services_rules(client: shipyard.Client) -> None:
    """One rule, two ways in: the Client's batching and the service refuse the same input alike."""
    run_id = client.create_run("0", "r").info.run_id
    messages = []
    long_key = {"a" * 300: 1}
    for call in (lambda: client.log_params(run_id, {"": 1}), lambda: _service(client).log_params(run_id, {"": 1}),
                 lambda: client.set_tags(run_id, long_key), lambda: _service(client).set_tags(run_id, long_key)):
        with pytest.raises(InvalidInput) as caught:
            call()
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[2] == messages[3]
    assert client.tracking.principal == client.principal
