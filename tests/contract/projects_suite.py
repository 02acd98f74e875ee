"""Projects on objects, the store part (mixed into ``StoreContract``, so it runs against SQLite
file and memory stores, PostgreSQL and the REST store): experiments, registered models,
datasets, deployments and monitors are created in a project and keep it, and every list or
search filtered by ``projects`` is filtered in the query (pages and their tokens count only what
the projects hold). ``None`` is every project; an empty sequence is none."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from shipyard.entities import MODEL_GRAMMAR, Deployment, RegistryQuery, Route
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.monitor import Monitor
from shipyard.errors import InvalidInput
from shipyard.filters import parse_filter
from shipyard.store import Store

DIGEST = "sha256:" + "a" * 64
OTHER_DIGEST = "sha256:" + "b" * 64


def _project() -> str:
    return f"proj-{uuid.uuid4().hex[:10]}"


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class ProjectsContract:
    __test__ = False

    # -- experiments ------------------------------------------------------------------------
    def test_experiment_is_created_in_its_project(self, store: Store) -> None:
        project = _project()
        made = store.experiments.create(_name("exp"), {"team": "growth"}, project=project)
        assert made.project == project
        assert store.experiments.get(made.experiment_id).project == project
        assert store.experiments.get_by_name(made.name).project == project
        assert store.experiments.create(_name("exp")).project == DEFAULT_PROJECT
        assert store.experiments.get("0").project == DEFAULT_PROJECT

    def test_experiments_listed_by_project(self, store: Store) -> None:
        first, second = _project(), _project()
        a = store.experiments.create(_name("exp"), project=first)
        b = store.experiments.create(_name("exp"), project=second)
        c = store.experiments.create(_name("exp"), project=first)
        assert store.experiments.list(projects=[first]) == [a, c]  # oldest first, as always
        assert store.experiments.list(projects=(first, second)) == [a, b, c]
        assert store.experiments.list(projects=()) == []
        assert store.experiments.list(projects=[_project()]) == []
        listed = store.experiments.list()
        assert all(e in listed for e in (a, b, c))
        store.experiments.delete(c.experiment_id)
        from shipyard.entities import ViewType

        assert store.experiments.list(ViewType.DELETED_ONLY, projects=[first]) == [
            store.experiments.get(c.experiment_id)]
        assert store.experiments.list(projects=[first]) == [a]

    @pytest.mark.parametrize("bad", ["", " ", "x" * 257, "a\nb"], ids=["empty", "blank", "long", "newline"])
    def test_a_project_name_that_cannot_be_stored_is_refused(self, store: Store, bad: str) -> None:
        name = _name("exp")
        with pytest.raises(InvalidInput, match="project"):
            store.experiments.create(name, project=bad)
        assert store.experiments.get_by_name(name) is None

    def test_projects_must_be_a_list_of_names(self, store: Store) -> None:
        with pytest.raises(InvalidInput, match="projects"):
            store.experiments.list(projects="default")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match="projects"):
            store.datasets.list_datasets(projects="default")  # type: ignore[arg-type]

    # -- registered models and their versions -----------------------------------------------
    def test_model_is_created_in_its_project(self, store: Store) -> None:
        project = _project()
        name = _name("model")
        made = store.models.create_model(name, description="d", project=project)
        assert made.project == project
        assert store.models.get_model(name).project == project
        store.models.rename_model(name, name + "-2")
        assert store.models.get_model(name + "-2").project == project
        assert store.models.get_model(self.new_model(store)).project == DEFAULT_PROJECT

    def test_model_search_by_project_pages_within_it(self, store: Store) -> None:
        first, second = _project(), _project()
        mine = sorted(_name("pm") for _ in range(3))
        for name in mine:
            store.models.create_model(name, project=first)
        theirs = _name("pm")
        store.models.create_model(theirs, project=second)
        page = store.models.search_models(RegistryQuery(max_results=2, projects=(first,)))
        assert [m.name for m in page.items] == mine[:2]
        assert all(m.project == first for m in page.items)
        rest = store.models.search_models(RegistryQuery(max_results=2, page_token=page.next_page_token,
                                                        projects=(first,)))
        assert ([m.name for m in rest.items], rest.next_page_token) == (mine[2:], None)
        both = store.models.search_models(RegistryQuery(max_results=100, projects=(first, second)))
        assert [m.name for m in both.items] == sorted([*mine, theirs])
        assert store.models.search_models(RegistryQuery(projects=())).items == []
        named = RegistryQuery(parse_filter(f"name = '{theirs}'", MODEL_GRAMMAR), projects=(first,))
        assert store.models.search_models(named).items == []
        assert [m.name for m in store.models.search_models(replace(named, projects=None)).items] == [theirs]

    def test_version_search_by_the_project_of_the_model(self, store: Store) -> None:
        first, second = _project(), _project()
        mine = self.new_model(store, versions=3, project=first)
        theirs = self.new_model(store, versions=1, project=second)
        page = store.models.search_versions(RegistryQuery(max_results=2, projects=(first,)))
        assert [(v.name, v.version) for v in page.items] == [(mine, 3), (mine, 2)]
        rest = store.models.search_versions(RegistryQuery(max_results=2, page_token=page.next_page_token,
                                                          projects=(first,)))
        assert ([(v.name, v.version) for v in rest.items], rest.next_page_token) == ([(mine, 1)], None)
        both = store.models.search_versions(RegistryQuery(projects=(first, second)))
        assert {v.name for v in both.items} == {mine, theirs}
        assert store.models.search_versions(RegistryQuery(projects=())).items == []

    # -- datasets -----------------------------------------------------------------------------
    def test_dataset_keeps_the_project_of_its_first_version(self, store: Store) -> None:
        project = _project()
        name = _name("data")
        first, created = store.datasets.log_version(name, digest=DIGEST, source="s3://b/x", kind="file",
                                                    project=project)
        assert (created, first.project) == (True, project)
        second, created = store.datasets.log_version(name, digest=OTHER_DIGEST, source="s3://b/y", kind="file")
        assert (created, second.version, second.project) == (True, 2, project)
        again, created = store.datasets.log_version(name, digest=DIGEST, source="s3://b/x", kind="file",
                                                    project=_project())
        assert (created, again.version, again.project) == (False, 1, project)
        assert store.datasets.get_version(name, 2).project == project
        assert {v.project for v in store.datasets.list_versions(name)} == {project}
        default = _name("data")
        assert store.datasets.log_version(default, digest=DIGEST, source="s3://b/x",
                                          kind="file")[0].project == DEFAULT_PROJECT

    def test_datasets_listed_by_project(self, store: Store) -> None:
        first, second = _project(), _project()
        a, b = sorted(_name("data") for _ in range(2))
        store.datasets.log_version(a, digest=DIGEST, source="s3://b/a", kind="file", project=first)
        latest, _ = store.datasets.log_version(a, digest=OTHER_DIGEST, source="s3://b/a2", kind="file")
        other, _ = store.datasets.log_version(b, digest=DIGEST, source="s3://b/b", kind="file", project=second)
        assert store.datasets.list_datasets(projects=[first]) == [latest]
        assert store.datasets.list_datasets(projects=[first, second]) == [latest, other]
        assert store.datasets.list_datasets(projects=()) == []
        listed = store.datasets.list_datasets()
        assert latest in listed
        assert other in listed

    # -- deployments --------------------------------------------------------------------------
    def test_deployment_stays_in_the_project_it_was_created_in(self, store: Store) -> None:
        project = _project()
        model = self.new_model(store, versions=2)
        name = _name("dep")
        made = store.deployments.create(Deployment(name, "staging", (Route(model, 1, 100),), project=project))
        assert made.project == project
        assert store.deployments.get(name) == made
        moved = replace(made, routes=(Route(model, 2, 100),), project=_project())
        saved = store.deployments.save(moved, kind="update")
        assert (saved.revision, saved.project) == (2, project)
        assert store.deployments.get(name).project == project
        assert [e.deployment.project for e in store.deployments.history(name)] == [project, project]
        other = store.deployments.create(Deployment(_name("dep"), "staging", (Route(model, 1, 100),)))
        assert other.project == DEFAULT_PROJECT

    def test_deployments_listed_by_project(self, store: Store) -> None:
        first, second = _project(), _project()
        model = self.new_model(store, versions=1)
        a, b, c = sorted(_name("dep") for _ in range(3))
        made = {n: store.deployments.create(Deployment(n, env, (Route(model, 1, 100),), project=p))
                for n, env, p in ((a, "staging", first), (b, "production", first), (c, "staging", second))}
        assert store.deployments.list(projects=[first]) == [made[a], made[b]]
        assert store.deployments.list("staging", projects=[first]) == [made[a]]
        assert store.deployments.list(projects=[first, second]) == [made[a], made[b], made[c]]
        assert store.deployments.list(projects=()) == []
        assert store.deployments.list("staging", projects=()) == []

    # -- monitors -----------------------------------------------------------------------------
    def test_monitor_stays_in_the_project_it_was_created_in(self, store: Store) -> None:
        project = _project()
        made = store.monitors.create(Monitor(_name("mon"), deployment=_name("dep"), project=project))
        assert made.project == project
        assert store.monitors.get(made.name) == made
        saved = store.monitors.save(replace(made, alpha=0.01, project=_project()))
        assert (saved.revision, saved.alpha, saved.project) == (2, 0.01, project)
        assert store.monitors.create(Monitor(_name("mon"), deployment="d")).project == DEFAULT_PROJECT

    def test_monitors_listed_by_project(self, store: Store) -> None:
        first, second = _project(), _project()
        deployment = _name("dep")
        a, b, c = sorted(_name("mon") for _ in range(3))
        made = {n: store.monitors.create(Monitor(n, deployment=d, project=p))
                for n, d, p in ((a, deployment, first), (b, _name("dep"), first), (c, deployment, second))}
        assert store.monitors.list(projects=[first]) == [made[a], made[b]]
        assert store.monitors.list(deployment, projects=[first]) == [made[a]]
        assert store.monitors.list(deployment, projects=[first, second]) == [made[a], made[c]]
        assert store.monitors.list(projects=()) == []
