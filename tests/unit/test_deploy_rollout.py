"""Rollout rules over a real store: create, canary, shadow, promote, rollback, stop, and their history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard import deploy
from shipyard.auth import Principal
from shipyard.deploy.rollout import DeploymentService
from shipyard.entities import Batching, DeploymentStatus, ModelRef, Node, NodeKind, Resources, Route
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound


@pytest.fixture
def churn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[shipyard.Client]:
    """A client whose registry holds model ``churn`` with versions 1-4 (``production`` -> 2)."""
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    monkeypatch.setenv("LOGNAME", "ana")
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             artifact_uri=str(tmp_path / "artifacts"))
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=30)})
    run_id = client.create_run("0", "train").info.run_id
    client.log_model(run_id, LogisticRegression().fit(frame, frame["x"] > 0), "model")
    client.set_terminated(run_id)
    for _ in range(4):
        client.register_model(f"runs:/{run_id}/model", "churn")
    client.approve_model_version("churn", 2)
    client.set_alias("churn", "production", 2)
    yield client
    client.close()


def kinds(client: shipyard.Client, name: str) -> list[str]:
    return [e.kind for e in deploy.deployment_history(client, name)]


def routes(client: shipyard.Client, name: str) -> list[tuple[int, int]]:
    return [(r.version, r.weight) for r in deploy.get_deployment(client, name).routes]


# -- who is recorded ----------------------------------------------------------------------------------
def test_every_revision_records_the_principal_the_service_acts_as(churn: shipyard.Client) -> None:
    carol = DeploymentService(churn.store, Principal("carol", anonymous=False))
    carol.create("svc-api", "models:/churn/1")
    carol.canary("svc-api", "models:/churn/2", 20)
    carol.rollback("svc-api")
    carol.delete("svc-api")
    assert [(e.kind, e.user) for e in carol.history("svc-api")] == [
        ("create", "carol"), ("canary", "carol"), ("rollback", "carol"), ("delete", "carol")]
    # A client given a principal (what a server does per request) records it, not the process login.
    server_side = shipyard.Client(store=churn.store, artifact_store=churn.artifacts, principal=Principal("dave"))
    assert deploy.create_deployment(server_side, "dave-api", "models:/churn/1").user == "dave"


# -- create -----------------------------------------------------------------------------------------
def test_create_resolves_the_alias_to_a_concrete_version(churn: shipyard.Client) -> None:
    made = deploy.create_deployment(churn, "churn-api", "models:/churn@production", "production",
                                    batching=Batching(16, 5), resources=Resources(2, "500m", "1Gi"))
    assert (made.revision, made.environment, made.routes, made.user) == \
        (1, "production", (Route("churn", 2, 100),), "ana")
    assert (made.batching, made.resources) == (Batching(16, 5.0), Resources(2, "500m", "1Gi"))
    churn.approve_model_version("churn", 3)
    churn.set_alias("churn", "production", 3)  # the deployment does not follow the alias
    assert routes(churn, "churn-api") == [(2, 100)]
    [event] = deploy.deployment_history(churn, "churn-api")
    assert "churn/2" in event.detail
    assert "models:/churn@production" in event.detail
    latest = deploy.create_deployment(churn, "latest-api", "models:/churn/latest")
    assert (latest.environment, latest.primary.version) == ("default", 4)


@pytest.mark.parametrize(("uri", "named"), [
    ("models:/churn/99", "99"), ("models:/nope/1", "nope"), ("models:/churn@champion", "champion")])
def test_create_refuses_a_missing_model_version_or_alias(churn: shipyard.Client, uri: str, named: str) -> None:
    with pytest.raises(NotFound, match=named):
        deploy.create_deployment(churn, "churn-api", uri)
    assert deploy.list_deployments(churn) == []
    with pytest.raises(NotFound):
        deploy.deployment_history(churn, "churn-api")


@pytest.mark.parametrize(("name", "uri", "field"), [
    ("churn-api", "runs:/abc/model", "model"), ("churn-api", "churn", "model"), ("a/b", "models:/churn/1", "name")])
def test_create_refuses_bad_input(churn: shipyard.Client, name: str, uri: str, field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        deploy.create_deployment(churn, name, uri)


def test_create_twice_is_already_exists(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    with pytest.raises(AlreadyExists, match="churn-api"):
        deploy.create_deployment(churn, "churn-api", "models:/churn/2")


# -- canary, weight, promote ---------------------------------------------------------------------
def test_canary_then_promote(churn: shipyard.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    monkeypatch.setenv("LOGNAME", "bo")
    assert deploy.canary(churn, "churn-api", "models:/churn/2", 10).routes == \
        (Route("churn", 1, 90), Route("churn", 2, 10))
    assert routes(churn, "churn-api") == [(1, 90), (2, 10)]
    deploy.set_weight(churn, "churn-api", 25)
    assert routes(churn, "churn-api") == [(1, 75), (2, 25)]
    deploy.canary(churn, "churn-api", "models:/churn/3", 5)  # replaces the canary
    assert routes(churn, "churn-api") == [(1, 95), (3, 5)]
    promoted = deploy.promote(churn, "churn-api")
    assert (promoted.routes, promoted.revision, promoted.user) == ((Route("churn", 3, 100),), 5, "bo")
    events = deploy.deployment_history(churn, "churn-api")
    assert [(e.revision, e.kind, e.user) for e in events] == [
        (1, "create", "ana"), (2, "canary", "bo"), (3, "canary", "bo"), (4, "canary", "bo"), (5, "promote", "bo")]
    assert "10% -> 25%" in events[2].detail
    assert "replaces canary churn/2" in events[3].detail
    assert "churn/3 promoted" in events[4].detail


def test_canary_rules(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    with pytest.raises(InvalidInput, match="already the primary"):
        deploy.canary(churn, "churn-api", "models:/churn/1", 10)
    for bad in (-1, 101, 10.5, True):
        with pytest.raises(InvalidInput, match="weight"):
            deploy.canary(churn, "churn-api", "models:/churn/2", bad)
    with pytest.raises(NotFound, match="99"):
        deploy.canary(churn, "churn-api", "models:/churn/99", 10)
    with pytest.raises(Conflict, match="no canary to promote"):
        deploy.promote(churn, "churn-api")
    with pytest.raises(Conflict, match="no canary"):
        deploy.set_weight(churn, "churn-api", 20)
    with pytest.raises(NotFound, match="nope"):
        deploy.canary(churn, "nope", "models:/churn/2", 10)
    assert kinds(churn, "churn-api") == ["create"]


def test_an_unchanged_state_records_nothing(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    deploy.canary(churn, "churn-api", "models:/churn/2", 10)
    assert deploy.canary(churn, "churn-api", "models:/churn/2", 10).revision == 2
    assert deploy.set_weight(churn, "churn-api", 10).revision == 2
    deploy.stop(churn, "churn-api")
    assert deploy.stop(churn, "churn-api").revision == 3
    assert kinds(churn, "churn-api") == ["create", "canary", "stop"]


# -- shadows ----------------------------------------------------------------------------------------
def test_shadow_unshadow_and_shadow_to_canary(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    assert deploy.shadow(churn, "churn-api", "models:/churn/3").shadows == (ModelRef("churn", 3),)
    deploy.shadow(churn, "churn-api", "models:/churn/4")
    assert deploy.shadow(churn, "churn-api", "models:/churn/4").revision == 3  # already shadowing
    with pytest.raises(InvalidInput, match="already answers"):
        deploy.shadow(churn, "churn-api", "models:/churn/1")
    assert deploy.unshadow(churn, "churn-api", "models:/churn/4").shadows == (ModelRef("churn", 3),)
    with pytest.raises(NotFound, match="no shadow churn/4"):
        deploy.unshadow(churn, "churn-api", "models:/churn/4")
    moved = deploy.canary(churn, "churn-api", "models:/churn/3", 20)  # the shadow graduates to canary
    assert (moved.shadows, moved.canary) == ((), Route("churn", 3, 20))
    assert kinds(churn, "churn-api") == ["create", "shadow", "shadow", "shadow", "canary"]


# -- rollback ---------------------------------------------------------------------------------------
def test_rollback_undoes_one_change_at_a_time(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    deploy.canary(churn, "churn-api", "models:/churn/2", 10)
    deploy.promote(churn, "churn-api")
    assert routes(churn, "churn-api") == [(2, 100)]
    back = deploy.rollback(churn, "churn-api")
    assert (back.revision, [(r.version, r.weight) for r in back.routes]) == (4, [(1, 90), (2, 10)])
    assert deploy.rollback(churn, "churn-api").routes == (Route("churn", 1, 100),)
    with pytest.raises(Conflict, match=r"nothing to roll back to.*created with"):
        deploy.rollback(churn, "churn-api")
    events = deploy.deployment_history(churn, "churn-api")
    assert [e.kind for e in events] == ["create", "canary", "promote", "rollback", "rollback"]
    assert events[3].detail == "rolled back to revision 2 (undoing revision 3: promote)"
    assert events[4].detail == "rolled back to revision 1 (undoing revision 2: canary)"
    # A new change after rollbacks can itself be rolled back.
    deploy.shadow(churn, "churn-api", "models:/churn/4")
    assert deploy.rollback(churn, "churn-api").shadows == ()


def test_rollback_of_a_new_deployment_and_of_a_stop(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1", batching=Batching(8, 1))
    with pytest.raises(Conflict, match="nothing to roll back to: revision 1"):
        deploy.rollback(churn, "churn-api")
    deploy.update(churn, "churn-api", batching=Batching(32, 4), resources=Resources(3))
    deploy.stop(churn, "churn-api")
    assert deploy.get_deployment(churn, "churn-api").status is DeploymentStatus.STOPPED
    assert deploy.rollback(churn, "churn-api").status is DeploymentStatus.ACTIVE
    restored = deploy.rollback(churn, "churn-api")
    assert (restored.batching, restored.resources) == (Batching(8, 1.0), Resources())


def test_rollback_to_a_version_deleted_since_is_refused(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    deploy.canary(churn, "churn-api", "models:/churn/3", 10)
    deploy.promote(churn, "churn-api")
    churn.delete_model_version("churn", 1)
    with pytest.raises(NotFound, match="no version 1"):
        deploy.rollback(churn, "churn-api")  # back to 1 (90%) + 3 (10%): but version 1 is gone
    assert routes(churn, "churn-api") == [(3, 100)]
    assert kinds(churn, "churn-api") == ["create", "canary", "promote"]


# -- concurrency, lineage, delete -----------------------------------------------------------------
def test_a_change_made_from_a_stale_read_is_a_conflict(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    stale = deploy.get_deployment(churn, "churn-api")
    deploy.canary(churn, "churn-api", "models:/churn/2", 10)
    with pytest.raises(Conflict, match="at revision 2, but this change was made to revision 1"):
        churn.store.deployments.save(replace(stale, routes=(Route("churn", 4, 100),)), kind="update")
    assert routes(churn, "churn-api") == [(1, 90), (2, 10)]


def test_lineage_edges_from_versions_to_the_deployment(churn: shipyard.Client) -> None:
    from shipyard.lineage import downstream

    deploy.create_deployment(churn, "churn-api", "models:/churn/1")
    deploy.canary(churn, "churn-api", "models:/churn/2", 10)
    deploy.shadow(churn, "churn-api", "models:/churn/3")
    deploy.promote(churn, "churn-api")  # no version newly serving: no new edge
    edges = churn.store.lineage.edges([Node(NodeKind.DEPLOYMENT, "churn-api")], upstream=True)
    assert [(str(e.source), e.relation.value, e.context) for e in edges] == [
        ("model:churn/1", "deployed", "primary"), ("model:churn/2", "deployed", "canary"),
        ("model:churn/3", "deployed", "shadow")]
    graph = downstream("models:/churn/2", client=churn)
    assert Node(NodeKind.DEPLOYMENT, "churn-api") in graph.nodes
    run_graph = downstream(f"run:{churn.get_model_version('churn', 1).run_id}", client=churn)
    assert Node(NodeKind.DEPLOYMENT, "churn-api") in run_graph.nodes  # run -> version -> deployment


def test_delete_keeps_history_and_lists_by_environment(churn: shipyard.Client) -> None:
    deploy.create_deployment(churn, "b-api", "models:/churn/1", "staging")
    deploy.create_deployment(churn, "a-api", "models:/churn/2", "production")
    assert [d.name for d in deploy.list_deployments(churn)] == ["a-api", "b-api"]
    assert [d.name for d in deploy.list_deployments(churn, "staging")] == ["b-api"]
    deploy.delete_deployment(churn, "b-api")
    assert [d.name for d in deploy.list_deployments(churn)] == ["a-api"]
    assert kinds(churn, "b-api") == ["create", "delete"]
    with pytest.raises(NotFound):
        deploy.rollback(churn, "b-api")
