"""Alerts: how a monitor's state moves, when a change is worth telling, and telling it.

The state moves once per evaluated window (:func:`next_state`): a breach makes it FIRING, the
first healthy window after FIRING makes it RESOLVED, the one after that OK; a window with no data
or an evaluation error leaves it as it was. People are told of **changes**, not of windows: one
notification when it starts FIRING, one when it is RESOLVED, none while it keeps firing. A FIRING
less than the monitor's cooldown after the last FIRING that was sent is recorded as
``suppressed`` and not sent, and so is the RESOLVED that ends it (so that a flapping monitor
sends at most one pair of notifications per cooldown).

A ``retrain:`` action is not a notification: it runs once when the state becomes FIRING (see
:mod:`shipyard.monitoring.retrain`), and never for RESOLVED.

Actions (:class:`Notifier`): ``log`` writes one WARNING line to the ``shipyard.monitoring`` logger;
``webhook:URL`` POSTs the JSON payload (:func:`payload`), retried with exponential backoff on a
timeout, a connection error, 429 and 5xx answers; another 4xx is not retried. Every attempt's
outcome is recorded (``delivered`` or ``failed`` with the last answer), and a failure never stops
the monitor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation
from shipyard.errors import InvalidInput

__all__ = ["LOGGER", "Delivery", "Notifier", "check_action", "display_action", "next_state", "notification_status",
           "payload"]

LOGGER = logging.getLogger("shipyard.monitoring")


def next_state(current: AlertState, breach: bool | None) -> AlertState:
    """The state after a window: ``breach`` None means no verdict (no data, or an error)."""
    if breach is None:
        return current
    if breach:
        return AlertState.FIRING
    return AlertState.RESOLVED if current is AlertState.FIRING else AlertState.OK


def notification_status(new: AlertState, now: int, cooldown_ms: int, history: Sequence[Alert]) -> str | None:
    """Whether entering ``new`` is told: ``None`` (no notification: not a change people hear of),
    ``"suppressed"`` (inside the cooldown), or ``"send"``. ``history``: the monitor's recent
    alerts, oldest first."""
    firings = [a for a in history if a.state is AlertState.FIRING]
    if new is AlertState.FIRING:
        sent = [a for a in firings if a.status != "suppressed"]
        if sent and now - sent[-1].time < cooldown_ms:
            return "suppressed"
        return "send"
    if new is AlertState.RESOLVED:
        return "suppressed" if firings and firings[-1].status == "suppressed" else "send"
    return None


def check_action(action: Any) -> str:
    """``log``, ``webhook:http(s)://host/...`` or ``retrain:COMMAND``
    (:func:`shipyard.monitoring.retrain.check_retrain`); ``InvalidInput`` naming the action
    otherwise."""
    text = str(action).strip()
    if text == "log":
        return text
    if text.startswith("retrain:"):
        from shipyard.monitoring.retrain import check_retrain

        return check_retrain(text)
    if text.startswith("webhook:"):
        url = text.removeprefix("webhook:")
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"webhook:{url}"
    raise InvalidInput(f"alert action {text!r} is not valid: use log, webhook:URL with an http(s) URL (e.g. "
                       "webhook:https://hooks.example.com/T0/B0/xyz), or retrain:COMMAND (e.g. retrain:python "
                       "retrain.py)", field="actions")


def display_action(action: str) -> str:
    """The action as it is safe to show: a webhook's URL without its path and query, which often
    hold the hook's secret token."""
    if action.startswith("webhook:"):
        parts = urlsplit(action.removeprefix("webhook:"))
        return f"webhook:{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") or parts.query \
            else action
    return action


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def payload(monitor: Monitor, evaluation: MonitorEvaluation, previous: AlertState) -> dict[str, Any]:
    """The JSON sent for a change of state. ``text`` is one line for chat tools (Slack and
    Mattermost incoming webhooks show it as the message)."""
    state = evaluation.state
    if state is AlertState.FIRING:
        why = "; ".join(evaluation.breaches) or "a rule was broken"
        text = f"[FIRING] monitor {monitor.name} ({monitor.target}): {why}"
    else:
        text = f"[RESOLVED] monitor {monitor.name} ({monitor.target}): the window {_iso(evaluation.window_start)} " \
               "passed every rule"
    return {"monitor": monitor.name, "state": state.value, "previous_state": previous.value,
            "deployment": monitor.deployment, "dataset": monitor.current,
            "window": {"start": _iso(evaluation.window_start), "end": _iso(evaluation.window_end)},
            "reasons": list(evaluation.breaches), "drifted_columns": list(evaluation.drifted_columns),
            "metrics": dict(evaluation.metrics), "rows": evaluation.rows, "labelled": evaluation.labelled,
            "time": _iso(evaluation.evaluation_time), "text": text}


@dataclass(frozen=True)
class Delivery:
    """What became of one notification."""

    status: str  # delivered | failed | logged
    attempts: int
    detail: str


class Notifier:
    """Sends notifications. ``timeout`` (seconds) bounds each webhook attempt; a failed attempt is
    retried up to ``retries`` times, ``backoff``, ``2 * backoff``, ``4 * backoff``... seconds apart."""

    def __init__(self, *, timeout: float = 5.0, retries: int = 3, backoff: float = 1.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep

    def send(self, action: str, body: Mapping[str, Any]) -> Delivery:
        if action == "log":
            LOGGER.warning("%s", body.get("text", body))
            return Delivery("logged", 1, "written to the shipyard.monitoring logger")
        return self._webhook(action.removeprefix("webhook:"), body)

    def _webhook(self, url: str, body: Mapping[str, Any]) -> Delivery:
        import httpx

        detail = ""
        attempts = 0
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as http:
            for attempt in range(self.retries + 1):
                attempts = attempt + 1
                try:
                    response = http.post(url, json=body, headers={"user-agent": "shipyard-monitor"})
                except httpx.HTTPError as exc:
                    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                else:
                    detail = f"HTTP {response.status_code}"
                    if response.is_success:
                        return Delivery("delivered", attempts, detail)
                    if response.status_code < 500 and response.status_code not in (408, 429):
                        break  # the receiver refused this payload: repeating it changes nothing
                if attempt < self.retries:
                    self._sleep(self.backoff * 2**attempt)
        LOGGER.warning("webhook %s failed after %d attempt(s): %s", display_action(f"webhook:{url}"), attempts, detail)
        return Delivery("failed", attempts, detail)
