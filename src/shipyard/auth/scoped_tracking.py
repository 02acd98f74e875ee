"""The access-scoped experiments, runs, metrics and logged models (see :mod:`shipyard.auth.scoped`).

A run, and a logged model, belongs to its experiment's project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from shipyard.auth.roles import Permission
from shipyard.auth.scoped_access import ProjectGuard
from shipyard.entities import (
    Experiment,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    RunLink,
    RunQuery,
    RunStatus,
    RunTag,
    RunWrite,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.errors import AlreadyExists, ShipyardError
from shipyard.store.not_found import experiment_not_found, logged_model_not_found, run_not_found, runs_not_found
from shipyard.store.run_writes import write_each

__all__ = ["ScopedExperiments", "ScopedLoggedModels", "ScopedMetrics", "ScopedRuns"]

W, D = Permission.WRITE, Permission.DELETE


class ScopedExperiments:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.experiments

    def _check(self, experiment_id: str, floor: Permission = Permission.READ) -> str:
        g = self._guard
        return g.allow(g.experiment_project(experiment_id), f"experiment:{experiment_id}",
                       lambda: experiment_not_found(experiment_id), floor)

    def create(self, name: str, tags: Mapping[str, str] | None = None, *,
               project: str = DEFAULT_PROJECT) -> Experiment:
        home = self._guard.home(project, "experiment")
        try:
            made = self._store.create(name, tags, project=home)
        except AlreadyExists as taken:
            raise self._taken(name, taken) from None
        self._guard.learn_experiment(made)
        self._guard.record(made.project, f"experiment:{made.experiment_id}")
        return made

    def get(self, experiment_id: str) -> Experiment:
        found = self._store.get(experiment_id)
        self._guard.learn_experiment(found, experiment_id)
        self._check(experiment_id)
        return found

    def get_by_name(self, name: str) -> Experiment | None:
        found = self._store.get_by_name(name)
        if found is None:
            return None
        self._guard.learn_experiment(found)
        return found if self._guard.visible(found.project, f"experiment:{found.experiment_id}") else None

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY, *,
             projects: Sequence[str] | None = None) -> list[Experiment]:
        found = self._store.list(view, projects=self._guard.projects(projects))
        for experiment in found:
            self._guard.learn_experiment(experiment)
        return found

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        self._check(experiment_id, W)
        try:
            return self._store.rename(experiment_id, new_name)
        except AlreadyExists as taken:
            raise self._taken(new_name, taken) from None

    def _taken(self, name: str, taken: AlreadyExists) -> AlreadyExists:
        """Names are unique across projects, so a taken name must be said; of an experiment the
        principal cannot see, nothing more (the store's message names its id and whether it is
        deleted)."""
        holder = self._store.get_by_name(name)
        if holder is not None and self._guard.visible(holder.project, f"experiment:{holder.experiment_id}"):
            return taken
        return self._guard.taken_elsewhere("experiment", name, "choose another name")

    def delete(self, experiment_id: str) -> None:
        self._check(experiment_id, D)
        self._store.delete(experiment_id)

    def restore(self, experiment_id: str) -> None:
        self._check(experiment_id, W)
        self._store.restore(experiment_id)

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        self._check(experiment_id, W)
        self._store.set_tags(experiment_id, tags)

    def delete_tag(self, experiment_id: str, key: str) -> None:
        self._check(experiment_id, W)
        self._store.delete_tag(experiment_id, key)


def check_run(guard: ProjectGuard, run_id: str, floor: Permission = Permission.READ) -> str:
    """The run's project, once the principal may act on the run (NotFound as for no such run)."""
    return guard.allow(guard.run_project(run_id), f"run:{run_id}", lambda: run_not_found(run_id), floor)


def readable_experiments(guard: ProjectGuard, experiment_ids: Sequence[str]) -> tuple[str, ...]:
    """The experiments of a search that the principal may read, in the order asked: a hidden
    one is left out like an absent one, so pages and counts never include its runs."""
    projects = guard.experiment_projects(experiment_ids)
    return tuple(i for i in dict.fromkeys(experiment_ids) if i in projects and guard.sees(projects[i]))


