"""The monitor rules: defining monitors, evaluating due windows, moving alert states, notifying.

:class:`MonitorService` is built from a Store, an ArtifactStore and the acting Principal, like the
other domain services; the store only persists. What it decides:

- **a definition is valid** (:meth:`MonitorService.create`): one target (a deployment that exists,
  or a dataset), a reference that resolves now (``training``: the training dataset of the version
  the deployment serves, through lineage; or ``NAME@VERSION``), known tests, metrics and actions.
  The reference profile is built and stored then, once (:mod:`shipyard.monitoring.profiles`).
- **which windows are due**: windows of the monitor's length, aligned on multiples of it since
  the epoch, from the one it starts at; a window is due once it ended ``delay`` ago.
- **one evaluation per window**, whatever the number of runners: a runner evaluates a monitor
  only while it holds the monitor's lease (a row with an expiry in the database, taken with a
  conditional UPDATE), and the store records a window only for the lease holder and only when
  it is the monitor's next.
- **the alert state** and who is told (:mod:`shipyard.monitoring.alerts`), and, on FIRING, the
  ``retrain:`` actions (:mod:`shipyard.monitoring.retrain`), run by the ``retrainer`` the edge
  gives (the SDK's ``Client.monitors`` does; without one a retrain action is recorded as failed).
"""

from __future__ import annotations

import builtins
import logging
import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from shipyard.clock import TimeLike, now_ms, parse_duration, parse_time
from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation, RetrainPolicy
from shipyard.errors import Conflict, InvalidInput, NotFound, ShipyardError, StoreUnavailable
from shipyard.monitoring.alerts import Notifier, check_action, next_state, notification_status, payload
from shipyard.monitoring.performance import REGRESSION_METRICS, check_metrics
from shipyard.monitoring.profiles import build_profile, dataset_version, load_profile, read_dataset, training_dataset
from shipyard.monitoring.retrain import is_retrain
from shipyard.monitoring.verdict import Verdict, judge

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.auth import Principal
    from shipyard.entities import Deployment
    from shipyard.monitoring.reference import ReferenceProfile
    from shipyard.monitoring.retrain import Retrainer
    from shipyard.store.protocol import Store

__all__ = ["LEASE_SECONDS", "MonitorService", "RunResult", "due_windows", "parse_window"]

LOGGER = logging.getLogger("shipyard.monitoring")
LEASE_SECONDS = 300.0
MAX_WINDOW_SECONDS = 366 * 86_400
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.\-]{0,255}")
_ALERT_HISTORY = 50


def parse_window(value: str | int | float, field: str = "window") -> int:
    """Seconds in ``"1h"``, ``"15m"``, ``"1d"`` or a number of seconds; ``InvalidInput`` otherwise."""
    seconds = parse_duration(value) if isinstance(value, str) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 1 <= seconds <= MAX_WINDOW_SECONDS:
        raise InvalidInput(f"{field}: expected a duration from 1s to 366d such as 5m, 1h or 1d, got {value!r}",
                           field=field)
    return int(seconds)


