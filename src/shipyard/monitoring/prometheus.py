"""Monitor results on the server's ``/metrics``, for Prometheus and Grafana.

Read from the store at each scrape (one query per monitor, no report bodies), so every server
worker reports the same values and nothing is kept in memory between scrapes:

- ``shipyard_monitor_alert_state{monitor, state}``: 1 for the monitor's state (OK, FIRING, RESOLVED), 0 for the others
- ``shipyard_monitor_last_evaluation_timestamp_seconds{monitor}``: when its latest window was evaluated
- ``shipyard_monitor_window_rows{monitor}``: predictions in that window
- ``shipyard_monitor_drift_p_value{monitor, column}``, ``shipyard_monitor_drift_effect{monitor, column}`` and
  ``shipyard_monitor_column_drifted{monitor, column}`` (0/1): each compared column of that window
  (outputs are the columns ``output``, ``output.<field>``)
- ``shipyard_monitor_metric{monitor, metric}``: the window's live performance (f1, rmse, ...)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from shipyard.entities.monitor import AlertState
from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from shipyard.store.protocol import Store

__all__ = ["MonitorCollector"]

LOGGER = logging.getLogger("shipyard.monitoring")


class MonitorCollector:
    """A ``prometheus_client`` collector of every monitor in the store ``store()`` returns."""

    def __init__(self, store: Callable[[], Store]) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return []  # values come from the store at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        state = GaugeMetricFamily("shipyard_monitor_alert_state", "1 for the monitor's alert state, 0 for the others",
                                  labels=["monitor", "state"])
        evaluated = GaugeMetricFamily("shipyard_monitor_last_evaluation_timestamp_seconds",
                                      "When the monitor's latest window was evaluated", labels=["monitor"])
        rows = GaugeMetricFamily("shipyard_monitor_window_rows", "Predictions in the latest evaluated window",
                                 labels=["monitor"])
        p_value = GaugeMetricFamily("shipyard_monitor_drift_p_value", "p-value of the column's drift test",
                                    labels=["monitor", "column"])
        effect = GaugeMetricFamily("shipyard_monitor_drift_effect",
                                   "Effect size: Wasserstein in reference std (numbers), Jensen-Shannon (categories)",
                                   labels=["monitor", "column"])
        drifted = GaugeMetricFamily("shipyard_monitor_column_drifted", "1 when the column drifted in the latest window",
                                    labels=["monitor", "column"])
        metric = GaugeMetricFamily("shipyard_monitor_metric", "Live performance in the latest window",
                                   labels=["monitor", "metric"])
        try:
            store = self._store()
            for monitor in store.monitors.list():
                for s in AlertState:
                    state.add_metric([monitor.name, s.value], 1.0 if monitor.state is s else 0.0)
                if monitor.last_evaluation_time is None:
                    continue
                evaluated.add_metric([monitor.name], monitor.last_evaluation_time / 1000)
                evaluations = store.monitors.evaluations(monitor.name, limit=1, with_report=False)
                latest = evaluations[0] if evaluations else None
                if latest is None:
                    continue
                rows.add_metric([monitor.name], float(latest.rows))
                for column, score in latest.scores.items():
                    if score.get("status") != "tested":
                        continue
                    if score.get("p_value") is not None:
                        p_value.add_metric([monitor.name, column], float(score["p_value"]))
                    if score.get("effect") is not None:
                        effect.add_metric([monitor.name, column], float(score["effect"]))
                    drifted.add_metric([monitor.name, column], 1.0 if score.get("drifted") else 0.0)
                for name, value in latest.metrics.items():
                    metric.add_metric([monitor.name, name], float(value))
        except ShipyardError as exc:  # the store is down: the rest of /metrics still answers
            LOGGER.warning("monitor metrics not collected: %s", exc.message)
        yield from (state, evaluated, rows, p_value, effect, drifted, metric)
