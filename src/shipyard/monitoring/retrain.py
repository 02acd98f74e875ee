"""The retraining loop: a ``retrain:`` action trains a challenger on the window that fired, and
:mod:`shipyard.monitoring.challenge` judges it against the champion.

When a monitor starts FIRING (not while it keeps firing, nor inside its cooldown), each
``retrain:COMMAND`` action of a deployment monitor runs, step by step:

1. The window's labelled rows (inputs and the feedback label) are read from the prediction log
   and split at random (seeded by the window, so the split can be redone) into a training part
   and a held-back part (``RetrainPolicy.holdout`` of the rows), which the command never sees.
2. A *retraining run* is created in the champion's experiment. Both parts are written as Parquet
   and logged as its input dataset versions (``<monitor>-retrain`` with context ``retraining``,
   ``<monitor>-holdout`` with context ``holdout``), snapshotted, so the data is kept.
3. ``COMMAND`` runs (split like a shell would, without a shell) with the environment of the
   runner plus :data:`SHIPYARD_RETRAIN_DATA` (the training Parquet file), the dataset version,
   the model name, the alias, the label column, the retraining run's id, the runner's
   tracking and artifact URIs, so the command's ``shipyard`` calls reach the same store, and the
   runner's principal as ``SHIPYARD_ACTING_USER``. Its
   output is kept as artifacts of the retraining run. ``retrain:pipeline:MODULE:FUNCTION`` runs
   ``shipyard pipeline run MODULE:FUNCTION --no-cache --register MODEL`` the same way.
4. The newest version of the model registered while the command ran is the challenger; none is a
   failure. The retraining run is linked to the run that registered it (``child``), and the alert
   to the retraining run (``triggered``), so ``shipyard lineage explain`` of the challenger leads
   back to the alert that caused it.
5. :mod:`shipyard.monitoring.challenge` evaluates challenger and champion on the held-back rows
   and promotes the challenger only when it is better by the margin.

The outcome is the alert's record: status ``promoted``, ``not_promoted`` or ``failed`` and a
sentence saying why; nothing is promoted after any failure.

Who is recorded: the retraining run, its datasets, the evaluation runs, the alias move and the
deployment's revisions record the runner's principal (the ``MonitorService``'s, which its
:class:`Retrainer` acts as; on the server, :data:`~shipyard.monitoring.scheduler.MONITOR_PRINCIPAL`).
The command acts for the runner too: it is given the principal's name as the ``acting_user``
setting (``SHIPYARD_ACTING_USER``), so the challenger version it registers through a database URI
records that principal, not the OS login of its process (the server's account, for the server's
scheduler). Through a tracking server the token in its environment decides, as for any SDK program.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import Edge, Node, NodeKind, Relation, RunStatus, RunTag
from shipyard.entities.monitor import Alert, Monitor, MonitorEvaluation
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.models.registry import HasRegistry, RegistryService, as_registry
from shipyard.tracking import validation as rules
from shipyard.tracking.artifact_rules import check_artifact_write
from shipyard.tracking.datasets import DatasetService

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.auth import Principal
    from shipyard.entities import DatasetVersion, ModelVersion

__all__ = ["ENV_ALIAS", "ENV_DATA", "ENV_DATASET", "ENV_MODEL", "ENV_RUN", "ENV_TARGET", "LABEL", "MIN_LABELLED",
           "RetrainOutcome", "Retrainer", "check_retrain", "is_retrain", "retrain_argv"]

PREFIX = "retrain:"
PIPELINE = "pipeline:"
ENV_DATA = "SHIPYARD_RETRAIN_DATA"
ENV_DATASET = "SHIPYARD_RETRAIN_DATASET"
ENV_MODEL = "SHIPYARD_RETRAIN_MODEL"
ENV_ALIAS = "SHIPYARD_RETRAIN_ALIAS"
ENV_TARGET = "SHIPYARD_RETRAIN_TARGET"
ENV_RUN = "SHIPYARD_RETRAIN_RUN_ID"
ENV_MONITOR = "SHIPYARD_RETRAIN_MONITOR"
LABEL = "label"
# Fewer labelled rows than this cannot be split into a training part and a held-back part that
# says anything.
MIN_LABELLED = 20
_OUTPUT_TAIL = 600
_PIPELINE_TARGET = re.compile(r"\S+:[A-Za-z_]\w*")
_LAUNCH = "from shipyard.cli import main; main()"


def is_retrain(action: str) -> bool:
    return action.startswith(PREFIX)


def check_retrain(action: str) -> str:
    """``retrain:COMMAND`` or ``retrain:pipeline:MODULE:FUNCTION``, checked; ``InvalidInput``
    saying what is wrong otherwise."""
    command = action.removeprefix(PREFIX).strip()
    if command.startswith(PIPELINE):
        target = command.removeprefix(PIPELINE).strip()
        if not _PIPELINE_TARGET.fullmatch(target):
            raise InvalidInput(f"alert action {action!r}: a pipeline is named MODULE:FUNCTION or FILE.py:FUNCTION, "
                               "e.g. retrain:pipeline:pipelines.churn:train", field="actions")
        return f"{PREFIX}{PIPELINE}{target}"
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise InvalidInput(f"alert action {action!r}: the command cannot be split into arguments ({exc})",
                           field="actions") from None
    if not argv:
        raise InvalidInput(f"alert action {action!r}: give the command to run, e.g. retrain:python retrain.py",
                           field="actions")
    return f"{PREFIX}{command}"


def retrain_argv(action: str, model: str) -> list[str]:
    """The process to start for ``action``; a bare ``python`` is this interpreter, so the command
    sees the same installed packages as the runner."""
    command = action.removeprefix(PREFIX).strip()
    if command.startswith(PIPELINE):
        # No cache: the data arrives through the environment, which the steps' cache keys do not see.
        return [sys.executable, "-c", _LAUNCH, "pipeline", "run", command.removeprefix(PIPELINE), "--no-cache",
                "--register", model]
    argv = shlex.split(command)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


@dataclass
class RetrainOutcome:
    """What one retrain action came to: ``status`` (``promoted``, ``not_promoted``, ``failed``),
    the sentence saying why, and the record kept in the alert's payload (runs, datasets,
    versions, metrics)."""

    status: str
    detail: str
    record: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    challenger: ModelVersion | None = None


class Retrainer:
    """Runs retrain actions with ``registry``'s store, artifact store and principal, who is
    recorded on what the loop writes; the command is told ``tracking_uri`` and ``artifact_uri``,
    so its ``shipyard`` calls reach the same store. A ``Client`` (the SDK's spelling) gives its
    registry and, unless they are given, its settings' URIs."""

    def __init__(self, registry: RegistryService | HasRegistry, *, tracking_uri: str | None = None,
                 artifact_uri: str | None = None) -> None:
        settings = getattr(registry, "settings", None)
        tracking_uri = tracking_uri if tracking_uri is not None else getattr(settings, "tracking_uri", None)
        artifact_uri = artifact_uri if artifact_uri is not None else getattr(settings, "artifact_uri", None)
        if tracking_uri is None or artifact_uri is None:
            raise InvalidInput("a Retrainer built from a RegistryService needs tracking_uri and artifact_uri: the "
                               "URIs the retrain command's shipyard calls use to reach the same store")
        self.registry = as_registry(registry)
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri

    def acting_as(self, principal: Principal) -> Retrainer:
        """This retrainer (same store, artifact store and URIs), recording ``principal`` instead."""
        if principal == self.registry.principal:
            return self
        registry = self.registry
        view = copy.copy(self)
        view.registry = RegistryService(registry.store, registry.artifacts, principal)
        return view

    def retrain(self, monitor: Monitor, evaluation: MonitorEvaluation, action: str) -> RetrainOutcome:
        """Run the loop for ``action`` on the window of ``evaluation``. A step that fails raises a
        ``ShipyardError`` inside, which becomes the outcome's detail (the alert must be recorded
        whatever happened); only an unreachable store is raised."""
        from shipyard.errors import StoreUnavailable

        outcome = RetrainOutcome("failed", "")
        try:
            self._retrain(monitor, evaluation, action, outcome)
        except StoreUnavailable:
            raise
        except ShipyardError as exc:
            outcome.status = "failed"
            outcome.detail = f"retraining failed: {exc.message}; nothing was promoted"
        if outcome.run_id is not None:
            with contextlib.suppress(ShipyardError):
                self._set_tags(outcome.run_id, {"shipyard.retrain.outcome": outcome.status})
                self.registry.store.runs.update(
                    outcome.run_id, status=RunStatus.FAILED if outcome.status == "failed" else RunStatus.FINISHED,
                    end_time=now_ms())
        return outcome

    def link(self, alert: Alert, outcome: RetrainOutcome, reasons: str) -> None:
        """Record that ``alert`` started the retraining run: ``alert:<monitor>/<id> -> run``."""
        if outcome.run_id is None:
            return
        node = Node(NodeKind.ALERT, f"{alert.monitor}/{alert.alert_id}")
        self.registry.store.lineage.add_edges([Edge(node, Node(NodeKind.RUN, outcome.run_id), Relation.TRIGGERED,
                                                    f"{alert.state.value}: {reasons}"[:1000])])
        self._set_tags(outcome.run_id, {"shipyard.retrain.alert": str(node)})

    def _set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self.registry.store.runs.set_tags(run_id, [RunTag(rules.check_key("tag", k), rules.tag_value(k, v))
                                                   for k, v in tags.items()])

    # -- the steps -------------------------------------------------------------------------------
    def _retrain(self, monitor: Monitor, evaluation: MonitorEvaluation, action: str, outcome: RetrainOutcome) -> None:
        from shipyard.monitoring.challenge import champion_of, judge_challenger

        registry = self.registry
        if monitor.deployment is None or not monitor.metrics:
            raise ShipyardError("a retrain action needs a deployment monitor with a metric")
        deployment = registry.store.deployments.get(monitor.deployment)
        champion = champion_of(registry, deployment, monitor.retrain.alias)
        train, holdout = self._labelled_split(monitor, evaluation)
        outcome.record.update({"model": champion.name, "alias": monitor.retrain.alias, "champion": champion.version,
                               "train_rows": len(train), "holdout_rows": len(holdout)})
        before = self._latest_version(champion.name)
        run_id = outcome.run_id = self._start_run(monitor, evaluation, action, champion)
        outcome.record["run_id"] = run_id
        with tempfile.TemporaryDirectory(prefix="shipyard-retrain-") as tmp:
            train_path, holdout_path = Path(tmp) / "train.parquet", Path(tmp) / "holdout.parquet"
            train.to_parquet(train_path, index=False)
            holdout.to_parquet(holdout_path, index=False)
            data = self._log_dataset(run_id, train_path, _dataset_name(monitor, "retrain"), "retraining")
            held = self._log_dataset(run_id, holdout_path, _dataset_name(monitor, "holdout"), "holdout")
            outcome.record.update({"dataset": data.ref, "holdout": held.ref})
            self._run_command(action, monitor, champion.name, train_path, data.ref, run_id)
            challenger = self._challenger(champion.name, before, run_id)
            outcome.challenger = challenger
            outcome.record["challenger"] = challenger.version
            judge_challenger(registry, monitor, deployment, champion, challenger, holdout_path, held.ref, LABEL,
                             run_id, outcome)

    def _labelled_split(self, monitor: Monitor, evaluation: MonitorEvaluation) -> tuple[pd.DataFrame, pd.DataFrame]:
        import numpy as np
        import pyarrow as pa

        from shipyard.monitoring.windows import read_window

        window = read_window(self.registry.artifacts, str(monitor.deployment), evaluation.window_start,
                             evaluation.window_end)
        if not isinstance(window.inputs, pa.Table):
            raise ShipyardError(f"the window's inputs could not be read as one table ({', '.join(window.invalid)} mix "
                          "types), so there is nothing to train on")
        frame = window.inputs.to_pandas()
        if LABEL in frame.columns:
            raise ShipyardError(f"an input is named {LABEL!r}, the name the label column is given; rename the input")
        frame[LABEL] = window.labels.to_pandas()
        frame = frame[frame[LABEL].notna()].reset_index(drop=True)
        if len(frame) < MIN_LABELLED:
            raise ShipyardError(f"the window has {len(frame)} predictions with feedback, fewer than the {MIN_LABELLED} "
                          "needed to train and hold back data: send feedback (POST /v1/feedback) for more of them")
        rng = np.random.default_rng(evaluation.window_start % 2**32)
        order = rng.permutation(len(frame))
        held = max(1, round(len(frame) * monitor.retrain.holdout))
        return (frame.iloc[np.sort(order[held:])].reset_index(drop=True),
                frame.iloc[np.sort(order[:held])].reset_index(drop=True))

    def _latest_version(self, model: str) -> int:
        found = self.registry.search_model_versions(f"name = '{model}'", max_results=1)
        return max((v.version for v in found), default=0)

    def _start_run(self, monitor: Monitor, evaluation: MonitorEvaluation, action: str, champion: ModelVersion) -> str:
        from shipyard.entities import DEFAULT_EXPERIMENT_ID

        experiment = DEFAULT_EXPERIMENT_ID
        if champion.run_id:
            with contextlib.suppress(NotFound):
                experiment = self.registry.store.runs.get(champion.run_id).info.experiment_id
        tags = {"shipyard.retrain.monitor": monitor.name, "shipyard.retrain.command": action[:5000],
                "shipyard.retrain.window_start": str(evaluation.window_start),
                "shipyard.retrain.champion": f"{champion.name}/{champion.version}"}
        run = self.registry.store.runs.create(
            experiment, run_name=rules.check_name("run name", f"retrain {champion.name} ({monitor.name})"[:250],
                                                  rules.MAX_RUN_NAME_LENGTH),
            start_time=now_ms(), user_id=self.registry.principal.name,
            tags={rules.check_key("tag", k): rules.tag_value(k, v) for k, v in tags.items()})
        return run.info.run_id

    def _log_dataset(self, run_id: str, file: Path, name: str, context: str) -> DatasetVersion:
        """Record that the retraining run read ``file``, kept as the version's snapshot (the
        layout :func:`shipyard.tracking.datasets.restore` reads back)."""
        registry = self.registry
        datasets = DatasetService(registry.store, registry.artifacts, registry.principal)
        return datasets.log(run_id, str(file), name, context=context, snapshot=True)

    def _run_command(self, action: str, monitor: Monitor, model: str, data: Path, dataset: str, run_id: str) -> None:
        env = {**os.environ, ENV_DATA: str(data), ENV_DATASET: dataset, ENV_MODEL: model,
               ENV_ALIAS: monitor.retrain.alias, ENV_TARGET: LABEL, ENV_RUN: run_id, ENV_MONITOR: monitor.name,
               "SHIPYARD_TRACKING_URI": self.tracking_uri, "SHIPYARD_ARTIFACT_URI": self.artifact_uri,
               "SHIPYARD_ACTING_USER": self.registry.principal.name}
        argv = retrain_argv(action, model)
        timeout = monitor.retrain.timeout_seconds
        try:
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise ShipyardError(f"the command {argv[0]!r} was not found; give a program on the PATH or its full path") \
                from None
        except subprocess.TimeoutExpired:
            raise ShipyardError(f"the command did not finish within {timeout}s (the monitor's retrain timeout)") \
                from None
        for name, text in (("stdout", done.stdout), ("stderr", done.stderr)):
            if text:
                path = f"retrain/{name}.txt"
                check_artifact_write(self.registry.store, self.registry.artifacts, run_id, path)
                self.registry.artifacts.log_bytes(run_id, text.encode("utf-8"), path)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout or "").strip()[-_OUTPUT_TAIL:]
            raise ShipyardError(f"the command exited with status {done.returncode}" + (f": {tail}" if tail else ""))

    def _challenger(self, model: str, before: int, run_id: str) -> ModelVersion:
        found = self.registry.search_model_versions(f"name = '{model}' and version > {before}", max_results=1)
        if not found:
            raise ShipyardError(f"the command registered no new version of {model!r}: it must register the model it "
                          f"trains as {model!r} (the name in ${ENV_MODEL})")
        challenger = found[0]
        source_run = challenger.run_id
        edge = Edge(Node(NodeKind.RUN, run_id), Node(NodeKind.MODEL, f"{model}/{challenger.version}"), Relation.MODEL,
                    "retraining") if not source_run else \
            Edge(Node(NodeKind.RUN, run_id), Node(NodeKind.RUN, source_run), Relation.CHILD, "retraining")
        if source_run != run_id:
            self.registry.store.lineage.add_edges([edge])
        return challenger


def _dataset_name(monitor: Monitor, part: str) -> str:
    return f"{monitor.name}-{part}"
