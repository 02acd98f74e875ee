"""Datasets and lineage over the native API: log versions, record and query edges, bad input.

The server runs in-process (``shipyard.testing.ASGITransport``) and is driven with plain httpx,
as any client would; the last tests go through ``RestStore`` to check that calls over the
server's batch bounds are split into several requests. (The contract suite covers the store
semantics against REST; this file covers what only the HTTP layer decides.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from shipyard.config import Settings
from shipyard.entities import Edge, Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound
from shipyard.models import PythonModel
from shipyard.server import create_app
from shipyard.server.permissions import ROUTE_PERMISSIONS, Permission
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.support import assert_error_envelope

BASE = "http://testserver"
DATASETS = "/api/v1/datasets"
EDGES = "/api/v1/lineage/edges"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    root: Path = tmp_path_factory.mktemp("data-api")
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'server.db'}",
                                artifact_uri=str(root / "artifacts"), server_allowed_hosts="testserver",
                                capture_packages=False, capture_git=False)
    server = create_app(settings)
    yield server
    server.state.client.close()


@pytest.fixture(scope="module")
def transport(app: FastAPI) -> Iterator[ASGITransport]:
    t = ASGITransport(app)
    yield t
    t.close()


@pytest.fixture(scope="module")
def http(transport: ASGITransport) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=BASE, transport=transport) as client:
        yield client


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    return http.post("/api/v1/runs", json={"experiment_id": "0"}).json()["info"]["run_id"]


def _name(prefix: str = "data") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _digest() -> str:
    return f"sha256:{uuid.uuid4().hex}{uuid.uuid4().hex}"


def _body(**overrides: object) -> dict:
    return {"digest": _digest(), "source": "/data/train.parquet", "kind": "file", **overrides}


def _log(http: httpx.Client, name: str, status: int = 201, **overrides: object) -> dict:
    response = http.post(f"{DATASETS}/{name}/versions", json=_body(**overrides))
    assert response.status_code == status, response.text
    return response.json()


def _run() -> str:
    return f"run:{uuid.uuid4().hex}"


def _edge(source: str, target: str, relation: str = "input", **extra: object) -> dict:
    return {"source": source, "target": target, "relation": relation, **extra}


def _into(http: httpx.Client, *nodes: str) -> list[dict]:
    response = http.post(f"{EDGES}/query", json={"nodes": list(nodes), "upstream": True})
    assert response.status_code == 200, response.text
    return response.json()["edges"]


# -- datasets -----------------------------------------------------------------------------------
def test_log_list_and_get_versions(http: httpx.Client, run_id: str) -> None:
    name = _name()
    schema = [{"name": "x", "type": "double", "nullable": False}]
    first = _log(http, name, digest=(digest := _digest()), num_rows=10, size_bytes=1234, schema=schema,
                 profile={"rows": 10, "columns": {"x": {"mean": 0.5, "nulls": None}}})
    assert first["created"] is True
    v1 = first["dataset_version"]
    assert (v1["name"], v1["version"], v1["digest"], v1["kind"], v1["num_rows"], v1["schema"]) == \
        (name, 1, digest, "file", 10, schema)
    assert v1["user"] == "local"  # the principal; a client cannot name another user (see below)
    again = _log(http, name, 200, digest=digest, source="/elsewhere")
    assert again == {"dataset_version": v1, "created": False}
    snapshot = _log(http, name, 200, digest=digest, snapshot_uri=f"runs:/{run_id}/./_shipyard/datasets/{name}/v1/")
    assert snapshot["dataset_version"]["snapshot_uri"] == f"runs:/{run_id}/_shipyard/datasets/{name}/v1"  # canonical
    assert _log(http, name, kind="table")["dataset_version"]["version"] == 2
    versions = http.get(f"{DATASETS}/{name}/versions").json()["dataset_versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert http.get(f"{DATASETS}/{name}/versions/1").json() == snapshot["dataset_version"]
    latest = {d["name"]: d["version"] for d in http.get(DATASETS).json()["datasets"]}
    assert latest[name] == 2


@pytest.mark.parametrize("path", ["{missing}/versions", "{missing}/versions/1", "{known}/versions/9",
                                  "..%2F..%2Fexperiments/versions"],
                         ids=["unknown-dataset", "unknown-dataset-version", "unknown-version", "encoded-slashes"])
def test_unknown_datasets_and_versions_are_404(http: httpx.Client, path: str) -> None:
    known, missing = _name(), _name("missing")
    _log(http, known)
    body = assert_error_envelope(http.get(f"{DATASETS}/{path.format(known=known, missing=missing)}"), 404)
    assert body["error_code"] == "NOT_FOUND"
    if "{missing}" in path:
        assert missing in body["message"]
    elif "{known}" in path:
        assert "no version 9" in body["message"]


# -- bad input: a 4xx envelope, and nothing written -------------------------------------------
BAD_VERSIONS = [
    # (id, status, body overrides, text the message must contain)
    ("md5-digest", 400, {"digest": "md5:" + "a" * 32}, "sha256:<64"),
    ("short-digest", 400, {"digest": "sha256:abc"}, "sha256:<64"),
    ("uppercase-digest", 400, {"digest": "sha256:" + "A" * 64}, "sha256:<64"),
    ("bare-hex-digest", 400, {"digest": "a" * 64}, "sha256:<64"),
    ("bad-kind", 400, {"kind": "csv"}, "kind"),
    ("blank-source", 400, {"source": "  "}, "source"),
    ("nul-in-source", 400, {"source": "/data/\x00x"}, "control characters"),
    ("negative-rows", 400, {"num_rows": -1}, "num_rows"),
    ("rows-over-64-bits", 400, {"num_rows": 2**63}, "num_rows"),
    ("schema-not-a-list", 400, {"schema": {"x": "double"}}, "schema"),
    ("profile-over-1mb", 400, {"profile": {"blob": "x" * 1_000_001}}, "at most 1000000"),
    ("schema-over-1mb", 400, {"schema": [{"name": "x" * 1_000_001}]}, "at most 1000000"),
    ("client-names-the-user", 400, {"user": "mallory"}, "user"),
    ("snapshot-file-uri", 400, {"snapshot_uri": "file:///etc/passwd"}, "runs:/<run_id>/<path>"),
    ("snapshot-other-bucket", 400, {"snapshot_uri": "s3://other/data"}, "points outside the store"),
    ("snapshot-https", 400, {"snapshot_uri": "https://evil.example/x"}, "points outside the store"),
    ("snapshot-bare-path", 400, {"snapshot_uri": "/etc/passwd"}, "not a runs:/ URI"),
    ("snapshot-climbs-out", 400, {"snapshot_uri": "runs:/{run}/../../x"}, "snapshot_uri"),
    ("snapshot-not-a-run-id", 400, {"snapshot_uri": "runs:/../../etc/passwd"}, "not a run id"),
    ("snapshot-empty-path", 400, {"snapshot_uri": "runs:/{run}/"}, "path is empty"),
    ("snapshot-unknown-run", 404, {"snapshot_uri": "runs:/{unknown}/_shipyard/datasets/x/v1"}, "{unknown}"),
]


@pytest.mark.parametrize(("status", "overrides", "says"), [c[1:] for c in BAD_VERSIONS],
                         ids=[c[0] for c in BAD_VERSIONS])
def test_bad_dataset_versions_are_refused(http: httpx.Client, run_id: str, status: int, overrides: dict,
                                          says: str) -> None:
    values = {"run": run_id, "unknown": uuid.uuid4().hex}
    overrides = {k: v.format(**values) if isinstance(v, str) and k == "snapshot_uri" else v
                 for k, v in overrides.items()}
    fresh, known = _name(), _name()
    _log(http, known)
    for name in (fresh, known):  # a new dataset is not created; an existing one gets no version
        body = assert_error_envelope(http.post(f"{DATASETS}/{name}/versions", json=_body(**overrides)), status)
        assert says.format(**values) in body["message"]
    assert_error_envelope(http.get(f"{DATASETS}/{fresh}/versions"), 404)
    assert [v["version"] for v in http.get(f"{DATASETS}/{known}/versions").json()["dataset_versions"]] == [1]


def test_non_finite_numbers_in_a_profile_are_refused(http: httpx.Client) -> None:
    """JSON has no NaN, but Python's parser takes the token: stored, it could never be read back."""
    name = _name()
    raw = b'{"digest": "%s", "source": "/d", "kind": "file", "profile": {"mean": NaN}}' % _digest().encode()
    body = assert_error_envelope(http.post(f"{DATASETS}/{name}/versions", content=raw,
                                           headers={"content-type": "application/json"}), 400)
    assert "non-finite" in body["message"]
    assert_error_envelope(http.get(f"{DATASETS}/{name}/versions"), 404)


