"""RestDatasetStore and RestLineageStore: the :class:`~shipyard.store.protocol.DatasetStore` and
:class:`~shipyard.store.protocol.LineageStore` over a Shipyard server.

Datasets are requests to ``/api/v1/datasets``, lineage to ``/api/v1/lineage``; errors come back
as the :mod:`shipyard.errors` class the server raised. The server records every dataset version
under its authenticated principal, so ``user`` is not sent.

The server bounds each request (:data:`MAX_EDGES` edges per add, :data:`MAX_NODES` nodes per
query); larger calls are split into several requests here. A split ``add_edges`` is therefore
not atomic: after a failure, the chunks before it stay recorded (repeating the call is safe,
since an edge already recorded is kept as is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.entities import DatasetVersion, Edge, Node
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import InvalidInput
from shipyard.store.http import API, HttpClient, segment
from shipyard.tracking.validation import check_dataset_name, check_project, check_projects
from shipyard.wire import dataset_version_from_wire, edge_from_wire, edge_to_wire

DATASETS = f"{API}/datasets"
EDGES = f"{API}/lineage/edges"
MAX_EDGES = 1000  # the server's bounds (shipyard.server.schemas.MAX_EDGES, MAX_NODES)
MAX_NODES = 1000


def _finite(field: str, value: Any) -> Any:
    """``value`` if JSON can carry it; NaN and infinity cannot (``InvalidInput`` naming the field,
    as the server would answer, rather than the JSON encoder's ``ValueError``)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"{field} holds a non-finite number (NaN or infinity), which JSON cannot carry; "
                               "record it as null", field=field)
        if isinstance(item, Mapping):
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return value


class RestDatasetStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def _versions(self, name: str, *rest: str) -> str:
        return "/".join((DATASETS, segment(name, "dataset"), "versions", *rest))

    def log_version(self, name: str, *, digest: str, source: str, kind: str, num_rows: int | None = None,
                    size_bytes: int | None = None, schema: Sequence[Mapping[str, Any]] = (),
                    profile: Mapping[str, Any] | None = None, snapshot_uri: str | None = None,
                    user: str = "", project: str = DEFAULT_PROJECT) -> tuple[DatasetVersion, bool]:
        check_dataset_name(name)  # a name that cannot be one path segment would reach another route
        body = {"digest": digest, "source": source, "kind": kind, "num_rows": num_rows, "size_bytes": size_bytes,
                "schema": _finite("schema", [dict(c) for c in schema]),
                "profile": _finite("profile", dict(profile or {})), "snapshot_uri": snapshot_uri,
                "project": check_project(project)}
        # The same digest gives the same version back, so repeating after a lost response is safe
        # (only ``created`` may then read False for a version this call created).
        result = self._http.call("POST", self._versions(name), json=body, idempotent=True)
        return dataset_version_from_wire(result["dataset_version"]), bool(result["created"])

    def get_version(self, name: str, version: int) -> DatasetVersion:
        return dataset_version_from_wire(self._http.call("GET", self._versions(name, str(int(version)))))

    def list_versions(self, name: str) -> list[DatasetVersion]:
        body = self._http.call("GET", self._versions(name))
        return [dataset_version_from_wire(v) for v in body["dataset_versions"]]

    def list_datasets(self, *, projects: Sequence[str] | None = None) -> list[DatasetVersion]:
        wanted = check_projects(projects)
        if wanted == ():
            return []  # no project: nothing to ask the server for (a query string cannot say "none")
        params = None if wanted is None else {"projects": list(wanted)}
        return [dataset_version_from_wire(v) for v in self._http.call("GET", DATASETS, params=params)["datasets"]]


class RestLineageStore:
    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def add_edges(self, edges: Sequence[Edge]) -> None:
        wire = [edge_to_wire(e) for e in edges]
        for start in range(0, len(wire), MAX_EDGES):
            self._http.call("POST", EDGES, json={"edges": wire[start:start + MAX_EDGES]}, idempotent=True)

    def edges(self, nodes: Sequence[Node], *, upstream: bool) -> list[Edge]:
        keys = sorted({str(n) for n in nodes})
        found: list[Edge] = []
        for start in range(0, len(keys), MAX_NODES):
            body = self._http.call("POST", f"{EDGES}/query", json={"nodes": keys[start:start + MAX_NODES],
                                                                   "upstream": bool(upstream)}, idempotent=True)
            found += [edge_from_wire(e) for e in body["edges"]]
        if len(keys) > MAX_NODES:  # each request's answer is oldest first; merge them (stable)
            found.sort(key=lambda e: e.timestamp)
        return found
