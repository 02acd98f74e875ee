"""RestLoggedModelStore: the :class:`~shipyard.store.protocol.LoggedModelStore` over a Shipyard
server.

Each method is one request to ``/api/v1/logged-models`` (a run's models:
``/api/v1/runs/<run_id>/logged-models``); the server's store checks every rule, and its errors
come back as the same :mod:`shipyard.errors` classes. Filters travel structured, never re-parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.entities import (
    LoggedModel,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    Page,
    RunLink,
    ViewType,
)
from shipyard.store.http import API, HttpClient, segment, url_path
from shipyard.wire import (
    logged_model_from_wire,
    logged_model_metric_to_wire,
    logged_model_to_wire,
    run_link_from_wire,
    run_link_to_wire,
)

LOGGED_MODELS = f"{API}/logged-models"


def _model(model_id: str, *rest: str) -> str:
    return "/".join((LOGGED_MODELS, segment(model_id, "logged model"), *rest))


def _search_body(query: LoggedModelQuery) -> dict[str, Any]:
    return {
        "experiment_ids": list(query.experiment_ids),
        "filter": [{"kind": c.kind, "key": c.key, "op": c.op.value,
                    "value": list(c.value) if isinstance(c.value, tuple) else c.value} for c in query.filter],
        "order_by": [{"kind": o.kind, "key": o.key, "ascending": o.ascending} for o in query.order_by],
        "view": ViewType(query.view).value,
        "max_results": query.max_results,
        "page_token": query.page_token,
        "datasets": [{"name": d.name, "digest": d.digest} for d in query.datasets],
    }


class RestLoggedModelStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def create(self, model: LoggedModel) -> LoggedModel:
        body = logged_model_to_wire(model)
        del body["lifecycle_stage"], body["metrics"]  # a new model is always active and has no metrics yet
        return logged_model_from_wire(self._http.call("POST", LOGGED_MODELS, json=body))

    def get(self, model_id: str) -> LoggedModel:
        return logged_model_from_wire(self._http.call("GET", _model(model_id)))

    def update(self, model_id: str, *, status: LoggedModelStatus | None = None,
               status_message: str | None = None) -> LoggedModel:
        body = {"status": LoggedModelStatus(status).value if status is not None else None,
                "status_message": status_message}
        return logged_model_from_wire(self._http.call("PATCH", _model(model_id), json=body, idempotent=True))

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        self._http.call("PATCH", _model(model_id, "tags"), json={"tags": dict(tags)}, idempotent=True)

    def delete_tag(self, model_id: str, key: str) -> None:
        self._http.call("DELETE", _model(model_id, "tags", url_path(key)))

    def log_params(self, model_id: str, params: Mapping[str, str]) -> None:
        # Re-logging an identical param is a no-op, so repeating after a lost response is safe.
        self._http.call("POST", _model(model_id, "params"), json={"params": dict(params)}, idempotent=True)

    def delete(self, model_id: str) -> None:
        self._http.call("DELETE", _model(model_id))

    def search(self, query: LoggedModelQuery) -> Page[LoggedModel]:
        if not query.experiment_ids:
            return Page([])
        result = self._http.call("POST", f"{LOGGED_MODELS}/search", json=_search_body(query), idempotent=True)
        return Page([logged_model_from_wire(m) for m in result["logged_models"]], result["next_page_token"])

    def list_for_run(self, run_id: str, view: ViewType = ViewType.ACTIVE_ONLY) -> list[LoggedModel]:
        if not run_id:  # no URL names it; like any unknown run, it has no models
            return []
        body = self._http.call("GET", f"{API}/runs/{segment(run_id, 'run')}/logged-models",
                               params={"view": ViewType(view).value})
        return [logged_model_from_wire(m) for m in body["logged_models"]]

    def log_metrics(self, model_id: str, metrics: Sequence[LoggedModelMetric]) -> None:
        # A value already recorded is kept once, so repeating after a lost response is safe.
        self._http.call("POST", _model(model_id, "metrics"),
                        json={"metrics": [logged_model_metric_to_wire(m) for m in metrics]}, idempotent=True)

    def add_run_links(self, links: Sequence[RunLink]) -> None:
        if links:  # the first record of a link is kept, so repeating is safe
            self._http.call("POST", f"{LOGGED_MODELS}/run-links", json={"links": [run_link_to_wire(x) for x in links]},
                            idempotent=True)

    def run_links(self, run_ids: Sequence[str]) -> dict[str, list[RunLink]]:
        if not run_ids:
            return {}
        body = self._http.call("POST", f"{LOGGED_MODELS}/run-links/query", json={"run_ids": list(run_ids)},
                               idempotent=True)
        return {run_id: [run_link_from_wire(x) for x in links] for run_id, links in body["links"].items()}
