"""The Store: one small interface per aggregate.

Every implementation (``SqlStore`` on SQLite and PostgreSQL, ``RestStore`` over HTTP) passes
the same contract test suite in ``tests/contract/``. Methods take and return the typed
records of :mod:`shipyard.entities` and raise only :mod:`shipyard.errors`.
Shape rules (name lengths, key characters) are checked above the store, by the tracking
domain; the store enforces what needs the stored state: existence, uniqueness,
immutability of params and that a run is still active.
Experiments, registered models, datasets, deployments and monitors belong to a project (given
at creation, ``DEFAULT_PROJECT`` unless told; it never changes). A ``projects`` argument keeps
the objects of those projects, in the query itself: ``None`` every project, an empty sequence none.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from shipyard.entities import (
    DatasetVersion,
    Deployment,
    DeploymentEvent,
    Edge,
    Experiment,
    LoggedModel,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    Metric,
    ModelVersion,
    Node,
    Page,
    Param,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    Run,
    RunInfo,
    RunLink,
    RunQuery,
    RunStatus,
    RunTag,
    RunWrite,
    VersionStatus,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.entities.monitor import Alert, Monitor, MonitorEvaluation
from shipyard.errors import ShipyardError
from shipyard.store.auth_protocol import AuthStore

__all__ = ["AuthStore", "DatasetStore", "DeploymentStore", "ExperimentStore", "LineageStore", "LoggedModelStore",
           "MetricStore", "ModelStore", "MonitorStore", "RunStore", "Store"]


class ExperimentStore(Protocol):
    def create(self, name: str, tags: Mapping[str, str] | None = None, *,
               project: str = DEFAULT_PROJECT) -> Experiment:
        """Create an active experiment in ``project``. Raises ``AlreadyExists`` when the name is taken
        (deleted experiments keep their name until purged)."""
        ...

    def get(self, experiment_id: str) -> Experiment:
        """Raises ``NotFound`` naming the id."""
        ...

    def get_by_name(self, name: str) -> Experiment | None:
        """The experiment with that exact name (active or deleted), or ``None``."""
        ...

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY, *, projects: Sequence[str] | None = None) -> list[Experiment]:
        """Experiments in the view (and ``projects``), oldest first."""
        ...

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        """Raises ``NotFound``, or ``AlreadyExists`` when ``new_name`` is taken."""
        ...

    def delete(self, experiment_id: str) -> None:
        """Soft delete: the experiment and its runs leave the active view. Raises ``NotFound``."""
        ...

    def restore(self, experiment_id: str) -> None:
        """Undo :meth:`delete`. Raises ``NotFound``."""
        ...

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite tags. Raises ``NotFound``."""
        ...

    def delete_tag(self, experiment_id: str, key: str) -> None:
        """Raises ``NotFound`` for an unknown experiment or tag."""
        ...


class RunStore(Protocol):
    def create(self, experiment_id: str, *, run_name: str, start_time: int, user_id: str = "", source: str = "",
               parent_run_id: str | None = None, tags: Mapping[str, str] | None = None) -> Run:
        """Create a RUNNING run. Raises ``NotFound`` for an unknown experiment, and
        ``RunNotActive`` when the experiment is deleted. A parent that is not a run of this store
        is recorded as given; only a parent that is here gets a lineage edge."""
        ...

    def write(self, run_id: str, *, create: RunInfo | None = None, params: Sequence[Param] = (),
              tags: Sequence[RunTag] = (), metrics: Sequence[Metric] = (), status: RunStatus | None = None,
              end_time: int | None = None) -> RunInfo:
        """In one transaction, all or nothing: with ``create``, create run ``run_id`` (an id chosen by the
        caller, as :meth:`create` would) from its experiment, name, start time, user, source and parent;
        record ``params``, set ``tags``, append ``metrics``, set ``status``/``end_time``. Returns the info.
        Raises ``AlreadyExists`` (id taken), ``NotFound`` (experiment or run), ``RunNotActive`` (deleted
        experiment; deleted run given data, not for a status alone), ``Conflict`` (a param changes) and
        ``InvalidInput`` (a param twice with two values; ``create`` for another id)."""
        ...

    def write_many(self, writes: Sequence[RunWrite]) -> list[RunInfo | ShipyardError]:
        """Each write as :meth:`write` makes it, all or nothing per run, in as few transactions as
        the store can (SQL: one for all of them, or one per run after a failure, to tell which
        failed; REST: one request per run). Returns, in order, each write's info or the
        ``ShipyardError`` it met: one run's failure does not stop the others. Raises
        ``StoreUnavailable`` only when nothing was written (then the whole batch may be retried),
        and ``InvalidInput`` when two writes name the same run."""
        ...

    def get(self, run_id: str) -> Run:
        """The run with params, tags and latest metrics. Raises ``NotFound`` naming the id."""
        ...

    def update(self, run_id: str, *, status: RunStatus | None = None, end_time: int | None = None,
               run_name: str | None = None) -> RunInfo:
        """Change status, end time or name. Raises ``NotFound``."""
        ...

    def delete(self, run_id: str) -> None:
        """Soft delete. Raises ``NotFound``."""
        ...

    def restore(self, run_id: str) -> None:
        """Undo :meth:`delete`. Raises ``NotFound``."""
        ...

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        """Record params atomically. Re-logging an identical value is a no-op; a different
        value raises ``Conflict`` naming both values and nothing is written. Raises
        ``NotFound`` and ``RunNotActive``."""
        ...

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        """Insert or overwrite tags. Raises ``NotFound`` and ``RunNotActive`` (deleted runs)."""
        ...

    def delete_tag(self, run_id: str, key: str) -> None:
        """Raises ``NotFound`` for an unknown run or tag."""
        ...

    def search(self, query: RunQuery) -> Page[Run]:
        """Runs of ``query.experiment_ids`` matching the filter, ordered (default: newest
        first), one page at a time. Raises ``InvalidInput`` for a bad page token."""
        ...


