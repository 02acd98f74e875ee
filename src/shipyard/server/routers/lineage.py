"""The lineage graph over the native API: record edges, and read the edges into or out of nodes.

A thin adapter over ``client.store.lineage`` (the :class:`~shipyard.store.protocol.LineageStore`).
Nodes travel as their ``kind:id`` strings and are parsed with :meth:`Node.parse`; every edge of
a batch is checked before any is recorded, so a refused batch writes nothing. Batches are
bounded (``schemas.MAX_EDGES`` edges per add, ``schemas.MAX_NODES`` nodes per query); the REST
store splits larger calls into several requests.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from fastapi import Query, Request
from starlette.responses import Response

from shipyard.entities import Edge, Node
from shipyard.errors import InvalidInput
from shipyard.server import schemas
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.wire import edge_to_wire

router = PrefixRouter(prefix="/api/v1/lineage", tags=["lineage"])

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _node(field: str, text: str) -> Node:
    if _CONTROL.search(text):
        raise InvalidInput(f"{field}: lineage reference {text[:100]!r} contains a control character", field=field)
    try:
        return Node.parse(text)
    except InvalidInput as err:
        raise InvalidInput(f"{field}: {err.message}", field=field) from None


def _context(field: str, text: str) -> str:
    if _CONTROL.search(text):
        raise InvalidInput(f"{field}: context {text[:100]!r} contains a control character", field=field)
    return text


@router.post("/edges", name="add_lineage_edges",
             summary=f"Record lineage edges (at most {schemas.MAX_EDGES}); ones already recorded are kept as is")
def add_lineage_edges(body: schemas.AddEdges, request: Request) -> Response:
    edges = [Edge(_node(f"edges.{i}.source", e.source), _node(f"edges.{i}.target", e.target), e.relation,
                  _context(f"edges.{i}.context", e.context), e.timestamp) for i, e in enumerate(body.edges)]
    client(request).store.lineage.add_edges(edges)
    return json_response(None)


@router.post("/edges/query", name="query_lineage_edges",
             summary=f"The edges into (upstream) or out of up to {schemas.MAX_NODES} nodes, oldest first")
def query_lineage_edges(body: schemas.QueryEdges, request: Request) -> Response:
    nodes = [_node(f"nodes.{i}", text) for i, text in enumerate(body.nodes)]
    edges = client(request).store.lineage.edges(nodes, upstream=body.upstream)
    return json_response({"edges": [edge_to_wire(e) for e in edges]})


@router.get("/graph", name="get_lineage_graph",
            summary="Walk the graph from a reference (models:/NAME/VERSION, models:/NAME@ALIAS, kind:id)")
def get_lineage_graph(request: Request, ref: Annotated[str, Query(min_length=1, max_length=300)],
                      direction: Literal["upstream", "downstream"] = "upstream",
                      depth: Annotated[int, Query(ge=1, le=100)] = 100) -> Response:
    from shipyard.lineage import formats
    from shipyard.lineage.graph import walk

    graph = walk(client(request).registry, _ref("ref", ref), upstream=direction == "upstream", depth=depth)
    return json_response(formats.to_json(graph))


@router.get("/explain", name="explain_lineage",
            summary="Where a model version, run or dataset version came from: data digests, code, params, seed")
def explain_lineage(request: Request, ref: Annotated[str, Query(min_length=1, max_length=300)]) -> Response:
    import dataclasses

    from shipyard.lineage import formats
    from shipyard.lineage.explain import explain_ref
    from shipyard.wire import dataset_version_to_wire, encode_float, model_version_to_wire

    found = explain_ref(client(request).registry, _ref("ref", ref), with_files=False)
    runs = [{**dataclasses.asdict(r), "metrics": {k: encode_float(v) for k, v in r.metrics.items()}}
            for r in found.runs]
    return json_response({"root": str(found.root), "graph": formats.to_json(found.graph), "runs": runs,
                          "datasets": [dataset_version_to_wire(d) for d in found.datasets],
                          "models": [model_version_to_wire(m) for m in found.models],
                          "data_digests": found.data_digests, "missing": found.missing})


def _ref(field: str, text: str) -> str:
    if _CONTROL.search(text):
        raise InvalidInput(f"{field}: reference {text[:100]!r} contains a control character", field=field)
    return text