@pytest.mark.parametrize("name", ["a@b", " lead", "trail ", "...", "tab\tname", "x" * 257],
                         ids=["at-sign", "leading-space", "trailing-space", "dots", "control", "too-long"])
def test_bad_dataset_names_are_400(http: httpx.Client, name: str) -> None:
    from urllib.parse import quote

    body = assert_error_envelope(http.post(f"{DATASETS}/{quote(name, safe='').replace('.', '%2E')}/versions",
                                           json=_body()), 400)
    assert "dataset name" in body["message"]
    assert name not in {d["name"] for d in http.get(DATASETS).json()["datasets"]}


# -- lineage ------------------------------------------------------------------------------------
def test_add_and_query_edges(http: httpx.Client) -> None:
    run, data, out = _run(), f"dataset:{_name()}@1", f"dataset:{_name()}@1"
    added = http.post(EDGES, json={"edges": [_edge(data, run, context="training"), _edge(run, out, "output")]})
    assert (added.status_code, added.json()) == (200, {})
    assert http.post(EDGES, json={"edges": [_edge(data, run, context="again")]}).status_code == 200  # kept as is
    [into] = _into(http, run)
    assert (into["source"], into["target"], into["relation"], into["context"]) == (data, run, "input", "training")
    assert into["timestamp"] > 0
    down = http.post(f"{EDGES}/query", json={"nodes": [run], "upstream": False}).json()["edges"]
    assert [e["target"] for e in down] == [out]
    assert _into(http, "run:nothing") == []
    given = http.post(EDGES, json={"edges": [_edge(out, (later := _run()), timestamp=1234)]})
    assert given.status_code == 200
    assert _into(http, later)[0]["timestamp"] == 1234


