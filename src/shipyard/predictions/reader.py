"""Reading the prediction log back: a time range of one deployment as a DataFrame, with feedback.

The serving app writes the log (:mod:`shipyard.predictions.writer`) as Parquet files under
``predictions/deployment=<name>/hour=<YYYY-MM-DDTHH>/`` in the artifact store, and ground truth
under ``feedback/`` the same way. :func:`read_predictions` lists the hour folders of a
deployment and reads only those that overlap the range asked for; feedback is joined on the
prediction id (the latest value sent for each). :func:`prediction_lineage` lets
``shipyard lineage explain prediction:<id>`` continue from a logged prediction to the model
version that answered it, without one lineage row per prediction in the database.

Domain code: the functions that take more than an artifact store take the
:class:`~shipyard.models.registry.RegistryService` (its store and artifact store), or a
``Client``, the SDK's spelling (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.clock import TimeLike, parse_time
from shipyard.entities import Edge, Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound
from shipyard.models.registry import HasRegistry, RegistryService, as_registry
from shipyard.predictions.format import (
    FEEDBACK_NAMESPACE,
    FEEDBACK_SCHEMA,
    HOUR_FORMAT,
    HOUR_MS,
    PREDICTION_SCHEMA,
    PREDICTIONS_NAMESPACE,
)

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.artifacts.protocol import ArtifactStore
    from shipyard.store.protocol import Store

__all__ = ["EXPORT_FORMATS", "Partition", "ResolvedNode", "export_predictions", "find_prediction", "list_partitions",
           "prediction_lineage", "prediction_table", "read_feedback", "read_predictions"]

EXPORT_FORMATS = ("parquet", "csv")
Progress = Callable[[int, int], None]  # (files read so far, files in all)

_READERS = 8


def _hour_start(text: str) -> int | None:
    try:
        return int(datetime.strptime(text, HOUR_FORMAT).replace(tzinfo=UTC).timestamp() * 1000)
    except ValueError:
        return None


# -- partitions ------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Partition:
    """One hour folder of one deployment's log."""

    namespace: str
    deployment: str
    hour_ms: int
    path: str  # deployment=<name>/hour=<YYYY-MM-DDTHH>


def list_partitions(artifacts: ArtifactStore, deployment: str | None = None, *, namespace: str = PREDICTIONS_NAMESPACE,
                    since: int | None = None, until: int | None = None) -> list[Partition]:
    """The hour folders of ``deployment`` (every deployment when None) that overlap
    ``[since, until)``, oldest first; no files are opened."""
    if deployment is None:
        folders = [e.path for e in _list(artifacts, namespace, "") if e.is_dir and e.path.startswith("deployment=")]
    else:
        folders = [f"deployment={deployment}"]
    found = []
    for folder in folders:
        name = folder.removeprefix("deployment=")
        for entry in _list(artifacts, namespace, folder):
            hour = _hour_start(entry.path.rpartition("/hour=")[2]) if entry.is_dir else None
            if hour is None:
                continue
            if (since is None or hour + HOUR_MS > since) and (until is None or hour < until):
                found.append(Partition(namespace, name, hour, entry.path))
    return sorted(found, key=lambda p: (p.hour_ms, p.deployment))


def _list(artifacts: ArtifactStore, namespace: str, path: str) -> list[Any]:
    try:
        return artifacts.list(namespace, path)
    except NotFound:
        return []


def _files(artifacts: ArtifactStore, partitions: Iterable[Partition]) -> list[tuple[str, str]]:
    return [(p.namespace, e.path) for p in partitions for e in _list(artifacts, p.namespace, p.path)
            if not e.is_dir and e.path.endswith(".parquet")]


def _read_file(artifacts: ArtifactStore, namespace: str, path: str, columns: Sequence[str] | None = None) -> pa.Table:
    with artifacts.open(namespace, path) as stream:
        data = stream.read()  # read to the end: the digest is verified then
    return pq.read_table(io.BytesIO(data), columns=list(columns) if columns else None)


def _read_all(artifacts: ArtifactStore, files: Sequence[tuple[str, str]], schema: pa.Schema,
              progress: Progress | None, columns: Sequence[str] | None = None) -> pa.Table:
    if progress is not None:
        progress(0, len(files))
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns], metadata=schema.metadata)
    tables = []
    with ThreadPoolExecutor(max_workers=min(_READERS, max(len(files), 1))) as pool:
        for done, table in enumerate(pool.map(lambda f: _read_file(artifacts, f[0], f[1], columns), files), start=1):
            tables.append(table)
            if progress is not None:
                progress(done, len(files))
    if not tables:
        return schema.empty_table()
    return pa.concat_tables([schema.empty_table(), *tables], promote_options="permissive")


