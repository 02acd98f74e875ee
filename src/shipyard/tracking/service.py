"""Tracking's rules: experiments, runs, params, tags, metrics and artifacts.

:class:`TrackingService` is built from a Store, an ArtifactStore and the acting principal, like
the registry's (:mod:`shipyard.models.registry`): the SDK's ``Client`` builds one for its user,
the server one per request, so the native API and the MLflow-compatible API apply the same rules
and record the same user. It checks every name, key and value (:mod:`shipyard.tracking.validation`),
decides who a new run belongs to and when a run takes writes, and leaves integrity to the store.

What the SDK adds on top — metrics queued to a background writer, runs written with their first
params in one transaction (:mod:`shipyard.tracking.pending`) — stays in the ``Client``: it is
batching, not a rule. The module-level checks (:func:`checked_params`, :func:`checked_tags`,
:func:`checked_metrics`, :func:`run_status`, :func:`new_run_info`) are what both use.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from shipyard.artifacts.paths import download_destination, normalize_artifact_path
from shipyard.artifacts.protocol import ArtifactStore
from shipyard.auth import Principal
from shipyard.clock import now_ms
from shipyard.entities import (
    ArtifactEntry,
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.errors import AlreadyExists, InvalidInput, NotFound, RunNotActive
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.artifact_rules import check_artifact_write, folder_files
from shipyard.tracking.names import generate_run_name
from shipyard.tracking.paged import PagedList

__all__ = ["HasTracking", "TrackingService", "as_tracking", "checked_metrics", "checked_params", "checked_tags",
           "new_run_info", "run_status"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


# -- the shape rules, shared with the SDK's batching -------------------------------------------

def checked_params(pairs: Iterable[tuple[str, Any]]) -> list[Param]:
    """(key, value) pairs as params, each key and value checked (values become strings)."""
    return [Param(rules.check_key("param", k), rules.param_value(k, v)) for k, v in pairs]


def checked_tags(tags: Mapping[str, Any] | Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """A mapping (or pairs) of tags, each key and value checked (values become strings)."""
    pairs = tags.items() if isinstance(tags, Mapping) else (tags or ())
    return {rules.check_key("tag", k): rules.tag_value(k, v) for k, v in pairs}


def checked_metrics(metrics: Sequence[Metric]) -> list[Metric]:
    """Metrics with checked keys and values coerced to float (NaN and infinities are values)."""
    checked = []
    for m in metrics:
        rules.check_metric_key(m.key)
        checked.append(m if type(m.value) is float else
                       Metric(m.key, rules.metric_value(m.key, m.value), m.step, m.timestamp))
    return checked


def run_status(status: RunStatus | str) -> RunStatus:
    """``status`` as a :class:`RunStatus` (any case), or ``InvalidInput`` naming the choices."""
    try:
        return RunStatus(str(status).upper())
    except ValueError:
        raise InvalidInput(f"unknown run status {status!r}; one of "
                           f"{', '.join(s.value for s in RunStatus)}") from None


def new_run_info(principal: Principal, experiment_id: str, run_name: str | None = None, *,
                 run_id: str | None = None, start_time: int | None = None, parent_run_id: str | None = None,
                 user_id: str = "", source: str = "") -> RunInfo:
    """The info of a RUNNING run to create: a fresh id unless ``run_id`` (32 lowercase hex
    characters) is given, a generated name unless ``run_name``, and the user the principal makes
    it (a signed-in principal is the run's user; the SDK's local one keeps ``user_id``)."""
    if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id)):
        raise InvalidInput(f"run id {run_id!r:.60} is not valid: 32 lowercase hexadecimal characters, "
                           "like uuid.uuid4().hex")
    if parent_run_id is not None and (not isinstance(parent_run_id, str) or not 0 < len(parent_run_id) <= 32):
        raise InvalidInput(f"parent run id {parent_run_id!r:.60} is not a run id (1 to 32 characters)")
    name = rules.check_name("run name", run_name, rules.MAX_RUN_NAME_LENGTH) if run_name is not None \
        else generate_run_name()
    return RunInfo(run_id or secrets.token_hex(16), str(experiment_id), name, RunStatus.RUNNING,
                   start_time or now_ms(), parent_run_id=parent_run_id, user_id=principal.run_user(user_id),
                   source=source)


def _join(prefix: str | None, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix else name


class TrackingService:
    """Experiments, runs and their params, tags, metrics and artifacts, as ``principal``."""

    def __init__(self, store: Store, artifacts: ArtifactStore, principal: Principal) -> None:
        self.store = store
        self.artifacts = artifacts
        self.principal = principal

    # -- experiments -------------------------------------------------------------------------
    def create_experiment(self, name: str, tags: Mapping[str, Any] | None = None, *,
                          project: str = DEFAULT_PROJECT) -> str:
        """Create an experiment in ``project`` and return its id. Raises ``AlreadyExists``."""
        rules.check_name("experiment name", name)
        return self.store.experiments.create(name, checked_tags(tags),
                                             project=rules.check_project(project)).experiment_id

    def get_or_create_experiment(self, name: str) -> Experiment:
        """The experiment named ``name``, created when missing; safe when another process
        creates it at the same moment."""
        found = self.store.experiments.get_by_name(name)
        if found is not None:
            return found
        try:
            return self.store.experiments.get(self.create_experiment(name))
        except AlreadyExists:  # lost the race to another creator: theirs is ours
            found = self.store.experiments.get_by_name(name)
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

    def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, Any]) -> None:
        self.store.experiments.set_tags(str(experiment_id), checked_tags(tags))

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        self.store.experiments.delete_tag(str(experiment_id), key)

    # -- runs ----------------------------------------------------------------------------------
    def create_run(self, experiment_id: str, run_name: str | None = None, *, start_time: int | None = None,
                   tags: Mapping[str, Any] | None = None, parent_run_id: str | None = None, user_id: str = "",
                   source: str = "") -> Run:
        """Create a RUNNING run. Raises ``NotFound`` for an unknown experiment. A parent that is
        not a run of this store is recorded as given, without a lineage edge."""
        info = new_run_info(self.principal, experiment_id, run_name, start_time=start_time,
                            parent_run_id=parent_run_id, user_id=user_id, source=source)
        return self.store.runs.create(info.experiment_id, run_name=info.run_name, start_time=info.start_time,
                                      user_id=info.user_id, source=source, parent_run_id=parent_run_id,
                                      tags=checked_tags(tags))

    def write_run(self, run_id: str, *, create: RunInfo | None = None, params: Iterable[tuple[str, Any]] = (),
                  tags: Iterable[tuple[str, Any]] = (), metrics: Sequence[Metric] = (),
                  status: RunStatus | None = None, end_time: int | None = None) -> RunInfo:
        """One ``RunStore.write``: create the run ``create`` describes (see :func:`new_run_info`),
        then its params, tags, metrics and status, all in one transaction, every name, key and
        value checked first. ``params`` and ``tags`` are (key, value) pairs."""
        if create is not None:
            create = new_run_info(self.principal, create.experiment_id, create.run_name, run_id=run_id,
                                  start_time=create.start_time, parent_run_id=create.parent_run_id,
                                  user_id=create.user_id, source=create.source)
        return self.store.runs.write(run_id, create=create, params=checked_params(params),
                                     tags=[RunTag(k, v) for k, v in checked_tags(tags).items()],
                                     metrics=checked_metrics(metrics), status=status, end_time=end_time)

    def get_run(self, run_id: str) -> Run:
        """The run with params, tags and latest metrics."""
        return self.store.runs.get(run_id)

    def update_run(self, run_id: str, *, status: RunStatus | str | None = None, run_name: str | None = None,
                   end_time: int | None = None) -> RunInfo:
        if run_name is not None:
            rules.check_name("run name", run_name, rules.MAX_RUN_NAME_LENGTH)
        return self.store.runs.update(run_id, status=run_status(status) if status is not None else None,
                                      run_name=run_name, end_time=end_time)

    def delete_run(self, run_id: str) -> None:
        self.store.runs.delete(run_id)

    def restore_run(self, run_id: str) -> None:
        self.store.runs.restore(run_id)

    def search_runs(self, experiment_ids: Sequence[str] | str, filter_string: str | None = "",
                    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY, max_results: int = 1000,
                    order_by: Sequence[str] | None = None, page_token: str | None = None) -> PagedList[Run]:
        """Runs matching an MLflow-style filter, e.g. ``metrics.loss < 0.3 and params.depth = '6'``.
        The result is a list with ``.token`` for the next page (``None`` on the last)."""
        from shipyard.filters import parse_filter, parse_order_by

        if isinstance(experiment_ids, str):
            experiment_ids = [experiment_ids]
        rules.check_max_results(max_results)
        return self.search(RunQuery(tuple(str(e) for e in experiment_ids), parse_filter(filter_string),
                                    ViewType(run_view_type), parse_order_by(order_by), max_results, page_token))

    def search(self, query: RunQuery) -> PagedList[Run]:
        """Runs matching a parsed query (the APIs build theirs from their own filter dialects)."""
        page = self.store.runs.search(query)
        return PagedList(page.items, page.next_page_token)

    def check_loggable(self, run_id: str) -> RunInfo:
        """A run takes metrics while it is not deleted: a finished run takes new values too (an
        evaluation after the run ended), recorded with the time they were logged."""
        info = self.store.runs.get(run_id).info
        if info.lifecycle_stage is LifecycleStage.DELETED:
            raise RunNotActive(f"run '{run_id}' is deleted; restore it before logging to it")
        return info

    # -- params, tags, metrics -----------------------------------------------------------------
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Params are immutable: re-logging a key with another value raises ``Conflict``."""
        self.store.runs.log_params(run_id, checked_params(params.items()))

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.store.runs.set_tags(run_id, [RunTag(k, v) for k, v in checked_tags(tags).items()])

    def delete_tag(self, run_id: str, key: str) -> None:
        self.store.runs.delete_tag(run_id, key)

    def log_batch(self, run_id: str, metrics: Sequence[Metric] = (), params: Sequence[Param] = (),
                  tags: Sequence[RunTag] = ()) -> None:
        """Write metrics, params and tags now, all in one transaction (all or nothing)."""
        if metrics or params or tags:
            self.write_run(run_id, params=[(p.key, p.value) for p in params],
                           tags=[(t.key, t.value) for t in tags], metrics=metrics)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.metrics.history(run_id, key)

    def get_metric_history_columns(self, run_id: str, key: str, *, max_points: int | None = None) -> MetricHistory:
        """The history of one metric as arrays; with ``max_points``, thinned for a chart to at most
        that many points (:func:`shipyard.tracking.downsample.min_max`), by the tracking server
        when the store is one."""
        from shipyard.tracking.downsample import min_max

        metrics = self.store.metrics
        if max_points is not None and getattr(metrics, "thins_history", False):  # a server: thin it there
            return metrics.history_columns(run_id, key, max_points=max_points)  # type: ignore[call-arg]
        history = metrics.history_columns(run_id, key)
        return history if max_points is None else min_max(history, max_points)

    # -- artifacts -----------------------------------------------------------------------------
    def check_artifact(self, run_id: str, path: str) -> None:
        """Raise unless the run may take a file at ``path`` (:mod:`shipyard.tracking.artifact_rules`)."""
        check_artifact_write(self.store, self.artifacts, run_id, normalize_artifact_path(path))

    def log_artifact(self, run_id: str, local_path: str | os.PathLike[str],
                     artifact_path: str | None = None) -> ArtifactEntry:
        """Store a file as ``<artifact_path>/<file name>`` of the run."""
        path = Path(local_path)
        if not path.is_file():
            raise InvalidInput(f"cannot log artifact {str(local_path)!r}: no such file "
                               "(use log_artifacts for a folder)")
        target = _join(artifact_path, path.name)
        self.check_artifact(run_id, target)
        return self.artifacts.log_file(run_id, path, target)

    def log_artifacts(self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None, *,
                      run_known: bool = False) -> list[ArtifactEntry]:
        """Store every file below ``local_dir`` under ``artifact_path``, keeping the layout.
        ``InvalidInput`` naming the first symbolic link inside the folder: a link can point
        anywhere (``~/.ssh``, ``/etc``), so none is followed and nothing is logged then.
        ``run_known``: the caller knows the run exists (an empty folder then reads nothing)."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"cannot log artifacts from {str(local_dir)!r}: no such folder")
        if not run_known:
            self.store.runs.get(run_id)
        files = folder_files(local_dir)
        targets = [_join(artifact_path, f.relative_to(root).as_posix()) for f in files]
        for target in targets:  # all checked before any is stored: a refused folder stores nothing
            self.check_artifact(run_id, target)
        return [self.artifacts.log_file(run_id, f, t) for f, t in zip(files, targets, strict=True)]

    def log_text(self, run_id: str, text: str, artifact_file: str) -> ArtifactEntry:
        self.check_artifact(run_id, artifact_file)
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
        self.check_artifact(run_id, artifact_file)
        return self.artifacts.log_bytes(run_id, buffer.getvalue(), artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None, *, run_known: bool = False) -> list[ArtifactEntry]:
        if not run_known:
            self.store.runs.get(run_id)
        return self.artifacts.list(run_id, path or "")

    def download_artifacts(self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None, *,
                           run_known: bool = False) -> Path:
        """Download a file or folder (``""`` = all) into ``dst_path`` (default: a new temp folder)."""
        if not run_known:
            self.store.runs.get(run_id)
        return self.artifacts.download(run_id, path or "", download_destination(dst_path))


class HasTracking(Protocol):
    """What hands out a :class:`TrackingService`: the SDK's ``Client``, whose metric writer may
    still hold values logged a moment ago."""

    @property
    def tracking(self) -> TrackingService: ...

    def flush(self) -> None: ...


def as_tracking(source: TrackingService | HasTracking) -> TrackingService:
    """``source`` itself, or the tracking service of a ``Client`` (the SDK's spelling of the
    domain functions that take one) after its queued metrics are written, so what the service
    reads includes them."""
    if isinstance(source, TrackingService):
        return source
    source.flush()
    return source.tracking
