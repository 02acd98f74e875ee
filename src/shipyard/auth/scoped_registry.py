"""The access-scoped model registry, datasets and lineage (see :mod:`shipyard.auth.scoped`).

A model version belongs to its model's project; a dataset to the project of its first version;
a lineage node to the project of the object it names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from shipyard.auth.roles import Permission
from shipyard.auth.scoped_access import ProjectGuard
from shipyard.entities import (
    DatasetVersion,
    Edge,
    ModelVersion,
    Node,
    NodeKind,
    Page,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    VersionStatus,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import Conflict
from shipyard.store.not_found import dataset_not_found, deployed_model_conflict, model_not_found, run_not_found

__all__ = ["ScopedDatasets", "ScopedLineage", "ScopedModels"]

W, M, D = Permission.WRITE, Permission.MAINTAIN, Permission.DELETE


class ScopedModels:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.models

    def _check(self, name: str, floor: Permission = Permission.READ, version: int | None = None, *,
               record: bool = True) -> str:
        """Checked before the store is asked, so that a hidden model's versions, aliases and
        history answer exactly as an absent model's."""
        g = self._guard
        obj = f"model:{name}" if version is None else f"model:{name}/{version}"
        return g.allow(g.model_project(name), obj, lambda: model_not_found(name), floor, record=record)

    @contextmanager
    def _deployments_told(self) -> Iterator[None]:
        """A change refused because deployments use the model names them; those in projects the
        principal cannot see (their maintainers were shown the model) are counted, not named."""
        try:
            yield
        except Conflict as refused:
            names = refused.details.get("deployed_by") or []
            g = self._guard
            hidden = [n for n in names if not g.visible(g.deployment_project(n), f"deployment:{n}")]
            if not hidden:
                raise
            shown = [n for n in names if n not in hidden]
            others = f"{len(hidden)} deployment{'s' if len(hidden) > 1 else ''} in a project {g.principal.name} " \
                     "cannot see"
            raise deployed_model_conflict(refused.details["refused"], [*shown, others], shown) from None

    def _alias_floor(self, name: str, alias: str) -> Permission:
        """Moving an alias is a write; moving a protected one is a maintainer's (as approving)."""
        model = self._store.get_model(name)  # an absent model: the store's own NotFound
        self._guard.learn(NodeKind.MODEL, name, model.project)
        return M if alias in model.protected_aliases else W

    def create_model(self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     user: str = "", project: str = DEFAULT_PROJECT) -> RegisteredModel:
        home = self._guard.home(project, "registered model")
        made = self._store.create_model(name, description=description, tags=tags, user=user, project=home)
        self._guard.learn(NodeKind.MODEL, name, made.project)
        self._guard.record(made.project, f"model:{name}")
        return made

    def get_model(self, name: str) -> RegisteredModel:
        found = self._store.get_model(name)
        self._guard.learn(NodeKind.MODEL, name, found.project)
        self._check(name)
        return found

    def search_models(self, query: RegistryQuery) -> Page[RegisteredModel]:
        return self._store.search_models(replace(query, projects=self._guard.projects(query.projects)))

    def update_model(self, name: str, *, description: str, user: str = "") -> RegisteredModel:
        self._check(name, W)
        return self._store.update_model(name, description=description, user=user)

    def rename_model(self, name: str, new_name: str, *, user: str = "") -> RegisteredModel:
        project = self._check(name, W)
        with self._deployments_told():
            renamed = self._store.rename_model(name, new_name, user=user)
        self._guard.learn(NodeKind.MODEL, name, None)
        self._guard.learn(NodeKind.MODEL, new_name, project)
        return renamed

    def delete_model(self, name: str, *, force: bool = False, user: str = "") -> None:
        self._check(name, D)
        with self._deployments_told():
            self._store.delete_model(name, force=force, user=user)
        self._guard.learn(NodeKind.MODEL, name, None)

    def set_model_tags(self, name: str, tags: Mapping[str, str], *, user: str = "") -> None:
        self._check(name, W)
        self._store.set_model_tags(name, tags, user=user)

    def delete_model_tag(self, name: str, key: str, *, user: str = "") -> None:
        self._check(name, W)
        self._store.delete_model_tag(name, key, user=user)

    def create_version(self, name: str, *, source: str, run_id: str | None = None, description: str = "",
                       tags: Mapping[str, str] | None = None,
                       status: VersionStatus = VersionStatus.READY, user: str = "") -> ModelVersion:
        g = self._guard
        project = self._check(name, W, record=False)
        if run_id is not None:  # the run it came from is only named: any role there will do
            g.refer(g.run_project(run_id), f"run:{run_id}", lambda: run_not_found(run_id))
        made = self._store.create_version(name, source=source, run_id=run_id, description=description, tags=tags,
                                          status=status, user=user)
        g.record(project, f"model:{name}/{made.version}")
        return made

    def get_version(self, name: str, version: int) -> ModelVersion:
        self._check(name, version=version)
        return self._store.get_version(name, version)

    def search_versions(self, query: RegistryQuery) -> Page[ModelVersion]:
        return self._store.search_versions(replace(query, projects=self._guard.projects(query.projects)))

    def update_version(self, name: str, version: int, *, description: str | None = None,
                       status: VersionStatus | None = None, card: str | None = None,
                       user: str = "") -> ModelVersion:
        self._check(name, W, version)
        return self._store.update_version(name, version, description=description, status=status, card=card,
                                          user=user)

    def delete_version(self, name: str, version: int, *, force: bool = False, user: str = "") -> None:
        self._check(name, D, version)
        with self._deployments_told():
            self._store.delete_version(name, version, force=force, user=user)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, user: str = "") -> None:
        self._check(name, W, version)
        self._store.set_version_tags(name, version, tags, user=user)

    def delete_version_tag(self, name: str, version: int, key: str, *, user: str = "") -> None:
        self._check(name, W, version)
        self._store.delete_version_tag(name, version, key, user=user)

    def approve_version(self, name: str, version: int, *, user: str, comment: str = "") -> ModelVersion:
        self._check(name, M, version)
        return self._store.approve_version(name, version, user=user, comment=comment)

    def protect_alias(self, name: str, alias: str, protected: bool = True, *, user: str = "") -> RegisteredModel:
        self._check(name, M)
        return self._store.protect_alias(name, alias, protected, user=user)

    def set_alias(self, name: str, alias: str, version: int, *, user: str = "") -> ModelVersion:
        self._check(name, self._alias_floor(name, alias), version)
        return self._store.set_alias(name, alias, version, user=user)

    def delete_alias(self, name: str, alias: str, *, user: str = "") -> None:
        self._check(name, self._alias_floor(name, alias))
        self._store.delete_alias(name, alias, user=user)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        self._check(name)
        return self._store.get_version_by_alias(name, alias)

    def history(self, name: str) -> list[RegistryEvent]:
        self._check(name)
        return self._store.history(name)


