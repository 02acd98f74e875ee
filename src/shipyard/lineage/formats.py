"""The lineage graph as text other tools read: JSON, Graphviz DOT, Mermaid.

Each takes the walk and, optionally, what :func:`~shipyard.lineage.explain.describe` read about
its nodes; with it, every dataset carries its digest and every run its code commit (and dirty
flag), params and environment, so one view answers "what made this" without a second command.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.entities import Node, NodeKind
from shipyard.lineage.explain import Explanation, RunRecord
from shipyard.lineage.graph import Graph

# Text formats are read by people: a run with hundreds of params lists the first ones and says
# how many more the JSON format holds.
MAX_PARAMS_SHOWN = 20


def to_json(graph: Graph, found: Explanation | None = None) -> dict[str, Any]:
    details = node_details(found) if found is not None else {}
    nodes = []
    for n in graph.nodes:
        node: dict[str, Any] = {"id": str(n), "kind": n.kind.value, "depth": graph.depth[n]}
        if n in details:
            node["details"] = details[n]
        nodes.append(node)
    out: dict[str, Any] = {
        "root": str(graph.root),
        "direction": "upstream" if graph.upstream else "downstream",
        "nodes": nodes,
        "edges": [{"source": str(e.source), "target": str(e.target), "relation": e.relation.value,
                   "context": e.context, "timestamp": e.timestamp} for e in graph.edges],
    }
    if found is not None:
        out["missing"] = list(found.missing)
        if found.records:
            out["records"] = found.records
    return out


def to_dot(graph: Graph, found: Explanation | None = None) -> str:
    facts = node_facts(found) if found is not None else {}
    lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=\"Helvetica\"];"]
    for node in graph.nodes:
        style = ', style="bold"' if node == graph.root else ""
        label = "\n".join([_label(str(node)), *facts.get(node, ())])
        lines.append(f"  {_dot(str(node))} [label={_dot(label)}{style}];")
    for e in graph.edges:
        label = e.relation.value + (f" ({e.context})" if e.context else "")
        lines.append(f"  {_dot(str(e.source))} -> {_dot(str(e.target))} [label={_dot(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(graph: Graph, found: Explanation | None = None) -> str:
    facts = node_facts(found) if found is not None else {}
    ids = {node: f"n{i}" for i, node in enumerate(graph.nodes)}
    lines = ["flowchart LR"]
    for node, ident in ids.items():
        label = "\n".join([_label(str(node)), *facts.get(node, ())])
        lines.append(f'  {ident}["{_mermaid_text(label)}"]')
    for e in graph.edges:
        label = e.relation.value + (f" ({e.context})" if e.context else "")
        lines.append(f"  {ids[e.source]} -->|{_mermaid_text(label)}| {ids[e.target]}")
    return "\n".join(lines) + "\n"


def node_details(found: Explanation) -> dict[Node, dict[str, Any]]:
    """What was recorded about each node, as JSON values (metrics may hold NaN: render with a
    serializer that maps it, such as the CLI's)."""
    out: dict[Node, dict[str, Any]] = {}
    for d in found.datasets:
        out[Node(NodeKind.DATASET, d.ref)] = {
            "name": d.name, "version": d.version, "digest": d.digest, "source": d.source, "kind": d.kind,
            "num_rows": d.num_rows, "size_bytes": d.size_bytes, "snapshot_uri": d.snapshot_uri}
    for r in found.runs:
        out[Node(NodeKind.RUN, r.run_id)] = {
            "name": r.run_name, "experiment_id": r.experiment_id, "status": r.status, "commit": r.commit,
            "dirty": r.dirty, "diff_stored": r.diff is not None, "entry_point": r.entry_point, "seed": r.seed,
            "params": dict(r.params), "metrics": dict(r.metrics),
            "environment": {**r.environment, "packages": r.packages}}
    for m in found.models:
        out[Node(NodeKind.MODEL, f"{m.name}/{m.version}")] = {
            "name": m.name, "version": m.version, "source": m.source, "run_id": m.run_id,
            "status": m.status.value, "aliases": list(m.aliases)}
    for ref in found.missing:
        out[Node.parse(ref)] = {"missing": True}
    return out


def node_facts(found: Explanation) -> dict[Node, list[str]]:
    """The same records as short lines for people (tree, DOT and Mermaid labels)."""
    out: dict[Node, list[str]] = {}
    for d in found.datasets:
        rows = [] if d.num_rows is None else [f"rows {d.num_rows:,}"]
        out[Node(NodeKind.DATASET, d.ref)] = [f"digest {d.digest}", *rows]
    for r in found.runs:
        out[Node(NodeKind.RUN, r.run_id)] = _run_facts(r)
    for m in found.models:
        aliases = f", aliases {', '.join(m.aliases)}" if m.aliases else ""
        out[Node(NodeKind.MODEL, f"{m.name}/{m.version}")] = [f"status {m.status.value}{aliases}"]
    for ref in found.missing:
        out[Node.parse(ref)] = ["missing from the store now"]
    return out


def _run_facts(r: RunRecord) -> list[str]:
    code = f"code {r.commit}" if r.commit else "code commit not recorded"
    if r.dirty:
        code += " + uncommitted changes" + (" (diff stored)" if r.diff else "")
    lines = [code]
    if r.params:
        shown = sorted(r.params.items())[:MAX_PARAMS_SHOWN]
        more = len(r.params) - len(shown)
        lines.append("params " + ", ".join(f"{k}={v}" for k, v in shown)
                     + (f" (+{more} more in --format json)" if more else ""))
    else:
        lines.append("params none")
    env = " on ".join(r.environment[k] if k != "python" else f"Python {r.environment[k]}"
                      for k in ("python", "platform") if k in r.environment)
    if r.packages:
        env += (", " if env else "") + f"{len(r.packages)} packages"
    lines.append("environment " + (env or "not recorded"))
    return lines


def _label(text: str) -> str:
    kind, _, ident = text.partition(":")
    if kind == "run" and len(ident) == 32:
        ident = ident[:8]
    return f"{kind}\n{ident}"


def _dot(text: str) -> str:
    # A JSON string is a valid DOT quoted string; DOT has no \\uXXXX escape, so keep non-ASCII as is.
    return json.dumps(text, ensure_ascii=False)


def _mermaid_text(text: str) -> str:
    # Mermaid labels are HTML: '<' in a param value must not open a tag.
    return (text.replace("#", "#35;").replace('"', "#quot;").replace("|", "#124;").replace("<", "#lt;")
            .replace(">", "#gt;").replace("\n", "<br/>"))