class MetricStore(Protocol):
    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        """Append metric values in one transaction and move each key's latest value (the one
        with the highest step, then timestamp). Raises ``NotFound`` and ``RunNotActive``."""
        ...

    def history(self, run_id: str, key: str) -> list[Metric]:
        """Every value of ``key``, ordered by step then timestamp. Raises ``NotFound`` for an
        unknown run; an unknown key gives an empty list."""
        ...

    def history_columns(self, run_id: str, key: str) -> MetricHistory:
        """The same values as :meth:`history`, as three arrays (steps, values, timestamps)
        from one query. Raises ``NotFound`` for an unknown run; an unknown key gives empty
        arrays."""
        ...


class ModelStore(Protocol):
    """The model registry. Every change that moves what a name or alias points to is also
    appended to the model's history (:meth:`history`), in the same transaction."""

    def create_model(self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     user: str = "", project: str = DEFAULT_PROJECT) -> RegisteredModel:
        """A new model in ``project`` protecting :data:`DEFAULT_PROTECTED_ALIASES`. Raises ``AlreadyExists``
        when the name is taken."""
        ...

    def get_model(self, name: str) -> RegisteredModel:
        """With its tags, aliases and latest version number. Raises ``NotFound`` naming it."""
        ...

    def search_models(self, query: RegistryQuery) -> Page[RegisteredModel]:
        """Models of ``query.projects`` matching ``query.filter`` (attributes ``name``, ``description``; tags), by name.
        Raises ``InvalidInput`` for another attribute or a bad page token."""
        ...

    def update_model(self, name: str, *, description: str, user: str = "") -> RegisteredModel:
        """Raises ``NotFound``."""
        ...

    def rename_model(self, name: str, new_name: str, *, user: str = "") -> RegisteredModel:
        """Its versions, aliases and history follow it. Raises ``NotFound``, ``AlreadyExists``."""
        ...

    def delete_model(self, name: str, *, force: bool = False, user: str = "") -> None:
        """Delete the model and all its versions. Raises ``NotFound``, and ``Conflict`` while an
        alias points to one of its versions unless ``force``."""
        ...

    def set_model_tags(self, name: str, tags: Mapping[str, str], *, user: str = "") -> None:
        """Insert or overwrite. Raises ``NotFound``."""
        ...

    def delete_model_tag(self, name: str, key: str, *, user: str = "") -> None:
        """Raises ``NotFound`` for an unknown model or tag."""
        ...

    def create_version(self, name: str, *, source: str, run_id: str | None = None, description: str = "",
                       tags: Mapping[str, str] | None = None,
                       status: VersionStatus = VersionStatus.READY, user: str = "") -> ModelVersion:
        """The next version number (numbers are never reused, even after a delete). Raises
        ``NotFound`` for an unknown model or run."""
        ...

    def get_version(self, name: str, version: int) -> ModelVersion:
        """Raises ``NotFound`` naming the model and version."""
        ...

    def search_versions(self, query: RegistryQuery) -> Page[ModelVersion]:
        """Versions of the models of ``query.projects`` matching ``query.filter`` (attributes
        ``name``, ``version``, ``run_id``, ``status``, ``source``; tags), newest first."""
        ...

    def update_version(self, name: str, version: int, *, description: str | None = None,
                       status: VersionStatus | None = None, card: str | None = None,
                       user: str = "") -> ModelVersion:
        """Change what is given (``card`` is the version's Markdown model card); the version's
        ``last_update_time`` moves, its model's does not. Raises ``NotFound``."""
        ...

    def delete_version(self, name: str, version: int, *, force: bool = False, user: str = "") -> None:
        """Raises ``NotFound``, and ``Conflict`` naming the aliases while any points to it,
        unless ``force`` (which deletes those aliases too, recording each)."""
        ...

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, user: str = "") -> None:
        """Insert or overwrite; the version's and the model's ``last_update_time`` move. Raises
        ``NotFound``."""
        ...

    def delete_version_tag(self, name: str, version: int, key: str, *, user: str = "") -> None:
        """Raises ``NotFound`` for an unknown version or tag."""
        ...

    def approve_version(self, name: str, version: int, *, user: str, comment: str = "") -> ModelVersion:
        """Record that ``user`` approved the version (a later approval replaces the earlier one;
        both stay in the history). Raises ``NotFound``, and ``InvalidInput`` without a user."""
        ...

    def protect_alias(self, name: str, alias: str, protected: bool = True, *, user: str = "") -> RegisteredModel:
        """Mark ``alias`` protected or unprotected (that only approved versions may take a
        protected alias is the registry service's rule). Raises ``NotFound`` for an unknown model."""
        ...

    def set_alias(self, name: str, alias: str, version: int, *, user: str = "") -> ModelVersion:
        """Point ``alias`` at ``version`` (moving it if it pointed elsewhere). Raises ``NotFound``
        for an unknown model or version. Whether the version may take the alias (approvals) is
        :meth:`shipyard.models.registry.RegistryService.set_alias`'s rule, not checked here."""
        ...

    def delete_alias(self, name: str, alias: str, *, user: str = "") -> None:
        """Raises ``NotFound`` for an unknown model or alias."""
        ...

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        """Raises ``NotFound`` naming the model and alias."""
        ...

    def history(self, name: str) -> list[RegistryEvent]:
        """Every recorded change of the model, oldest first. Raises ``NotFound``."""
        ...


