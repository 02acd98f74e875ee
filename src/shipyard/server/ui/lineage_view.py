"""The lineage graph drawn as SVG on the server: one column per distance from the root, data on
the left and what was made from it on the right, every node a link to its page.

A layered layout is enough for provenance graphs (a handful of levels, a few nodes each) and
needs no JavaScript; the template draws what :func:`layout` computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from shipyard.entities import Node, NodeKind
from shipyard.lineage.graph import Graph
from shipyard.text import shorten

NODE_WIDTH = 220
NODE_HEIGHT = 46
COLUMN_GAP = 120
ROW_GAP = 22
MARGIN = 16
LABEL_CHARS = 28


@dataclass(frozen=True)
class DrawnNode:
    node: Node
    x: int
    y: int
    title: str
    subtitle: str
    href: str | None
    root: bool

    @property
    def kind(self) -> str:
        return self.node.kind.value


@dataclass(frozen=True)
class DrawnEdge:
    path: str
    label: str
    label_x: int
    label_y: int


@dataclass(frozen=True)
class Drawing:
    width: int
    height: int
    nodes: list[DrawnNode]
    edges: list[DrawnEdge]


def node_href(node: Node) -> str | None:
    """The UI page of a lineage node (predictions and pipeline steps have none)."""
    if node.kind is NodeKind.RUN:
        return f"/ui/runs/{quote(node.id, safe='')}"
    if node.kind is NodeKind.MODEL:
        name, _, version = node.id.rpartition("/")
        return f"/ui/models/{quote(name, safe='')}/versions/{quote(version, safe='')}"
    if node.kind is NodeKind.DATASET:
        name, _, version = node.id.rpartition("@")
        return f"/ui/datasets/{quote(name, safe='')}/versions/{quote(version, safe='')}"
    if node.kind is NodeKind.DEPLOYMENT:
        return f"/ui/deployments/{quote(node.id, safe='')}"
    return None


def _titles(node: Node, run_names: dict[str, str]) -> tuple[str, str]:
    if node.kind is NodeKind.RUN:
        name = run_names.get(node.id)
        return shorten(name or node.id[:12], LABEL_CHARS), f"run {node.id[:12]}"
    if node.kind is NodeKind.MODEL:
        name, _, version = node.id.rpartition("/")
        return shorten(name, LABEL_CHARS), f"model version {version}"
    if node.kind is NodeKind.DATASET:
        name, _, version = node.id.rpartition("@")
        return shorten(name, LABEL_CHARS), f"dataset version {version}"
    return shorten(node.id, LABEL_CHARS), node.kind.value


def layout(graph: Graph, run_names: dict[str, str] | None = None) -> Drawing:
    """Positions for every node and edge of ``graph``. Upstream walks put the root on the right
    (sources first, as data flows); downstream walks put it on the left."""
    names = run_names or {}
    deepest = max(graph.depth.values(), default=0)
    columns: dict[int, list[Node]] = {}
    for node in graph.nodes:  # sorted by depth, then by text: a stable drawing
        depth = graph.depth[node]
        columns.setdefault(deepest - depth if graph.upstream else depth, []).append(node)
    tallest = max((len(c) for c in columns.values()), default=1)
    height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP
    width = MARGIN * 2 + (deepest + 1) * NODE_WIDTH + deepest * COLUMN_GAP
    place: dict[Node, tuple[int, int]] = {}
    drawn = []
    for column, nodes in sorted(columns.items()):
        used = len(nodes) * NODE_HEIGHT + (len(nodes) - 1) * ROW_GAP
        top = (height - used) // 2
        for row, node in enumerate(nodes):
            x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
            y = top + row * (NODE_HEIGHT + ROW_GAP)
            place[node] = (x, y)
            title, subtitle = _titles(node, names)
            drawn.append(DrawnNode(node, x, y, title, subtitle, node_href(node), node == graph.root))
    edges = []
    for edge in graph.edges:
        if edge.source not in place or edge.target not in place:
            continue
        (sx, sy), (tx, ty) = place[edge.source], place[edge.target]
        x1, y1 = sx + NODE_WIDTH, sy + NODE_HEIGHT // 2
        x2, y2 = tx, ty + NODE_HEIGHT // 2
        if x2 <= x1:  # same column or backwards (a cycle): loop around the right side
            x2, y2 = tx + NODE_WIDTH, ty + NODE_HEIGHT // 2
            bend = max(x1, x2) + COLUMN_GAP // 2
            path = f"M{x1},{y1} C{bend},{y1} {bend},{y2} {x2},{y2}"
        else:
            middle = (x1 + x2) // 2
            path = f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}"
        label = edge.relation.value + (f" ({edge.context})" if edge.context else "")
        edges.append(DrawnEdge(path, label, (x1 + x2) // 2, (y1 + y2) // 2 - 6))
    return Drawing(width, height, drawn, edges)