BAD_EDGES = [
    # (id, the bad edge, text the message must contain)
    ("unknown-kind", _edge("table:x", "run:abc"), "kind one of"),
    ("no-colon", _edge("run", "run:abc"), "expected <kind>:<id>"),
    ("empty-id", _edge("run:abc", "dataset:"), "expected <kind>:<id>"),
    ("control-character", _edge("run:a\x00b", "run:abc"), "control character"),
    ("too-long-ref", _edge("run:" + "a" * 400, "run:abc"), "300"),
    ("bad-relation", _edge("run:abc", "run:def", "caused"), "relation"),
    ("negative-timestamp", _edge("run:abc", "run:def", timestamp=-5), "timestamp"),
    ("unknown-field", _edge("run:abc", "run:def", weight=3), "weight"),
]


@pytest.mark.parametrize(("bad", "says"), [c[1:] for c in BAD_EDGES], ids=[c[0] for c in BAD_EDGES])
def test_a_bad_edge_refuses_the_whole_batch(http: httpx.Client, bad: dict, says: str) -> None:
    good_target = _run()
    edges = [_edge(f"dataset:{_name()}@1", good_target), bad]
    body = assert_error_envelope(http.post(EDGES, json={"edges": edges}), 400)
    assert says in body["message"]
    assert "edges.1" in body["message"] or "edges.1" in str(body.get("details"))  # names the edge
    assert _into(http, good_target) == []  # the good edge before it was not recorded


def test_oversized_batches_are_refused(http: httpx.Client) -> None:
    target = _run()
    edges = [_edge(f"dataset:{_name()}@{i}", target) for i in range(1001)]
    body = assert_error_envelope(http.post(EDGES, json={"edges": edges}), 400)
    assert "1000" in body["message"]
    assert _into(http, target) == []
    assert http.post(EDGES, json={"edges": edges[:1000]}).status_code == 200  # the bound itself is fine
    assert len(_into(http, target)) == 1000
    nodes = [_run() for _ in range(1001)]
    body = assert_error_envelope(http.post(f"{EDGES}/query", json={"nodes": nodes, "upstream": True}), 400)
    assert "1000" in body["message"]


@pytest.mark.parametrize("body", [{"nodes": ["run:abc", "nope"], "upstream": True}, {"nodes": ["run:abc"]},
                                  {"nodes": "run:abc", "upstream": True}],
                         ids=["bad-node", "no-direction", "not-a-list"])
def test_bad_queries_are_400(http: httpx.Client, body: dict) -> None:
    assert_error_envelope(http.post(f"{EDGES}/query", json=body), 400)


def test_permissions_reads_read_writes_write() -> None:
    expected = {"log_dataset_version": Permission.WRITE, "list_datasets": Permission.READ,
                "list_dataset_versions": Permission.READ, "get_dataset_version": Permission.READ,
                "add_lineage_edges": Permission.WRITE, "query_lineage_edges": Permission.READ}
    assert {name: ROUTE_PERMISSIONS[name] for name in expected} == expected


