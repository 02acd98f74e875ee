"""RestDeploymentStore: the :class:`~shipyard.store.protocol.DeploymentStore` over a Shipyard server.

Each method is one request to ``/api/v1/deployments``; the server's store checks every rule, and
its errors (``Conflict`` for a stale revision included) come back as the same
:mod:`shipyard.errors` classes. The server records every revision under its authenticated
principal, so the ``user`` arguments are not sent.

Writing a revision is a POST that is not repeated after a lost response: repeating it would be
harmless (the revision moved, so the repeat is refused) but would answer ``Conflict`` for a
change that did happen; the caller gets ``StoreUnavailable`` instead and reads the deployment
to see where it stands.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from shipyard.entities import Deployment, DeploymentEvent
from shipyard.store.http import API, HttpClient, segment
from shipyard.tracking.validation import check_project, check_projects
from shipyard.wire import deployment_event_from_wire, deployment_from_wire, deployment_spec_to_wire

DEPLOYMENTS = f"{API}/deployments"


def _deployment(name: str, *rest: str) -> str:
    return "/".join((DEPLOYMENTS, segment(name, "deployment"), *rest))


def _state(d: Deployment) -> dict[str, Any]:
    return {"environment": d.environment, **deployment_spec_to_wire(d), "status": str(d.status)}


class RestDeploymentStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def create(self, deployment: Deployment, *, user: str = "", detail: str = "") -> Deployment:
        body = {"name": deployment.name, **_state(deployment), "detail": detail,
                "project": check_project(deployment.project)}
        return deployment_from_wire(self._http.call("POST", DEPLOYMENTS, json=body))

    def get(self, name: str) -> Deployment:
        return deployment_from_wire(self._http.call("GET", _deployment(name)))

    def list(self, environment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Deployment]:
        wanted = check_projects(projects)
        if wanted == ():
            return []  # no project: nothing to ask the server for (a query string cannot say "none")
        params: dict[str, Any] = {} if environment is None else {"environment": environment}
        if wanted is not None:
            params["projects"] = list(wanted)
        body = self._http.call("GET", DEPLOYMENTS, params=params or None)
        return [deployment_from_wire(d) for d in body["deployments"]]

    def save(self, deployment: Deployment, *, kind: str, user: str = "", detail: str = "") -> Deployment:
        body = {**_state(deployment), "revision": deployment.revision, "kind": kind, "detail": detail}
        return deployment_from_wire(self._http.call("POST", _deployment(deployment.name, "revisions"), json=body))

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        body = self._http.call("GET", _deployment(name, "history"))
        return [deployment_event_from_wire(e) for e in body["events"]]

    def delete(self, name: str, *, user: str = "", detail: str = "") -> None:
        self._http.call("DELETE", _deployment(name), params={"detail": detail} if detail else None)