def _in_range(table: pa.Table, since: int | None, until: int | None) -> pa.Table:
    times = table.column("time").cast(pa.int64())
    mask = None
    if since is not None:
        mask = pc.greater_equal(times, since)
    if until is not None:
        upper = pc.less(times, until)
        mask = upper if mask is None else pc.and_(mask, upper)
    return table if mask is None else table.filter(mask)


# -- reading ---------------------------------------------------------------------------------------------

def _require_known(store: Store, artifacts: ArtifactStore, deployment: str) -> None:
    """NotFound for a name that is neither a deployment nor has a log (a deleted deployment's log
    stays readable)."""
    try:
        store.deployments.get(deployment)
    except NotFound:
        if not _list(artifacts, PREDICTIONS_NAMESPACE, f"deployment={deployment}"):
            raise NotFound(f"no deployment named {deployment!r}, and no predictions logged under that name; "
                           "see: shipyard deploy list", deployment=deployment) from None


def read_feedback(registry: RegistryService | HasRegistry, deployment: str, since: TimeLike = None,
                  until: TimeLike = None, *, latest: bool = True) -> pd.DataFrame:
    """Ground truth sent for ``deployment`` in ``[since, until)`` (by the time it was sent):
    ``prediction_id``, ``time``, ``deployment``, ``value`` (JSON text); with ``latest`` only the
    newest row per prediction id."""
    start, end = parse_time(since), parse_time(until, field="until")
    table = _feedback_table(as_registry(registry).artifacts, deployment, start, end)
    frame = table.to_pandas()
    if latest:
        frame = frame.sort_values("time", kind="stable").drop_duplicates("prediction_id", keep="last")
    return frame.reset_index(drop=True)


def _feedback_table(artifacts: ArtifactStore, deployment: str, since: int | None, until: int | None) -> pa.Table:
    partitions = list_partitions(artifacts, deployment, namespace=FEEDBACK_NAMESPACE, since=since, until=until)
    return _in_range(_read_all(artifacts, _files(artifacts, partitions), FEEDBACK_SCHEMA, None), since, until)


def read_predictions(registry: RegistryService | HasRegistry, deployment: str, since: TimeLike = None,
                     until: TimeLike = None, *, with_feedback: bool = True, roles: Sequence[str] | None = None,
                     progress: Progress | None = None) -> pd.DataFrame:
    """The predictions ``deployment`` answered in ``[since, until)``, oldest first, as a DataFrame.

    ``since``/``until``: datetimes, milliseconds, durations back from now (``"1h"``) or ISO times;
    None is unbounded. Only the hour folders overlapping the range are read. Columns: those of
    the log (``prediction_id``, ``time`` (UTC), ``deployment``, ``model``, ``version``, ``role``,
    ``request_id``, ``latency_ms``, ``inputs`` and ``outputs`` as JSON text), then, with
    ``with_feedback``, ``feedback`` (JSON text of the latest value sent, or None) and
    ``feedback_time``. A shadow's answer is a row with role ``shadow`` and the caller's
    prediction id; ``roles=["primary", "canary"]`` leaves shadows out. ``progress(done, total)``
    is called as files are read. Raises ``NotFound`` for a name that is neither a deployment nor
    in the log."""
    service = as_registry(registry)
    _require_known(service.store, service.artifacts, deployment)
    start, end = parse_time(since), parse_time(until, field="until")
    return prediction_table(service.artifacts, deployment, start, end, with_feedback=with_feedback, roles=roles,
                            progress=progress).to_pandas()


def prediction_table(artifacts: ArtifactStore, deployment: str, since: int | None, until: int | None, *,
                     with_feedback: bool = True, roles: Sequence[str] | None = None,
                     columns: Sequence[str] | None = None, progress: Progress | None = None) -> pa.Table:
    """:func:`read_predictions` as an Arrow table, from an artifact store, for ``[since, until)`` in
    milliseconds (``None``: unbounded); no check that the deployment exists. ``columns`` reads only
    those columns of the log (``time``, ``prediction_id`` and ``role`` are always read)."""
    if columns is not None:
        columns = list(dict.fromkeys(["prediction_id", "time", "role", *columns]))
    files = _files(artifacts, list_partitions(artifacts, deployment, since=since, until=until))
    table = _in_range(_read_all(artifacts, files, PREDICTION_SCHEMA, progress, columns), since, until)
    if roles is not None:
        table = table.filter(pc.is_in(table.column("role"), pa.array(list(roles), pa.string())))
    table = table.sort_by([("time", "ascending"), ("prediction_id", "ascending")])
    if with_feedback:
        # Truth arrives after the prediction, so feedback from ``since`` on, with no upper bound.
        feedback = _feedback_table(artifacts, deployment, since, None)
        table = _join_feedback(table, feedback)
    return table


