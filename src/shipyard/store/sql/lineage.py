"""LineageStore on SQL: edges between ``kind:id`` nodes, walked one level per query."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from shipyard.clock import now_ms
from shipyard.entities import Edge, Node, Relation
from shipyard.store.sql.database import Database
from shipyard.store.sql.id_lists import among, bound_ids
from shipyard.store.sql.tables import lineage_edges
from shipyard.store.sql.upsert import insert_new

# Nodes per IN list when walking a wide level of the graph.
_CHUNK = 500


@functools.cache
def _edges_at(dialect: str, upstream: bool) -> sa.Select[Any]:
    """The edges into (``upstream``) or out of the nodes ``:nodes``, built once per dialect: a
    search page asks for the edges of every run it returns, and building the statement cost
    more than running it."""
    column = lineage_edges.c.target if upstream else lineage_edges.c.source
    return (sa.select(lineage_edges.c.source, lineage_edges.c.target, lineage_edges.c.relation,
                      lineage_edges.c.context, lineage_edges.c.timestamp, lineage_edges.c.edge_id)
            .where(among(dialect, column, "nodes")))


def record_edges(conn: sa.Connection, edges: Sequence[Edge]) -> None:
    """Insert edges inside the caller's transaction, keeping any already recorded."""
    now = now_ms()
    rows = [{"source": str(e.source), "target": str(e.target), "relation": e.relation.value,
             "context": e.context[:256], "timestamp": e.timestamp or now} for e in edges]
    insert_new(conn, lineage_edges, rows, keys=("source", "target", "relation"))


def rename_nodes(conn: sa.Connection, old_prefix: str, new_prefix: str) -> None:
    """Point every edge at ``old_prefix...`` (e.g. ``model:churn/``) to ``new_prefix...``."""
    for column in (lineage_edges.c.source, lineage_edges.c.target):
        conn.execute(lineage_edges.update().where(sa.func.substr(column, 1, len(old_prefix)) == old_prefix)
                     .values({column.name: new_prefix + sa.func.substr(column, len(old_prefix) + 1)}))


class SqlLineageStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_edges(self, edges: Sequence[Edge]) -> None:
        with self._db.write() as conn:
            record_edges(conn, edges)

    def edges(self, nodes: Sequence[Node], *, upstream: bool) -> list[Edge]:
        keys = sorted({str(n) for n in nodes})
        rows: list[Any] = []
        with self._db.read() as conn:
            dialect = conn.dialect.name
            stmt = _edges_at(dialect, upstream)
            for start in range(0, len(keys), _CHUNK):
                rows += conn.execute(stmt, {"nodes": bound_ids(dialect, keys[start:start + _CHUNK])}).all()
        rows.sort(key=lambda r: r[5])
        return [Edge(Node.parse(source), Node.parse(target), Relation(relation), context, ts)
                for source, target, relation, context, ts, _ in rows]