class ScopedRuns:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.runs

    def create(
        self,
        experiment_id: str,
        *,
        run_name: str,
        start_time: int,
        user_id: str = "",
        source: str = "",
        parent_run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        g = self._guard
        # A parent is only named (the store keeps an unknown one as given); the edge to it is
        # shown only to who sees both runs.
        project = g.allow(g.experiment_project(experiment_id), f"experiment:{experiment_id}",
                          lambda: experiment_not_found(experiment_id), W, record=False)
        made = self._store.create(experiment_id, run_name=run_name, start_time=start_time, user_id=user_id,
                                  source=source, parent_run_id=parent_run_id, tags=tags)
        g.learn_run(made.info.run_id, made.info.experiment_id)
        g.record(project, f"run:{made.info.run_id}")
        return made

    def write(
        self,
        run_id: str,
        *,
        create: RunInfo | None = None,
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        metrics: Sequence[Metric] = (),
        status: RunStatus | None = None,
        end_time: int | None = None,
    ) -> RunInfo:
        g = self._guard
        if create is None:
            check_run(g, run_id, W)
            return self._store.write(run_id, params=params, tags=tags, metrics=metrics, status=status,
                                     end_time=end_time)
        # Creating: WRITE in the experiment's project, as for create.
        project = g.allow(g.experiment_project(create.experiment_id), f"experiment:{create.experiment_id}",
                          lambda: experiment_not_found(create.experiment_id), W, record=False)
        info = self._store.write(run_id, create=create, params=params, tags=tags, metrics=metrics, status=status,
                                 end_time=end_time)
        g.learn_run(info.run_id, info.experiment_id)
        g.record(project, f"run:{info.run_id}")
        return info

    def write_many(self, writes: Sequence[RunWrite]) -> list[RunInfo | ShipyardError]:
        return write_each(self, writes)  # each run's access checked as for write

    def get(self, run_id: str) -> Run:
        found = self._store.get(run_id)
        self._guard.learn_run(run_id, found.info.experiment_id)
        check_run(self._guard, run_id)
        return found

    def update(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
    ) -> RunInfo:
        check_run(self._guard, run_id, W)
        return self._store.update(run_id, status=status, end_time=end_time, run_name=run_name)

    def delete(self, run_id: str) -> None:
        check_run(self._guard, run_id, D)
        self._store.delete(run_id)

    def restore(self, run_id: str) -> None:
        check_run(self._guard, run_id, W)
        self._store.restore(run_id)

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        if params:  # the store takes an empty batch as a no-op, even for an unknown run
            check_run(self._guard, run_id, W)
        self._store.log_params(run_id, params)

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        if tags:
            check_run(self._guard, run_id, W)
        self._store.set_tags(run_id, tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        check_run(self._guard, run_id, W)
        self._store.delete_tag(run_id, key)

    def search(self, query: RunQuery) -> Page[Run]:
        page = self._store.search(replace(query, experiment_ids=readable_experiments(
            self._guard, query.experiment_ids)))
        for run in page.items:
            self._guard.learn_run(run.info.run_id, run.info.experiment_id)
        return page


class ScopedMetrics:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.metrics

    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if metrics:
            check_run(self._guard, run_id, W)
        self._store.log(run_id, metrics)

    def history(self, run_id: str, key: str) -> list[Metric]:
        check_run(self._guard, run_id)
        return self._store.history(run_id, key)

    def history_columns(self, run_id: str, key: str) -> MetricHistory:
        check_run(self._guard, run_id)
        return self._store.history_columns(run_id, key)


class ScopedLoggedModels:
    def __init__(self, guard: ProjectGuard) -> None:
        self._guard = guard
        self._store = guard.store.logged_models

    def _check(self, model_id: str, floor: Permission = Permission.READ) -> str:
        g = self._guard
        return g.allow(g.logged_model_project(model_id), f"logged_model:{model_id}",
                       lambda: logged_model_not_found(model_id), floor)

    def create(self, model: LoggedModel) -> LoggedModel:
        g = self._guard
        project = g.allow(g.experiment_project(model.experiment_id), f"experiment:{model.experiment_id}",
                          lambda: experiment_not_found(model.experiment_id), W, record=False)
        # Its files are read and written as its run's: the principal must be able to write that run.
        g.allow(g.run_project(model.run_id), f"run:{model.run_id}", lambda: run_not_found(model.run_id), W,
                record=False)
        made = self._store.create(model)
        g.learn_logged_model(made.model_id, made.experiment_id)
        g.record(project, f"logged_model:{made.model_id}")
        return made

    def get(self, model_id: str) -> LoggedModel:
        found = self._store.get(model_id)
        self._guard.learn_logged_model(model_id, found.experiment_id)
        self._check(model_id)
        return found

    def update(self, model_id: str, *, status: LoggedModelStatus | None = None,
               status_message: str | None = None) -> LoggedModel:
        self._check(model_id, W)
        return self._store.update(model_id, status=status, status_message=status_message)

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self._check(model_id, W)
        self._store.set_tags(model_id, tags)

    def delete_tag(self, model_id: str, key: str) -> None:
        self._check(model_id, W)
        self._store.delete_tag(model_id, key)

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        self._check(model_id, W)
        self._store.log_params(model_id, params)

    def delete(self, model_id: str) -> None:
        self._check(model_id, D)
        self._store.delete(model_id)

    def search(self, query: LoggedModelQuery) -> Page[LoggedModel]:
        return self._store.search(replace(query, experiment_ids=readable_experiments(
            self._guard, query.experiment_ids)))

    def list_for_run(self, run_id: str, view: ViewType = ViewType.ACTIVE_ONLY) -> list[LoggedModel]:
        g = self._guard
        if not g.visible(g.run_project(run_id), f"run:{run_id}"):
            return []  # as for an unknown run
        return [m for m in self._store.list_for_run(run_id, view) if g.sees(g.experiment_project(m.experiment_id))]

    def log_metrics(self, model_id: str, metrics: Sequence[LoggedModelMetric]) -> None:
        self._check(model_id, W)
        self._store.log_metrics(model_id, metrics)

    def add_run_links(self, links: Sequence[RunLink]) -> None:
        g = self._guard
        run_ids = sorted({link.run_id for link in links})
        for run_id in run_ids:
            # the store cannot tell which run of a batch is missing, so it names them all
            g.allow(g.run_project(run_id), f"run:{run_id}", lambda: runs_not_found(run_ids), W)
        self._store.add_run_links(links)

    def run_links(self, run_ids: Sequence[str]) -> dict[str, list[RunLink]]:
        g = self._guard
        shown = [r for r in run_ids if g.sees(g.run_project(r))]
        found = self._store.run_links(shown)
        return {run_id: found.get(run_id, []) for run_id in run_ids}
