"""Monitors: what to watch (a deployment's prediction log, or a dataset against a reference), how
often, what counts as trouble, who to tell; each evaluation of one window, and each alert sent."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities.auth import DEFAULT_PROJECT

__all__ = ["ALERT_STATUSES", "EVALUATION_STATUSES", "Alert", "AlertState", "Monitor", "MonitorEvaluation",
           "RetrainPolicy"]


class AlertState(enum.StrEnum):
    """A monitor's alert state: OK until a window breaches a rule, FIRING while windows keep
    breaching, RESOLVED after the first healthy window that follows, OK again after the next."""

    OK = "OK"
    FIRING = "FIRING"
    RESOLVED = "RESOLVED"


# ok: every rule held; breach: drift, a metric past its bound, or nothing comparable; no_data:
# the window had no rows (no alert either way); error: the evaluation itself failed (the message
# says why; the alert state does not move).
EVALUATION_STATUSES = ("ok", "breach", "no_data", "error")
# delivered / failed: a webhook's answer (failed after its retries); logged: the log action;
# suppressed: a FIRING inside the cooldown of the last one sent, and the RESOLVED that follows it.
# promoted / not_promoted: a retrain action's challenger took the alias, or did not (the detail says
# why); a retrain that could not produce or judge a challenger is failed.
ALERT_STATUSES = ("delivered", "failed", "logged", "suppressed", "promoted", "not_promoted")


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """How a monitor's ``retrain:`` actions judge their challenger: it takes ``alias`` only when
    it beats the champion by at least ``margin`` (in the monitor's first metric, on the
    ``holdout`` share of the window's labelled rows kept from the command); the command gets
    ``timeout_seconds`` to finish."""

    alias: str = "production"
    margin: float = 0.0
    holdout: float = 0.3
    timeout_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class Monitor:
    """Monitor ``name``. It watches ``deployment``'s prediction log in windows of
    ``window_seconds``, or, without a deployment, the latest version of dataset ``current``. The
    inputs are compared with ``reference``: ``"training"`` (the training dataset of the version
    the deployment serves, found through lineage) or a dataset version ``NAME@VERSION``.

    ``columns`` limits the comparison (empty: every column); ``tests`` overrides a column's test
    (``"psi"``, ``"psi:0.25"``); ``alpha`` is the family-wise false-alarm rate. ``metrics`` are
    the live performance metrics computed where feedback exists; ``minimums`` and ``maximums``
    bound them (``f1 >= 0.80``, ``rmse <= 3``). ``actions`` run on each alert state change
    (``webhook:URL``, ``log``); a FIRING less than ``cooldown_seconds`` after the last one sent is
    recorded, not sent. A window is evaluated once it ended ``delay_seconds``
    ago, so that feedback sent in the meantime counts. ``retrain`` says how ``retrain:`` actions
    judge and promote the model they train.

    The rest is state the evaluations keep: the alert ``state`` (since ``state_since``), the start
    of the next window to evaluate, when the last evaluation ran, the dataset version the stored
    reference profile was built from and where the profiles are (``reference_key``;
    ``output_reference_key`` for the outputs of the first window with data). ``revision`` grows
    with every change of the definition. It belongs to ``project`` from its creation on."""

    name: str
    deployment: str | None = None
    reference: str = "training"
    current: str | None = None
    window_seconds: int = 3600
    columns: tuple[str, ...] = ()
    tests: Mapping[str, str] = field(default_factory=dict)
    alpha: float = 0.05
    metrics: tuple[str, ...] = ()
    minimums: Mapping[str, float] = field(default_factory=dict)
    maximums: Mapping[str, float] = field(default_factory=dict)
    actions: tuple[str, ...] = ()
    cooldown_seconds: int = 3600
    delay_seconds: int = 0
    retrain: RetrainPolicy = field(default_factory=RetrainPolicy)
    reference_dataset: str | None = None
    reference_key: str | None = None
    output_reference_key: str | None = None
    state: AlertState = AlertState.OK
    state_since: int = 0
    next_window_start: int = 0
    last_evaluation_time: int | None = None
    revision: int = 0
    creation_time: int = 0
    last_update_time: int = 0
    user: str = ""
    project: str = DEFAULT_PROJECT

    @property
    def window_ms(self) -> int:
        return self.window_seconds * 1000

    @property
    def target(self) -> str:
        """What it watches, for people: ``deployment churn-api`` or ``dataset daily``."""
        return f"deployment {self.deployment}" if self.deployment else f"dataset {self.current}"


@dataclass(frozen=True, slots=True)
class MonitorEvaluation:
    """Monitor ``monitor``'s verdict on the window ``[window_start, window_end)`` (ms).

    ``status`` is one of :data:`EVALUATION_STATUSES`; ``state`` the alert state after it. ``rows``
    predictions were compared, ``labelled`` of them had feedback. ``scores`` holds, per column
    compared (outputs prefixed ``output.``), the test, statistic, p-value, effect size and
    verdict; ``metrics`` the live performance; ``breaches`` a sentence per rule broken.
    ``report`` is the whole drift report (plot data included) for the HTML page."""

    monitor: str
    window_start: int
    window_end: int
    status: str
    state: AlertState
    rows: int = 0
    labelled: int = 0
    dataset_drift: bool = False
    drifted_columns: tuple[str, ...] = ()
    scores: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    breaches: tuple[str, ...] = ()
    message: str = ""
    report: Mapping[str, Any] = field(default_factory=dict)
    evaluation_time: int = 0
    evaluation_id: int = 0


@dataclass(frozen=True, slots=True)
class Alert:
    """One notification of a state change (``state`` FIRING or RESOLVED) of ``monitor``, caused by
    the window starting at ``window_start``, through ``action``: its ``status`` (one of
    :data:`ALERT_STATUSES`), how many delivery ``attempts`` were made, what came back
    (``detail``) and the JSON ``payload`` that was (or would have been) sent."""

    monitor: str
    time: int
    state: AlertState
    window_start: int
    action: str
    status: str
    attempts: int = 0
    detail: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    alert_id: int = 0
