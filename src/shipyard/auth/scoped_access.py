"""The checks behind the access-scoped store: which project each object belongs to, and what
the principal may do there.

One :class:`ProjectGuard` serves one wrapper, that is one request: the projects it looks up are
kept for the rest of it (a model's project, a deployment's...), so a batch of writes or a search
over many runs asks the store about each object once. What never changes once written (the
experiment of a run or of a logged model, the project of an experiment: nothing moves them, and
their ids are never reused) is kept for the life of the store, for every request, so that the
common request (a run read or written) costs no lookup beyond its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any
from weakref import WeakKeyDictionary

from shipyard.auth.principal import Principal
from shipyard.auth.roles import Permission, minimum_role
from shipyard.entities import Experiment, Node, NodeKind, ViewType
from shipyard.entities.auth import DEFAULT_PROJECT, Role
from shipyard.errors import AlreadyExists, NotFound, PermissionDenied
from shipyard.store.not_found import (
    dataset_not_found,
    deployment_not_found,
    model_not_found,
    monitor_not_found,
    run_not_found,
)
from shipyard.store.protocol import Store

__all__ = ["Missing", "ProjectGuard", "Touched"]

# What the audit log reads: (project, object) pairs, the object as ``run:<id>``, ``model:<name>/<version>``...
# (the server adds its own, e.g. a user or a token, with no project)
Touched = list[tuple[str | None, str]]
# Builds the store's own NotFound for the object, raised when the principal may not know it exists.
Missing = Callable[[], NotFound]

# How many of each immutable fact one store keeps (a few MB at most); past it they are read again.
_FACTS_KEPT = 100_000


class _Facts(dict[str, str]):
    """A bounded map of facts that never change: emptied when full, then filled again."""

    def __setitem__(self, key: str, value: str) -> None:
        if len(self) >= _FACTS_KEPT:
            self.clear()
        super().__setitem__(key, value)


_FACTS: WeakKeyDictionary[Any, tuple[_Facts, _Facts, _Facts]] = WeakKeyDictionary()
_FACTS_LOCK = threading.Lock()


def _facts_of(store: Store) -> tuple[_Facts, _Facts, _Facts]:
    """(experiment id → project, run id → experiment id, logged model id → experiment id) of ``store``."""
    with _FACTS_LOCK:
        try:
            found = _FACTS.get(store)
            if found is None:
                found = _FACTS[store] = (_Facts(), _Facts(), _Facts())
            return found
        except TypeError:  # a store that cannot be weakly referenced: this request only
            return _Facts(), _Facts(), _Facts()


# Above this many experiments not looked up yet, a run search lists the visible experiments in one
# query instead of reading each one.
_LIST_AT = 8


class ProjectGuard:
    """Finds the project of an object and decides: no role there → the store's ``NotFound`` for
    an absent object; a role below what is needed → ``PermissionDenied`` naming both roles.

    What is needed is the role of the request's ``permission`` (the route's), raised to the
    method's own floor (``WRITE`` for a change, ``DELETE`` for a delete...), so a write can never
    pass through a wrapper made for reading."""

    def __init__(self, store: Store, principal: Principal, permission: Permission,
                 touched: Touched | None = None) -> None:
        self.store = store
        self.principal = principal
        self.permission = permission
        self._least = minimum_role(permission) or Role.VIEWER
        self._touched = touched
        self._recorded: set[tuple[str | None, str]] = set()
        # experiment id -> project, run id -> experiment id, logged model id -> experiment id
        self._experiments, self._runs, self._logged_models = _facts_of(store)
        self._models: dict[str, str] = {}  # registered model name -> project
        self._datasets: dict[str, str] = {}
        self._deployments: dict[str, str] = {}
        self._monitors: dict[str, str] = {}

    # -- decisions ------------------------------------------------------------------------
    def needed(self, floor: Permission = Permission.READ) -> Role:
        return max(self._least, minimum_role(floor) or Role.VIEWER)

    def record(self, project: str, obj: str) -> None:
        pair = (project, obj)
        if self._touched is not None and pair not in self._recorded:
            self._recorded.add(pair)
            self._touched.append(pair)

    def visible(self, project: str | None, obj: str, floor: Permission = Permission.READ, *,
                record: bool = True) -> bool:
        """False for an absent object (``project`` None) or one in a project without a role;
        raises ``PermissionDenied`` for a role below the one needed. The object is recorded as
        touched, or with ``record=False`` only when it is refused (the container of a new object:
        the new object is what a creation touched)."""
        if project is None:
            return False
        role = self.principal.role_in(project)
        needed = self.needed(floor)
        if record or role is None or role < needed:
            self.record(project, obj)
        if role is None:
            return False
        if role < needed:
            raise self._refusal(project, f"acting on {obj}", role, needed)
        return True

    def allow(self, project: str | None, obj: str, missing: Missing, floor: Permission = Permission.READ, *,
              record: bool = True) -> str:
        """The object's project, once the principal may act on it there (see :meth:`visible`)."""
        if not self.visible(project, obj, floor, record=record):
            raise missing()
        assert project is not None
        return project

    def refer(self, project: str | None, obj: str, missing: Missing) -> None:
        """An object a change only names (the dataset a run read, the version a deployment
        serves): any role in its project will do, none is the store's ``NotFound``. An absent
        one is left for the store to judge."""
        if project is None:
            return
        self.record(project, obj)
        if self.principal.role_in(project) is None:
            raise missing()

    def sees(self, project: str | None) -> bool:
        """Whether a listed object stays in a list: it belongs to no project, or the principal
        holds the needed role in its project."""
        if project is None:
            return True
        role = self.principal.role_in(project)
        return role is not None and role >= self._least

    def projects(self, asked: Sequence[str] | None) -> tuple[str, ...] | None:
        """The ``projects`` filter of a list or search: those asked for that are visible."""
        visible = self.principal.visible_projects(self.permission)
        if visible is None:
            return None if asked is None else tuple(asked)
        return visible if asked is None else tuple(p for p in asked if p in visible)

    def home(self, project: str, what: str, floor: Permission = Permission.WRITE) -> str:
        """Where a new object goes: the project asked for, or, left at the default, the
        principal's project; refused unless the principal holds the needed role there. (Naming
        a project one has no role in tells nothing about it, so this refusal is no NotFound.)"""
        chosen = self.principal.project if project == DEFAULT_PROJECT else project
        needed = self.needed(floor)
        role = self.principal.role_in(chosen)
        if role is None or role < needed:
            self.record(chosen, f"project:{chosen}")
            raise self._refusal(chosen, f"creating a new {what} there", role, needed)
        return chosen

    def taken_elsewhere(self, what: str, name: str, advice: str) -> AlreadyExists:
        """Names are unique across projects, so a name held in a project the principal cannot see
        must be refused as taken; it is said so, and nothing more about the object."""
        return AlreadyExists(f"{what} {name!r} already exists in a project {self.principal.name} cannot see; "
                             f"{advice}")

    def _refusal(self, project: str, action: str, role: Role | None, needed: Role) -> PermissionDenied:
        who = self.principal.name
        held = f"{who} has no role in project {project!r}" if role is None else \
            f"{who} is {role.label} in project {project!r}"
        own = replace(self.principal, scope=None).role_in(project)
        if self.principal.scope is not None and own is not None and own >= needed:
            held += f" through this token (limited to {self.principal.scope[1].label} in " \
                    f"{self.principal.scope[0]!r}; the user is {own.label})"
            hint = "use a token with a higher role"
        else:
            hint = f"ask an owner of project {project!r} or a server admin for the {needed.label} role"
        return PermissionDenied(f"{held}; {action} needs {needed.label} or higher: {hint}", project=project,
                                role=role.label if role is not None else None, needed=needed.label)

    # -- what each object belongs to (None: it does not exist) ----------------------------
    def learn_experiment(self, experiment: Experiment, *also: str) -> None:
        for key in (experiment.experiment_id, *also):
            self._experiments[key] = experiment.project

    def learn_run(self, run_id: str, experiment_id: str) -> None:
        self._runs[run_id] = experiment_id

    def learn_logged_model(self, model_id: str, experiment_id: str) -> None:
        self._logged_models[model_id] = experiment_id

    def learn(self, kind: NodeKind | str, name: str, project: str | None) -> None:
        """Remember (or, with ``None``, forget) the project of a model, dataset, deployment or monitor."""
        table = self._named(kind)
        if project is None:
            table.pop(name, None)
        else:
            table[name] = project

    def experiment_project(self, experiment_id: str) -> str | None:
        if experiment_id not in self._experiments:
            try:
                self.learn_experiment(self.store.experiments.get(experiment_id), experiment_id)
            except NotFound:
                return None
        return self._experiments[experiment_id]

    def experiment_projects(self, experiment_ids: Iterable[str]) -> dict[str, str]:
        """The project of each of ``experiment_ids`` that exists; many unknown ones are read
        with one list of the visible experiments rather than one read each."""
        ids = list(dict.fromkeys(experiment_ids))
        unknown = [i for i in ids if i not in self._experiments]
        if len(unknown) > _LIST_AT:
            for experiment in self.store.experiments.list(ViewType.ALL, projects=self.projects(None)):
                self.learn_experiment(experiment)
            # what the list did not hold is absent or hidden: both leave the search alike
            ids = [i for i in ids if i in self._experiments]
        found = {i: self.experiment_project(i) for i in ids}
        return {i: p for i, p in found.items() if p is not None}

    def run_project(self, run_id: str) -> str | None:
        if run_id not in self._runs:
            try:
                self.learn_run(run_id, self.store.runs.get(run_id).info.experiment_id)
            except NotFound:
                return None
        return self.experiment_project(self._runs[run_id])

    def logged_model_project(self, model_id: str) -> str | None:
        if model_id not in self._logged_models:
            try:
                self.learn_logged_model(model_id, self.store.logged_models.get(model_id).experiment_id)
            except NotFound:
                return None
        return self.experiment_project(self._logged_models[model_id])

    def model_project(self, name: str) -> str | None:
        return self._lookup(NodeKind.MODEL, name, lambda: self.store.models.get_model(name).project)

    def dataset_project(self, name: str) -> str | None:
        # every version carries its dataset's project, and version 1 always exists
        return self._lookup(NodeKind.DATASET, name, lambda: self.store.datasets.get_version(name, 1).project)

    def deployment_project(self, name: str, *, deleted: bool = False) -> str | None:
        """With ``deleted``, a deployment deleted since keeps the project its history ends in."""
        project = self._lookup(NodeKind.DEPLOYMENT, name, lambda: self.store.deployments.get(name).project)
        if project is None and deleted:
            try:
                return self.store.deployments.history(name)[-1].deployment.project
            except NotFound:
                return None
        return project

    def monitor_project(self, name: str) -> str | None:
        return self._lookup("monitor", name, lambda: self.store.monitors.get(name).project)

    def node_project(self, node: Node) -> str | None:
        """The project of a lineage node's object; ``None`` for one that belongs to none (a
        prediction, a pipeline step) or is not in this store."""
        if node.kind is NodeKind.RUN:
            return self.run_project(node.id)
        if node.kind is NodeKind.DATASET:
            return self.dataset_project(node.id.rpartition("@")[0] or node.id)
        if node.kind is NodeKind.MODEL:
            return self.model_project(node.id.rpartition("/")[0] or node.id)
        if node.kind is NodeKind.DEPLOYMENT:
            return self.deployment_project(node.id, deleted=True)
        if node.kind is NodeKind.ALERT:
            return self.monitor_project(node.id.rpartition("/")[0] or node.id)
        return None

    @staticmethod
    def node_missing(node: Node) -> Missing:
        """The store's NotFound for the object a lineage node names."""
        if node.kind is NodeKind.RUN:
            return lambda: run_not_found(node.id)
        if node.kind is NodeKind.DATASET:
            return lambda: dataset_not_found(node.id.rpartition("@")[0] or node.id)
        if node.kind is NodeKind.MODEL:
            return lambda: model_not_found(node.id.rpartition("/")[0] or node.id)
        if node.kind is NodeKind.DEPLOYMENT:
            return lambda: deployment_not_found(node.id)
        return lambda: monitor_not_found(node.id.rpartition("/")[0] or node.id)

    def _named(self, kind: NodeKind | str) -> dict[str, str]:
        return {NodeKind.MODEL: self._models, NodeKind.DATASET: self._datasets,
                NodeKind.DEPLOYMENT: self._deployments, "monitor": self._monitors}[kind]

    def _lookup(self, kind: NodeKind | str, name: str, read: Callable[[], str]) -> str | None:
        table = self._named(kind)
        if name not in table:
            try:
                table[name] = read()
            except NotFound:
                return None
        return table[name]
