"""Walking the lineage graph: breadth first, one store query per level, cycle-safe.

Domain code: :func:`walk` and :func:`parse_ref` take the
:class:`~shipyard.models.registry.RegistryService` (its store, and how a ``models:/`` URI
resolves), or a ``Client``, the SDK's spelling (:func:`~shipyard.models.registry.as_registry`).
``shipyard.lineage.upstream`` and ``downstream`` (:mod:`shipyard.lineage.sdk`) default to the
fluent SDK's client.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.entities import Edge, Node, NodeKind
from shipyard.errors import InvalidInput, NotFound
from shipyard.models.registry import HasRegistry, RegistryService, as_registry

if TYPE_CHECKING:
    from shipyard.store.protocol import Store

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


def parse_ref(registry: RegistryService | HasRegistry, ref: str | Node) -> Node:
    """A node from ``kind:id`` or from a URI people already use: ``models:/churn/3``,
    ``models:/churn@production`` (resolved to its version now), ``runs:/<id>`` or a bare run id,
    ``dataset:train@3``."""
    if isinstance(ref, Node):
        return ref
    text = str(ref).strip()
    if text.startswith("models:/"):
        version = as_registry(registry).resolve_model_version(text)
        return Node(NodeKind.MODEL, f"{version.name}/{version.version}")
    if text.startswith("runs:/"):
        return Node(NodeKind.RUN, text[len("runs:/"):].strip("/").partition("/")[0])
    if ":" not in text and len(text) == 32 and all(c in "0123456789abcdef" for c in text):
        return Node(NodeKind.RUN, text)
    return Node.parse(text)


def walk(registry: RegistryService | HasRegistry, ref: str | Node, *, upstream: bool,
         depth: int = MAX_DEPTH) -> Graph:
    """The walk from ``ref`` upstream (what it was made from) or downstream (what was made from
    it), ``depth`` steps at most. Raises ``NotFound`` for an unknown run, dataset version or
    model version, ``InvalidInput`` for a bad reference or depth."""
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be a whole number from 1 to {MAX_DEPTH}, got {depth!r}")
    service = as_registry(registry)
    root = parse_ref(service, ref)
    store = service.store
    _require_known(store, root)
    seen: dict[Node, int] = {root: 0}
    edges: list[Edge] = []
    level = [root]
    for distance in range(1, depth + 1):
        if not level:
            break
        found = store.lineage.edges(level, upstream=upstream)
        level = []
        for edge in found:
            edges.append(edge)
            nxt = edge.source if upstream else edge.target
            if nxt not in seen:  # a node met again (a cycle, or two paths) is not walked twice
                seen[nxt] = distance
                level.append(nxt)
    return Graph(root, upstream, tuple(edges), seen)


def _require_known(store: Store, node: Node) -> None:
    """An unknown run, dataset version or model version is NotFound, not an empty graph."""
    if node.kind is NodeKind.RUN:
        store.runs.get(node.id)
    elif node.kind is NodeKind.DATASET:
        name, _, version = node.id.rpartition("@")
        if not name or not version.isdigit():
            raise InvalidInput(f"dataset reference {node} is not valid: expected dataset:<name>@<version>")
        store.datasets.get_version(name, int(version))
    elif node.kind is NodeKind.MODEL:
        name, _, version = node.id.rpartition("/")
        if not name or not version.isdigit():
            raise InvalidInput(f"model reference {node} is not valid: expected model:<name>/<version>")
        store.models.get_version(name, int(version))
    elif not store.lineage.edges([node], upstream=True) and \
            not store.lineage.edges([node], upstream=False):
        raise NotFound(f"{node} is not in the lineage graph")
