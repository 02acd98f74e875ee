"""The lineage graph over the native API: record edges, and read the edges into or out of nodes.

A thin adapter over ``client.store.lineage`` (the :class:`~shipyard.store.protocol.LineageStore`).
Nodes travel as their ``kind:id`` strings and are parsed with :meth:`Node.parse`; every edge of
a batch is checked before any is recorded, so a refused batch writes nothing. Batches are
bounded (``schemas.MAX_EDGES`` edges per add, ``schemas.MAX_NODES`` nodes per query); the REST
store splits larger calls into several requests.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from starlette.responses import Response

from shipyard.entities import Edge, Node
from shipyard.errors import InvalidInput
from shipyard.server import schemas
from shipyard.server.responses import client, json_response
from shipyard.wire import edge_to_wire

router = APIRouter(prefix="/api/v1/lineage", tags=["lineage"])

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
