"""RestMonitorStore: the :class:`~shipyard.store.protocol.MonitorStore` over a Shipyard server.

Each method is one request to ``/api/v1/monitors``; the server's store checks every rule and its
errors come back as the same :mod:`shipyard.errors` classes. The server records changes under
its authenticated principal, so ``user`` is not sent.

Taking a lease and recording an evaluation are POSTs that are not repeated after a lost
response: repeating would answer ``Conflict`` (the window moved on, the lease is ours already)
for a call that did happen; the caller gets ``StoreUnavailable`` and reads the monitor instead.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from shipyard.entities.monitor import Alert, Monitor, MonitorEvaluation
from shipyard.store.http import API, HttpClient, segment
from shipyard.tracking.validation import check_project, check_projects
from shipyard.wire import (
    alert_from_wire,
    alert_to_wire,
    evaluation_from_wire,
    evaluation_to_wire,
    monitor_from_wire,
    monitor_spec_to_wire,
    monitor_to_wire,
)

MONITORS = f"{API}/monitors"


def _monitor(name: str, *rest: str) -> str:
    return "/".join((MONITORS, segment(name, "monitor"), *rest))


def _params(**values: Any) -> dict[str, Any] | None:
    given = {k: v for k, v in values.items() if v is not None}
    return given or None


class RestMonitorStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def create(self, monitor: Monitor, *, user: str = "") -> Monitor:
        check_project(monitor.project)
        body = monitor_to_wire(monitor)
        for server_side in ("revision", "creation_time", "last_update_time", "user", "last_evaluation_time"):
            body.pop(server_side)
        return monitor_from_wire(self._http.call("POST", MONITORS, json=body))

    def get(self, name: str) -> Monitor:
        return monitor_from_wire(self._http.call("GET", _monitor(name)))

    def list(self, deployment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Monitor]:
        wanted = check_projects(projects)
        if wanted == ():
            return []  # no project: nothing to ask the server for (a query string cannot say "none")
        body = self._http.call("GET", MONITORS, params=_params(deployment=deployment,
                                                               projects=None if wanted is None else list(wanted)))
        return [monitor_from_wire(m) for m in body["monitors"]]

    def save(self, monitor: Monitor, *, user: str = "") -> Monitor:
        body = {**monitor_spec_to_wire(monitor), "revision": monitor.revision}
        # A repeat of the same revision is refused, so a lost response is not retried blindly.
        return monitor_from_wire(self._http.call("PUT", _monitor(monitor.name), json=body, idempotent=False))

    def delete(self, name: str) -> None:
        self._http.call("DELETE", _monitor(name))

    def acquire_lease(self, name: str, owner: str, seconds: float) -> bool:
        body = self._http.call("POST", _monitor(name, "lease"), json={"owner": owner, "seconds": seconds})
        return bool(body["acquired"])

    def release_lease(self, name: str, owner: str) -> None:
        self._http.call("DELETE", _monitor(name, "lease"), params={"owner": owner})

    def record_evaluation(self, evaluation: MonitorEvaluation, *, owner: str) -> Monitor:
        body = evaluation_to_wire(evaluation)
        body.pop("evaluation_id")
        body.pop("monitor")
        return monitor_from_wire(self._http.call("POST", _monitor(evaluation.monitor, "evaluations"),
                                                 json={"owner": owner, "evaluation": body}))

    def evaluations(self, name: str, *, limit: int | None = None, since: int | None = None,
                    with_report: bool = True) -> builtins.list[MonitorEvaluation]:
        body = self._http.call("GET", _monitor(name, "evaluations"),
                               params=_params(limit=limit, since=since, with_report=str(with_report).lower()))
        return [evaluation_from_wire(e) for e in body["evaluations"]]

    def record_alert(self, alert: Alert) -> Alert:
        body = alert_to_wire(alert)
        body.pop("alert_id")
        body.pop("monitor")
        return alert_from_wire(self._http.call("POST", _monitor(alert.monitor, "alerts"), json=body))

    def alerts(self, name: str, *, limit: int | None = None) -> builtins.list[Alert]:
        body = self._http.call("GET", _monitor(name, "alerts"), params=_params(limit=limit))
        return [alert_from_wire(a) for a in body["alerts"]]
