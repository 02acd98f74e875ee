"""The access-scoped store on a real SqlStore: what a member of project A sees and may change,
and that B's objects answer exactly as absent ones do."""

from __future__ import annotations

import inspect
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.auth import ANONYMOUS, Permission, Principal, local_principal
from shipyard.auth.scoped import ScopedStore, scoped_store
from shipyard.entities import (
    Deployment,
    Edge,
    LoggedModel,
    LoggedModelQuery,
    Metric,
    Node,
    NodeKind,
    Param,
    Relation,
    Route,
    RunLink,
    RunLinkKind,
    RunQuery,
    RunTag,
)
from shipyard.entities.auth import Role
from shipyard.entities.monitor import Monitor
from shipyard.entities.registry import RegistryQuery
from shipyard.errors import AlreadyExists, Conflict, NotFound, PermissionDenied
from shipyard.store.protocol import Store
from shipyard.store.sql import SqlStore

A, B = "team-a", "team-b"


@dataclass
class World:
    store: SqlStore
    empty: SqlStore  # a second database with nothing in it: what "absent" answers
    exp: dict[str, str]
    run: dict[str, str]
    logged: dict[str, str]


def _fill(store: SqlStore, project: str, tag: str) -> tuple[str, str, str]:
    exp = store.experiments.create(f"exp-{tag}", project=project).experiment_id
    run = store.runs.create(exp, run_name=f"run-{tag}", start_time=1).info.run_id
    store.metrics.log(run, [Metric("loss", 0.5, 0, 1)])
    store.datasets.log_version(f"data-{tag}", digest=f"d-{tag}", source="s", kind="file", project=project)
    store.lineage.add_edges([Edge(Node(NodeKind.DATASET, f"data-{tag}@1"), Node(NodeKind.RUN, run), Relation.INPUT)])
    store.models.create_model(f"model-{tag}", project=project)
    store.models.create_version(f"model-{tag}", source=f"runs:/{run}/model", run_id=run)
    store.models.set_alias(f"model-{tag}", "staging", 1)
    store.deployments.create(Deployment(f"dep-{tag}", "prod", (Route(f"model-{tag}", 1, 100),), project=project))
    store.monitors.create(Monitor(f"mon-{tag}", deployment=f"dep-{tag}", project=project))
    logged = store.logged_models.create(LoggedModel(f"m-{uuid.uuid4().hex}", exp, "lm", run, "model",
                                                    source_run_id=run)).model_id
    store.logged_models.add_run_links([RunLink(run, RunLinkKind.MODEL_OUTPUT, logged)])
    return exp, run, logged


