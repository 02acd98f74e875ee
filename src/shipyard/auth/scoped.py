"""The Store as one principal may use it: every object checked against its project.

:func:`scoped_store` wraps a store for one request. Each method finds the project of every
object it touches (a run through its experiment, a model version through its model, a logged
model through its experiment, a lineage node by its kind) and then:

- no role in that project: the store's own ``NotFound`` for an absent object, word for word
  (both come from :mod:`shipyard.store.not_found`), so a refusal never tells that it exists;
- a role below the one needed: ``PermissionDenied`` naming the role held and the one needed.
  The role needed is the request's permission's, raised to the method's own floor: reads need
  ``READ``; changes ``WRITE``; approving, protecting an alias, moving a protected one and every
  change of a deployment ``MAINTAIN``; deleting ``DELETE``;
- lists and searches are filtered in the query itself (the visible projects, the visible
  experiments of a run search), so pages and counts never include what is hidden;
- new experiments, models, datasets, deployments and monitors go to the project asked for, or,
  left at the default project, to ``principal.project``; the principal needs the role there.

Every method is written out (no ``__getattr__``): a method added to a Store protocol fails a
test until it is wrapped here. The (project, object) pairs touched are appended to ``touched``
for the audit log (``run:<id>``, ``experiment:<id>``, ``model:<name>``, ``model:<name>/<version>``,
``dataset:<name>``, ``dataset:<name>@<version>``, ``deployment:<name>``, ``monitor:<name>``,
``logged_model:<id>``; ``project:<name>`` for a creation refused there), each pair once: the
objects a change or a read reached, a new object once it is made, and every object refused.
Lists and searches note nothing: what they return is filtered, not reached one by one.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from dataclasses import replace

from shipyard.auth.principal import Principal
from shipyard.auth.roles import Permission
from shipyard.auth.scoped_access import ProjectGuard, Touched
from shipyard.auth.scoped_registry import ScopedDatasets, ScopedLineage, ScopedModels
from shipyard.auth.scoped_tracking import ScopedExperiments, ScopedLoggedModels, ScopedMetrics, ScopedRuns
from shipyard.entities import Deployment, DeploymentEvent, NodeKind
from shipyard.entities.monitor import Alert, Monitor, MonitorEvaluation
from shipyard.store.not_found import (
    deployment_history_not_found,
    deployment_not_found,
    model_not_found,
    monitor_not_found,
)
from shipyard.store.protocol import (
    DatasetStore,
    DeploymentStore,
    ExperimentStore,
    LineageStore,
    LoggedModelStore,
    MetricStore,
    ModelStore,
    MonitorStore,
    RunStore,
    Store,
)

__all__ = ["ScopedDeployments", "ScopedMonitors", "ScopedStore", "scoped_store"]

R, W, M, D = Permission.READ, Permission.WRITE, Permission.MAINTAIN, Permission.DELETE


def scoped_store(store: Store, principal: Principal, permission: Permission, *,
                 touched: Touched | None = None) -> Store:
    """``store`` as ``principal`` may use it under ``permission`` (the request's route's); the
    store itself for an unrestricted principal (no authentication configured)."""
    if principal.unrestricted:
        return store
    return ScopedStore(store, principal, permission, touched=touched)


class ScopedDeployments:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.deployments

    def _check(self, name: str, floor: Permission) -> str:
        g = self._guard
        return g.allow(g.deployment_project(name), f"deployment:{name}", lambda: deployment_not_found(name), floor)

    def _refer_versions(self, deployment: Deployment) -> None:
        """The versions it serves are only read: any role in their models' projects will do."""
        g = self._guard
        for ref in deployment.versions:
            g.refer(g.model_project(ref.model), f"model:{ref}", functools.partial(model_not_found, ref.model))

    def create(self, deployment: Deployment, *, user: str = "", detail: str = "") -> Deployment:
        home = self._guard.home(deployment.project, "deployment", M)
        self._refer_versions(deployment)
        made = self._store.create(replace(deployment, project=home), user=user, detail=detail)
        self._guard.learn(NodeKind.DEPLOYMENT, made.name, made.project)
        self._guard.record(made.project, f"deployment:{made.name}")
        return made

    def get(self, name: str) -> Deployment:
        found = self._store.get(name)
        self._guard.learn(NodeKind.DEPLOYMENT, name, found.project)
        self._check(name, R)
        return found

    def list(self, environment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Deployment]:
        found = self._store.list(environment, projects=self._guard.projects(projects))
        for deployment in found:
            self._guard.learn(NodeKind.DEPLOYMENT, deployment.name, deployment.project)
        return found

    def save(self, deployment: Deployment, *, kind: str, user: str = "", detail: str = "") -> Deployment:
        project = self._check(deployment.name, M)
        self._refer_versions(deployment)
        # a deployment belongs to its project from its creation on: a revision cannot move it
        return self._store.save(replace(deployment, project=project), kind=kind, user=user, detail=detail)

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        events = self._store.history(name)  # a name never deployed: the store's own NotFound
        # a deleted deployment is judged by the project its history ends in
        self._guard.allow(events[-1].deployment.project, f"deployment:{name}",
                          lambda: deployment_history_not_found(name))
        return events

    def delete(self, name: str, *, user: str = "", detail: str = "") -> None:
        self._check(name, D)
        self._store.delete(name, user=user, detail=detail)
        self._guard.learn(NodeKind.DEPLOYMENT, name, None)


