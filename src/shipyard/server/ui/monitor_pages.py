"""UI pages of monitoring: every monitor with its alert state, and one monitor with the drift
score of each column over time, its windows and its alert history (retrain outcomes included).

Read through ``client(request)`` (the request principal's scoped store), like every page: a
monitor of a project the principal holds no role in is not found.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Request
from starlette.responses import Response

from shipyard.entities.monitor import Alert
from shipyard.errors import NotFound
from shipyard.server.responses import client
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.monitor_view import drift_series, status_class
from shipyard.server.ui.rendering import UIRoute, page

__all__ = ["router"]

router = PrefixRouter(prefixes=("/ui/monitors",), route_class=UIRoute, include_in_schema=False)

Name = Annotated[str, Path(max_length=1000)]
MAX_WINDOWS = 500  # the latest windows charted and listed
MAX_ALERTS = 200
MAX_LISTED_ALERTS = 200  # monitors whose latest alert the list looks up


@router.get("/ui/monitors", name="ui_monitors")
def monitors_page(request: Request) -> Response:
    monitors = client(request).store.monitors
    found = monitors.list()
    latest: dict[str, Alert | None] = {}
    for monitor in found[:MAX_LISTED_ALERTS]:
        try:
            alerts = monitors.alerts(monitor.name, limit=1)
        except NotFound:  # deleted meanwhile
            alerts = []
        latest[monitor.name] = alerts[-1] if alerts else None
    firing = sum(1 for m in found if m.state.value == "FIRING")
    return page(request, "monitors.html", monitors=found, latest=latest, firing=firing, status_class=status_class,
                section="monitors")


@router.get("/ui/monitors/{name}", name="ui_monitor")
def monitor_page(name: Name, request: Request) -> Response:
    monitors = client(request).store.monitors
    monitor = monitors.get(name)
    evaluations = monitors.evaluations(name, limit=MAX_WINDOWS, with_report=False)
    alerts = list(reversed(monitors.alerts(name, limit=MAX_ALERTS)))
    series = drift_series(evaluations)
    latest = evaluations[-1] if evaluations else None
    return page(request, "monitor.html", monitor=monitor, windows=list(reversed(evaluations)), alerts=alerts,
                series=series, charts={s.column: s.payload for s in series}, latest=latest,
                status_class=status_class, max_windows=MAX_WINDOWS, section="monitors")