class DatasetStore(Protocol):
    """Versioned datasets: a name, and one version per distinct content digest."""

    def log_version(self, name: str, *, digest: str, source: str, kind: str, num_rows: int | None = None,
                    size_bytes: int | None = None, schema: Sequence[Mapping[str, Any]] = (),
                    profile: Mapping[str, Any] | None = None, snapshot_uri: str | None = None,
                    user: str = "", project: str = DEFAULT_PROJECT) -> tuple[DatasetVersion, bool]:
        """The version of ``name`` with this ``digest``, and whether it was created now: the
        same digest gives the existing version back (a snapshot given now is added to it);
        a new digest, the next version number. The dataset is created on first use, in
        ``project``; its later versions stay in that project, whatever ``project`` says."""
        ...

    def get_version(self, name: str, version: int) -> DatasetVersion:
        """Raises ``NotFound`` naming the dataset and version."""
        ...

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Oldest first. Raises ``NotFound`` for an unknown dataset."""
        ...

    def list_datasets(self, *, projects: Sequence[str] | None = None) -> list[DatasetVersion]:
        """The latest version of every dataset (of ``projects``), by name."""
        ...


class LineageStore(Protocol):
    """The provenance graph. Edges are written when the event happens (most by the other
    stores, in the same transaction as the event) and never inferred later."""

    def add_edges(self, edges: Sequence[Edge]) -> None:
        """Record edges; one already recorded (same source, target and relation) is kept as is."""
        ...

    def edges(self, nodes: Sequence[Node], *, upstream: bool) -> list[Edge]:
        """The edges into ``nodes`` (``upstream``) or out of them, in one query, oldest first."""
        ...


class LoggedModelStore(Protocol):
    """Logged models (MLflow 3's ``LoggedModel``): an experiment's models, each with a
    caller-chosen id, a status, tags and immutable params. Unlike the rest of the store, the
    shape rules (id format, name, key and value limits) are checked here, so every caller,
    the MLflow-compatible API included, gets the same ``InvalidInput``."""

    def create(self, model: LoggedModel) -> LoggedModel:
        """Store ``model`` (active; ``creation_time`` and ``last_update_time`` of 0 become now)
        and return it as stored (the artifact path in canonical form). Raises
        ``AlreadyExists`` for a taken ``model_id``, ``NotFound`` for an unknown experiment,
        ``Conflict`` for a deleted one, and ``InvalidInput`` for an id other than ``m-`` and
        32 lowercase hex digits, an empty name, a malformed run id or artifact path, or a tag
        or param key or value breaking the rules runs follow."""
        ...

    def get(self, model_id: str) -> LoggedModel:
        """With tags and params; a deleted model too (``lifecycle_stage`` deleted). Raises
        ``NotFound`` naming the id."""
        ...

    def update(self, model_id: str, *, status: LoggedModelStatus | None = None,
               status_message: str | None = None) -> LoggedModel:
        """Change what is given and move ``last_update_time``. Raises ``NotFound``."""
        ...

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        """Insert or overwrite. Raises ``NotFound`` and ``InvalidInput``."""
        ...

    def delete_tag(self, model_id: str, key: str) -> None:
        """Raises ``NotFound`` for an unknown model or tag."""
        ...

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        """Record params atomically. Re-logging an identical value is a no-op; a different
        value raises ``InvalidInput`` naming both values and nothing is written. Raises
        ``NotFound``."""
        ...

    def delete(self, model_id: str) -> None:
        """Soft delete: the model leaves the active view but :meth:`get` still returns it.
        Raises ``NotFound``."""
        ...

    def search(self, query: LoggedModelQuery) -> Page[LoggedModel]:
        """Models of ``query.experiment_ids`` in ``query.view`` matching the filter (tags,
        params, attributes), ordered by ``query.order_by`` (attributes only) and then newest
        first, by id; one page at a time. Raises ``InvalidInput`` for an unknown attribute or
        a bad page token."""
        ...

    def list_for_run(self, run_id: str, view: ViewType = ViewType.ACTIVE_ONLY) -> list[LoggedModel]:
        """The models whose ``source_run_id`` is ``run_id`` (a run's outputs), oldest first;
        an unknown run has none."""
        ...

    def log_metrics(self, model_id: str, metrics: Sequence[LoggedModelMetric]) -> None:
        """Record metric values measured on the model (each names the run that logged it); a
        value already recorded (same key, timestamp, step and run) is kept once. Raises
        ``NotFound`` for an unknown model and ``InvalidInput`` for a bad key, run id, step,
        time or an over-long dataset name or digest; nothing is written then."""
        ...

    def add_run_links(self, links: Sequence[RunLink]) -> None:
        """Record runs' model inputs, model outputs and dataset-input tags; the first record of
        a (run, kind, ref) is kept as is. Raises ``NotFound`` when a run is not there and
        ``InvalidInput`` for a bad kind, reference or tag."""
        ...

    def run_links(self, run_ids: Sequence[str]) -> dict[str, list[RunLink]]:
        """Each run's links in the order they were recorded (an unknown run has none)."""
        ...


class DeploymentStore(Protocol):
    """Deployments and their history. Every write is one revision: the deployment's new state and
    its :class:`~shipyard.entities.DeploymentEvent` are written in one transaction, together with a
    lineage edge ``model:<name>/<version> -> deployment:<name>`` (``deployed``) for each version
    that starts serving or shadowing. The shape rules (name, environment, routes and weights,
    shadows, batching, resources) are :mod:`shipyard.deploy.limits`, checked by the deployment
    service before a store is asked; a store checks what its rows need (``InvalidInput`` for an
    unknown status or project, a bad revision or change kind), and that every version named
    exists (``NotFound`` naming it)."""

    def create(self, deployment: Deployment, *, user: str = "", detail: str = "") -> Deployment:
        """Store ``deployment`` as its first revision (1, or for a name deleted before, the one
        after its last recorded revision, so a name's history never repeats a number) in
        ``deployment.project``; times become now. Raises ``AlreadyExists`` for a taken name."""
        ...

    def get(self, name: str) -> Deployment:
        """Raises ``NotFound`` naming it."""
        ...

    def list(self, environment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Deployment]:
        """Every deployment (of ``environment`` only, if given; of ``projects``), by name."""
        ...

    def save(self, deployment: Deployment, *, kind: str, user: str = "", detail: str = "") -> Deployment:
        """Write the deployment's next revision: ``deployment.revision`` must be the revision the
        caller read, and the stored one becomes ``revision + 1``. ``kind`` is one of
        :data:`~shipyard.entities.DEPLOYMENT_EVENT_KINDS` other than create and delete. Raises
        ``NotFound``, and ``Conflict`` naming both revisions when the deployment changed since it
        was read (nothing is written: read it again and retry)."""
        ...

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        """Every revision of ``name``, oldest first, including those before a delete and the
        delete itself. Raises ``NotFound`` for a name that was never deployed."""
        ...

    def delete(self, name: str, *, user: str = "", detail: str = "") -> None:
        """Remove the deployment, recording a last ``delete`` revision; its history and lineage
        edges stay. Raises ``NotFound``."""
        ...


class MonitorStore(Protocol):
    """Monitors, each evaluated window, and each alert sent. The rules (what a valid definition
    is, when a window is due, how the alert state moves) live in
    :class:`~shipyard.monitoring.service.MonitorService`; the store keeps the integrity that needs
    the stored state: unique names, the revision of a definition, the lease, one evaluation per
    window, evaluations in window order."""

    def create(self, monitor: Monitor, *, user: str = "") -> Monitor:
        """Store ``monitor`` at revision 1 with its state (and ``project``) as given; times become
        now. Raises ``AlreadyExists`` for a taken name."""
        ...

    def get(self, name: str) -> Monitor:
        """Raises ``NotFound`` naming it."""
        ...

    def list(self, deployment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Monitor]:
        """Every monitor (of ``deployment`` only, if given; of ``projects``), by name."""
        ...

    def save(self, monitor: Monitor, *, user: str = "") -> Monitor:
        """Write the definition (everything but the state, the window cursor and the lease):
        ``monitor.revision`` must be the revision the caller read; the stored one becomes
        ``revision + 1``. Raises ``NotFound``, and ``Conflict`` naming both revisions when it
        changed since it was read (nothing is written)."""
        ...

    def delete(self, name: str) -> None:
        """Remove the monitor with its evaluations and alerts. Raises ``NotFound``."""
        ...

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        """Take (or, for its holder, extend) the right to evaluate ``name`` for ``seconds``: true
        when ``owner`` holds it now, false when another owner's lease has not expired. Taken with
        one conditional UPDATE, so of two runners asking at once exactly one gets it. Raises
        ``NotFound``."""
        ...

    def release_lease(self, name: str, owner: str) -> None:
        """Give the lease up, if ``owner`` holds it (otherwise nothing happens)."""
        ...

    def record_evaluation(self, evaluation: MonitorEvaluation, *, owner: str) -> Monitor:
        """In one transaction: store ``evaluation`` and move the monitor past its window (the next
        window starts at ``evaluation.window_end``), to ``evaluation.state`` (``state_since`` moves
        when the state changes) and ``last_evaluation_time``. Only the holder of a live lease may
        record, and only the window the monitor is at: raises ``Conflict`` when ``owner`` does not
        hold the lease, or the window was evaluated already or is not the next one (nothing is
        written), and ``NotFound``."""
        ...

    def evaluations(self, name: str, *, limit: int | None = None, since: int | None = None,
                    with_report: bool = True) -> builtins.list[MonitorEvaluation]:
        """Evaluations of ``name`` in window order: the latest ``limit`` of those whose window
        starts at or after ``since`` (all when ``None``). ``with_report=False`` leaves each
        ``report`` empty (the time series without the plot data). Raises ``NotFound``."""
        ...

    def record_alert(self, alert: Alert) -> Alert:
        """Store one notification (its delivery included) and return it with its id. Raises
        ``NotFound`` for an unknown monitor."""
        ...

    def alerts(self, name: str, *, limit: int | None = None) -> builtins.list[Alert]:
        """The latest ``limit`` alerts of ``name`` (all when ``None``), oldest first. Raises
        ``NotFound``."""
        ...


@runtime_checkable
class Store(Protocol):
    """The aggregate interfaces of one tracking backend."""

    experiments: ExperimentStore
    runs: RunStore
    metrics: MetricStore
    models: ModelStore
    datasets: DatasetStore
    lineage: LineageStore
    logged_models: LoggedModelStore
    deployments: DeploymentStore
    monitors: MonitorStore

    def close(self) -> None:
        """Release connections."""
        ...
