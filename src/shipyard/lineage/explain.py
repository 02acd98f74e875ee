"""``explain``: where a model version, run or dataset version came from, back to raw data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shipyard.entities import DatasetVersion, Edge, ModelVersion, Node, NodeKind, Relation
from shipyard.errors import NotFound
from shipyard.lineage.graph import MAX_DEPTH, Graph, upstream

if TYPE_CHECKING:
    from shipyard.tracking.client import Client


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


@dataclass(frozen=True)
class Explanation:
    """The chain behind ``root``: the walk itself, and the records of what it reached."""

    root: Node
    graph: Graph
    runs: list[RunRecord] = field(default_factory=list)
    datasets: list[DatasetVersion] = field(default_factory=list)
    models: list[ModelVersion] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # nodes the graph names but the store no longer has

    @property
    def data_digests(self) -> dict[str, str]:
        return {d.ref: d.digest for d in self.datasets}


def explain(ref: str | Node, *, depth: int = MAX_DEPTH, with_files: bool = True,
            client: Client | None = None) -> Explanation:
    """Walk upstream from ``ref`` (``models:/churn@production``, ``run:<id>``, ``dataset:train@3``...)
    and read every run, dataset version and model version met. ``with_files`` also reads each
    run's package list and uncommitted diff. ``client``: the fluent SDK's, unless given."""
    from shipyard.lineage.graph import _default_client

    client = client or _default_client()
    graph = upstream(ref, depth=depth, client=client)
    runs: list[RunRecord] = []
    datasets: list[DatasetVersion] = []
    models: list[ModelVersion] = []
    missing: list[str] = []
    for node in graph.nodes:
        try:
            if node.kind is NodeKind.RUN:
                runs.append(_run_record(client, node.id, graph.edges, with_files))
            elif node.kind is NodeKind.DATASET:
                name, _, version = node.id.rpartition("@")
                datasets.append(client.store.datasets.get_version(name, int(version)))
            elif node.kind is NodeKind.MODEL:
                name, _, version = node.id.rpartition("/")
                models.append(client.store.models.get_version(name, int(version)))
        except NotFound:
            missing.append(str(node))
    return Explanation(graph.root, graph, runs, datasets, models, missing)


def _run_record(client: Client, run_id: str, edges: tuple[Edge, ...], with_files: bool) -> RunRecord:
    from shipyard.tracking.capture import DIFF_ARTIFACT, REQUIREMENTS_ARTIFACT

    run = client.store.runs.get(run_id)
    tags = run.data.tags
    target = Node(NodeKind.RUN, run_id)
    inputs = [(e.source.id, e.context) for e in edges if e.target == target and e.relation is Relation.INPUT]
    dirty = tags.get("shipyard.git.dirty")
    packages = diff = None
    if with_files:
        text = _read_text(client, run_id, REQUIREMENTS_ARTIFACT)
        packages = None if text is None else [line for line in text.splitlines() if line.strip()]
        diff = _read_text(client, run_id, DIFF_ARTIFACT) if dirty == "true" else None
    return RunRecord(run_id, run.info.run_name, run.info.experiment_id, run.info.status.value,
                     tags.get("shipyard.git.commit"), None if dirty is None else dirty == "true",
                     tags.get("shipyard.source.entry_point"), tags.get("shipyard.seed"), dict(run.data.params),
                     dict(run.data.metrics), inputs, packages, diff)


def _read_text(client: Client, run_id: str, path: str) -> str | None:
    try:
        with client.artifacts.open(run_id, path) as stream:
            return stream.read().decode("utf-8", errors="replace")
    except NotFound:
        return None
