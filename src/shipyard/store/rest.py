"""RestStore: the Store protocol over a Shipyard server's native API.

One pooled ``httpx.Client`` per store (injectable ``transport`` for tests: see
:mod:`shipyard.testing`). Errors come back as the same :mod:`shipyard.errors` classes the
server raised, rebuilt from the JSON body. Retries, with exponential backoff:

- a connection that could not be made (nothing was sent): every request;
- 429 and 503 (the server said it did not do it): every request;
- a response lost after sending (read error, timeout): only requests that are safe to repeat
  (GET, PUT, DELETE, and appending metric values, whose worst case is a repeated value).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from shipyard.entities import (
    Experiment,
    Metric,
    Page,
    Param,
    Run,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    ViewType,
)
from shipyard.errors import ShipyardError, StoreUnavailable, error_class_for_code
from shipyard.wire import (
    encode_float,
    experiment_from_wire,
    metric_from_wire,
    run_from_wire,
    run_info_from_wire,
)

_RETRY_STATUS = frozenset({429, 503})
_BACKOFF = (0.2, 0.5, 1.0, 2.0, 4.0)
API = "/api/v1"


class _Http:
    def __init__(self, base_url: str, transport: httpx.BaseTransport | None, timeout: float,
                 retries: int) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = httpx.Client(base_url=self.base_url, transport=transport, timeout=timeout,
                                   limits=httpx.Limits(max_connections=20, max_keepalive_connections=20),
                                   headers={"user-agent": "shipyard-rest-store"})
        self.retries = min(retries, len(_BACKOFF))

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
             idempotent: bool | None = None) -> Any:
        repeatable = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.client.request(method, path, json=json, params=params)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if last or (sent and not repeatable):
                    raise StoreUnavailable(f"cannot reach the Shipyard server at {self.base_url}: "
                                           f"{type(exc).__name__}: {exc}") from exc
                time.sleep(_BACKOFF[attempt])
                continue
            if response.status_code in _RETRY_STATUS and not last:
                time.sleep(_retry_after(response) or _BACKOFF[attempt])
                continue
            return _result(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        self.client.close()


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return min(float(value), 30.0) if value.replace(".", "", 1).isdigit() else None


def _result(response: httpx.Response) -> Any:
    if response.is_success:
        return response.json() if response.content else None
    try:
        body = response.json()
        cls = error_class_for_code(body["error_code"])
        error = cls(body.get("message", response.reason_phrase), **(body.get("details") or {}))
    except (ValueError, KeyError, TypeError):
        error = ShipyardError(f"the server answered {response.status_code} {response.reason_phrase}: "
                              f"{response.text[:500]}")
    raise error


class RestExperimentStore:
    def __init__(self, http: _Http) -> None:
        self._http = http

    def create(self, name: str, tags: Mapping[str, str] | None = None) -> Experiment:
        return experiment_from_wire(self._http.call("POST", f"{API}/experiments",
                                                    json={"name": name, "tags": dict(tags or {})}))

    def get(self, experiment_id: str) -> Experiment:
        return experiment_from_wire(self._http.call("GET", f"{API}/experiments/{_segment(experiment_id)}"))

    def get_by_name(self, name: str) -> Experiment | None:
        from shipyard.errors import NotFound

        try:
            return experiment_from_wire(self._http.call("GET", f"{API}/experiments/by-name",
                                                        params={"name": name}))
        except NotFound:
            return None

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY) -> list[Experiment]:
        body = self._http.call("GET", f"{API}/experiments", params={"view": ViewType(view).value})
        return [experiment_from_wire(e) for e in body["experiments"]]

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        return experiment_from_wire(self._http.call("PATCH", f"{API}/experiments/{_segment(experiment_id)}",
                                                    json={"name": new_name}, idempotent=True))

    def delete(self, experiment_id: str) -> None:
        self._http.call("DELETE", f"{API}/experiments/{_segment(experiment_id)}")

    def restore(self, experiment_id: str) -> None:
        self._http.call("POST", f"{API}/experiments/{_segment(experiment_id)}/restore", idempotent=True)

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        self._http.call("PUT", f"{API}/experiments/{_segment(experiment_id)}/tags", json={"tags": dict(tags)})

    def delete_tag(self, experiment_id: str, key: str) -> None:
        self._http.call("DELETE", f"{API}/experiments/{_segment(experiment_id)}/tags/{_path(key)}")


class RestRunStore:
    def __init__(self, http: _Http) -> None:
        self._http = http

    def create(self, experiment_id: str, *, run_name: str, start_time: int, user_id: str = "",
               source: str = "", parent_run_id: str | None = None,
               tags: Mapping[str, str] | None = None) -> Run:
        body = {"experiment_id": experiment_id, "run_name": run_name, "start_time": start_time,
                "user_id": user_id, "source": source, "parent_run_id": parent_run_id, "tags": dict(tags or {})}
        return run_from_wire(self._http.call("POST", f"{API}/runs", json=body))

    def get(self, run_id: str) -> Run:
        return run_from_wire(self._http.call("GET", f"{API}/runs/{_segment(run_id, 'run')}"))

    def update(self, run_id: str, *, status: RunStatus | None = None, end_time: int | None = None,
               run_name: str | None = None) -> RunInfo:
        body = {"status": RunStatus(status).value if status is not None else None, "end_time": end_time,
                "run_name": run_name}
        return run_info_from_wire(self._http.call("PATCH", f"{API}/runs/{_segment(run_id, 'run')}", json=body,
                                                  idempotent=True))

    def delete(self, run_id: str) -> None:
        self._http.call("DELETE", f"{API}/runs/{_segment(run_id, 'run')}")

    def restore(self, run_id: str) -> None:
        self._http.call("POST", f"{API}/runs/{_segment(run_id, 'run')}/restore", idempotent=True)

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        # Re-logging an identical param is a no-op, so repeating after a lost response is safe.
        self._http.call("POST", f"{API}/runs/{_segment(run_id, 'run')}/params", idempotent=True,
                        json={"params": [{"key": p.key, "value": p.value} for p in params]})

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        self._http.call("PUT", f"{API}/runs/{_segment(run_id, 'run')}/tags",
                        json={"tags": [{"key": t.key, "value": t.value} for t in tags]})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._http.call("DELETE", f"{API}/runs/{_segment(run_id, 'run')}/tags/{_path(key)}")

    def search(self, query: RunQuery) -> Page[Run]:
        body = {
            "experiment_ids": list(query.experiment_ids),
            "filter": [{"kind": c.kind, "key": c.key, "op": c.op.value,
                        "value": list(c.value) if isinstance(c.value, tuple) else c.value}
                       for c in query.filter],
            "order_by": [{"kind": o.kind, "key": o.key, "ascending": o.ascending} for o in query.order_by],
            "view": query.view.value,
            "max_results": query.max_results,
            "page_token": query.page_token,
        }
        if not query.experiment_ids:
            return Page([])
        result = self._http.call("POST", f"{API}/runs/search", json=body, idempotent=True)
        return Page([run_from_wire(r) for r in result["runs"]], result["next_page_token"])


class RestMetricStore:
    def __init__(self, http: _Http) -> None:
        self._http = http

    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        path = f"{API}/runs/{_segment(run_id, 'run')}/metrics"
        for start in range(0, len(metrics), _METRIC_CHUNK):
            chunk = metrics[start:start + _METRIC_CHUNK]
            self._http.call("POST", path, idempotent=True, json={"metrics": [
                {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}
                for m in chunk]})

    def history(self, run_id: str, key: str) -> list[Metric]:
        body = self._http.call("GET", f"{API}/runs/{_segment(run_id, 'run')}/metric-history", params={"key": key})
        return [metric_from_wire(m) for m in body["metrics"]]


_METRIC_CHUNK = 10_000  # the server's per-request bound (schemas.MAX_BATCH)


def _segment(value: str, kind: str = "experiment") -> str:
    """An id as one URL path segment: nothing in it can change which route is meant."""
    from urllib.parse import quote

    if not value:
        from shipyard.errors import NotFound

        raise NotFound(f"{kind} '{value}' does not exist")
    return quote(str(value), safe="")


def _path(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


class RestStore:
    """The Store of a Shipyard server at ``uri`` (``http://host:port``)."""

    def __init__(self, uri: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 retries: int = 5) -> None:
        self._transport = transport
        self._http = _Http(uri, transport, timeout, retries)
        self.experiments = RestExperimentStore(self._http)
        self.runs = RestRunStore(self._http)
        self.metrics = RestMetricStore(self._http)
        from shipyard.store.rest_data import RestDatasetStore, RestLineageStore  # they build on _Http, defined here
        from shipyard.store.rest_deployments import RestDeploymentStore
        from shipyard.store.rest_logged_models import RestLoggedModelStore
        from shipyard.store.rest_models import RestModelStore

        self.models = RestModelStore(self._http)
        self.datasets = RestDatasetStore(self._http)
        self.lineage = RestLineageStore(self._http)
        self.logged_models = RestLoggedModelStore(self._http)
        self.deployments = RestDeploymentStore(self._http)

    @property
    def uri(self) -> str:
        return self._http.base_url

    @property
    def transport(self) -> httpx.BaseTransport | None:
        """The transport injected at construction (``None``: httpx's default, with its proxy
        settings from the environment), so a ``RestArtifactStore`` for the same server can go
        through it too, e.g. both through one in-process ASGI app in tests."""
        return self._transport

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"RestStore({self.uri!r})"