class ScopedMonitors:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.monitors

    def _check(self, name: str, floor: Permission) -> str:
        g = self._guard
        return g.allow(g.monitor_project(name), f"monitor:{name}", lambda: monitor_not_found(name), floor)

    def _refer_deployment(self, monitor: Monitor) -> None:
        """The deployment it watches is only read, but its predictions are: any role there."""
        g = self._guard
        if monitor.deployment:
            name = monitor.deployment
            g.refer(g.deployment_project(name), f"deployment:{name}", lambda: deployment_not_found(name))

    def create(self, monitor: Monitor, *, user: str = "") -> Monitor:
        home = self._guard.home(monitor.project, "monitor")
        self._refer_deployment(monitor)
        made = self._store.create(replace(monitor, project=home), user=user)
        self._guard.learn("monitor", made.name, made.project)
        self._guard.record(made.project, f"monitor:{made.name}")
        return made

    def get(self, name: str) -> Monitor:
        found = self._store.get(name)
        self._guard.learn("monitor", name, found.project)
        self._check(name, R)
        return found

    def list(self, deployment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Monitor]:
        found = self._store.list(deployment, projects=self._guard.projects(projects))
        for monitor in found:
            self._guard.learn("monitor", monitor.name, monitor.project)
        return found

    def save(self, monitor: Monitor, *, user: str = "") -> Monitor:
        project = self._check(monitor.name, W)
        self._refer_deployment(monitor)
        return self._store.save(replace(monitor, project=project), user=user)

    def delete(self, name: str) -> None:
        self._check(name, D)
        self._store.delete(name)
        self._guard.learn("monitor", name, None)

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        self._check(name, W)
        return self._store.acquire_lease(name, owner, seconds)

    def release_lease(self, name: str, owner: str) -> None:
        g = self._guard
        # the store ignores an unknown monitor here, so a hidden one is ignored alike
        if g.visible(g.monitor_project(name), f"monitor:{name}", W):
            self._store.release_lease(name, owner)

    def record_evaluation(self, evaluation: MonitorEvaluation, *, owner: str) -> Monitor:
        self._check(evaluation.monitor, W)
        return self._store.record_evaluation(evaluation, owner=owner)

    def evaluations(self, name: str, *, limit: int | None = None, since: int | None = None,
                    with_report: bool = True) -> builtins.list[MonitorEvaluation]:
        self._check(name, R)
        return self._store.evaluations(name, limit=limit, since=since, with_report=with_report)

    def record_alert(self, alert: Alert) -> Alert:
        self._check(alert.monitor, W)
        return self._store.record_alert(alert)

    def alerts(self, name: str, *, limit: int | None = None) -> builtins.list[Alert]:
        self._check(name, R)
        return self._store.alerts(name, limit=limit)


class ScopedStore:
    """The aggregates of ``store`` as ``principal`` may use them (see the module's docstring)."""

    def __init__(self, store: Store, principal: Principal, permission: Permission, *,
                 touched: Touched | None = None) -> None:
        guard = ProjectGuard(store, principal, permission, touched)
        self.inner = store
        self.principal = principal
        self.permission = permission
        self.experiments: ExperimentStore = ScopedExperiments(guard)
        self.runs: RunStore = ScopedRuns(guard)
        self.metrics: MetricStore = ScopedMetrics(guard)
        self.models: ModelStore = ScopedModels(guard)
        self.datasets: DatasetStore = ScopedDatasets(guard)
        self.lineage: LineageStore = ScopedLineage(guard)
        self.logged_models: LoggedModelStore = ScopedLoggedModels(guard)
        self.deployments: DeploymentStore = ScopedDeployments(guard)
        self.monitors: MonitorStore = ScopedMonitors(guard)

    def close(self) -> None:
        """Nothing to release: the wrapped store belongs to whoever opened it (the server keeps
        one for every request), so closing one request's view must not close it."""