class ScopedDatasets:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.datasets

    def _check(self, name: str, obj: str) -> str:
        g = self._guard
        return g.allow(g.dataset_project(name), obj, lambda: dataset_not_found(name))

    def log_version(self, name: str, *, digest: str, source: str, kind: str, num_rows: int | None = None,
                    size_bytes: int | None = None, schema: Sequence[Mapping[str, Any]] = (),
                    profile: Mapping[str, Any] | None = None, snapshot_uri: str | None = None,
                    user: str = "", project: str = DEFAULT_PROJECT) -> tuple[DatasetVersion, bool]:
        g = self._guard
        existing = g.dataset_project(name)
        if existing is None:
            home = g.home(project, "dataset")
        elif g.visible(existing, f"dataset:{name}", W):
            home = existing  # a dataset stays in the project of its first version
        else:
            # The name is taken, as for an experiment or a model, and it cannot move here:
            # saying so tells no more than a taken name does.
            raise g.taken_elsewhere("dataset", name, "log this data under another name")
        logged, created = self._store.log_version(
            name, digest=digest, source=source, kind=kind, num_rows=num_rows, size_bytes=size_bytes, schema=schema,
            profile=profile, snapshot_uri=snapshot_uri, user=user, project=home)
        g.learn(NodeKind.DATASET, name, logged.project)
        g.record(logged.project, f"dataset:{logged.ref}")
        return logged, created

    def get_version(self, name: str, version: int) -> DatasetVersion:
        self._check(name, f"dataset:{name}@{version}")
        return self._store.get_version(name, version)

    def list_versions(self, name: str) -> list[DatasetVersion]:
        self._check(name, f"dataset:{name}")
        return self._store.list_versions(name)

    def list_datasets(self, *, projects: Sequence[str] | None = None) -> list[DatasetVersion]:
        found = self._store.list_datasets(projects=self._guard.projects(projects))
        for version in found:
            self._guard.learn(NodeKind.DATASET, version.name, version.project)
        return found


class ScopedLineage:
    """An edge is shown only when each of its ends that belongs to a project is visible; one is
    added only by who may write to its target (what the edge says was made) and sees its source."""

    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.lineage

    def _shown(self, node: Node) -> bool:
        return self._guard.sees(self._guard.node_project(node))

    def add_edges(self, edges: Sequence[Edge]) -> None:
        g = self._guard
        for edge in edges:
            target = g.node_project(edge.target)
            if target is not None:
                g.allow(target, str(edge.target), g.node_missing(edge.target), W)
            g.refer(g.node_project(edge.source), str(edge.source), g.node_missing(edge.source))
        self._store.add_edges(edges)

    def edges(self, nodes: Sequence[Node], *, upstream: bool) -> list[Edge]:
        asked = [n for n in nodes if self._shown(n)]
        if not asked:
            return []
        found = self._store.edges(asked, upstream=upstream)
        return [e for e in found if self._shown(e.source) and self._shown(e.target)]
