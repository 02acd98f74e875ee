"""RestModelStore: the :class:`~shipyard.store.protocol.ModelStore` over a Shipyard server.

Each method is one request to ``/api/v1/registered-models`` (or ``/api/v1/model-versions``
for version search); errors come back as the :mod:`shipyard.errors` class the server raised
(``ApprovalRequired`` included, by its code). Filters travel structured, never re-parsed.

The server records every change under its authenticated principal, so the ``user`` arguments
are not sent: a client cannot choose who it is recorded as. ``approve_version`` still refuses
an empty ``user`` as the protocol says, so callers behave the same against every store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.entities import ModelVersion, Page, RegisteredModel, RegistryEvent, RegistryQuery, VersionStatus
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import InvalidInput
from shipyard.store.http import API, HttpClient, segment, url_path
from shipyard.tracking.validation import check_project, check_projects
from shipyard.wire import model_version_from_wire, registered_model_from_wire, registry_event_from_wire

MODELS = f"{API}/registered-models"


def _search_body(query: RegistryQuery) -> dict[str, Any]:
    return {
        "filter": [{"kind": c.kind, "key": c.key, "op": c.op.value,
                    "value": list(c.value) if isinstance(c.value, tuple) else c.value} for c in query.filter],
        "max_results": query.max_results,
        "page_token": query.page_token,
        "order_by": [{"kind": o.kind, "key": o.key, "ascending": o.ascending} for o in query.order_by],
        "projects": None if query.projects is None else list(check_projects(query.projects) or ()),  # []: none
    }


class RestModelStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def _model(self, name: str, *rest: str) -> str:
        return "/".join((MODELS, segment(name, "registered model"), *rest))

    def _version(self, name: str, version: int, *rest: str) -> str:
        return self._model(name, "versions", str(int(version)), *rest)

    # -- registered models ------------------------------------------------------------------
    def create_model(self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None,
                     user: str = "", project: str = DEFAULT_PROJECT) -> RegisteredModel:
        body = {"name": name, "description": description, "tags": dict(tags or {}), "project": check_project(project)}
        return registered_model_from_wire(self._http.call("POST", MODELS, json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return registered_model_from_wire(self._http.call("GET", self._model(name)))

    def search_models(self, query: RegistryQuery) -> Page[RegisteredModel]:
        result = self._http.call("POST", f"{MODELS}/search", json=_search_body(query), idempotent=True)
        return Page([registered_model_from_wire(m) for m in result["registered_models"]], result["next_page_token"])

    def update_model(self, name: str, *, description: str, user: str = "") -> RegisteredModel:
        return registered_model_from_wire(self._http.call("PATCH", self._model(name),
                                                          json={"description": description}, idempotent=True))

    def rename_model(self, name: str, new_name: str, *, user: str = "") -> RegisteredModel:
        return registered_model_from_wire(self._http.call("POST", self._model(name, "rename"),
                                                          json={"new_name": new_name}))

    def delete_model(self, name: str, *, force: bool = False, user: str = "") -> None:
        self._http.call("DELETE", self._model(name), params={"force": "true"} if force else None)

    def set_model_tags(self, name: str, tags: Mapping[str, str], *, user: str = "") -> None:
        self._http.call("PUT", self._model(name, "tags"), json={"tags": dict(tags)})

    def delete_model_tag(self, name: str, key: str, *, user: str = "") -> None:
        self._http.call("DELETE", self._model(name, "tags", url_path(key)))

    # -- versions ---------------------------------------------------------------------------
    def create_version(self, name: str, *, source: str, run_id: str | None = None, description: str = "",
                       tags: Mapping[str, str] | None = None,
                       status: VersionStatus = VersionStatus.READY, user: str = "") -> ModelVersion:
        body = {"source": source, "run_id": run_id, "description": description, "tags": dict(tags or {}),
                "status": VersionStatus(status).value}
        return model_version_from_wire(self._http.call("POST", self._model(name, "versions"), json=body))

    def get_version(self, name: str, version: int) -> ModelVersion:
        return model_version_from_wire(self._http.call("GET", self._version(name, version)))

    def search_versions(self, query: RegistryQuery) -> Page[ModelVersion]:
        result = self._http.call("POST", f"{API}/model-versions/search", json=_search_body(query), idempotent=True)
        return Page([model_version_from_wire(v) for v in result["model_versions"]], result["next_page_token"])

    def update_version(self, name: str, version: int, *, description: str | None = None,
                       status: VersionStatus | None = None, card: str | None = None,
                       user: str = "") -> ModelVersion:
        body = {"description": description, "status": VersionStatus(status).value if status is not None else None,
                "card": card}
        return model_version_from_wire(self._http.call("PATCH", self._version(name, version), json=body,
                                                       idempotent=True))

    def delete_version(self, name: str, version: int, *, force: bool = False, user: str = "") -> None:
        self._http.call("DELETE", self._version(name, version), params={"force": "true"} if force else None)

    def set_version_tags(self, name: str, version: int, tags: Mapping[str, str], *, user: str = "") -> None:
        self._http.call("PUT", self._version(name, version, "tags"), json={"tags": dict(tags)})

    def delete_version_tag(self, name: str, version: int, key: str, *, user: str = "") -> None:
        self._http.call("DELETE", self._version(name, version, "tags", url_path(key)))

    def approve_version(self, name: str, version: int, *, user: str, comment: str = "") -> ModelVersion:
        if not user:
            raise InvalidInput("an approval must name who approves (user)")
        return model_version_from_wire(self._http.call("POST", self._version(name, version, "approve"),
                                                       json={"comment": comment}))

    # -- aliases ----------------------------------------------------------------------------
    def protect_alias(self, name: str, alias: str, protected: bool = True, *, user: str = "") -> RegisteredModel:
        path = self._model(name, "protected-aliases", segment(alias, "alias"))
        return registered_model_from_wire(self._http.call("PUT" if protected else "DELETE", path))

    def set_alias(self, name: str, alias: str, version: int, *, user: str = "") -> ModelVersion:
        return model_version_from_wire(self._http.call("PUT", self._model(name, "aliases", segment(alias, "alias")),
                                                       json={"version": int(version)}))

    def delete_alias(self, name: str, alias: str, *, user: str = "") -> None:
        self._http.call("DELETE", self._model(name, "aliases", segment(alias, "alias")))

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return model_version_from_wire(self._http.call("GET", self._model(name, "aliases",
                                                                          segment(alias, "alias"))))

    def history(self, name: str) -> list[RegistryEvent]:
        body = self._http.call("GET", self._model(name, "history"))
        return [registry_event_from_wire(e) for e in body["events"]]
