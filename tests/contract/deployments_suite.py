"""The DeploymentStore part of the store contract (mixed into the backend test classes, so it
runs against SQLite file and memory stores, PostgreSQL and the REST store)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace

import pytest

from shipyard.auth import Principal
from shipyard.deploy.rollout import DeploymentService
from shipyard.entities import (
    Batching,
    Deployment,
    DeploymentStatus,
    ModelRef,
    Node,
    NodeKind,
    Relation,
    Resources,
    Route,
)
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store import Store


def _name(prefix: str = "dep") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class DeploymentStoreContract:
    __test__ = False

    def new_deployment(self, store: Store, versions: int = 3, **fields) -> tuple[Deployment, str]:
        """A deployment serving version 1 of a new model with ``versions`` versions."""
        model = self.new_model(store, versions=versions)
        fields.setdefault("environment", "staging")
        fields.setdefault("routes", (Route(model, 1, 100),))
        made = store.deployments.create(Deployment(fields.pop("name", _name()), **fields), user="ana",
                                        detail="first")
        return made, model

    def deployed_edges(self, store: Store, name: str) -> list[tuple[str, str]]:
        edges = store.lineage.edges([Node(NodeKind.DEPLOYMENT, name)], upstream=True)
        assert all(e.relation is Relation.DEPLOYED for e in edges)
        return sorted((str(e.source), e.context) for e in edges)

    # -- create, get, list --------------------------------------------------------------------
    def test_deployment_create_and_get(self, store: Store) -> None:
        model = self.new_model(store, versions=2)
        name = _name()
        made = store.deployments.create(Deployment(
            name, "production", (Route(model, 1, 90), Route(model, 2, 10)), batching=Batching(16, 5),
            resources=Resources(3, "500m", "1Gi")), user="ana", detail="first rollout")
        assert (made.name, made.environment, made.revision, made.status) == \
            (name, "production", 1, DeploymentStatus.ACTIVE)
        assert made.routes == (Route(model, 1, 90), Route(model, 2, 10))
        assert (made.primary.version, made.canary.version) == (1, 2)
        assert (made.batching, made.resources) == (Batching(16, 5.0), Resources(3, "500m", "1Gi"))
        assert made.creation_time > 0
        assert made.last_update_time == made.creation_time
        assert made.user == self.user("ana")
        assert store.deployments.get(name) == made
        [event] = store.deployments.history(name)
        assert (event.name, event.revision, event.kind, event.user, event.detail) == \
            (name, 1, "create", self.user("ana"), "first rollout")
        assert event.deployment == made
        assert self.deployed_edges(store, name) == [(f"model:{model}/1", "primary"), (f"model:{model}/2", "canary")]

    def test_deployment_duplicate_name(self, store: Store) -> None:
        made, model = self.new_deployment(store)
        with pytest.raises(AlreadyExists, match=made.name):
            store.deployments.create(Deployment(made.name, "other", (Route(model, 2, 100),)))
        assert store.deployments.get(made.name) == made
        assert [e.kind for e in store.deployments.history(made.name)] == ["create"]

    def test_deployment_list_by_name_and_environment(self, store: Store) -> None:
        env = "env" + uuid.uuid4().hex[:8]
        b, _ = self.new_deployment(store, name=_name("b"), environment=env)
        a, _ = self.new_deployment(store, name=_name("a"), environment=env)
        other, _ = self.new_deployment(store, environment="elsewhere")
        assert store.deployments.list(env) == [a, b]
        names = [d.name for d in store.deployments.list()]
        assert {a.name, b.name, other.name} <= set(names)
        assert names == sorted(names)
        assert store.deployments.list("no-such-env") == []

    def test_deployment_unknown(self, store: Store) -> None:
        name = _name("missing")
        for call in (lambda: store.deployments.get(name), lambda: store.deployments.history(name),
                     lambda: store.deployments.delete(name),
                     lambda: store.deployments.save(Deployment(name, "x", (Route("m", 1, 100),), revision=1),
                                                    kind="update")):
            with pytest.raises(NotFound, match=name):
                call()

    @pytest.mark.parametrize("missing", ["model", "version"])
    def test_deployment_of_a_missing_version_is_refused(self, store: Store, missing: str) -> None:
        model = self.new_model(store, versions=1) if missing == "version" else _name("no-model")
        name = _name()
        with pytest.raises(NotFound, match=model):
            store.deployments.create(Deployment(name, "prod", (Route(model, 7, 100),)))
        with pytest.raises(NotFound):
            store.deployments.history(name)  # nothing was written
        made, _ = self.new_deployment(store)
        with pytest.raises(NotFound, match=model):
            store.deployments.save(replace(made, shadows=(ModelRef(model, 7),)), kind="shadow")
        assert store.deployments.get(made.name).revision == 1

    # -- shape rules ------------------------------------------------------------------------------
    @pytest.mark.parametrize(("change", "field"), [
        (lambda d, m: replace(d, routes=(Route(m, 1, 90), Route(m, 2, 20))), "routes"),
        (lambda d, m: replace(d, routes=(Route(m, 1, 101),)), "routes[0].weight"),
        (lambda d, m: replace(d, routes=(Route(m, 1, 110), Route(m, 2, -10))), "weight"),
        (lambda d, m: replace(d, routes=()), "routes"),
        (lambda d, m: replace(d, routes=(Route(m, 1, 50), Route(m, 1, 50))), "routes"),
        (lambda d, m: replace(d, routes=(Route(m, 0, 100),)), "routes[0].version"),
        (lambda d, m: replace(d, routes=(Route("a/b", 1, 100),)), "routes[0].model"),
        (lambda d, m: replace(d, shadows=(ModelRef(m, 1),)), "shadows"),
        (lambda d, m: replace(d, environment="has space"), "environment"),
        (lambda d, m: replace(d, environment=""), "environment"),
        (lambda d, m: replace(d, name="a/b"), "name"),
        (lambda d, m: replace(d, batching=Batching(0, 1)), "batching.max_batch_size"),
        (lambda d, m: replace(d, batching=Batching(8, -1)), "batching.max_wait_ms"),
        (lambda d, m: replace(d, resources=Resources(-1)), "resources.replicas"),
        (lambda d, m: replace(d, resources=Resources(1, "lots")), "resources.cpu"),
        (lambda d, m: replace(d, resources=Resources(1, "1", "2 GB")), "resources.memory"),
        (lambda d, m: replace(d, status="PAUSED"), "status"),
    ], ids=["sum", "over-100", "negative", "no-routes", "twice", "version-0", "model-name", "route-and-shadow",
            "environment", "empty-environment", "name", "batch-size", "wait", "replicas", "cpu", "memory",
            "status"])
    def test_deployment_shape_rules(self, store: Store, change, field: str) -> None:
        """The shape rules are the deployment service's (#14), so they hold over every store."""
        service = DeploymentService(store, Principal("ana"))
        made, model = self.new_deployment(store)
        bad = change(made, model)
        with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]")):
            service.create_deployment(replace(bad, name=_name() if bad.name == made.name else bad.name))
        if bad.name == made.name:
            with pytest.raises(InvalidInput, match=field.replace("[", r"\[").replace("]", r"\]")):
                service.save_revision(bad, kind="update")
        assert store.deployments.get(made.name) == made

    def test_deployment_save_refuses_an_unknown_kind(self, store: Store) -> None:
        made, _ = self.new_deployment(store)
        for kind in ("create", "delete", "explode"):
            with pytest.raises(InvalidInput, match="kind"):
                store.deployments.save(made, kind=kind)

    # -- revisions ------------------------------------------------------------------------------
    def test_deployment_revisions_and_history(self, store: Store) -> None:
        made, model = self.new_deployment(store)
        canary = store.deployments.save(replace(made, routes=(Route(model, 1, 80), Route(model, 2, 20))),
                                        kind="canary", user="bo", detail="canary v2")
        assert (canary.revision, canary.user, canary.creation_time) == (2, self.user("bo"), made.creation_time)
        assert canary.last_update_time >= made.last_update_time
        shadowed = store.deployments.save(replace(canary, shadows=(ModelRef(model, 3),)), kind="shadow")
        stopped = store.deployments.save(replace(shadowed, status=DeploymentStatus.STOPPED), kind="stop")
        assert store.deployments.get(made.name) == stopped
        events = store.deployments.history(made.name)
        assert [(e.revision, e.kind) for e in events] == [(1, "create"), (2, "canary"), (3, "shadow"), (4, "stop")]
        assert [e.deployment for e in events] == [made, canary, shadowed, stopped]
        assert events[1].detail == "canary v2"
        assert self.deployed_edges(store, made.name) == [
            (f"model:{model}/1", "primary"), (f"model:{model}/2", "canary"), (f"model:{model}/3", "shadow")]

    def test_deployment_stale_revision_is_a_conflict(self, store: Store) -> None:
        made, model = self.new_deployment(store)
        first = store.deployments.save(replace(made, routes=(Route(model, 1, 90), Route(model, 2, 10))),
                                       kind="canary")
        with pytest.raises(Conflict, match=r"revision 2.*revision 1") as caught:
            store.deployments.save(replace(made, routes=(Route(model, 3, 100),)), kind="update")
        assert caught.value.details == {"expected_revision": 1, "current_revision": 2}
        assert store.deployments.get(made.name) == first
        assert len(store.deployments.history(made.name)) == 2
        # The version of the refused change was never deployed, so it has no edge either.
        assert f"model:{model}/3" not in dict(self.deployed_edges(store, made.name))

    def test_deployment_concurrent_writers_one_wins(self, store: Store) -> None:
        made, model = self.new_deployment(store, versions=5)
        outcomes: list[object] = []

        def write(version: int) -> None:
            try:
                outcomes.append(store.deployments.save(replace(made, routes=(Route(model, version, 100),)),
                                                       kind="update"))
            except BaseException as exc:  # counted below
                outcomes.append(exc)

        threads = [threading.Thread(target=write, args=(v,)) for v in range(2, 6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [o for o in outcomes if isinstance(o, Deployment)]
        assert len(won) == 1
        assert all(isinstance(o, Conflict) for o in outcomes if o not in won)
        assert store.deployments.get(made.name) == won[0]
        assert [e.revision for e in store.deployments.history(made.name)] == [1, 2]

    # -- delete ---------------------------------------------------------------------------------------
    def test_deployed_versions_and_models_cannot_be_deleted_or_renamed(self, store: Store) -> None:
        made, model = self.new_deployment(store)  # serves version 1
        shadowed = store.deployments.save(replace(made, shadows=(ModelRef(model, 2),)), kind="shadow")
        store.deployments.save(replace(shadowed, status=DeploymentStatus.STOPPED), kind="stop")
        for version in (1, 2):  # a route and a shadow; stopped deployments can be started again
            refused = rf"version {version} of model .* is deployed by {made.name} \(stopped\)"
            with pytest.raises(Conflict, match=refused):
                store.models.delete_version(model, version, force=True)
            assert store.models.get_version(model, version).version == version
        with pytest.raises(Conflict, match="deploy delete"):
            store.models.delete_model(model, force=True)
        with pytest.raises(Conflict, match=f"cannot rename model '{model}'"):
            store.models.rename_model(model, model + "-renamed")  # the deployment names it
        assert store.models.get_model(model).name == model
        store.models.delete_version(model, 3)  # no deployment runs it
        store.deployments.delete(made.name)
        store.models.delete_version(model, 1)
        store.models.delete_model(model)
        with pytest.raises(NotFound):
            store.models.get_model(model)

    def test_deployment_delete_keeps_history_and_recreate_continues_it(self, store: Store) -> None:
        made, model = self.new_deployment(store)
        store.deployments.save(replace(made, routes=(Route(model, 2, 100),)), kind="update")
        store.deployments.delete(made.name, user="cy", detail="retired")
        with pytest.raises(NotFound, match=made.name):
            store.deployments.get(made.name)
        assert made.name not in {d.name for d in store.deployments.list()}
        events = store.deployments.history(made.name)
        assert [(e.revision, e.kind, e.user) for e in events] == \
            [(1, "create", self.user("ana")), (2, "update", self.user("")), (3, "delete", self.user("cy"))]
        assert events[-1].deployment.routes == (Route(model, 2, 100),)
        assert events[-1].detail == "retired"
        again = store.deployments.create(Deployment(made.name, "prod", (Route(model, 3, 100),)))
        assert again.revision == 4
        assert [e.kind for e in store.deployments.history(made.name)] == ["create", "update", "delete", "create"]
        assert [s for s, _ in self.deployed_edges(store, made.name)] == \
            [f"model:{model}/1", f"model:{model}/2", f"model:{model}/3"]