# -- through RestStore: chunked over the server's bounds ----------------------------------------
class CountingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return self.inner.handle_request(request)


@pytest.fixture
def counted(transport: ASGITransport) -> Iterator[tuple[RestStore, CountingTransport]]:
    counting = CountingTransport(transport)
    store = RestStore(BASE, transport=counting)
    yield store, counting
    store.close()


def test_rest_store_splits_large_calls(counted: tuple[RestStore, CountingTransport]) -> None:
    store, counting = counted
    run = Node(NodeKind.RUN, uuid.uuid4().hex)
    data = [Node(NodeKind.DATASET, f"{_name()}@1") for _ in range(2500)]
    store.lineage.add_edges([Edge(d, run, Relation.INPUT) for d in data])
    assert counting.paths == [EDGES] * 3
    assert {e.source for e in store.lineage.edges([run], upstream=True)} == set(data)
    counting.paths.clear()
    found = store.lineage.edges([*data, *data[:10]], upstream=False)  # repeated nodes are asked once
    assert counting.paths == [f"{EDGES}/query"] * 3
    assert sorted(e.source for e in found) == sorted(data)
    assert {(e.target, e.relation) for e in found} == {(run, Relation.INPUT)}
    counting.paths.clear()
    assert store.lineage.edges([], upstream=True) == []
    store.lineage.add_edges([])
    assert counting.paths == []


def test_rest_store_errors_are_domain_errors(counted: tuple[RestStore, CountingTransport]) -> None:
    store, counting = counted
    name = _name()
    with pytest.raises(NotFound, match=name):
        store.datasets.list_versions(name)
    with pytest.raises(InvalidInput, match="sha256"):
        store.datasets.log_version(name, digest="md5:x", source="/d", kind="file")
    with pytest.raises(InvalidInput, match="dataset name"):
        store.datasets.log_version("a/b", digest=_digest(), source="/d", kind="file")
    with pytest.raises(NotFound):
        store.datasets.get_version("..", 1)  # not another route: the name stays one segment
    counting.paths.clear()
    with pytest.raises(InvalidInput, match="non-finite"):
        store.datasets.log_version(name, digest=_digest(), source="/d", kind="table", profile={"mean": float("nan")})
    assert counting.paths == []  # refused before sending
    version, created = store.datasets.log_version(name, digest=_digest(), source="/d", kind="file", user="mallory")
    assert created
    assert version.user == "local"  # the server's principal, not the user claimed


class _Identity(PythonModel):
    def predict(self, context, data):
        return data


def test_graph_and_explain_endpoints(app: FastAPI, http: httpx.Client) -> None:
    import numpy as np
    import pandas as pd

    sdk = app.state.client  # the server's own domain client writes; HTTP reads
    run_id = sdk.create_run("0", "train", tags={"shipyard.git.commit": "b" * 40}).info.run_id
    sdk.log_params(run_id, {"lr": "0.1"})
    data = sdk.log_dataset(run_id, pd.DataFrame({"x": np.arange(5.0)}), name=f"g-{run_id[:8]}", context="training")
    sdk.log_model(run_id, _Identity(), "model", code_paths=[__file__])
    name = f"graph-{run_id[:8]}"
    sdk.register_model(f"runs:/{run_id}/model", name)
    graph = http.get("/api/v1/lineage/graph", params={"ref": f"models:/{name}/1"}).json()
    assert {n["id"] for n in graph["nodes"]} == {f"model:{name}/1", f"run:{run_id}", f"dataset:{data.ref}"}
    down = http.get("/api/v1/lineage/graph", params={"ref": f"dataset:{data.ref}", "direction": "downstream",
                                                     "depth": 1}).json()
    assert {n["id"] for n in down["nodes"]} == {f"dataset:{data.ref}", f"run:{run_id}"}
    why = http.get("/api/v1/lineage/explain", params={"ref": f"models:/{name}/1"}).json()
    assert why["data_digests"] == {data.ref: data.digest}
    assert why["runs"][0]["commit"] == "b" * 40
    assert why["runs"][0]["params"] == {"lr": "0.1"}
    for params, status in (({"ref": "nonsense"}, 400), ({"ref": "run:" + "f" * 32}, 404),
                           ({"ref": f"models:/{name}/1", "depth": 0}, 400)):
        response = http.get("/api/v1/lineage/graph", params=params)
        assert response.status_code == status, response.text
        assert set(response.json()) >= {"error_code", "message"}
        assert_error_envelope(response, status)
