"""Metric histories in chunks: ``metric_chunks`` replaces ``metrics``.

``metrics`` held one row per point, so reading a history of 100,000 points was an index scan of
100,000 rows (15-18 ms of PostgreSQL's own time alone). ``metric_chunks`` holds one row per
(run, key) and write, its ``n`` points as three little-endian arrays (int64 steps, float64
values, int64 timestamps; NaN is the float NaN), in the order they were logged.

Each (run, key)'s rows move as one chunk, its points in (step, timestamp, id) order: the order
every read returns, so reads return the same points in the same order as before (a NULL value,
NaN as ``metrics`` stored it, becomes NaN). Then ``metrics`` is dropped. The downgrade moves the
points back, one row each, in the chunks' order.

Revision ID: 0015
Revises: 0014
"""

import sys
from array import array
from collections.abc import Iterator
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RUNS_PER_ROUND = 500  # runs whose points are moved per query: bounded memory, few round trips
_BIG_ENDIAN = sys.byteorder == "big"

_metrics = sa.table("metrics", sa.column("id"), sa.column("run_id"), sa.column("key"), sa.column("value"),
                    sa.column("step"), sa.column("timestamp"))
_chunks = sa.table("metric_chunks", sa.column("id"), sa.column("run_id"), sa.column("key"), sa.column("n"),
                   sa.column("steps"), sa.column("vals"), sa.column("timestamps"))


def _pack(typecode: str, items: list[Any]) -> bytes:
    packed = array(typecode, items)
    if _BIG_ENDIAN:
        packed.byteswap()
    return packed.tobytes()


def _unpack(typecode: str, data: bytes) -> array:  # type: ignore[type-arg]
    out = array(typecode)
    out.frombytes(data)
    if _BIG_ENDIAN:
        out.byteswap()
    return out


def _run_rounds(bind: sa.Connection, table: Any) -> Iterator[list[str]]:
    run_ids = list(bind.execute(sa.select(table.c.run_id).distinct().order_by(table.c.run_id)).scalars())
    for start in range(0, len(run_ids), _RUNS_PER_ROUND):
        yield run_ids[start:start + _RUNS_PER_ROUND]


def upgrade() -> None:
    op.create_table(
        "metric_chunks",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("steps", sa.LargeBinary, nullable=False),
        sa.Column("vals", sa.LargeBinary, nullable=False),
        sa.Column("timestamps", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_metric_chunks_run_key_id", "metric_chunks", ["run_id", "key", "id"])
    bind = op.get_bind()
    m = _metrics.c
    nan = float("nan")
    for run_ids in _run_rounds(bind, _metrics):
        points = bind.execute(sa.select(m.run_id, m.key, m.step, m.value, m.timestamp)
                              .where(m.run_id.in_(run_ids)).order_by(m.run_id, m.key, m.step, m.timestamp, m.id))
        rows = []
        for (run_id, key), group in groupby(points, key=lambda p: (p[0], p[1])):
            _r, _k, steps, values, stamps = zip(*group, strict=True)
            rows.append({"run_id": run_id, "key": key, "n": len(steps), "steps": _pack("q", list(steps)),
                         "vals": _pack("d", [nan if v is None else v for v in values]),
                         "timestamps": _pack("q", list(stamps))})
        if rows:
            bind.execute(_chunks.insert(), rows)
    op.drop_table("metrics")


def downgrade() -> None:
    op.create_table(
        "metrics",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id", ondelete="CASCADE"), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Double, nullable=True),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_metrics_run_key_step", "metrics", ["run_id", "key", "step"])
    bind = op.get_bind()
    c = _chunks.c
    for run_ids in _run_rounds(bind, _chunks):
        rows = []
        for run_id, key, steps, values, stamps in bind.execute(
                sa.select(c.run_id, c.key, c.steps, c.vals, c.timestamps).where(c.run_id.in_(run_ids))
                .order_by(c.run_id, c.key, c.id)):
            for step, value, stamp in zip(_unpack("q", steps), _unpack("d", values), _unpack("q", stamps),
                                          strict=True):
                rows.append({"run_id": run_id, "key": key, "value": None if value != value else value,
                             "step": step, "timestamp": stamp})
        if rows:
            bind.execute(_metrics.insert(), rows)
    op.drop_table("metric_chunks")
