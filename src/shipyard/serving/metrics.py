"""Prometheus metrics of a serving process, labelled by model name and version.

Each app has its own registry (two apps in one process, as in tests, do not collide). Under
``shipyard serve --workers N`` the command points ``PROMETHEUS_MULTIPROC_DIR`` at a folder
shared by the workers and passes it here as ``multiprocess_dir``: ``/metrics`` then sums every
worker's series, whichever worker answers the scrape.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_left
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "DeploymentMetrics", "ServingMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
# A label value for requests that name no served model, so clients cannot grow the label space.
UNKNOWN = "_unknown"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


def _observe_all(histogram: Any, values: list[float]) -> None:
    """``histogram.observe(v)`` for each value, as one update per bucket where prometheus-client's
    histogram child exposes its buckets (it has for years), else one ``observe`` per value."""
    buckets, total, bounds = (getattr(histogram, "_buckets", None), getattr(histogram, "_sum", None),
                              getattr(histogram, "_upper_bounds", None))
    if buckets is None or total is None or bounds is None or len(values) == 1:
        for value in values:
            histogram.observe(value)
        return
    counts: dict[int, int] = {}
    for value in values:
        index = bisect_left(bounds, value)  # the first bucket whose bound is >= value, as observe() picks
        counts[index] = counts.get(index, 0) + 1
    total.inc(math.fsum(values))
    for index, count in counts.items():
        buckets[index].inc(count)


class ServingMetrics:
    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self._multiprocess_dir = multiprocess_dir
        labels = ["model", "version", "protocol"]
        self.requests = Counter("shipyard_serving_requests_total", "Prediction requests answered",
                                [*labels, "status"], registry=self.registry)
        self.errors = Counter("shipyard_serving_errors_total", "Prediction requests answered with an error",
                              [*labels, "status", "error_code"], registry=self.registry)
        self.latency = Histogram("shipyard_serving_request_duration_seconds",
                                 "Time from request to response of prediction requests", labels,
                                 registry=self.registry, buckets=_LATENCY_BUCKETS)
        self.rows = Counter("shipyard_serving_predicted_rows_total", "Rows predicted", ["model", "version"],
                            registry=self.registry)
        self.batch_rows = Histogram("shipyard_serving_batch_size_rows", "Rows in each predict call",
                                    ["model", "version"], registry=self.registry, buckets=_ROW_BUCKETS)
        self.batch_requests = Histogram("shipyard_serving_batch_size_requests", "Requests in each predict call",
                                        ["model", "version"], registry=self.registry, buckets=_ROW_BUCKETS)
        self.predict_seconds = Histogram("shipyard_serving_predict_duration_seconds",
                                         "Time spent in each predict call (batch concatenation included)",
                                         ["model", "version"], registry=self.registry, buckets=_LATENCY_BUCKETS)
        self._pending: dict[tuple[str, str, str, int, str | None], list[float]] = {}
        self._series: dict[tuple[str, str, str, int, str | None], tuple[Any, Any, Any]] = {}
        self._flush_scheduled = False

    def observe_request(self, model: str, version: str, protocol: str, status: int, seconds: float,
                        error_code: str | None = None) -> None:
        """Count one answered request. Called on the event loop: the count is tallied in a plain
        dict and handed to the Prometheus series once per turn of the loop (:meth:`flush`), so a
        batch of requests answered together costs one update per series, not one per request."""
        key = (model, version, protocol, status, error_code)
        tally = self._pending.get(key)
        if tally is None:
            self._pending[key] = [seconds]
        else:
            tally.append(seconds)
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the event loop: no turn to wait for
                self.flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Apply the tallied requests to the Prometheus series (``render`` calls it first)."""
        self._flush_scheduled = False
        pending, self._pending = self._pending, {}
        for key, durations in pending.items():
            series = self._series.get(key)
            if series is None:
                model, version, protocol, status, error_code = key
                series = self._series[key] = (
                    self.requests.labels(model, version, protocol, str(status)),
                    self.latency.labels(model, version, protocol),
                    None if error_code is None else self.errors.labels(model, version, protocol, str(status),
                                                                       error_code))
            requests, latency, errors = series
            requests.inc(len(durations))
            _observe_all(latency, durations)
            if errors is not None:
                errors.inc(len(durations))

    def observe_batch(self, model: str, version: str, rows: int, requests: int, seconds: float) -> None:
        self.rows.labels(model, version).inc(rows)
        self.batch_rows.labels(model, version).observe(rows)
        self.batch_requests.labels(model, version).observe(requests)
        self.predict_seconds.labels(model, version).observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every series (every worker's, when multiprocess)."""
        self.flush()
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(combined)


class DeploymentMetrics:
    """The series only a deployment (``shipyard deploy run``) has, in the app's registry. Requests
    and batches are :class:`ServingMetrics`' series, with ``model`` the deployment's name and
    ``version`` the registered version that answered (``churn/3``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        # Under several workers, the revision every worker serves at least (a rollout is done when it moves).
        self.revision = Gauge("shipyard_serving_deployment_revision", "The deployment revision being served",
                              ["deployment"], registry=registry, multiprocess_mode="min")
        self.reloads = Counter("shipyard_serving_deployment_reloads_total",
                               "Revisions taken up (ok) or that failed to load (failed; the previous one keeps "
                               "serving)", ["deployment", "outcome"], registry=registry)
        self.shadow = Counter("shipyard_serving_shadow_requests_total",
                              "Requests mirrored to shadow versions, by outcome (ok, error, dropped)",
                              ["model", "version", "outcome"], registry=registry)
        self.log_errors = Counter("shipyard_serving_prediction_log_errors_total",
                                  "Failures building or handing prediction records to the prediction log",
                                  ["deployment"], registry=registry)
