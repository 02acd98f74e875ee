"""``explain``: where a model version, run, dataset version or logged prediction came from, back to raw data.

Domain code: every function takes the :class:`~shipyard.models.registry.RegistryService` (its
store and artifact store), or a ``Client``, the SDK's spelling
(:func:`~shipyard.models.registry.as_registry`). ``shipyard.lineage.explain(ref)``
(:mod:`shipyard.lineage.sdk`) defaults to the fluent SDK's client.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.entities import DatasetVersion, Edge, ModelVersion, Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound
from shipyard.lineage.graph import MAX_DEPTH, Graph, parse_ref, walk
from shipyard.models.registry import HasRegistry, RegistryService, as_registry

if TYPE_CHECKING:
    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.store.protocol import Store


@dataclass(frozen=True)
class RunRecord:
    """What a run recorded that makes it reproducible."""

    run_id: str
    run_name: str
    experiment_id: str
    status: str
    commit: str | None
    dirty: bool | None
    entry_point: str | None
    seed: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    inputs: list[tuple[str, str]] = field(default_factory=list)  # (dataset ref, context)
    packages: list[str] | None = None  # the run's installed packages, when captured
    diff: str | None = None  # the uncommitted diff, when the tree was dirty
    environment: dict[str, str] = field(default_factory=dict)  # shipyard.env.* tags: python, platform, hostname


@dataclass(frozen=True)
class Explanation:
    """The chain behind ``root``: the walk itself, and the records of what it reached."""

    root: Node
    graph: Graph
    runs: list[RunRecord] = field(default_factory=list)
    datasets: list[DatasetVersion] = field(default_factory=list)
    models: list[ModelVersion] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # nodes the graph names but the store no longer has
    records: list[dict[str, Any]] = field(default_factory=list)  # what a resolver found (logged prediction rows)

    @property
    def data_digests(self) -> dict[str, str]:
        return {d.ref: d.digest for d in self.datasets}


def explain_ref(registry: RegistryService | HasRegistry, ref: str | Node, *, depth: int = MAX_DEPTH,
                with_files: bool = True) -> Explanation:
    """Walk upstream from ``ref`` (``models:/churn@production``, ``run:<id>``, ``dataset:train@3``...)
    and read every run, dataset version and model version met. ``with_files`` also reads each
    run's package list and uncommitted diff."""
    service = as_registry(registry)
    graph, records = _resolved_upstream(service, ref, depth)
    return describe(graph, service, with_files=with_files, records=records)


def describe(graph: Graph, registry: RegistryService | HasRegistry, *, with_files: bool = True,
             records: list[dict[str, Any]] | None = None) -> Explanation:
    """Read the records behind every node of ``graph``, a walk in either direction: each run's
    commit, params, seed and environment, each dataset version's digest, each model version.
    ``records``: what a resolver found for the root (see :func:`explain_ref`)."""
    service = as_registry(registry)
    store = service.store
    runs: list[RunRecord] = []
    datasets: list[DatasetVersion] = []
    models: list[ModelVersion] = []
    missing: list[str] = []
    for node in graph.nodes:
        try:
            if node.kind is NodeKind.RUN:
                runs.append(_run_record(store, service.artifacts, node.id, graph.edges, with_files))
            elif node.kind is NodeKind.DATASET:
                name, _, version = node.id.rpartition("@")
                datasets.append(store.datasets.get_version(name, int(version)))
            elif node.kind is NodeKind.MODEL:
                name, _, version = node.id.rpartition("/")
                models.append(store.models.get_version(name, int(version)))
        except NotFound:
            missing.append(str(node))
    return Explanation(graph.root, graph, runs, datasets, models, missing, list(records or []))


# Nodes too many to record an edge each: kind -> "module:function(registry, node)" returning how the
# node joins the graph (a ``shipyard.predictions.reader.ResolvedNode``); imported on first use.
_RESOLVERS: dict[NodeKind, str] = {
    NodeKind.PREDICTION: "shipyard.predictions.reader:prediction_lineage",
}


def resolved_upstream(registry: RegistryService | HasRegistry, ref: str | Node, *, depth: int = MAX_DEPTH) -> Graph:
    """Like :func:`~shipyard.lineage.graph.walk` upstream, and for a node with no recorded edges
    whose kind has a resolver (``prediction:<id>``), the resolver's edges then the walk from where
    it leads (the model version that answered the prediction)."""
    return _resolved_upstream(as_registry(registry), ref, depth)[0]


def _resolved_upstream(registry: RegistryService, ref: str | Node, depth: int) -> tuple[Graph, list[dict[str, Any]]]:
    root = parse_ref(registry, ref)
    target = _RESOLVERS.get(root.kind)
    if target is None or registry.store.lineage.edges([root], upstream=True):
        return walk(registry, root, upstream=True, depth=depth), []
    if not isinstance(depth, int) or isinstance(depth, bool) or not 1 <= depth <= MAX_DEPTH:
        raise InvalidInput(f"depth must be a whole number from 1 to {MAX_DEPTH}, got {depth!r}")
    module, _, name = target.partition(":")
    resolved = getattr(importlib.import_module(module), name)(registry, root)
    depths = {root: 0}
    edges = []
    for edge in resolved.edges:  # a chain from ``start`` up to ``root``, root side first
        distance = depths.get(edge.target, 0) + 1
        if distance <= depth:
            depths.setdefault(edge.source, distance)
            edges.append(edge)
    start = resolved.start
    if start is not None and depths.get(start, depth) < depth:
        try:
            rest = walk(registry, start, upstream=True, depth=depth - depths[start])
        except NotFound:  # the version was deleted since: explain lists it as missing
            rest = None
        if rest is not None:
            edges += [e for e in rest.edges if e not in edges]
            for node, distance in rest.depth.items():
                depths[node] = min(depths.get(node, distance + depths[start]), distance + depths[start])
    return Graph(root, True, tuple(edges), depths), [dict(r) for r in resolved.records]


_ENV_TAG = "shipyard.env."  # written by tracking.capture: python, platform, hostname


def _run_record(store: Store, artifacts: ArtifactStore, run_id: str, edges: tuple[Edge, ...],
                with_files: bool) -> RunRecord:
    from shipyard.tracking.capture import DIFF_ARTIFACT, REQUIREMENTS_ARTIFACT

    run = store.runs.get(run_id)
    tags = run.data.tags
    target = Node(NodeKind.RUN, run_id)
    inputs = [(e.source.id, e.context) for e in edges if e.target == target and e.relation is Relation.INPUT]
    dirty = tags.get("shipyard.git.dirty")
    packages = diff = None
    if with_files:
        text = _read_text(artifacts, run_id, REQUIREMENTS_ARTIFACT)
        packages = None if text is None else [line for line in text.splitlines() if line.strip()]
        diff = _read_text(artifacts, run_id, DIFF_ARTIFACT) if dirty == "true" else None
    return RunRecord(run_id, run.info.run_name, run.info.experiment_id, run.info.status.value,
                     tags.get("shipyard.git.commit"), None if dirty is None else dirty == "true",
                     tags.get("shipyard.source.entry_point"), tags.get("shipyard.seed"), dict(run.data.params),
                     dict(run.data.metrics), inputs, packages, diff,
                     {k.removeprefix(_ENV_TAG): v for k, v in sorted(tags.items()) if k.startswith(_ENV_TAG)})


def _read_text(artifacts: ArtifactStore, run_id: str, path: str) -> str | None:
    try:
        with artifacts.open(run_id, path) as stream:
            return stream.read().decode("utf-8", errors="replace")
    except NotFound:
        return None
