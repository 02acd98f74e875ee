"""``shipyard lineage``: where a model, run or dataset came from, and what was made from it."""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import RenderableType
from rich.text import Text
from rich.tree import Tree

from shipyard.cli import render
from shipyard.cli.context import JsonOption, client

if TYPE_CHECKING:
    from shipyard.entities import Node
    from shipyard.lineage.graph import Graph

app = typer.Typer(
    help="Walk the lineage graph: dataset → run → model version → deployment → prediction.\n\n"
         "REF is models:/NAME/VERSION, models:/NAME@ALIAS, a run id, dataset:NAME@VERSION, prediction:ID or any "
         "kind:id.\n\n"
         "Examples:\n"
         "  shipyard lineage show models:/churn@production\n"
         "  shipyard lineage show dataset:churn-train@3 --downstream\n"
         "  shipyard lineage show 3f2a... --format mermaid > lineage.md\n"
         "  shipyard lineage explain models:/churn/7\n"
         "  shipyard lineage explain prediction:9b1c...",
    no_args_is_help=True,
)

Ref = Annotated[str, typer.Argument(metavar="REF", show_default=False,
                                    help="models:/NAME/VERSION, models:/NAME@ALIAS, a run id, dataset:NAME@VERSION, "
                                         "prediction:ID.")]


class Format(enum.StrEnum):
    TREE = "tree"
    JSON = "json"
    DOT = "dot"
    MERMAID = "mermaid"


@app.command()
def show(
    ctx: typer.Context,
    ref: Ref,
    depth: Annotated[int, typer.Option("--depth", "-d", min=1, max=100, help="How many steps to walk.")] = 100,
    downstream: Annotated[bool, typer.Option("--downstream", help="What was made from REF, instead of "
                                             "what REF was made from.")] = False,
    fmt: Annotated[Format, typer.Option("--format", "-f", case_sensitive=False,
                                        help="tree (for people), json, dot (Graphviz) or mermaid.")] = Format.TREE,
) -> None:
    """Show the lineage of REF with what each step recorded: dataset digests, each run's code commit
    (and uncommitted changes), params and environment, model versions. As a tree, or as JSON, DOT or
    Mermaid for other tools."""
    from shipyard.lineage import formats
    from shipyard.lineage.explain import describe, explain_ref
    from shipyard.lineage.graph import walk

    registry = client(ctx).registry
    if downstream:
        found = describe(walk(registry, ref, upstream=False, depth=depth), registry)
    else:  # resolves prediction:<id> through the prediction log
        found = explain_ref(registry, ref, depth=depth)
    if fmt is Format.JSON:
        render.print_json(formats.to_json(found.graph, found))
    elif fmt is Format.DOT:
        sys.stdout.write(formats.to_dot(found.graph, found))
    elif fmt is Format.MERMAID:
        sys.stdout.write(formats.to_mermaid(found.graph, found))
    else:
        render.show(_tree(found.graph, formats.node_facts(found)))


@app.command()
def explain(ctx: typer.Context, ref: Ref, as_json: JsonOption = False) -> None:
    """Trace REF back to its raw data digests, code commit, params, seed and packages."""
    from shipyard.lineage import explain as explain_ref

    found = explain_ref(ref, client=client(ctx))
    if as_json:
        render.print_json(found)
        return
    parts: list[RenderableType] = [_tree(found.graph)]
    for p in found.records:  # a logged prediction: what answered it, and how
        table = render.make_table("", "", title=f"Prediction {p['prediction_id']} ({p['role']})")
        table.show_header = False
        latency = render.MISSING if p["latency_ms"] is None else f"{p['latency_ms']:.2f} ms"
        for label, value in (("Deployment", p["deployment"]), ("Model", f"{p['model']} version {p['version']}"),
                             ("Time", p["time"]), ("Latency", latency),
                             ("Request", p["request_id"] or render.MISSING), ("Outputs", p["outputs"])):
            table.add_row(Text(label, style="bold"), value)
        parts.append(table)
    for d in found.datasets:
        table = render.make_table("", "", title=f"Dataset {d.ref}")
        table.show_header = False
        for label, value in (("Digest", d.digest), ("Source", d.source), ("Kind", d.kind),
                             ("Rows", render.format_number(d.num_rows) if d.num_rows is not None else render.MISSING),
                             ("Snapshot", d.snapshot_uri or "none (the source is verified by digest when used)")):
            table.add_row(Text(label, style="bold"), value)
        parts.append(table)
    for r in found.runs:
        table = render.make_table("", "", title=f"Run {r.run_id} ({r.run_name})")
        table.show_header = False
        commit = r.commit or "not recorded"
        if r.dirty:
            commit += " + uncommitted changes" + (" (diff stored)" if r.diff else "")
        for label, value in (("Code", commit), ("Entry point", r.entry_point or render.MISSING),
                             ("Seed", r.seed or "not recorded"),
                             ("Inputs", ", ".join(f"{ref} ({ctx})" if ctx else ref for ref, ctx in r.inputs)
                              or "none recorded"),
                             ("Params", ", ".join(f"{k}={v}" for k, v in sorted(r.params.items())) or render.MISSING),
                             ("Packages", f"{len(r.packages)} recorded" if r.packages else "not recorded")):
            table.add_row(Text(label, style="bold"), value)
        parts.append(table)
    notes = [f"missing from the store now: {', '.join(found.missing)}"] if found.missing else []
    render.show(render.with_notes(render.stack(*parts), *notes))


def _tree(graph: Graph, facts: dict[Node, list[str]] | None = None) -> Tree:
    """The walk as a tree; ``facts``: lines to show under each node (``formats.node_facts``)."""
    arrow = "←" if graph.upstream else "→"
    facts = facts or {}

    def with_facts(label: Text, node: Node) -> Text:
        for line in facts.get(node, ()):
            label.append("\n" + line, style="dim")
        return label

    tree = Tree(with_facts(Text(str(graph.root), style="bold"), graph.root))
    seen = {graph.root}

    def grow(branch: Tree, node: Node) -> None:
        for edge in graph.children(node):
            nxt = edge.source if graph.upstream else edge.target
            label = Text.assemble((f"{arrow} {edge.relation.value}", "dim"),
                                  (f" ({edge.context})" if edge.context else "", "dim"), " ", str(nxt))
            if nxt in seen:
                branch.add(label + Text(" (shown above)", style="dim"))
                continue
            seen.add(nxt)
            grow(branch.add(with_facts(label, nxt)), nxt)

    grow(tree, graph.root)
    return tree