def _world(tmp_path: Path) -> typing.Iterator[World]:
    store = SqlStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    empty = SqlStore(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    exp_a, run_a, lm_a = _fill(store, A, "a")
    exp_b, run_b, lm_b = _fill(store, B, "b")
    # a run of A that read B's data: the edge crosses the two projects
    store.lineage.add_edges([Edge(Node(NodeKind.DATASET, "data-b@1"), Node(NodeKind.RUN, run_a), Relation.INPUT)])
    yield World(store, empty, {A: exp_a, B: exp_b}, {A: run_a, B: run_b}, {A: lm_a, B: lm_b})
    store.close()
    empty.close()


@pytest.fixture
def world(tmp_path: Path) -> typing.Iterator[World]:
    yield from _world(tmp_path)


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[World]:
    """One world for the tests that only read it, or only try changes that are refused."""
    yield from _world(tmp_path_factory.mktemp("unchanged"))


def member(role: Role, *, project: str = A, scope: tuple[str, Role] | None = None,
           grants: list[tuple[str, Role]] | None = None) -> Principal:
    return Principal.signed_in("bob", grants=grants if grants is not None else [(A, role)], scope=scope,
                               project=project)


def scoped(world: World, role: Role, permission: Permission = Permission.READ, **kw: Any) -> Store:
    touched = kw.pop("touched", None)
    return scoped_store(world.store, member(role, **kw), permission, touched=touched)


# -- hidden is absent -----------------------------------------------------------------------
# (name, call, key): the call made with B's key through a viewer of A, and with the same key on
# an empty store, must fail alike.
Call = Callable[[Store, str], object]
HIDDEN: list[tuple[str, Call, Callable[[World], str]]] = [
    ("run", lambda s, k: s.runs.get(k), lambda w: w.run[B]),
    ("run-metric-history", lambda s, k: s.metrics.history(k, "loss"), lambda w: w.run[B]),
    ("run-history-columns", lambda s, k: s.metrics.history_columns(k, "loss"), lambda w: w.run[B]),
    ("run-update", lambda s, k: s.runs.update(k, run_name="x"), lambda w: w.run[B]),
    ("run-log-metrics", lambda s, k: s.metrics.log(k, [Metric("x", 1.0, 0, 1)]), lambda w: w.run[B]),
    ("experiment", lambda s, k: s.experiments.get(k), lambda w: w.exp[B]),
    ("experiment-set-tags", lambda s, k: s.experiments.set_tags(k, {"a": "b"}), lambda w: w.exp[B]),
    ("experiment-new-run", lambda s, k: s.runs.create(k, run_name="r", start_time=1), lambda w: w.exp[B]),
    ("model", lambda s, k: s.models.get_model(k), lambda w: "model-b"),
    ("model-history", lambda s, k: s.models.history(k), lambda w: "model-b"),
    ("version", lambda s, k: s.models.get_version(k, 1), lambda w: "model-b"),
    ("version-unknown", lambda s, k: s.models.get_version(k, 99), lambda w: "model-b"),
    ("version-by-alias", lambda s, k: s.models.get_version_by_alias(k, "staging"), lambda w: "model-b"),
    ("version-set-alias", lambda s, k: s.models.set_alias(k, "staging", 1), lambda w: "model-b"),
    ("version-approve", lambda s, k: s.models.approve_version(k, 1, user="bob"), lambda w: "model-b"),
    ("dataset-version", lambda s, k: s.datasets.get_version(k, 1), lambda w: "data-b"),
    ("dataset-version-unknown", lambda s, k: s.datasets.get_version(k, 7), lambda w: "data-b"),
    ("dataset-versions", lambda s, k: s.datasets.list_versions(k), lambda w: "data-b"),
    ("deployment", lambda s, k: s.deployments.get(k), lambda w: "dep-b"),
    ("deployment-history", lambda s, k: s.deployments.history(k), lambda w: "dep-b"),
    ("deployment-delete", lambda s, k: s.deployments.delete(k), lambda w: "dep-b"),
    ("monitor", lambda s, k: s.monitors.get(k), lambda w: "mon-b"),
    ("monitor-evaluations", lambda s, k: s.monitors.evaluations(k), lambda w: "mon-b"),
    ("monitor-alerts", lambda s, k: s.monitors.alerts(k), lambda w: "mon-b"),
    ("logged-model", lambda s, k: s.logged_models.get(k), lambda w: w.logged[B]),
    ("logged-model-tags", lambda s, k: s.logged_models.set_tags(k, {"a": "b"}), lambda w: w.logged[B]),
    ("run-links", lambda s, k: s.logged_models.add_run_links([RunLink(k, RunLinkKind.MODEL_INPUT, "m")]),
     lambda w: w.run[B]),
]


@pytest.mark.parametrize(("call", "key"), [(c, k) for _, c, k in HIDDEN], ids=[n for n, _, _ in HIDDEN])
@pytest.mark.parametrize("role", [Role.VIEWER, Role.OWNER], ids=["viewer", "owner"])
def test_another_projects_object_answers_as_an_absent_one(unchanged: World, call: Call,
                                                          key: Callable[[World], str], role: Role) -> None:
    hidden = key(unchanged)
    with pytest.raises(NotFound) as absent:
        call(unchanged.empty, hidden)
    with pytest.raises(NotFound) as refused:
        call(scoped(unchanged, role, Permission.WRITE if role is Role.OWNER else Permission.READ), hidden)
    assert (type(refused.value), refused.value.message, refused.value.details) == \
        (type(absent.value), absent.value.message, absent.value.details)


def test_absent_objects_through_the_wrapper_answer_as_the_store(unchanged: World) -> None:
    world = unchanged
    viewer = scoped(world, Role.VIEWER)
    for call, key in [(lambda s: s.runs.get("f" * 32), "run"), (lambda s: s.models.get_model("nope"), "model"),
                      (lambda s: s.monitors.get("nope"), "monitor"), (lambda s: s.deployments.history("x"), "dep")]:
        with pytest.raises(NotFound) as direct:
            call(world.store)
        with pytest.raises(NotFound) as wrapped:
            call(viewer)
        assert wrapped.value.message == direct.value.message, key


# -- reading ---------------------------------------------------------------------------------
def test_a_viewer_reads_its_projects_objects(unchanged: World) -> None:
    world = unchanged
    s = scoped(world, Role.VIEWER)
    assert s.runs.get(world.run[A]).info.run_id == world.run[A]
    assert s.experiments.get(world.exp[A]).project == A
    assert s.experiments.get_by_name("exp-a") is not None
    assert s.metrics.history(world.run[A], "loss")[0].value == 0.5
    assert s.models.get_version("model-a", 1).run_id == world.run[A]
    assert s.models.get_version_by_alias("model-a", "staging").version == 1
    assert s.datasets.get_version("data-a", 1).project == A
    assert s.deployments.get("dep-a").project == A
    assert [e.deployment.name for e in s.deployments.history("dep-a")] == ["dep-a"]
    assert s.monitors.get("mon-a").deployment == "dep-a"
    assert s.logged_models.get(world.logged[A]).experiment_id == world.exp[A]
    assert [m.model_id for m in s.logged_models.list_for_run(world.run[A])] == [world.logged[A]]


def test_lists_searches_and_pages_hold_only_visible_objects(unchanged: World) -> None:
    world = unchanged
    s = scoped(world, Role.VIEWER)
    assert [e.name for e in s.experiments.list()] == ["exp-a"]
    assert s.experiments.list(projects=[B]) == []
    assert s.experiments.get_by_name("exp-b") is None
    both = (world.exp[A], world.exp[B])
    page = s.runs.search(RunQuery(both, max_results=1))
    assert [r.info.run_id for r in page.items] == [world.run[A]]
    assert page.next_page_token is None
    assert [m.name for m in s.models.search_models(RegistryQuery()).items] == ["model-a"]
    assert [(v.name, v.version) for v in s.models.search_versions(RegistryQuery()).items] == [("model-a", 1)]
    assert s.models.search_models(RegistryQuery(projects=(B,))).items == []
    assert [d.name for d in s.datasets.list_datasets()] == ["data-a"]
    assert [d.name for d in s.deployments.list()] == ["dep-a"]
    assert [m.name for m in s.monitors.list()] == ["mon-a"]
    assert s.monitors.list("dep-b") == []
    assert [m.model_id for m in s.logged_models.search(LoggedModelQuery(both)).items] == [world.logged[A]]
    assert s.logged_models.list_for_run(world.run[B]) == []
    links = s.logged_models.run_links([world.run[A], world.run[B]])
    assert [link.ref for link in links[world.run[A]]] == [world.logged[A]]
    assert links[world.run[B]] == []
    # the store itself holds both
    assert len(world.store.runs.search(RunQuery(both)).items) == 2
    # a search of hidden experiments only is an empty one
    assert s.runs.search(RunQuery((world.exp[B],))).items == []
    assert s.logged_models.search(LoggedModelQuery((world.exp[B],))).items == []


def test_a_search_over_many_experiments_keeps_the_visible_ones(world: World) -> None:
    for i in range(12):
        exp = world.store.experiments.create(f"many-{i}", project=A if i % 3 == 0 else B).experiment_id
        world.store.runs.create(exp, run_name=f"r{i}", start_time=1)
    ids = tuple(e.experiment_id for e in world.store.experiments.list())
    runs = scoped(world, Role.VIEWER).runs.search(RunQuery(ids)).items
    assert sorted(r.info.run_name for r in runs) == ["r0", "r3", "r6", "r9", "run-a"]


def test_lineage_shows_an_edge_only_when_both_ends_are_visible(world: World) -> None:
    s = scoped(world, Role.VIEWER)
    run_a = Node(NodeKind.RUN, world.run[A])
    assert sorted(str(e.source) for e in world.store.lineage.edges([run_a], upstream=True)) == \
        ["dataset:data-a@1", "dataset:data-b@1"]
    upstream = s.lineage.edges([run_a], upstream=True)
    assert [str(e.source) for e in upstream] == ["dataset:data-a@1"]
    assert [str(e.target) for e in s.lineage.edges([run_a], upstream=False)] == ["model:model-a/1"]
    assert s.lineage.edges([Node(NodeKind.RUN, world.run[B]), Node(NodeKind.DEPLOYMENT, "dep-b")],
                           upstream=True) == []
    assert [str(e.source) for e in s.lineage.edges([Node(NodeKind.DEPLOYMENT, "dep-a")], upstream=True)] == \
        ["model:model-a/1"]
    # a prediction belongs to no project: its edge shows with its deployment
    world.store.lineage.add_edges([Edge(Node(NodeKind.DEPLOYMENT, "dep-a"), Node(NodeKind.PREDICTION, "p1"),
                                        Relation.PREDICTED)])
    assert len(s.lineage.edges([Node(NodeKind.PREDICTION, "p1")], upstream=True)) == 1


def test_lineage_edges_are_added_by_who_writes_the_target_and_sees_the_source(world: World) -> None:
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    run_a, run_b = Node(NodeKind.RUN, world.run[A]), Node(NodeKind.RUN, world.run[B])
    editor.lineage.add_edges([Edge(Node(NodeKind.DATASET, "data-a@1"), run_a, Relation.INPUT, "eval")])
    with pytest.raises(NotFound, match=f"run '{world.run[B]}' does not exist"):
        editor.lineage.add_edges([Edge(run_a, run_b, Relation.CHILD)])
    with pytest.raises(NotFound, match="dataset 'data-b' does not exist"):
        editor.lineage.add_edges([Edge(Node(NodeKind.DATASET, "data-b@1"), run_a, Relation.INPUT, "eval")])
    with pytest.raises(PermissionDenied, match=r"viewer.*editor"):
        scoped(world, Role.VIEWER, Permission.WRITE).lineage.add_edges([Edge(run_a, run_a, Relation.REPRODUCED)])


# -- writing ---------------------------------------------------------------------------------
WRITES: list[tuple[str, Callable[[Store, World], object]]] = [
    ("log-metrics", lambda s, w: s.metrics.log(w.run[A], [Metric("x", 1.0, 0, 1)])),
    ("log-params", lambda s, w: s.runs.log_params(w.run[A], [Param("p", "1")])),
    ("run-tags", lambda s, w: s.runs.set_tags(w.run[A], [RunTag("t", "1")])),
    ("new-run", lambda s, w: s.runs.create(w.exp[A], run_name="r", start_time=1)),
    ("rename-experiment", lambda s, w: s.experiments.rename(w.exp[A], "renamed")),
    ("new-version", lambda s, w: s.models.create_version("model-a", source="s")),
    ("unprotected-alias", lambda s, w: s.models.set_alias("model-a", "candidate", 1)),
    ("dataset-version", lambda s, w: s.datasets.log_version("data-a", digest="new", source="s", kind="file")),
    ("new-monitor", lambda s, w: s.monitors.create(Monitor("mon-new", deployment="dep-a"))),
    ("logged-model-params", lambda s, w: s.logged_models.log_params(w.logged[A], {"p": "1"})),
]


@pytest.mark.parametrize("write", [w for _, w in WRITES], ids=[n for n, _ in WRITES])
@pytest.mark.parametrize("permission", [Permission.READ, Permission.WRITE], ids=["read-route", "write-route"])
def test_a_viewer_may_not_write_and_an_editor_may(world: World, write: Callable[[Store, World], object],
                                                  permission: Permission) -> None:
    with pytest.raises(PermissionDenied) as refused:
        write(scoped(world, Role.VIEWER, permission), world)
    assert "bob is viewer in project 'team-a'" in refused.value.message
    assert "needs editor" in refused.value.message
    assert refused.value.details["needed"] == "editor"
    write(scoped(world, Role.EDITOR, permission), world)


def test_approving_and_protected_aliases_need_a_maintainer(world: World) -> None:
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    with pytest.raises(PermissionDenied, match=r"editor.*needs maintainer"):
        editor.models.approve_version("model-a", 1, user="bob")
    with pytest.raises(PermissionDenied, match="needs maintainer"):
        editor.models.protect_alias("model-a", "staging")
    maintainer = scoped(world, Role.MAINTAINER, Permission.MAINTAIN)
    assert maintainer.models.approve_version("model-a", 1, user="bob").approval is not None
    with pytest.raises(PermissionDenied, match="needs maintainer"):
        editor.models.set_alias("model-a", "production", 1)  # protected by default
    maintainer.models.set_alias("model-a", "production", 1)
    editor.models.delete_alias("model-a", "staging")  # an unprotected one is a write
    with pytest.raises(PermissionDenied, match="needs maintainer"):
        editor.models.delete_alias("model-a", "production")


def test_deployments_need_a_maintainer(world: World) -> None:
    new = Deployment("dep-new", "prod", (Route("model-a", 1, 100),))
    with pytest.raises(PermissionDenied, match="needs maintainer"):
        scoped(world, Role.EDITOR, Permission.WRITE).deployments.create(new)
    maintainer = scoped(world, Role.MAINTAINER, Permission.MAINTAIN)
    made = maintainer.deployments.create(new)
    assert made.project == A
    maintainer.deployments.save(made, kind="update")
    # the versions it serves must be visible: B's model answers as an absent one
    with pytest.raises(NotFound, match="registered model 'model-b' does not exist"):
        maintainer.deployments.create(Deployment("dep-x", "prod", (Route("model-b", 1, 100),)))


@pytest.mark.parametrize("delete", [
    lambda s, w: s.runs.delete(w.run[A]),
    lambda s, w: s.experiments.delete(w.exp[A]),
    lambda s, w: s.logged_models.delete(w.logged[A]),
    lambda s, w: s.models.delete_version("model-a", 2),
    lambda s, w: s.monitors.delete("mon-a"),
], ids=["run", "experiment", "logged-model", "version", "monitor"])
def test_deleting_needs_an_owner(world: World, delete: Callable[[Store, World], object]) -> None:
    world.store.models.create_version("model-a", source="s")  # version 1 is deployed: 2 can go
    with pytest.raises(PermissionDenied, match=r"maintainer in project 'team-a'.*needs owner"):
        delete(scoped(world, Role.MAINTAINER, Permission.DELETE), world)
    delete(scoped(world, Role.OWNER, Permission.DELETE), world)


def test_a_refused_delete_names_no_deployment_of_a_hidden_project(world: World) -> None:
    # team-b's maintainers deploy team-a's model (they were shown it); team-a's owner must not learn their names
    world.store.deployments.create(Deployment("dep-b-uses-a", "prod", (Route("model-a", 1, 100),), project=B))
    owner = scoped(world, Role.OWNER, Permission.DELETE)
    for attempt in (lambda: owner.models.delete_model("model-a", force=True),
                    lambda: owner.models.delete_version("model-a", 1, force=True),
                    lambda: owner.models.rename_model("model-a", "model-a2")):
        with pytest.raises(Conflict) as refused:
            attempt()
        told = str(refused.value) + repr(refused.value.details)
        assert "dep-b-uses-a" not in told
        assert "dep-a" in told  # its own project's deployment is still named
        assert "1 deployment in a project bob cannot see" in told
    assert world.store.models.get_model("model-a") is not None


def test_a_wrapper_for_a_write_route_needs_the_write_role_to_read(world: World) -> None:
    with pytest.raises(PermissionDenied, match="needs editor"):
        scoped(world, Role.VIEWER, Permission.WRITE).runs.get(world.run[A])
    assert scoped(world, Role.VIEWER, Permission.WRITE).experiments.list() == []


def test_a_project_token_caps_the_users_role(world: World) -> None:
    capped = scoped(world, Role.OWNER, Permission.WRITE, scope=(A, Role.VIEWER))
    with pytest.raises(PermissionDenied) as refused:
        capped.runs.set_tags(world.run[A], [RunTag("t", "1")])
    assert "through this token" in refused.value.message
    assert "the user is owner" in refused.value.message
    reader = scoped(world, Role.OWNER, scope=(A, Role.VIEWER))
    assert reader.runs.get(world.run[A]).info.run_id == world.run[A]
    # a token for B gives nothing in A, whatever the user holds there
    elsewhere = scoped(world, Role.OWNER, scope=(B, Role.OWNER))
    with pytest.raises(NotFound):
        elsewhere.runs.get(world.run[A])
    assert elsewhere.experiments.list() == []


# -- creating --------------------------------------------------------------------------------
def test_new_objects_go_to_the_principals_project(world: World) -> None:
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    assert editor.experiments.create("new-exp").project == A
    assert editor.models.create_model("new-model").project == A
    version, created = editor.datasets.log_version("new-data", digest="x", source="s", kind="file")
    assert created
    assert version.project == A
    assert editor.monitors.create(Monitor("new-mon", deployment="dep-a")).project == A
    assert world.store.monitors.get("new-mon").project == A
    # a dataset keeps its first version's project
    assert editor.datasets.log_version("data-a", digest="y", source="s", kind="file", project="elsewhere")[0] \
        .project == A


def test_creating_is_refused_without_the_editor_role_there(world: World) -> None:
    nowhere = scoped(world, Role.EDITOR, Permission.WRITE, project=B)  # editor of A, making objects in B
    with pytest.raises(PermissionDenied, match=r"bob has no role in project 'team-b'.*needs editor"):
        nowhere.experiments.create("x")
    with pytest.raises(PermissionDenied, match="no role in project 'team-b'"):
        scoped(world, Role.EDITOR, Permission.WRITE).models.create_model("x", project=B)
    with pytest.raises(PermissionDenied, match=r"viewer in project 'team-a'.*needs editor"):
        scoped(world, Role.VIEWER, Permission.WRITE).datasets.log_version("x", digest="x", source="s", kind="f")
    with pytest.raises(PermissionDenied, match="needs maintainer"):
        scoped(world, Role.EDITOR, Permission.WRITE).deployments.create(
            Deployment("d", "prod", (Route("model-a", 1, 100),)))
    with pytest.raises(AlreadyExists, match="'data-b' already exists in a project bob cannot see"):
        scoped(world, Role.EDITOR, Permission.WRITE).datasets.log_version("data-b", digest="z", source="s", kind="f")
    assert world.store.experiments.get_by_name("x") is None


def test_a_hidden_experiments_taken_name_tells_no_id(world: World) -> None:
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    hidden_id = world.store.experiments.get_by_name("exp-b").experiment_id
    for attempt in (lambda: editor.experiments.create("exp-b"),
                    lambda: editor.experiments.rename(editor.experiments.get_by_name("exp-a").experiment_id, "exp-b")):
        with pytest.raises(AlreadyExists) as refused:
            attempt()
        assert "'exp-b' already exists in a project bob cannot see" in str(refused.value)
        assert hidden_id not in str(refused.value)
    editor.experiments.create("exp-a2")
    with pytest.raises(AlreadyExists, match=r"'exp-a2' already exists with id \d+"):  # its own: the store's words
        editor.experiments.create("exp-a2")


def test_what_a_new_object_names_must_be_visible(world: World) -> None:
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    with pytest.raises(NotFound, match="deployment 'dep-b' does not exist"):
        editor.monitors.create(Monitor("watching-b", deployment="dep-b"))
    with pytest.raises(NotFound, match=f"run '{world.run[B]}' does not exist"):
        editor.models.create_version("model-a", source="s", run_id=world.run[B])
    # a viewer's role is enough for what is only named
    reader = Principal.signed_in("bob", grants=[(A, Role.EDITOR), (B, Role.VIEWER)], project=A)
    made = scoped_store(world.store, reader, Permission.WRITE).models.create_version(
        "model-a", source="s", run_id=world.run[B])
    assert made.run_id == world.run[B]


# -- bookkeeping -----------------------------------------------------------------------------
def test_an_unrestricted_principal_gets_the_store_itself(world: World) -> None:
    for principal in (ANONYMOUS, local_principal()):
        assert scoped_store(world.store, principal, Permission.DELETE) is world.store
    admin = Principal.signed_in("root", admin=True)
    wrapped = scoped_store(world.store, admin, Permission.DELETE)
    assert isinstance(wrapped, ScopedStore)
    assert {e.name for e in wrapped.experiments.list()} == {"Default", "exp-a", "exp-b"}
    wrapped.runs.delete(world.run[B])


def test_touched_objects_are_recorded_once_each(world: World) -> None:
    touched: list[tuple[str, str]] = []
    editor = scoped(world, Role.EDITOR, Permission.WRITE, touched=touched)
    for step in range(3):
        editor.metrics.log(world.run[A], [Metric("x", 1.0, step, 1)])
    run = editor.runs.create(world.exp[A], run_name="r", start_time=1)
    editor.models.set_model_tags("model-a", {"t": "1"})
    editor.models.set_version_tags("model-a", 1, {"t": "1"})
    editor.datasets.get_version("data-a", 1)
    editor.deployments.get("dep-a")
    editor.monitors.get("mon-a")
    editor.logged_models.get(world.logged[A])
    editor.experiments.set_tags(world.exp[A], {"t": "1"})
    with pytest.raises(NotFound):
        editor.runs.get(world.run[B])
    assert touched == [(A, f"run:{world.run[A]}"), (A, f"run:{run.info.run_id}"), (A, "model:model-a"),
                       (A, "model:model-a/1"), (A, "dataset:data-a@1"), (A, "deployment:dep-a"),
                       (A, "monitor:mon-a"), (A, f"logged_model:{world.logged[A]}"),
                       (A, f"experiment:{world.exp[A]}"), (B, f"run:{world.run[B]}")]


def test_project_lookups_are_made_once_per_wrapper(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {}

    def counted(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] = calls.get(name, 0) + 1
            return method(*args, **kwargs)
        return call

    for aggregate, method in [("experiments", "get"), ("runs", "get"), ("models", "get_model")]:
        target = getattr(world.store, aggregate)
        monkeypatch.setattr(target, method, counted(f"{aggregate}.{method}", getattr(target, method)))
    editor = scoped(world, Role.EDITOR, Permission.WRITE)
    for step in range(5):
        editor.metrics.log(world.run[A], [Metric("x", 1.0, step, 1)])
        editor.runs.set_tags(world.run[A], [RunTag("t", str(step))])
        editor.models.set_version_tags("model-a", 1, {"t": str(step)})
    editor.runs.search(RunQuery((world.exp[A], world.exp[B])))
    assert calls == {"runs.get": 1, "experiments.get": 2, "models.get_model": 1}


def test_every_protocol_method_is_wrapped_explicitly(world: World) -> None:
    wrapped = scoped(world, Role.VIEWER)
    assert isinstance(wrapped, ScopedStore)
    assert isinstance(wrapped, Store)
    aggregates = typing.get_type_hints(Store)
    assert set(aggregates) == {"experiments", "runs", "metrics", "models", "datasets", "lineage", "logged_models",
                               "deployments", "monitors"}
    assert "close" in vars(ScopedStore)
    for attribute, protocol in aggregates.items():
        cls = type(getattr(wrapped, attribute))
        assert not hasattr(cls, "__getattr__"), cls
        methods = {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}
        assert methods, protocol
        public = {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
        assert public == methods, f"{cls.__name__}: missing {methods - public}, extra {public - methods}"
        for name in methods:
            expected = inspect.signature(getattr(protocol, name))
            actual = inspect.signature(vars(cls)[name])
            assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == \
                [(p.name, p.kind, p.default) for p in expected.parameters.values()], f"{cls.__name__}.{name}"
