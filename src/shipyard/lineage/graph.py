"""Walking the lineage graph: breadth first, one store query per level, cycle-safe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.entities import Edge, Node, NodeKind
from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

MAX_DEPTH = 100


@dataclass(frozen=True)
class Graph:
    """What a walk from ``root`` reached: every edge on the way, and each node's depth."""

    root: Node
    upstream: bool
    edges: tuple[Edge, ...] = ()
    depth: dict[Node, int] = field(default_factory=dict)

    @property
    def nodes(self) -> list[Node]:
        return sorted(self.depth, key=lambda n: (self.depth[n], str(n)))

    def children(self, node: Node) -> list[Edge]:
        """The edges leading away from ``node`` in the walk's direction."""
        if self.upstream:
            return [e for e in self.edges if e.target == node]
        return [e for e in self.edges if e.source == node]


def parse_ref(client: Client, ref: str | Node) -> Node:
    """A node from ``kind:id`` or from a URI people already use: ``models:/churn/3``,
    ``models:/churn@production`` (resolved to its version now), ``runs:/<id>`` or a bare run id,
    ``dataset:train@3``."""
    if isinstance(ref, Node):
        return ref
    text = str(ref).strip()
    if text.startswith("models:/"):
        version = client.resolve_model_version(text)
        return Node(NodeKind.MODEL, f"{version.name}/{version.version}")
    if text.startswith("runs:/"):
        return Node(NodeKind.RUN, text[len("runs:/"):].strip("/").partition("/")[0])
    if ":" not in text and len(text) == 32 and all(c in "0123456789abcdef" for c in text):
        return Node(NodeKind.RUN, text)
    return Node.parse(text)


def walk(client: Client, ref: str | Node, *, upstream: bool, depth: int = MAX_DEPTH) -> Graph:
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be a whole number from 1 to {MAX_DEPTH}, got {depth!r}")
    root = parse_ref(client, ref)
    _require_known(client, root)
    seen: dict[Node, int] = {root: 0}
    edges: list[Edge] = []
    level = [root]
    for distance in range(1, depth + 1):
        if not level:
            break
        found = client.store.lineage.edges(level, upstream=upstream)
        level = []
        for edge in found:
            edges.append(edge)
            nxt = edge.source if upstream else edge.target
            if nxt not in seen:  # a node met again (a cycle, or two paths) is not walked twice
                seen[nxt] = distance
                level.append(nxt)
    return Graph(root, upstream, tuple(edges), seen)


def upstream(ref: str | Node, *, depth: int = MAX_DEPTH, client: Client | None = None) -> Graph:
    """Everything ``ref`` was made from: data, runs, parent runs... (``client``: the fluent
    SDK's, unless given)."""
    from shipyard.tracking.fluent import default_client

    return walk(client or default_client(), ref, upstream=True, depth=depth)


def downstream(ref: str | Node, *, depth: int = MAX_DEPTH, client: Client | None = None) -> Graph:
    """Everything made from ``ref``: runs that read a dataset, versions registered from a run..."""
    from shipyard.tracking.fluent import default_client

    return walk(client or default_client(), ref, upstream=False, depth=depth)


def _require_known(client: Client, node: Node) -> None:
    """An unknown run, dataset version or model version is NotFound, not an empty graph."""
    if node.kind is NodeKind.RUN:
        client.store.runs.get(node.id)
    elif node.kind is NodeKind.DATASET:
        name, _, version = node.id.rpartition("@")
        if not name or not version.isdigit():
            raise InvalidInput(f"dataset reference {node} is not valid: expected dataset:<name>@<version>")
        client.store.datasets.get_version(name, int(version))
    elif node.kind is NodeKind.MODEL:
        name, _, version = node.id.rpartition("/")
        if not name or not version.isdigit():
            raise InvalidInput(f"model reference {node} is not valid: expected model:<name>/<version>")
        client.store.models.get_version(name, int(version))
    elif not client.store.lineage.edges([node], upstream=True) and \
            not client.store.lineage.edges([node], upstream=False):
        raise NotFound(f"{node} is not in the lineage graph")
