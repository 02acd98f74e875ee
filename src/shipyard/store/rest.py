"""RestStore: the Store protocol over a Shipyard server's native API.

Each aggregate's store sends its calls through one shared :class:`~shipyard.store.http.HttpClient`
(pooled connections, an injectable transport for tests, retries, errors rebuilt from the
server's JSON body as the same :mod:`shipyard.errors` classes).
"""

from __future__ import annotations

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
    RunWrite,
    ViewType,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.history import MetricHistory
from shipyard.errors import ShipyardError
from shipyard.store.http import API, HttpClient, segment, url_path
from shipyard.store.run_writes import write_each
from shipyard.tracking.validation import check_project, check_projects
from shipyard.wire import (
    encode_float,
    experiment_from_wire,
    history_from_wire,
    metric_from_wire,
    run_from_wire,
    run_info_from_wire,
)


class RestExperimentStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def create(self, name: str, tags: Mapping[str, str] | None = None, *,
               project: str = DEFAULT_PROJECT) -> Experiment:
        return experiment_from_wire(self._http.call("POST", f"{API}/experiments", json={
            "name": name, "tags": dict(tags or {}), "project": check_project(project)}))

    def get(self, experiment_id: str) -> Experiment:
        return experiment_from_wire(self._http.call("GET", f"{API}/experiments/{segment(experiment_id)}"))

    def get_by_name(self, name: str) -> Experiment | None:
        from shipyard.errors import NotFound

        try:
            return experiment_from_wire(self._http.call("GET", f"{API}/experiments/by-name",
                                                        params={"name": name}))
        except NotFound:
            return None

    def list(self, view: ViewType = ViewType.ACTIVE_ONLY, *,
             projects: Sequence[str] | None = None) -> list[Experiment]:
        wanted = check_projects(projects)
        if wanted == ():
            return []  # no project: nothing to ask the server for (a query string cannot say "none")
        params: dict[str, Any] = {"view": ViewType(view).value}
        if wanted is not None:
            params["projects"] = list(wanted)
        body = self._http.call("GET", f"{API}/experiments", params=params)
        return [experiment_from_wire(e) for e in body["experiments"]]

    def rename(self, experiment_id: str, new_name: str) -> Experiment:
        return experiment_from_wire(self._http.call("PATCH", f"{API}/experiments/{segment(experiment_id)}",
                                                    json={"name": new_name}, idempotent=True))

    def delete(self, experiment_id: str) -> None:
        self._http.call("DELETE", f"{API}/experiments/{segment(experiment_id)}")

    def restore(self, experiment_id: str) -> None:
        self._http.call("POST", f"{API}/experiments/{segment(experiment_id)}/restore", idempotent=True)

    def set_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        self._http.call("PUT", f"{API}/experiments/{segment(experiment_id)}/tags", json={"tags": dict(tags)})

    def delete_tag(self, experiment_id: str, key: str) -> None:
        self._http.call("DELETE", f"{API}/experiments/{segment(experiment_id)}/tags/{url_path(key)}")


class RestRunStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def create(self, experiment_id: str, *, run_name: str, start_time: int, user_id: str = "",
               source: str = "", parent_run_id: str | None = None,
               tags: Mapping[str, str] | None = None) -> Run:
        body = {"experiment_id": experiment_id, "run_name": run_name, "start_time": start_time,
                "user_id": user_id, "source": source, "parent_run_id": parent_run_id, "tags": dict(tags or {})}
        return run_from_wire(self._http.call("POST", f"{API}/runs", json=body))

    def write(self, run_id: str, *, create: RunInfo | None = None, params: Sequence[Param] = (),
              tags: Sequence[RunTag] = (), metrics: Sequence[Metric] = (), status: RunStatus | None = None,
              end_time: int | None = None) -> RunInfo:
        # Over the server's per-request bound, the metrics go in requests of that size, each one
        # transaction: the run, its params and tags with the first, the status with the last.
        chunks = [metrics[start:start + _METRIC_CHUNK] for start in range(0, len(metrics), _METRIC_CHUNK)] or [()]
        info = None
        for index, chunk in enumerate(chunks):
            first, last = index == 0, index == len(chunks) - 1
            info = self._write_once(run_id, create if first else None, params if first else (),
                                    tags if first else (), chunk, status if last else None,
                                    end_time if last else None)
        assert info is not None
        return info

    def write_many(self, writes: Sequence[RunWrite]) -> list[RunInfo | ShipyardError]:
        return write_each(self, writes)  # one request per run, each one transaction on the server

    def _write_once(self, run_id: str, create: RunInfo | None, params: Sequence[Param], tags: Sequence[RunTag],
                    metrics: Sequence[Metric], status: RunStatus | None, end_time: int | None) -> RunInfo:
        new = None if create is None else {
            "experiment_id": create.experiment_id, "run_name": create.run_name, "start_time": create.start_time,
            "user_id": create.user_id, "source": create.source, "parent_run_id": create.parent_run_id}
        body = {"create": new, "params": [{"key": p.key, "value": p.value} for p in params],
                "tags": [{"key": t.key, "value": t.value} for t in tags],
                "metrics": [{"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}
                            for m in metrics],
                "status": RunStatus(status).value if status is not None else None, "end_time": end_time}
        # Not repeated after a lost response: a create would meet its own run (AlreadyExists).
        return run_info_from_wire(self._http.call("POST", f"{API}/runs/{segment(run_id, 'run')}/write", json=body,
                                                  idempotent=create is None and not metrics))

    def get(self, run_id: str) -> Run:
        return run_from_wire(self._http.call("GET", f"{API}/runs/{segment(run_id, 'run')}"))

    def update(self, run_id: str, *, status: RunStatus | None = None, end_time: int | None = None,
               run_name: str | None = None) -> RunInfo:
        body = {"status": RunStatus(status).value if status is not None else None, "end_time": end_time,
                "run_name": run_name}
        return run_info_from_wire(self._http.call("PATCH", f"{API}/runs/{segment(run_id, 'run')}", json=body,
                                                  idempotent=True))

    def delete(self, run_id: str) -> None:
        self._http.call("DELETE", f"{API}/runs/{segment(run_id, 'run')}")

    def restore(self, run_id: str) -> None:
        self._http.call("POST", f"{API}/runs/{segment(run_id, 'run')}/restore", idempotent=True)

    def log_params(self, run_id: str, params: Sequence[Param]) -> None:
        # Re-logging an identical param is a no-op, so repeating after a lost response is safe.
        self._http.call("POST", f"{API}/runs/{segment(run_id, 'run')}/params", idempotent=True,
                        json={"params": [{"key": p.key, "value": p.value} for p in params]})

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> None:
        self._http.call("PUT", f"{API}/runs/{segment(run_id, 'run')}/tags",
                        json={"tags": [{"key": t.key, "value": t.value} for t in tags]})

    def delete_tag(self, run_id: str, key: str) -> None:
        self._http.call("DELETE", f"{API}/runs/{segment(run_id, 'run')}/tags/{url_path(key)}")

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
    thins_history = True  # history_columns takes max_points: the server thins before sending

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def log(self, run_id: str, metrics: Sequence[Metric]) -> None:
        path = f"{API}/runs/{segment(run_id, 'run')}/metrics"
        for start in range(0, len(metrics), _METRIC_CHUNK):
            chunk = metrics[start:start + _METRIC_CHUNK]
            self._http.call("POST", path, idempotent=True, json={"metrics": [
                {"key": m.key, "value": encode_float(m.value), "step": m.step, "timestamp": m.timestamp}
                for m in chunk]})

    def history(self, run_id: str, key: str) -> list[Metric]:
        body = self._http.call("GET", f"{API}/runs/{segment(run_id, 'run')}/metric-history", params={"key": key})
        return [metric_from_wire(m) for m in body["metrics"]]

    def history_columns(self, run_id: str, key: str, max_points: int | None = None) -> MetricHistory:
        params: dict[str, str | int] = {"key": key}
        if max_points is not None:
            params["max_points"] = max_points
        body = self._http.call("GET", f"{API}/runs/{segment(run_id, 'run')}/metric-history/columns", params=params)
        return history_from_wire(body)


_METRIC_CHUNK = 10_000  # the server's per-request bound (schemas.MAX_BATCH)


class RestStore:
    """The Store of a Shipyard server at ``uri`` (``http://host:port``), as the user of the API
    ``token`` (none: anonymous, for a server without ``--auth``), creating in ``project``."""

    def __init__(self, uri: str, *, transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 retries: int = 5, token: str | None = None, project: str | None = None) -> None:
        self._transport = transport
        self._http = HttpClient(uri, transport, timeout, retries, token=token, project=project)
        self.experiments = RestExperimentStore(self._http)
        self.runs = RestRunStore(self._http)
        self.metrics = RestMetricStore(self._http)
        from shipyard.store.rest_data import RestDatasetStore, RestLineageStore
        from shipyard.store.rest_deployments import RestDeploymentStore
        from shipyard.store.rest_logged_models import RestLoggedModelStore
        from shipyard.store.rest_models import RestModelStore
        from shipyard.store.rest_monitors import RestMonitorStore

        self.models = RestModelStore(self._http)
        self.datasets = RestDatasetStore(self._http)
        self.lineage = RestLineageStore(self._http)
        self.logged_models = RestLoggedModelStore(self._http)
        self.deployments = RestDeploymentStore(self._http)
        self.monitors = RestMonitorStore(self._http)

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
