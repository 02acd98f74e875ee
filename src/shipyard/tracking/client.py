"""The SDK's client with explicit ids: experiments, runs, params, metrics, tags, artifacts, models.

``Client`` is the facade the fluent SDK (``shipyard.log_metric``...), the CLI and the server
build from the settings: it opens the Store and the ArtifactStore and hands each call to the
domain service that holds its rules (:mod:`shipyard.tracking.service` for tracking). What it adds
is the SDK's batching: metrics go through the background writer, and the fluent SDK's runs are
written with their first values (:mod:`shipyard.tracking.pending`); everything else is written
before the call returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts.protocol import ArtifactStore
from shipyard.auth import Principal, local_principal
from shipyard.clock import now_ms
from shipyard.config import Settings
from shipyard.entities import (
    ArtifactEntry,
    DatasetVersion,
    Experiment,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.errors import InvalidInput, ShipyardError
from shipyard.store.not_found import experiment_deleted
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.model_calls import ModelCalls
from shipyard.tracking.paged import PagedList
from shipyard.tracking.pending import PendingRuns, RunEnd
from shipyard.tracking.service import (
    TrackingService,
    checked_metrics,
    checked_params,
    checked_tags,
    new_run_info,
    run_status,
)
from shipyard.tracking.writer import MetricWriter

if TYPE_CHECKING:
    from shipyard.deploy.rollout import DeploymentService
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


class Client(ModelCalls):
    """Tracking with explicit experiment and run ids.

    ``Client()`` uses the configured tracking URI (``SHIPYARD_TRACKING_URI``, default
    ``sqlite:///./.shipyard/shipyard.db``); pass ``tracking_uri``/``artifact_uri`` to choose,
    or a ready ``store``/``artifact_store`` (tests, the server).

    ``defer_runs`` (the fluent SDK's client): ``create_run`` writes nothing yet, and the run goes
    to the store with its params, tags and first metrics in one transaction, within the metric
    writer's linger time or at its end, whichever comes first (:mod:`shipyard.tracking.pending`).

    Every call goes to a domain service built for this client's principal: :attr:`tracking`,
    :attr:`registry` (the model calls, from :class:`~shipyard.tracking.model_calls.ModelCalls`),
    :attr:`datasets`, :attr:`deployments`, :attr:`monitors`. The client adds only its batching.
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
    def tracking(self) -> TrackingService:
        """Experiments, runs, params, tags, metrics and artifacts, written at once, as this client's
        principal (this client's own calls add the metric writer and deferred runs on top)."""
        return TrackingService(self.store, self.artifacts, self.principal)

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

    # -- experiments: the same calls on this client's TrackingService ----------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None, *,
                          project: str = DEFAULT_PROJECT) -> str:
        """Create an experiment in ``project`` and return its id. Raises ``AlreadyExists``."""
        return self.tracking.create_experiment(name, tags, project=project)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created when missing; safe when another process
        creates it at the same moment."""
        return self.tracking.get_or_create_experiment(name)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self.tracking.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self.tracking.get_experiment_by_name(name)

    def resolve_experiment(self, id_or_name: str) -> Experiment:
        """An experiment by id, or else by name. Raises ``NotFound`` naming what was given."""
        return self.tracking.resolve_experiment(id_or_name)

    def search_experiments(self, view: ViewType = ViewType.ACTIVE_ONLY, *,
                           projects: Sequence[str] | None = None) -> list[Experiment]:
        """Experiments in ``view`` (of ``projects`` only, if given), oldest first."""
        return self.tracking.search_experiments(view, projects=projects)

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        return self.tracking.rename_experiment(experiment_id, new_name)

    def delete_experiment(self, experiment_id: str) -> None:
        self.tracking.delete_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> None:
        self.tracking.restore_experiment(experiment_id)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        self.tracking.set_experiment_tags(experiment_id, {key: value})

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        self.tracking.set_experiment_tags(experiment_id, tags)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.tracking.delete_experiment_tag(experiment_id, key)

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
        if defer and self._defer_runs:
            return self._defer_run(new_run_info(self.principal, experiment_id, run_name, start_time=start_time,
                                                parent_run_id=parent_run_id, user_id=user_id, source=source),
                                   checked_tags(tags))
        run = self.tracking.create_run(experiment_id, run_name, start_time=start_time, tags=tags,
                                       parent_run_id=parent_run_id, user_id=user_id, source=source)
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
        return self.tracking.get_run(run_id)

    def update_run(self, run_id: str, *, status: RunStatus | str | None = None,
                   run_name: str | None = None, end_time: int | None = None) -> RunInfo:
        if run_name is not None:
            rules.check_name("run name", run_name, rules.MAX_RUN_NAME_LENGTH)
        new_status = run_status(status) if status is not None else None
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
        info = self.tracking.update_run(run_id, status=new_status, run_name=run_name, end_time=end_time)
        if failed_write is not None:
            raise failed_write
        return info

    def set_terminated(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED,
                       end_time: int | None = None) -> RunInfo:
        """End a run: write its pending metrics, then set its status and end time."""
        new_status = run_status(status)
        if not new_status.is_terminal:
            raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {new_status.value}")
        return self.update_run(run_id, status=new_status, end_time=end_time or now_ms())

    def delete_run(self, run_id: str) -> None:
        self._running.discard(run_id)
        self.tracking.delete_run(run_id)

    def restore_run(self, run_id: str) -> None:
        self.tracking.restore_run(run_id)

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
        self.flush()
        return self.tracking.search_runs(experiment_ids, filter_string, run_view_type, max_results, order_by,
                                         page_token)

    # -- params, tags, metrics ---------------------------------------------------------
    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params are immutable: re-logging a key with another value raises ``Conflict``."""
        self._writer.raise_pending()
        checked = checked_params(params.items())
        if not self._pending.log_params(run_id, checked):
            self.store.runs.log_params(run_id, checked)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._writer.raise_pending()
        checked = [RunTag(k, v) for k, v in checked_tags(tags).items()]
        if not self._pending.set_tags(run_id, checked):
            self.store.runs.set_tags(run_id, checked)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.tracking.delete_tag(run_id, key)

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
        values = checked_metrics(metrics)
        self._writer.raise_pending()
        if not (metrics or params or tags):
            return
        params = checked_params((p.key, p.value) for p in params)
        tags = [RunTag(k, v) for k, v in checked_tags({t.key: t.value for t in tags}).items()]
        if run_id in self._pending and self._pending.log_params(run_id, params) and \
                self._pending.set_tags(run_id, tags):
            if self._pending.write(self._open_store(), run_id, metrics=values) is not None:
                return
            params, tags = [], []  # written meanwhile, with them
        # Checked above with the service's rules: written as the service would, without checking twice.
        self.store.runs.write(run_id, params=params, tags=tags, metrics=values)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        self.flush()
        return self.tracking.get_metric_history(run_id, key)

    def get_metric_history_columns(self, run_id: str, key: str, *, max_points: int | None = None) -> MetricHistory:
        """The history of one metric as arrays (``.steps``, ``.values``, ``.timestamps``; ``.to_numpy()``;
        ``.metrics()`` for objects). With ``max_points``, thinned for a chart to at most that many
        points, keeping each bucket's first, last, lowest and highest (see
        :func:`shipyard.tracking.downsample.min_max`); a tracking server thins it before sending."""
        self.flush()
        return self.tracking.get_metric_history_columns(run_id, key, max_points=max_points)

    # -- artifacts: the same calls on this client's TrackingService -----------------------
    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> ArtifactEntry:
        """Store a file as ``<artifact_path>/<file name>`` of the run."""
        return self.tracking.log_artifact(run_id, local_path, artifact_path)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str],
                      artifact_path: str | None = None) -> list[ArtifactEntry]:
        """Store every file below ``local_dir`` under ``artifact_path``, keeping the layout.
        ``InvalidInput`` naming the first symbolic link inside the folder: a link can point
        anywhere (``~/.ssh``, ``/etc``), so none is followed and nothing is logged then."""
        return self.tracking.log_artifacts(run_id, local_dir, artifact_path, run_known=run_id in self._running)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactEntry:
        return self.tracking.log_text(run_id, text, artifact_file)

    def log_dict(self, run_id: str, dictionary: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
        """Store a dict as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        return self.tracking.log_dict(run_id, dictionary, artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> ArtifactEntry:
        """Store a matplotlib figure, in the format its extension names (png, svg, pdf...)."""
        return self.tracking.log_figure(run_id, figure, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[ArtifactEntry]:
        return self.tracking.list_artifacts(run_id, path, run_known=run_id in self._running)

    def download_artifacts(self, run_id: str, path: str = "",
                           dst_path: str | os.PathLike[str] | None = None) -> Path:
        """Download a file or folder (``""`` = all) into ``dst_path`` (default: a new temp folder)."""
        return self.tracking.download_artifacts(run_id, path, dst_path, run_known=run_id in self._running)

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

    # -- helpers -----------------------------------------------------------------------
    def _require_running(self, run_id: str) -> None:
        """Only RUNNING runs are remembered, so a finished one is checked again (it may be deleted meanwhile)."""
        if self.tracking.check_loggable(run_id).status is RunStatus.RUNNING:
            self._running.add(run_id)
