"""The lineage graph as text other tools read: JSON, Graphviz DOT, Mermaid."""

from __future__ import annotations

import json
from typing import Any

from shipyard.lineage.graph import Graph


def to_json(graph: Graph) -> dict[str, Any]:
    return {
        "root": str(graph.root),
        "direction": "upstream" if graph.upstream else "downstream",
        "nodes": [{"id": str(n), "kind": n.kind.value, "depth": graph.depth[n]} for n in graph.nodes],
        "edges": [{"source": str(e.source), "target": str(e.target), "relation": e.relation.value,
                   "context": e.context, "timestamp": e.timestamp} for e in graph.edges],
    }


def to_dot(graph: Graph) -> str:
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];"]
    for node in graph.nodes:
        style = ', style="bold"' if node == graph.root else ""
        lines.append(f"  {json.dumps(str(node))} [label={json.dumps(_label(str(node)))}{style}];")
    for e in graph.edges:
        label = e.relation.value + (f" ({e.context})" if e.context else "")
        lines.append(f"  {json.dumps(str(e.source))} -> {json.dumps(str(e.target))} [label={json.dumps(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph) -> str:
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node, ident in ids.items():
        lines.append(f'  {ident}["{_mermaid_text(_label(str(node)))}"]')
    for e in graph.edges:
        label = e.relation.value + (f" ({e.context})" if e.context else "")
        lines.append(f"  {ids[e.source]} -->|{_mermaid_text(label)}| {ids[e.target]}")
    return "\n".join(lines) + "\n"


def _label(text: str) -> str:
    kind, _, ident = text.partition(":")
    if kind == "run" and len(ident) == 32:
        ident = ident[:8]
    return f"{kind}\n{ident}"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("|", "#124;").replace("\n", "<br/>")
