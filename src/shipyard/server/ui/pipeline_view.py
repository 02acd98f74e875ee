"""A pipeline run's steps for the UI: one row per step run, and the steps drawn as a DAG in plain
SVG (no script), each node coloured by how the step ended and linking to the step's run.

The graph is what the runner recorded, not the code as it is now: the calls and their dependencies
in the pipeline run's graph tag (:func:`~shipyard.pipelines.records.read_graph`), each call drawn from
its step run (the latest attempt, as a resumed run has its failed attempt and its retry both) or, when
it never started (a step upstream failed), as a named "not run" node. A run from before the graph was
recorded falls back to its step runs and the ``step`` lineage edges between them, with the calls that
never started counted from the pipeline's step total and drawn as one "not run" node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from shipyard.entities import Node, NodeKind, Relation, Run
from shipyard.pipelines.execute import ATTEMPTS_TAG, ERROR_TAG
from shipyard.pipelines.records import CACHED_FROM_TAG, GATE_EXPR_TAG, GATE_TAG, STEP_TAG, status_of
from shipyard.store.protocol import Store
from shipyard.text import shorten

__all__ = ["DagDrawing", "StepRow", "counts", "dag", "step_rows"]

NODE_WIDTH = 180
NODE_HEIGHT = 46
COLUMN_GAP = 70
ROW_GAP = 18
MARGIN = 16
LABEL_CHARS = 22
ARC = 40  # room above the nodes for an edge that skips a column (drawn over the nodes between, not through them)
ERROR_CHARS = 300
# status_of's words, grouped into the four colours of the drawing
STATUS_CLASS = {"executed": "executed", "cached": "cached", "resumed": "cached", "failed": "failed",
                "killed": "failed", "running": "running", "scheduled": "running"}


@dataclass(frozen=True)
class StepRow:
    run: Run
    call: str
    status: str  # executed | cached | resumed | failed | running | killed
    attempts: str
    cached_from: str | None
    gate: str  # "passed", "failed" or "" (no gate)
    gate_expr: str
    error: str

    @property
    def status_class(self) -> str:
        return STATUS_CLASS.get(self.status, "not-run")


@dataclass(frozen=True)
class DagNode:
    call: str
    status: str
    status_class: str
    href: str | None
    x: int
    y: int
    title: str
    subtitle: str


@dataclass(frozen=True)
class DagDrawing:
    width: int
    height: int
    nodes: list[DagNode]
    edges: list[str]  # SVG paths


def step_rows(runs: Sequence[Run]) -> list[StepRow]:
    """A row per step run, in the order they started (from :func:`~shipyard.pipelines.records.step_runs`)."""
    rows = []
    for run in runs:
        tags = run.data.tags
        error = tags.get(ERROR_TAG, "")
        rows.append(StepRow(run, tags.get(STEP_TAG, run.info.run_name), status_of(run), tags.get(ATTEMPTS_TAG, ""),
                            tags.get(CACHED_FROM_TAG), _gate(tags.get(GATE_TAG)), tags.get(GATE_EXPR_TAG, ""),
                            shorten(error, ERROR_CHARS)))
    return rows


def _gate(value: str | None) -> str:
    return value if value in ("passed", "failed") else ""


def counts(rows: Sequence[StepRow]) -> dict[str, int]:
    """How many calls ended executed, cached and failed (the latest attempt of each call counts)."""
    found = {"executed": 0, "cached": 0, "failed": 0}
    for row in {r.call: r for r in rows}.values():
        if row.status_class in found:
            found[row.status_class] += 1
    return found


def dag(store: Store, rows: Sequence[StepRow], total_steps: int,
        graph: Mapping[str, Sequence[str]] | None = None) -> DagDrawing:
    """The drawing of the pipeline run whose step runs are ``rows``; ``total_steps`` is the number of calls in
    its graph (the pipeline run's ``shipyard.pipeline.steps`` tag) and ``graph`` the graph it recorded, if any
    (each call id with the call ids it depends on)."""
    latest = {r.call: r for r in rows}  # later attempts replace earlier ones
    if graph is not None:
        return _layout(latest, list(graph) + [c for c in latest if c not in graph],
                       {(u, c) for c, ups in graph.items() for u in ups if u in graph}, 0)
    call_of = {r.run.info.run_id: r.call for r in rows}
    for r in rows:  # a cache hit's consumers read the outputs of the run it names, so edges start there
        if r.cached_from:
            call_of.setdefault(r.cached_from, r.call)
    links: set[tuple[str, str]] = set()
    if rows:
        nodes = [Node(NodeKind.RUN, r.run.info.run_id) for r in rows]
        for edge in store.lineage.edges(nodes, upstream=True):
            source, target = call_of.get(edge.source.id), call_of.get(edge.target.id)
            # a hit's edge from its origin, or a retry's from its failed attempt, links a call to itself: no arrow
            if edge.relation is Relation.STEP and source and target and source != target:
                links.add((source, target))
    return _layout(latest, list(latest), links, max(0, total_steps - len(latest)))


def _layout(latest: Mapping[str, StepRow], calls: Sequence[str], links: set[tuple[str, str]],
            not_run: int) -> DagDrawing:
    """A call without a row is a named "not run" node; ``not_run`` more calls (unnamed, from a run that recorded
    no graph) are one node after the rest."""
    depth = dict.fromkeys(calls, 0)
    for _ in range(len(calls)):  # longest path from a source; a (never recorded) cycle just stops growing
        changed = False
        for source, target in links:
            if depth[target] < depth[source] + 1 <= len(calls):
                depth[target] = depth[source] + 1
                changed = True
        if not changed:
            break
    columns: dict[int, list[str]] = {}
    for call in calls:
        columns.setdefault(depth[call], []).append(call)
    if not_run:
        columns.setdefault(max(depth.values(), default=-1) + 1, []).append("")
    tallest = max((len(c) for c in columns.values()), default=1)
    skips = any(depth[target] - depth[source] > 1 for source, target in links)
    body = tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP
    height = MARGIN * 2 + body + (ARC if skips else 0)
    width = MARGIN * 2 + len(columns) * NODE_WIDTH + max(0, len(columns) - 1) * COLUMN_GAP
    place: dict[str, tuple[int, int]] = {}
    drawn = []
    for index, (_, column) in enumerate(sorted(columns.items())):
        top = height - MARGIN - body + (body - len(column) * NODE_HEIGHT - (len(column) - 1) * ROW_GAP) // 2
        for row_index, call in enumerate(column):
            x, y = MARGIN + index * (NODE_WIDTH + COLUMN_GAP), top + row_index * (NODE_HEIGHT + ROW_GAP)
            if not call:
                drawn.append(DagNode("", "not run", "not-run", None, x, y,
                                     f"{not_run} step{'s' if not_run != 1 else ''}", "not run"))
                continue
            place[call] = (x, y)
            row = latest.get(call)
            if row is None:
                drawn.append(DagNode(call, "not run", "not-run", None, x, y, shorten(call, LABEL_CHARS), "not run"))
                continue
            drawn.append(DagNode(call, row.status, row.status_class, f"/ui/runs/{quote(row.run.info.run_id, safe='')}",
                                 x, y, shorten(call, LABEL_CHARS), row.status))
    edges = []
    for source, target in sorted(links):
        (sx, sy), (tx, ty) = place[source], place[target]
        if depth[target] - depth[source] > 1:  # from the top of one node over the columns between to the other's
            x1, y1, x2, y2 = sx + NODE_WIDTH // 2, sy, tx + NODE_WIDTH // 2, ty
            lift = min(y1, y2) - MARGIN - ARC
            edges.append(f"M{x1},{y1} C{x1},{lift} {x2},{lift} {x2},{y2}")
            continue
        x1, y1, x2, y2 = sx + NODE_WIDTH, sy + NODE_HEIGHT // 2, tx, ty + NODE_HEIGHT // 2
        middle = (x1 + x2) // 2
        edges.append(f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}")
    return DagDrawing(width, height, drawn, edges)
