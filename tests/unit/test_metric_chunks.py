"""Metric histories in chunks (``metric_chunks``): one row per (run, key) and write, small chunks
appended to, and the same points read back whatever the way they were written."""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.entities import Metric
from shipyard.errors import NotFound
from shipyard.store.sql import SqlStore
from shipyard.store.sql.metric_rows import SMALL_CHUNK


@pytest.fixture(params=["sqlite", "postgresql"])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("own_postgres_uri"))


@pytest.fixture
def store(store_uri: str) -> Iterator[SqlStore]:
    s = SqlStore(store_uri)
    yield s
    s.close()


def _run(store: SqlStore) -> str:
    return store.runs.create(store.experiments.create("chunks").experiment_id, run_name="r", start_time=1).info.run_id


def _chunks(store: SqlStore, run_id: str) -> list[tuple[str, int]]:
    with store.db.read() as conn:
        return [(key, n) for key, n in conn.execute(sa.text(
            "SELECT key, n FROM metric_chunks WHERE run_id = :r ORDER BY id"), {"r": run_id})]


def test_a_batch_is_one_chunk_per_key(store: SqlStore) -> None:
    run_id = _run(store)
    store.metrics.log(run_id, [Metric(k, float(i), i, i) for i in range(1000) for k in ("a", "b")])
    assert _chunks(store, run_id) == [("a", 1000), ("b", 1000)]
    # The newest chunk of "a" is not small: a new one follows it; it is small: the next batch joins it.
    store.metrics.log(run_id, [Metric("a", 1.0, 5, 5)])
    store.metrics.log(run_id, [Metric("a", 2.0, 5, 5), Metric("a", 3.0, 4, 5), Metric("c", 0.0, 0, 0)])
    assert _chunks(store, run_id) == [("a", 1000), ("b", 1000), ("a", 3), ("c", 1)]
    history = store.metrics.history(run_id, "a")
    assert len(history) == 1003
    assert [(m.step, m.value) for m in history if m.step in (4, 5)] == [(4, 4.0), (4, 3.0), (5, 5.0), (5, 1.0),
                                                                        (5, 2.0)]


@pytest.mark.slow
def test_points_logged_one_per_call_read_back_in_few_chunks(store: SqlStore) -> None:
    # 20,000 on SQLite; PostgreSQL commits each call to disk, so fewer there (still many chunks).
    count = 20_000 if store.db.dialect == "sqlite" else 3_000
    run_id = _run(store)
    expected = []
    for i in range(count):
        # steps out of order now and then, duplicates, NaN and infinities
        m = Metric("loss", [1.0 / (i + 1), math.nan, math.inf, -math.inf][i % 4 if i % 97 == 0 else 0],
                   i - 5 * (i % 11 == 0), i // 3)
        store.metrics.log(run_id, [m])
        expected.append(m)
    expected.sort(key=lambda m: (m.step, m.timestamp))  # stable: ties in logged order
    chunks = _chunks(store, run_id)
    assert len(chunks) == math.ceil(count / SMALL_CHUNK)
    assert sum(n for _key, n in chunks) == count
    got = store.metrics.history(run_id, "loss")
    assert [(m.step, m.timestamp) for m in got] == [(m.step, m.timestamp) for m in expected]
    assert [repr(m.value) for m in got] == [repr(m.value) for m in expected]
    columns = store.metrics.history_columns(run_id, "loss")
    assert list(columns.steps) == [m.step for m in expected]
    assert [repr(v) for v in columns.values] == [repr(m.value) for m in expected]
    assert store.runs.get(run_id).data.latest_metrics["loss"] == max(expected, key=lambda m: (m.step, m.timestamp))


def test_any_nan_reads_as_nan_and_extremes_round_trip(store: SqlStore) -> None:
    run_id = _run(store)
    negative_nan = struct.unpack("<d", struct.pack("<Q", 0xFFF8000000000001))[0]
    logged = [Metric("m", negative_nan, 2**63 - 1, -(2**63)), Metric("m", 5e-324, -(2**63), 2**63 - 1),
              Metric("m", -0.0, 0, 0), Metric("m", 1.7976931348623157e308, 0, 0)]
    store.metrics.log(run_id, logged)
    columns = store.metrics.history_columns(run_id, "m")
    assert list(columns.steps) == [-(2**63), 0, 0, 2**63 - 1]
    assert list(columns.timestamps) == [2**63 - 1, 0, 0, -(2**63)]
    canonical = struct.pack("<d", float("nan"))
    assert struct.pack("<d", columns.values[3]) == canonical
    assert struct.pack("<d", store.metrics.history(run_id, "m")[3].value) == canonical
    assert [struct.pack("<d", v) for v in columns.values[:3]] == [struct.pack("<d", x)
                                                                  for x in (5e-324, -0.0, 1.7976931348623157e308)]
    assert store.metrics.history(run_id, "none") == []
    assert len(store.metrics.history_columns(run_id, "none")) == 0
    with pytest.raises(NotFound):
        store.metrics.history_columns("ghost", "m")


def test_concurrent_appends_to_one_small_chunk_lose_nothing(store_uri: str) -> None:
    setup = SqlStore(store_uri)
    run_id = _run(setup)
    setup.metrics.log(run_id, [Metric("m", 0.0, 0, 0)])  # a small chunk that both writers append to
    setup.close()
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        s = SqlStore(store_uri)
        try:
            for i in range(150):
                s.metrics.log(run_id, [Metric("m", float(offset + i), offset + i, 1)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (1_000, 2_000)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check = SqlStore(store_uri)
    try:
        steps = list(check.metrics.history_columns(run_id, "m").steps)
        assert steps == [0, *range(1_000, 1_150), *range(2_000, 2_150)]
        assert sum(n for _key, n in _chunks(check, run_id)) == 301
    finally:
        check.close()


def test_a_deleted_runs_chunks_go_with_it(store: SqlStore) -> None:
    run_id = _run(store)
    store.metrics.log(run_id, [Metric("m", 1.0, 0, 0)])
    store.runs.delete(run_id)
    assert [m.value for m in store.metrics.history(run_id, "m")] == [1.0]  # soft-deleted: still readable
    with store.db.write() as conn:
        conn.execute(sa.text("DELETE FROM runs WHERE run_id = :r"), {"r": run_id})
    assert _chunks(store, run_id) == []