def due_windows(monitor: Monitor, now: int) -> list[tuple[int, int]]:
    """The windows of ``monitor`` that ended at least its delay before ``now``, oldest first."""
    last_end = now - monitor.delay_seconds * 1000
    step = monitor.window_ms
    count = max(0, (last_end - monitor.next_window_start) // step)
    return [(monitor.next_window_start + i * step, monitor.next_window_start + (i + 1) * step) for i in range(count)]


@dataclass
class RunResult:
    """What one pass of the runner did with one monitor."""

    monitor: str
    evaluated: list[MonitorEvaluation] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    skipped: str = ""  # why nothing was evaluated: not due, leased by another runner, an error


class MonitorService:
    """Monitors in ``store`` (profiles and the prediction log in ``artifacts``), changed as ``principal``."""

    def __init__(self, store: Store, artifacts: ArtifactStore, principal: Principal, *,
                 notifier: Notifier | None = None, retrainer: Retrainer | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.store = store
        self.artifacts = artifacts
        self.principal = principal
        self.notifier = notifier or Notifier()
        self.retrainer = retrainer
        self.clock = clock

    # -- definitions ------------------------------------------------------------------------------------
    def create(self, name: str, *, deployment: str | None = None, current: str | None = None,
               reference: str = "training", window: str | int = "1h", columns: Sequence[str] = (),
               tests: Mapping[str, str] | None = None, alpha: float = 0.05, metrics: Sequence[str] = (),
               minimums: Mapping[str, float] | None = None, maximums: Mapping[str, float] | None = None,
               actions: Sequence[str] = (), cooldown: str | int = "1h", delay: str | int = 0,
               start: TimeLike = None, retrain_alias: str = "production", retrain_margin: float = 0.0,
               retrain_holdout: float = 0.3, retrain_timeout: str | int = "1h") -> Monitor:
        """Define monitor ``name`` and build its reference profile. Watches ``deployment``'s
        prediction log, or, for a pair of datasets, the latest version of dataset ``current``.
        ``start``: the first window is the one holding this time (default: now). ``retrain_*``:
        how ``retrain:`` actions judge their challenger (:class:`RetrainPolicy`). Raises
        ``InvalidInput`` naming a bad value, ``NotFound`` for a deployment, dataset or training set
        that is not there, and ``AlreadyExists``."""
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name.strip() != name:
            raise InvalidInput(f"monitor name {name!r} is not valid: use letters, digits, spaces and _ - . "
                               "(at most 256, no '/' or '@'), starting with a letter or digit", field="name")
        if (deployment is None) == (current is None):
            raise InvalidInput("a monitor watches one thing: give a deployment (--deployment NAME) or a dataset "
                               "to compare with the reference (--current DATASET), not both nor neither")
        if current is not None and reference == "training":
            raise InvalidInput("reference: a dataset monitor compares two datasets; give the reference as "
                               "--reference DATASET@VERSION", field="reference")
        window_seconds = parse_window(window)
        monitor = Monitor(
            name=name, deployment=deployment, reference=reference, current=current, window_seconds=window_seconds,
            columns=tuple(dict.fromkeys(str(c) for c in columns)), tests=self._tests(tests or {}),
            alpha=self._alpha(alpha), metrics=check_metrics(metrics), actions=tuple(check_action(a) for a in actions),
            cooldown_seconds=0 if cooldown in (0, "0") else parse_window(cooldown, "cooldown"),
            delay_seconds=0 if delay in (0, "0") else parse_window(delay, "delay"))
        monitor = replace(monitor, **self._bounds(minimums or {}, maximums or {}, monitor.metrics))
        monitor = replace(monitor, retrain=self._retrain_policy(monitor, retrain_alias, retrain_margin,
                                                                retrain_holdout, retrain_timeout))
        first = parse_time(start, field="start") if start is not None else self.clock()
        assert first is not None  # parse_time gives None only for None
        monitor = replace(monitor, next_window_start=first // monitor.window_ms * monitor.window_ms)
        target = self._deployment(monitor) if deployment is not None else None
        if current is not None:
            dataset_version(self.store, current)
        version, key = self._reference_version(monitor, target)
        monitor = replace(monitor, reference_dataset=version.ref, reference_key=key)
        return self.store.monitors.create(monitor, user=self.principal.name)

    @staticmethod
    def _alpha(alpha: Any) -> float:
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 1:
            raise InvalidInput(f"alpha must be between 0 and 1 (exclusive), got {alpha!r}; 0.05 is the usual choice",
                               field="alpha")
        return float(alpha)

    @staticmethod
    def _retrain_policy(monitor: Monitor, alias: str, margin: Any, holdout: Any, timeout: str | int) -> RetrainPolicy:
        from shipyard.monitoring.retrain import is_retrain
        from shipyard.tracking.validation import check_alias

        if any(is_retrain(a) for a in monitor.actions):
            if monitor.deployment is None:
                raise InvalidInput("a retrain action retrains the model a deployment serves: monitor a deployment "
                                   "(--deployment NAME)", field="actions")
            if not monitor.metrics:
                raise InvalidInput("a retrain action compares the challenger with the champion on the monitor's "
                                   "first metric: give one (--metric f1, or a bound such as --min f1=0.8)",
                                   field="metrics")
        if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin < float("inf"):
            raise InvalidInput(f"retrain margin must be a number of 0 or more (0.01: better by 0.01 in the "
                               f"monitor's metric), got {margin!r}", field="retrain_margin")
        if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0.05 <= holdout <= 0.9:
            raise InvalidInput(f"retrain holdout is the share of the window's labelled rows held back to judge "
                               f"the challenger, from 0.05 to 0.9; got {holdout!r}", field="retrain_holdout")
        try:
            alias = check_alias(alias)
        except InvalidInput as exc:
            raise InvalidInput(f"retrain alias: {exc.message}", field="retrain_alias") from None
        return RetrainPolicy(alias=alias, margin=float(margin), holdout=float(holdout),
                             timeout_seconds=parse_window(timeout, "retrain_timeout"))

    @staticmethod
    def _tests(tests: Mapping[str, str]) -> dict[str, str]:
        from shipyard.monitoring.detect import P_VALUE_TESTS, TESTS

        for column, spec in tests.items():
            name, sep, threshold = str(spec).partition(":")
            if name not in TESTS:
                raise InvalidInput(f"unknown test {name!r} for column {column!r}: choose one of {', '.join(TESTS)}",
                                   field="tests")
            if sep:
                if name in P_VALUE_TESTS:
                    raise InvalidInput(f"{name} is decided by its p-value; a threshold for column {column!r} applies "
                                       "to psi, jensenshannon and wasserstein only", field="tests")
                try:
                    float(threshold)
                except ValueError:
                    raise InvalidInput(f"the threshold {threshold!r} of column {column!r} is not a number",
                                       field="tests") from None
        return {str(k): str(v) for k, v in tests.items()}

    @staticmethod
    def _bounds(minimums: Mapping[str, float], maximums: Mapping[str, float],
                metrics: tuple[str, ...]) -> dict[str, Any]:
        mins = dict(zip(check_metrics(minimums), (float(v) for v in minimums.values()), strict=True))
        maxs = dict(zip(check_metrics(maximums), (float(v) for v in maximums.values()), strict=True))
        for metric in mins:
            if metric in REGRESSION_METRICS:
                raise InvalidInput(f"{metric} is an error, lower is better: bound it with a maximum "
                                   f"(--max {metric}=VALUE)", field="minimums")
        for metric in maxs:
            if metric not in REGRESSION_METRICS:
                raise InvalidInput(f"{metric} is a score, higher is better: bound it with a minimum "
                                   f"(--min {metric}=VALUE)", field="maximums")
        every = check_metrics([*metrics, *mins, *maxs])  # no mix of classification and regression
        return {"minimums": mins, "maximums": maxs, "metrics": every}

    def _deployment(self, monitor: Monitor) -> Deployment:
        try:
            return self.store.deployments.get(str(monitor.deployment))
        except NotFound:
            raise NotFound(f"deployment {monitor.deployment!r} does not exist (it may have been deleted); see: "
                           "shipyard deploy list", deployment=monitor.deployment) from None

    def _reference_version(self, monitor: Monitor, target: Deployment | None) -> tuple[Any, str]:
        if monitor.reference == "training":
            assert target is not None
            version = training_dataset(self.store, target.primary.ref)
        else:
            version = dataset_version(self.store, monitor.reference)
        return version, build_profile(self.store, self.artifacts, version, monitor.columns or None)

    def get(self, name: str) -> Monitor:
        return self.store.monitors.get(name)

    def list(self, deployment: str | None = None) -> list[Monitor]:
        return self.store.monitors.list(deployment)

    def delete(self, name: str) -> None:
        self.store.monitors.delete(name)

    def history(self, name: str, *, limit: int | None = None,
                with_report: bool = False) -> builtins.list[MonitorEvaluation]:
        return self.store.monitors.evaluations(name, limit=limit, with_report=with_report)

    def alerts(self, name: str, *, limit: int | None = None) -> builtins.list[Alert]:
        return self.store.monitors.alerts(name, limit=limit)

    # -- evaluating ----------------------------------------------------------------------------------------
    def evaluate(self, monitor: Monitor, start: int, end: int) -> tuple[Monitor, MonitorEvaluation]:
        """The evaluation of ``[start, end)`` (not recorded), and the monitor with any reference it
        had to build on the way. A deleted deployment, an unreadable reference or dataset: an
        evaluation with status ``error`` and the reason; the alert state does not move."""
        now = self.clock()
        try:
            monitor, verdict = self._verdict(monitor, start, end)
        except StoreUnavailable:
            raise
        except ShipyardError as exc:
            return monitor, MonitorEvaluation(monitor.name, start, end, "error", monitor.state, message=exc.message,
                                              evaluation_time=now)
        if verdict is None:
            return monitor, MonitorEvaluation(monitor.name, start, end, "no_data", monitor.state,
                                              message="no predictions in this window", evaluation_time=now)
        breach = bool(verdict.breaches)
        return monitor, MonitorEvaluation(
            monitor.name, start, end, "breach" if breach else "ok", next_state(monitor.state, breach),
            rows=verdict.rows, labelled=verdict.labelled, dataset_drift=verdict.dataset_drift,
            drifted_columns=tuple(verdict.drifted_columns), scores=verdict.scores, metrics=verdict.metrics,
            breaches=tuple(verdict.breaches), message="; ".join(verdict.notes), report=verdict.report,
            evaluation_time=now)

    def _verdict(self, monitor: Monitor, start: int, end: int) -> tuple[Monitor, Verdict | None]:
        if monitor.deployment is None:
            monitor, reference = self._reference(monitor, None)
            version = dataset_version(self.store, str(monitor.current))
            table = read_dataset(self.artifacts, version, monitor.columns or None)
            if table.num_rows == 0:
                return monitor, None
            verdict = judge(monitor, reference, table, table.num_rows)
            verdict.notes.insert(0, f"compared {version.ref} with {monitor.reference_dataset}")
            return monitor, verdict
        from shipyard.monitoring.windows import read_window

        try:
            target = self._deployment(monitor)
        except NotFound as exc:
            raise NotFound(f"{exc.message}; delete this monitor (shipyard monitor delete {monitor.name}) or create "
                           "one for the deployment that replaced it", deployment=monitor.deployment) from None
        monitor, reference = self._reference(monitor, target)
        window = read_window(self.artifacts, str(monitor.deployment), start, end)
        if window.rows == 0:
            return monitor, None
        output_reference = None
        if monitor.output_reference_key is not None:
            output_reference = load_profile(self.artifacts, monitor.output_reference_key)
        elif window.outputs.num_columns:
            monitor = self._save_output_reference(monitor, window.outputs)
        verdict = judge(monitor, reference, window.inputs, window.rows, outputs=window.outputs,
                        output_reference=output_reference, labels=window.labels)
        if output_reference is None:
            verdict.notes.append("the answers of this window are the baseline later windows' outputs are compared with")
        return monitor, verdict

    def _reference(self, monitor: Monitor, target: Deployment | None) -> tuple[Monitor, ReferenceProfile]:
        """The reference profile, rebuilt (once per dataset version) when the version behind
        ``training`` changed, e.g. after the deployment was promoted to a model trained on newer data."""
        version, key = self._reference_version(monitor, target)
        if (version.ref, key) != (monitor.reference_dataset, monitor.reference_key):
            monitor = self.store.monitors.save(replace(monitor, reference_dataset=version.ref, reference_key=key),
                                               user=self.principal.name)
        return monitor, load_profile(self.artifacts, key)

    def _save_output_reference(self, monitor: Monitor, outputs: Any) -> Monitor:
        from shipyard.monitoring.profiles import save_profile
        from shipyard.monitoring.reference import reference_profile

        key = f"outputs/{uuid.uuid4().hex}"
        save_profile(self.artifacts, key, reference_profile(outputs), source=f"monitor {monitor.name}")
        return self.store.monitors.save(replace(monitor, output_reference_key=key), user=self.principal.name)

    # -- running -------------------------------------------------------------------------------------------
    def run_due(self, *, names: Sequence[str] | None = None, owner: str | None = None,
                lease_seconds: float = LEASE_SECONDS) -> builtins.list[RunResult]:
        """Evaluate every due window of every monitor (of ``names`` only, when given) that no other
        runner is evaluating, oldest window first; record each evaluation, move the alert state and
        send its notifications. One monitor's failure does not stop the others (it is logged and
        reported in its result)."""
        owner = owner or default_owner()
        monitors = [self.store.monitors.get(n) for n in names] if names else self.store.monitors.list()
        results = []
        for monitor in monitors:
            try:
                results.append(self._run_one(monitor, owner, lease_seconds))
            except ShipyardError as exc:
                LOGGER.warning("monitor %s: %s", monitor.name, exc.message)
                results.append(RunResult(monitor.name, skipped=f"error: {exc.message}"))
        return results

    def _run_one(self, monitor: Monitor, owner: str, lease_seconds: float) -> RunResult:
        result = RunResult(monitor.name)
        if not due_windows(monitor, self.clock()):
            result.skipped = "no window due"
            return result
        if not self.store.monitors.acquire_lease(monitor.name, owner, lease_seconds):
            result.skipped = "another runner is evaluating it"
            return result
        try:
            monitor = self.store.monitors.get(monitor.name)  # the cursor as of taking the lease
            for start, end in due_windows(monitor, self.clock()):
                if not self.store.monitors.acquire_lease(monitor.name, owner, lease_seconds):  # extend it
                    break
                monitor, evaluation = self.evaluate(monitor, start, end)
                try:
                    after = self.store.monitors.record_evaluation(evaluation, owner=owner)
                except Conflict as exc:  # the lease ran out and another runner moved on
                    result.skipped = exc.message
                    break
                result.evaluated.append(evaluation)
                starts_firing = evaluation.state is AlertState.FIRING and monitor.state is not AlertState.FIRING
                if starts_firing and self._retrains(monitor):
                    # The retrain command may take up to its timeout: keep the monitor ours meanwhile.
                    self.store.monitors.acquire_lease(
                        monitor.name, owner, min(86_400.0, lease_seconds + monitor.retrain.timeout_seconds))
                result.alerts += self._notify(monitor, evaluation)
                monitor = after
        finally:
            self.store.monitors.release_lease(monitor.name, owner)
        return result

    def _notify(self, monitor: Monitor, evaluation: MonitorEvaluation) -> builtins.list[Alert]:
        previous = monitor.state
        if evaluation.state is previous:
            return []
        history = self.store.monitors.alerts(monitor.name, limit=_ALERT_HISTORY)
        decision = notification_status(evaluation.state, evaluation.evaluation_time,
                                       monitor.cooldown_seconds * 1000, history)
        if decision is None or not monitor.actions:
            return []
        body = payload(monitor, evaluation, previous)
        sent = []
        # Notifications first: people hear of the breach before a retrain that may take a while.
        retrains = [a for a in monitor.actions if is_retrain(a)] if evaluation.state is AlertState.FIRING else []
        for action in [a for a in monitor.actions if not is_retrain(a)] + retrains:
            if decision == "suppressed":
                status, attempts, detail = "suppressed", 0, f"inside the cooldown of {monitor.cooldown_seconds}s"
            elif is_retrain(action):
                sent.append(self._retrain(monitor, evaluation, action, body))
                continue
            else:
                delivery = self.notifier.send(action, body)
                status, attempts, detail = delivery.status, delivery.attempts, delivery.detail
            sent.append(self.store.monitors.record_alert(Alert(
                monitor.name, self.clock(), evaluation.state, evaluation.window_start, action, status, attempts,
                detail, body)))
        return sent

    @staticmethod
    def _retrains(monitor: Monitor) -> bool:
        return any(is_retrain(a) for a in monitor.actions)

    def _retrain(self, monitor: Monitor, evaluation: MonitorEvaluation, action: str, body: dict[str, Any]) -> Alert:
        """Run one retrain action and record its outcome as the alert, linked in lineage to the
        retraining run it started."""
        if self.retrainer is None:
            return self.store.monitors.record_alert(Alert(
                monitor.name, self.clock(), evaluation.state, evaluation.window_start, action, "failed", 0,
                "this runner cannot retrain (it was built without a retrainer; run the monitor with shipyard "
                "monitor run or the server); nothing was promoted", body))
        # A retrainer built for another principal would record its principal, not this service's.
        retrainer = self.retrainer.acting_as(self.principal)
        outcome = retrainer.retrain(monitor, evaluation, action)
        LOGGER.warning("monitor %s: retrain %s", monitor.name, outcome.detail)
        alert = self.store.monitors.record_alert(Alert(
            monitor.name, self.clock(), evaluation.state, evaluation.window_start, action, outcome.status, 1,
            outcome.detail, {**body, "retrain": {"status": outcome.status, "detail": outcome.detail,
                                                 **outcome.record}}))
        retrainer.link(alert, outcome, "; ".join(evaluation.breaches) or "a rule was broken")
        return alert


def default_owner() -> str:
    """This process, as a lease owner: host, pid and a random part (two runners never share one)."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