def _join_feedback(table: pa.Table, feedback: pa.Table) -> pa.Table:
    feedback = feedback.sort_by([("time", "ascending")])
    ids = feedback.column("prediction_id").to_pylist()
    last: dict[str, int] = {pid: i for i, pid in enumerate(ids)}  # the latest row wins
    latest = feedback.take(pa.array(list(last.values()), pa.int64())) if last else feedback
    index = pc.index_in(table.column("prediction_id"), value_set=latest.column("prediction_id"))
    return (table.append_column("feedback", latest.column("value").take(index))
                 .append_column("feedback_time", latest.column("time").take(index)))


def export_predictions(registry: RegistryService | HasRegistry, deployment: str, out: str | Path, *,
                       since: TimeLike = None, until: TimeLike = None, fmt: str = "parquet", with_feedback: bool = True,
                       progress: Progress | None = None) -> int:
    """Write :func:`read_predictions` to ``out`` as Parquet or CSV (times as ISO 8601 UTC); the
    number of rows. An empty range writes an empty file with every column (what a scheduled job
    reading it expects); the caller decides whether to warn. The file appears atomically."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", field="format")
    frame = read_predictions(registry, deployment, since, until, with_feedback=with_feedback, progress=progress)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp, compression="zstd")
        else:
            frame.to_csv(tmp, index=False, date_format="%Y-%m-%dT%H:%M:%S.%fZ")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return len(frame)


# -- lineage ---------------------------------------------------------------------------------------------

def find_prediction(artifacts: ArtifactStore, prediction_id: str, *,
                    deployment: str | None = None) -> list[dict[str, Any]]:
    """Every logged row of ``prediction_id`` (the answer, and any shadows'), searching hour folders
    newest first (of ``deployment`` only, when given) and reading only the id column until a
    file has it. An answering row (not a shadow) ends the search. Empty when not found."""
    found: list[dict[str, Any]] = []
    for partition in reversed(list_partitions(artifacts, deployment)):
        for namespace, path in _files(artifacts, [partition]):
            ids = _read_file(artifacts, namespace, path, ["prediction_id"]).column("prediction_id")
            if not pc.any(pc.equal(ids, prediction_id)).as_py():
                continue
            table = _read_file(artifacts, namespace, path)
            found += table.filter(pc.equal(table.column("prediction_id"), prediction_id)).to_pylist()
            if any(row["role"] != "shadow" for row in found):
                return found
    return found


@dataclass(frozen=True)
class ResolvedNode:
    """How a node the lineage store has no edges for joins the graph: ``edges`` lead from
    ``start`` (whose recorded upstream the walk continues from; None to stop) to the node, and
    ``records`` describe it (the logged prediction rows)."""

    edges: tuple[Edge, ...]
    start: Node | None
    records: tuple[dict[str, Any], ...] = ()


def prediction_lineage(registry: RegistryService | HasRegistry, node: Node) -> ResolvedNode:
    """``prediction:<id>`` (or ``prediction:<deployment>/<id>``, which searches one deployment's
    log only) joined to the graph: deployment -> prediction, model version -> deployment, and the
    walk continues from the model version. Raises ``NotFound`` when the log has no such id."""
    service = as_registry(registry)
    deployment, _, prediction_id = node.id.rpartition("/")
    rows = find_prediction(service.artifacts, prediction_id, deployment=deployment or None)
    if not rows:
        where = f"the log of deployment {deployment!r}" if deployment else "the prediction log"
        raise NotFound(f"prediction {prediction_id!r} is not in {where}", prediction_id=prediction_id)
    row = next((r for r in rows if r["role"] != "shadow"), rows[0])
    served = Node(NodeKind.DEPLOYMENT, row["deployment"])
    when = int(row["time"].timestamp() * 1000)
    edges = [Edge(served, node, Relation.PREDICTED, row["role"] or "", when)]
    version = str(row["version"] or "")
    start: Node | None = None
    if version.isdigit():
        start = Node(NodeKind.MODEL, f"{row['model']}/{version}")
        recorded = [e for e in service.store.lineage.edges([served], upstream=True)
                    if e.source == start and e.relation is Relation.DEPLOYED]
        edges.append(recorded[0] if recorded else Edge(start, served, Relation.DEPLOYED, "", when))
    elif re.fullmatch(r"[0-9a-f]{32}", version):  # a runs:/ model served outside a deployment
        start = Node(NodeKind.RUN, version)
        edges.append(Edge(start, served, Relation.DEPLOYED, "", when))
    return ResolvedNode(tuple(edges), start, tuple({**r, "time": r["time"].isoformat()} for r in rows))
