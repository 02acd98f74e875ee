"""The tracking API with explicit ids: experiments, runs, params, metrics, tags, artifacts.

``Client`` is the domain entry point shared by the fluent SDK (``shipyard.log_metric``...),
the CLI and the server: it checks the shape rules (:mod:`shipyard.tracking.validation`),
then calls the Store and the ArtifactStore it was given. Metrics go through the batched
background writer; everything else is written before the call returns.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.paths import download_destination
from shipyard.artifacts.protocol import ArtifactStore
from shipyard.auth import Principal, local_principal
from shipyard.clock import now_ms
from shipyard.config import Settings
from shipyard.entities import (
    ArtifactEntry,
    DatasetVersion,
    Experiment,
    Metric,
    ModelVersion,
    Param,
    RegisteredModel,
    RegistryEvent,
    Run,
    RunData,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    VersionStatus,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, RunNotActive, ShipyardError
from shipyard.store.not_found import experiment_deleted
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.names import generate_run_name
from shipyard.tracking.paged import PagedList
from shipyard.tracking.pending import PendingRuns, RunEnd, write_run
from shipyard.tracking.writer import MetricWriter

if TYPE_CHECKING:
    from shipyard.deploy.rollout import DeploymentService
    from shipyard.models.evaluate import Evaluation
    from shipyard.models.gates import PromotionResult
    from shipyard.models.registry import RegistryService
    from shipyard.monitoring.service import MonitorService
    from shipyard.tracking.datasets import DatasetService

__all__ = ["Client"]



def _is_server(uri: str) -> bool:
    return uri.lower().startswith(("http://", "https://"))


def default_artifact_uri(settings: Settings) -> str:
    """Artifacts live beside an SQLite database unless an artifact URI was configured, so
    ``sqlite:///some/dir/shipyard.db`` keeps its artifacts in ``some/dir/artifacts``. With a
    tracking server (``http(s)://``) they go through that server's artifact proxy: the server
    decides where they are stored, and the SDK needs no storage credentials."""
    if settings.sources.get("artifact_uri", "default") != "default":
        return settings.artifact_uri
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and ":memory:" not in uri and uri != "sqlite://":
        return str(Path(uri[len("sqlite:///"):]).expanduser().parent / "artifacts")
    if _is_server(uri):
        return uri
    return settings.artifact_uri


class Client:
    """Tracking with explicit experiment and run ids.

    ``Client()`` uses the configured tracking URI (``SHIPYARD_TRACKING_URI``, default
    ``sqlite:///./.shipyard/shipyard.db``); pass ``tracking_uri``/``artifact_uri`` to choose,
    or a ready ``store``/``artifact_store`` (tests, the server).

    ``defer_runs`` (the fluent SDK's client): ``create_run`` writes nothing yet, and the run goes
    to the store with its params, tags and first metrics in one transaction, within the metric
    writer's linger time or at its end, whichever comes first (:mod:`shipyard.tracking.pending`).
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        artifact_uri: str | None = None,
        *,
        settings: Settings | None = None,
        store: Store | None = None,
        artifact_store: ArtifactStore | None = None,
        principal: Principal | None = None,
        defer_runs: bool = False,
    ) -> None:
        base = settings or Settings.resolve()
        self._principal = principal
        overrides = {k: v for k, v in (("tracking_uri", tracking_uri), ("artifact_uri", artifact_uri)) if v}
        self.settings = base.replace(**overrides) if overrides else base
        self._store = store
        self._artifacts = artifact_store
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._defer_runs = defer_runs
        self._pending = PendingRuns()
        self._live_experiments: set[str] = set()  # checked active once, for deferred runs
        self._writer = self._new_writer()

    def _new_writer(self) -> MetricWriter:
        return MetricWriter(self._write_metrics, queue_size=self.settings.writer_queue_size,
                            batch_size=self.settings.writer_batch_size, linger=self.settings.writer_linger_seconds,
                            end_sink=self._write_end, runs_sink=self._write_runs)

    # -- backends, opened on first use -------------------------------------------------
    @property
    def store(self) -> Store:
        """The store; runs this client deferred are written first, so what it answers includes them."""
        store = self._open_store()
        if self._pending:
            self._pending.write_all(store)
        return store

    def _open_store(self) -> Store:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    from shipyard.store.registry import open_store

                    options: dict[str, Any] = {}
                    if self.settings.tracking_uri.startswith("sqlite"):
                        options["busy_timeout_seconds"] = self.settings.sqlite_busy_timeout_seconds
                    if _is_server(self.settings.tracking_uri):
                        options.update(self._server_identity(self.settings.tracking_uri))
                    self._store = open_store(self.settings.tracking_uri, **options)
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            uri = default_artifact_uri(self.settings)
            # Through the tracking server itself: share the transport its RestStore was given
            # (tests inject an in-process one). ``store`` is read before the lock, which it takes.
            via_tracking = _is_server(uri) and uri.rstrip("/") == self.tracking_uri.rstrip("/")
            transport = getattr(self.store, "transport", None) if via_tracking else None
            with self._lock:
                if self._artifacts is None:
                    if _is_server(uri):
                        from shipyard.artifacts.rest import RestArtifactStore

                        self._artifacts = RestArtifactStore(uri, transport, **self._server_identity(uri))
                    else:
                        from shipyard.artifacts import open_artifact_store

                        self._artifacts = open_artifact_store(uri)
        return self._artifacts

    def _server_identity(self, uri: str) -> dict[str, Any]:
        """Who this client is to the server at ``uri``: the configured token (for the tracking
        server), else the one ``shipyard login`` kept for that server; and the project to create in."""
        from shipyard.auth.credentials import stored_token

        configured = self.settings.tracking_token if uri.rstrip("/") == self.tracking_uri.rstrip("/") else ""
        return {"token": configured or stored_token(uri), "project": self.settings.project or None}

    @property
    def principal(self) -> Principal:
        """Who the changes made through this client are recorded as: the one it was given (a server
        passes the request's), else ``SHIPYARD_ACTING_USER`` when set, else the login of the process
        at the time of the change."""
        return self._principal or local_principal(self.settings.acting_user)

    def acting_as(self, principal: Principal, *, store: Store | None = None) -> Client:
        """This client's store, artifact store and metric writer, recording changes as ``principal``:
        what a server uses for each request. Closing it closes this client's backends.

        ``store`` replaces the store of the view (a server passes the store as ``principal`` may see
        it); the view then gets a metric writer of its own, so queued metrics go through that store
        too (its thread starts only if a metric is queued)."""
        import copy

        self.store, self.artifacts  # noqa: B018 - opened now, so the view shares them instead of opening its own
        view = copy.copy(self)
        view._principal = principal
        if store is not None:
            view._store = store
            view._writer = view._new_writer()
        return view

    @property
    def registry(self) -> RegistryService:
        """Registered models, versions, aliases and approvals, as this client's principal."""
        from shipyard.models.registry import RegistryService

        return RegistryService(self.store, self.artifacts, self.principal)

    @property
    def datasets(self) -> DatasetService:
        """Dataset versions, their snapshots and lineage edges, as this client's principal."""
        from shipyard.tracking.datasets import DatasetService

        return DatasetService(self.store, self.artifacts, self.principal)

    @property
    def deployments(self) -> DeploymentService:
        """Deployments and their rollout rules (canary, shadow, promote, rollback), as this client's principal."""
        from shipyard.deploy.rollout import DeploymentService

        return DeploymentService(self.store, self.principal)

    @property
    def monitors(self) -> MonitorService:
        """Monitors, their evaluations and alerts, as this client's principal; ``retrain:`` actions
        run with this client (its store, settings and principal)."""
        from shipyard.monitoring.retrain import Retrainer
        from shipyard.monitoring.service import MonitorService

        return MonitorService(self.store, self.artifacts, self.principal, retrainer=Retrainer(self))

    @property
    def tracking_uri(self) -> str:
        return self.settings.tracking_uri

    def _write_metrics(self, run_id: str, metrics: Sequence[Metric]) -> None:
        store = self._open_store()
        if self._pending.write(store, run_id, metrics=metrics) is None:
            store.metrics.log(run_id, metrics)

    def _write_runs(self, batch: list[tuple[str, list[Metric], RunEnd | None]]) -> dict[str, RunInfo | ShipyardError]:
        """The writer's batch of deferred runs: all of them, with their metrics and ends, in one
        ``RunStore.write_many``; the runs of the batch that were written before are not taken."""
        if not self._pending:
            return {}
        return self._pending.write_many(self._open_store(), batch)

    def _write_end(self, run_id: str, metrics: Sequence[Metric], end: RunEnd) -> None:
        """The writer's end of a run: its last metrics, status and end time in one transaction. When
        that fails for an existing run, the run is still ended and the metrics reported lost."""
        store = self._open_store()
        pending = run_id in self._pending
        try:
            end.info = self._pending.write(store, run_id, metrics=metrics, status=end.status, end_time=end.end_time) \
                or store.runs.write(run_id, metrics=metrics, status=end.status, end_time=end.end_time)
        except ShipyardError as exc:
            if pending or not metrics:
                raise
            self._writer.fail(run_id, metrics, exc)
            end.info = store.runs.write(run_id, status=end.status, end_time=end.end_time)

    def flush(self) -> None:
        """Wait until every metric logged so far is written; raise a write failure if any."""
        self._writer.flush()

    def close(self) -> None:
        """Flush metrics and release the database and artifact-store connections."""
        try:
            self._writer.close()
            if self._pending and self._store is not None:
                self._pending.write_all(self._store)
        finally:
            if self._store is not None:
                self._store.close()
                self._store = None
            if self._artifacts is not None:
                self._artifacts.close()
                self._artifacts = None

    # -- experiments -------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None, *,
                          project: str = DEFAULT_PROJECT) -> str:
        """Create an experiment in ``project`` and return its id. Raises ``AlreadyExists``."""
        rules.check_name("experiment name", name)
        return self.store.experiments.create(name, self._tags(tags), project=rules.check_project(project)).experiment_id

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created when missing; safe when another process
        creates it at the same moment."""
        found = self.get_experiment_by_name(name)
        if found is not None:
            return found
        try:
            return self.get_experiment(self.create_experiment(name))
        except AlreadyExists:  # lost the race to another creator: theirs is ours
            found = self.get_experiment_by_name(name)
            if found is None:
                raise
            return found

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.store.experiments.get(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.store.experiments.get_by_name(name)

    def resolve_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id, or else by name. Raises ``NotFound`` naming what was given."""
        found = self.store.experiments.get_by_name(id_or_name)
        if found is not None:
            return found
        try:
            return self.store.experiments.get(id_or_name)
        except NotFound:
            raise NotFound(f"no experiment has the id or name {id_or_name!r}") from None

    def search_experiments(self, view: ViewType = ViewType.ACTIVE_ONLY, *,
                           projects: Sequence[str] | None = None) -> list[Experiment]:
        """Experiments in ``view`` (of ``projects`` only, if given), oldest first."""
        return self.store.experiments.list(ViewType(view), projects=rules.check_projects(projects))

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        rules.check_name("experiment name", new_name)
        return self.store.experiments.rename(str(experiment_id), new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.store.experiments.delete(str(experiment_id))

    def restore_experiment(self, experiment_id: str) -> None:
        self.store.experiments.restore(str(experiment_id))

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.set_experiment_tags(experiment_id, {key: value})

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        self.store.experiments.set_tags(str(experiment_id), self._tags(tags))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.store.experiments.delete_tag(str(experiment_id), key)

    # -- runs --------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        *,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        user_id: str = "",
        source: str = "",
        defer: bool = False,
    ) -> Run:
        """Create a RUNNING run. Raises ``NotFound`` for an unknown experiment. A parent that is
        not a run of this store is recorded as given, without a lineage edge. With ``defer`` on a
        client made with ``defer_runs`` (the fluent ``start_run``), the run is written with its
        first params, tags and metrics later (:mod:`shipyard.tracking.pending`); runs whose id is
        handed to other processes (pipeline steps, trials) are written at once."""
        if parent_run_id is not None and (not isinstance(parent_run_id, str) or not 0 < len(parent_run_id) <= 32):
            raise InvalidInput(f"parent run id {parent_run_id!r:.60} is not a run id (1 to 32 characters)")
        name = rules.check_name("run name", run_name, rules.MAX_RUN_NAME_LENGTH) if run_name is not None \
            else generate_run_name()
        user_id = self.principal.run_user(user_id)  # a signed-in principal is the run's user (server --auth)
        if defer and self._defer_runs:
            return self._defer_run(RunInfo(secrets.token_hex(16), str(experiment_id), name, RunStatus.RUNNING,
                                           start_time or now_ms(), parent_run_id=parent_run_id, user_id=user_id,
                                           source=source), self._tags(tags))
        run = self.store.runs.create(
            str(experiment_id), run_name=name, start_time=start_time or now_ms(), user_id=user_id,
            source=source, parent_run_id=parent_run_id, tags=self._tags(tags))
        self._running.add(run.info.run_id)
        return run

    def _defer_run(self, info: RunInfo, tags: dict[str, str]) -> Run:
        if info.experiment_id not in self._live_experiments:  # the errors create() would raise, now
            experiment = self._open_store().experiments.get(info.experiment_id)
            if experiment.lifecycle_stage.value == "deleted":
                raise experiment_deleted(info.experiment_id)
            self._live_experiments.add(info.experiment_id)
        self._writer.raise_pending()
        self._pending.add(info, tags)
        self._running.add(info.run_id)
        self._writer.put_many(info.run_id, [])  # written by the writer's next batch at the latest
        return Run(info, RunData(tags=dict(tags)))

    def get_run(self, run_id: str) -> Run:
        """The run with params, tags and latest metrics (pending metrics are written first)."""
        self.flush()
        return self.store.runs.get(run_id)

    def update_run(self, run_id: str, *, status: RunStatus | str | None = None,
                   run_name: str | None = None, end_time: int | None = None) -> RunInfo:
        if run_name is not None:
            rules.check_name("run name", run_name, rules.MAX_RUN_NAME_LENGTH)
        new_status = self._status(status) if status is not None else None
        failed_write: ShipyardError | None = None
        if new_status is not None and new_status.is_terminal and run_name is None and \
                (run_id in self._pending or self._writer.running):
            # The last queued metrics and the status in one transaction, through the writer.
            end = RunEnd(new_status, end_time or now_ms())
            created = self._pending.pending_info(run_id)
            if created is not None:
                # A deferred run: written with the writer's next batch, together with the other
                # runs ended meanwhile (one transaction); durable at flush() or close() at the latest.
                end.wait = False
                self._writer.end_later(run_id, end)
                self._running.discard(run_id)
                self._writer.raise_pending()
                return replace(created, status=new_status, end_time=end.end_time)
            self._writer.finish(run_id, end)
            self._running.discard(run_id)
            if end.error is not None:
                raise end.error
            self._writer.raise_pending()
            assert end.info is not None
            return end.info
        if new_status is not None and new_status.is_terminal:
            try:
                self.flush()  # metrics logged before the end belong to the run
            except ShipyardError as exc:  # still end the run, then report the lost metrics
                failed_write = exc
            self._running.discard(run_id)
        elif new_status is RunStatus.RUNNING:
            self._running.add(run_id)
        info = self.store.runs.update(run_id, status=new_status, run_name=run_name, end_time=end_time)
        if failed_write is not None:
            raise failed_write
        return info

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED,
                       end_time: int | None = None) -> RunInfo:
        """End a run: write its pending metrics, then set its status and end time."""
        new_status = self._status(status)
        if not new_status.is_terminal:
            raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {new_status.value}")
        return self.update_run(run_id, status=new_status, end_time=end_time or now_ms())

    def delete_run(self, run_id: str) -> None:
        self._running.discard(run_id)
        self.store.runs.delete(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.runs.restore(run_id)

    def search_runs(
        self,
        experiment_ids: Sequence[str] | str,
        filter_string: str | None = "",
        run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching an MLflow-style filter, e.g. ``metrics.loss < 0.3 and params.depth = '6'``.
        The result is a list with ``.token`` for the next page (``None`` on the last)."""
        from shipyard.filters import parse_filter, parse_order_by

        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        rules.check_max_results(max_results)
        query = RunQuery(tuple(str(e) for e in experiment_ids), parse_filter(filter_string),
                         ViewType(run_view_type), parse_order_by(order_by), max_results, page_token)
        self.flush()
        page = self.store.runs.search(query)
        return PagedList(page.items, page.next_page_token)

    # -- params, tags, metrics ---------------------------------------------------------
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params are immutable: re-logging a key with another value raises ``Conflict``."""
        self._writer.raise_pending()
        checked = self._params(params.items())
        if not self._pending.log_params(run_id, checked):
            self.store.runs.log_params(run_id, checked)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._writer.raise_pending()
        checked = [RunTag(k, v) for k, v in self._tags(tags).items()]
        if not self._pending.set_tags(run_id, checked):
            self.store.runs.set_tags(run_id, checked)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.runs.delete_tag(run_id, key)

    def log_metric(self, run_id: str, key: str, value: Any, step: int | None = None,
                   timestamp: int | None = None) -> None:
        """Queue one metric value; it is written in the background (see :meth:`flush`)."""
        rules.check_metric_key(key)
        metric = Metric(key, rules.metric_value(key, value), rules.metric_step(key, step),
                        timestamp if timestamp is not None else now_ms())
        if run_id not in self._running:
            self._require_running(run_id)
        self._writer.put(run_id, metric)

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int | None = None,
                    timestamp: int | None = None) -> None:
        """Queue several metric values taken at the same step."""
        ts = timestamp if timestamp is not None else now_ms()
        batch = [Metric(rules.check_metric_key(k), rules.metric_value(k, v), rules.metric_step(k, step), ts)
                 for k, v in metrics.items()]
        if run_id not in self._running:
            self._require_running(run_id)
        self._writer.put_many(run_id, batch)

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = ()) -> None:
        """Write metrics, params and tags now, all in one transaction (all or nothing)."""
        for m in metrics:
            rules.check_metric_key(m.key)
        self._writer.raise_pending()
        if not (metrics or params or tags):
            return
        checked_params = self._params((p.key, p.value) for p in params)
        checked_tags = [RunTag(k, v) for k, v in self._tags({t.key: t.value for t in tags}).items()]
        if run_id in self._pending and self._pending.log_params(run_id, checked_params) and \
                self._pending.set_tags(run_id, checked_tags):
            values = [m if type(m.value) is float else Metric(m.key, rules.metric_value(m.key, m.value), m.step,
                                                             m.timestamp) for m in metrics]
            if self._pending.write(self._open_store(), run_id, metrics=values) is not None:
                return
            checked_params, checked_tags, metrics = [], [], values  # written meanwhile, with them
        write_run(self.store, run_id, params=[(p.key, p.value) for p in checked_params],
                  tags=[(t.key, t.value) for t in checked_tags], metrics=metrics)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush()
        return self.store.metrics.history(run_id, key)

    def get_metric_history_columns(self, run_id: str, key: str, *, max_points: int | None = None) -> MetricHistory:
        """The history of one metric as arrays (``.steps``, ``.values``, ``.timestamps``; ``.to_numpy()``;
        ``.metrics()`` for objects). With ``max_points``, thinned for a chart to at most that many
        points, keeping each bucket's first, last, lowest and highest (see
        :func:`shipyard.tracking.downsample.min_max`); a tracking server thins it before sending."""
        from shipyard.tracking.downsample import min_max

        self.flush()
        metrics = self.store.metrics
        if max_points is not None and getattr(metrics, "thins_history", False):  # a server: thin it there
            return metrics.history_columns(run_id, key, max_points=max_points)  # type: ignore[call-arg]
        history = metrics.history_columns(run_id, key)
        return history if max_points is None else min_max(history, max_points)

    # -- artifacts ---------------------------------------------------------------------
    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> ArtifactEntry:
        """Store a file as ``<artifact_path>/<file name>`` of the run."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(f"cannot log artifact {str(local_path)!r}: no such file "
                               "(use log_artifacts for a folder)")
        target = _join(artifact_path, path.name)
        self._check_artifact(run_id, target)
        return self.artifacts.log_file(run_id, path, target)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None) -> list[ArtifactEntry]:
        """Store every file below ``local_dir`` under ``artifact_path``, keeping the layout.
        ``InvalidInput`` naming the first symbolic link inside the folder: a link can point
        anywhere (``~/.ssh``, ``/etc``), so none is followed and nothing is logged then."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"cannot log artifacts from {str(local_dir)!r}: no such folder")
        self._require_exists(run_id)
        from shipyard.tracking.artifact_rules import folder_files

        files = folder_files(local_dir)
        targets = [_join(artifact_path, f.relative_to(root).as_posix()) for f in files]
        for target in targets:  # all checked before any is stored: a refused folder stores nothing
            self._check_artifact(run_id, target)
        return [self.artifacts.log_file(run_id, f, t) for f, t in zip(files, targets, strict=True)]

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactEntry:
        self._check_artifact(run_id, artifact_file)
        return self.artifacts.log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        """Store a dict as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        return self.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactEntry:
        """Store a matplotlib figure, in the format its extension names (png, svg, pdf...)."""
        if not hasattr(figure, "savefig"):
            raise InvalidInput(f"log_figure takes a matplotlib Figure, got {type(figure).__name__}")
        fmt = Path(artifact_file).suffix.lstrip(".").lower() or "png"
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt)
        self._check_artifact(run_id, artifact_file)
        return self.artifacts.log_bytes(run_id, buffer.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
        self._require_exists(run_id)
        return self.artifacts.list(run_id, path or "")

    def download_artifacts(self, run_id: str, path: str = "",
                           dst_path: str | os.PathLike[str] | None = None) -> Path:
        """Download a file or folder (``""`` = all) into ``dst_path`` (default: a new temp folder)."""
        self._require_exists(run_id)
        return self.artifacts.download(run_id, path or "", download_destination(dst_path))

    # -- datasets ----------------------------------------------------------------------
    def log_dataset(self, run_id: str, source: Any, name: str | None = None, *, context: str = "",
                    snapshot: bool = False, output: bool = False) -> DatasetVersion:
        """Record that the run read (or, with ``output``, wrote) ``source``: a file, folder or
        glob, or a pandas/polars DataFrame, pyarrow Table or numpy array. Same name and content
        give the existing version; new content, the next one. ``snapshot`` also stores the data
        itself (deduplicated), so it can be restored byte for byte."""
        return self.datasets.log(run_id, source, name, context=context, snapshot=snapshot, output=output)

    def get_dataset(self, ref: str) -> DatasetVersion:
        """``name@version``, ``name@latest`` or ``name`` (the latest)."""
        return self.datasets.get(ref)

    # -- models ------------------------------------------------------------------------
    def log_model(self, run_id: str, model: Any, artifact_path: str = "model", *, flavor: str | None = None,
                  signature: Any = None, input_example: Any = None, code_paths: list[str] | None = None,
                  artifacts: dict[str, str] | None = None, flavor_options: dict[str, Any] | None = None) -> Any:
        """Save ``model`` as a package (manifest with digests, signature inferred from
        ``input_example``) and store it as the run's artifact folder ``artifact_path``.
        ``flavor_options`` go to the flavor (e.g. torch's ``init_kwargs``; see docs/models.md).
        Returns the manifest; load it back with ``load_model(f"runs:/{run_id}/{artifact_path}")``."""
        import tempfile

        from shipyard.artifacts.paths import normalize_artifact_path
        from shipyard.models.package import save_model

        artifact_path = normalize_artifact_path(artifact_path)
        if run_id not in self._running:
            self._require_running(run_id)
        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            folder = Path(tmp) / "model"
            # list and dict are invariant: list[str] is not list[str | Path], though save_model only reads them
            manifest = save_model(model, folder, flavor=flavor, signature=signature, input_example=input_example,
                                  code_paths=code_paths, artifacts=artifacts, run_id=run_id,  # type: ignore[arg-type]
                                  artifact_path=artifact_path, flavor_options=flavor_options)
            self.log_artifacts(run_id, folder, artifact_path)
        return manifest

    def load_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Any:
        """Load ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<name>/latest`` or a local package folder; every file's digest is checked, and
        ``predict`` enforces the model's signature."""
        return self.registry.load_model(model_uri, dst_path)

    def model_source(self, model_uri: str) -> tuple[str, str]:
        """(run id, artifact path) of the package a ``runs:/`` or ``models:/`` URI names (a
        version copied from another version of this registry names that one's package)."""
        return self.registry.model_source(model_uri)

    def download_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Path:
        """Download the package folder a ``runs:/`` or ``models:/`` URI names."""
        return self.registry.download_model(model_uri, dst_path)

    def get_model_manifest(self, model_uri: str) -> Any:
        """The :class:`~shipyard.models.manifest.ModelManifest` of a logged or registered model
        (flavor, signature, requirements, pickle-based), without downloading its files."""
        return self.registry.get_model_manifest(model_uri)

    # -- model registry: the same calls on this client's RegistryService -----------------
    def create_registered_model(self, name: str, *, description: str = "",
                                tags: Mapping[str, Any] | None = None) -> RegisteredModel:
        """Raises ``AlreadyExists`` when the name is taken."""
        return self.registry.create_registered_model(name, description=description, tags=tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.registry.get_registered_model(name)

    def register_model(self, model_uri: str, name: str, *, description: str = "",
                       tags: Mapping[str, Any] | None = None, run_id: str | None = None) -> ModelVersion:
        """Make the model at ``model_uri`` the next version of ``name`` (the registered model is
        created when new). ``runs:/<run_id>/<path>`` of a package in this store is the usual
        source; a remote or registry URI (``s3://…``, ``models:/…``) is recorded as external
        (:func:`shipyard.models.sources.plan_version_source` says what is accepted). ``run_id``
        names the run that made an external model; the version is linked to it when it is a run
        of this store."""
        return self.registry.register_model(model_uri, name, description=description, tags=tags, run_id=run_id)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.registry.get_model_version(name, version)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names: by number, by alias, or the latest."""
        return self.registry.resolve_model_version(model_uri)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (``staging``, ``production``...) at a version; the move is recorded."""
        return self.registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.registry.delete_alias(name, alias)

    def model_history(self, name: str) -> list[RegistryEvent]:
        """Every recorded change of a registered model, oldest first."""
        return self.registry.model_history(name)

    def search_registered_models(self, filter_string: str | None = None, *, max_results: int = 100,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        """Models matching e.g. ``name LIKE 'churn%' and tags.team = 'growth'``, by name."""
        return self.registry.search_registered_models(filter_string, max_results=max_results, page_token=page_token)

    def search_model_versions(self, filter_string: str | None = None, *, max_results: int = 100,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        """Versions matching e.g. ``name = 'churn' and version >= 3``, newest first."""
        return self.registry.search_model_versions(filter_string, max_results=max_results, page_token=page_token)

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        return self.registry.update_registered_model(name, description=description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.registry.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Refused while an alias points at one of its versions, unless ``force``."""
        self.registry.delete_registered_model(name, force=force)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Raises ``NotFound`` when the model has no tag ``key``."""
        self.registry.delete_registered_model_tag(name, key)

    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             status: VersionStatus | str | None = None) -> ModelVersion:
        return self.registry.update_model_version(name, version, description=description, status=status)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Refused while an alias points at it, unless ``force`` (which removes those aliases)."""
        self.registry.delete_model_version(name, version, force=force)

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        self.registry.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Raises ``NotFound`` when the version has no tag ``key``."""
        self.registry.delete_model_version_tag(name, version, key)

    def approve_model_version(self, name: str, version: int, *, comment: str = "") -> ModelVersion:
        """Approve a version for protected aliases (``production`` by default)."""
        return self.registry.approve_model_version(name, version, comment=comment)

    def protect_alias(self, name: str, alias: str, protected: bool = True) -> RegisteredModel:
        """Require (or stop requiring) an approval before a version takes ``alias``."""
        return self.registry.protect_alias(name, alias, protected)

    def evaluate_model(self, model_uri: str, data: Any, *, target: str, model_type: str | None = None,
                       experiment_id: str | None = None, dataset_name: str | None = None) -> Evaluation:
        """Compute the standard metrics of a model on labelled ``data`` (a DataFrame or a
        .parquet/.csv path) and log them as an evaluation run linked to the model version, where
        quality gates find them. See :func:`shipyard.models.evaluate.evaluate`."""
        from shipyard.models.evaluate import evaluate

        return evaluate(self, model_uri, data, target=target, model_type=model_type, experiment_id=experiment_id,
                        dataset_name=dataset_name)

    def model_card(self, name: str, version: int, *, regenerate: bool = False) -> str:
        """The version's Markdown model card; generated from its run, package and evaluation
        (and stored) when it has none yet or with ``regenerate``."""
        from shipyard.models.card import card

        return card(self, name, int(version), regenerate=regenerate)

    def set_model_card(self, name: str, version: int, text: str) -> ModelVersion:
        """Store an edited model card (an empty text lets the next ``model_card`` regenerate it)."""
        from shipyard.models.card import set_card

        return set_card(self, name, int(version), text)

    def promote_model(self, name: str, version: int, to: str, *, require: Sequence[str] = (),
                      compare_to: str | None = None, compare_metrics: Sequence[str] = (),
                      max_regression: float = 0.01, dry_run: bool = False) -> PromotionResult:
        """Point alias ``to`` at the version only if every quality gate passes: each ``require``
        expression (``metrics.f1 >= 0.85``), no regression beyond ``max_regression`` against the
        version holding ``compare_to``, and an approval when ``to`` is protected. The result says
        which gates passed and why; nothing moves when one fails (or with ``dry_run``). See
        :func:`shipyard.models.gates.promote`."""
        from shipyard.models.gates import promote

        return promote(self, name, int(version), to, require=require, compare_to=compare_to,
                       compare_metrics=compare_metrics, max_regression=max_regression, dry_run=dry_run)

    # -- helpers -----------------------------------------------------------------------
    def _require_running(self, run_id: str) -> None:
        """A run takes metrics while it is not deleted: a finished run takes new values too (an
        evaluation after the run ended), recorded with the time they were logged. Only RUNNING
        runs are remembered, so a finished one is checked again (it may be deleted meanwhile)."""
        info = self.store.runs.get(run_id).info
        if info.lifecycle_stage.value == "deleted":
            raise RunNotActive(f"run '{run_id}' is deleted; restore it before logging to it")
        if info.status is RunStatus.RUNNING:
            self._running.add(run_id)

    def _check_artifact(self, run_id: str, path: str) -> None:
        from shipyard.artifacts.paths import normalize_artifact_path
        from shipyard.tracking.artifact_rules import check_artifact_write

        check_artifact_write(self.store, self.artifacts, run_id, normalize_artifact_path(path))

    def _require_exists(self, run_id: str) -> None:
        if run_id not in self._running:
            self.store.runs.get(run_id)

    @staticmethod
    def _status(status: RunStatus | str) -> RunStatus:
        try:
            return RunStatus(str(status).upper())
        except ValueError:
            raise InvalidInput(f"unknown run status {status!r}; one of "
                               f"{', '.join(s.value for s in RunStatus)}") from None

    @staticmethod
    def _params(pairs: Iterable[tuple[str, Any]]) -> list[Param]:
        return [Param(rules.check_key("param", k), rules.param_value(k, v)) for k, v in pairs]

    @staticmethod
    def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
        return {rules.check_key("tag", k): rules.tag_value(k, v) for k, v in (tags or {}).items()}


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name

