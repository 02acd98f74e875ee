"""Build the scale benchmark's corpora in Shipyard's own schema, by bulk SQL.

Writing a million runs through the SDK would take hours, so the rows of ``_scale_data`` are
loaded straight into the tables a fresh ``SqlStore`` created (its schema, its indexes): the
secondary indexes are dropped, the rows inserted in primary-key order (``executemany`` on SQLite,
``COPY`` on PostgreSQL), the indexes re-created from their own DDL, and planner statistics
gathered. The result is what the SDK would have written, less the system tags.

Corpora are cached: SQLite files under ``.bench/scale/``, PostgreSQL databases named
``shipyard_scale_<n>``; each carries its fingerprint (corpus version and schema revision) as an
experiment tag written last, so a half-built or outdated one is rebuilt.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path

import _scale_data as data
import sqlalchemy as sa

from shipyard.store.sql import SqlStore
from shipyard.store.sql.engine import normalize_url
from shipyard.store.sql.metric_rows import pack
from shipyard.store.sql.schema import HEAD_REVISION

EXPERIMENT = "scale"
HISTORY_EXPERIMENT = "scale-history"
FINGERPRINT_TAG = "bench.corpus"
CHUNK = 20_000  # runs per insert round
_LOADED = ("runs", "params", "run_tags", "metric_chunks", "latest_metrics")
HISTORY_CHUNK = 1_000  # points per chunk of the long history: as logged in batches of 1,000

Progress = Callable[[int, int], None]


def fingerprint() -> str:
    return f"v{data.CORPUS_VERSION}-schema{HEAD_REVISION}"


def _chunks(n: int) -> Iterator[list[data.RunRows]]:
    source = data.runs(n)
    while chunk := list(islice(source, CHUNK)):
        yield chunk


def _rows(chunk: list[data.RunRows], experiment_id: int) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {name: [] for name in _LOADED}
    for run in chunk:
        rid, start = run.run_id, run.start_time
        out["runs"].append((rid, experiment_id, run.name, "FINISHED", start, start + 500, "active", None,
                            "bench", "train.py", None))
        out["params"] += [(rid, k, v) for k, v in run.params]
        out["run_tags"] += [(rid, k, v) for k, v in run.tags]
        # One chunk of one point per metric: what one log_batch of the run writes.
        out["metric_chunks"] += [(rid, k, 1, pack("q", [0]), pack("d", [v]), pack("q", [start]))
                                 for k, v in run.metrics]
        out["latest_metrics"] += [(rid, k, v, 0, start) for k, v in run.metrics]
    return out


_COLUMNS = {
    "runs": "run_id, experiment_id, name, status, start_time, end_time, lifecycle_stage, parent_run_id, user_id, "
            "source, deleted_time",
    "params": "run_id, key, value",
    "run_tags": "run_id, key, value",
    "metric_chunks": "run_id, key, n, steps, vals, timestamps",
    "latest_metrics": "run_id, key, value, step, timestamp",
}


def _new_store(uri: str) -> tuple[int, int]:
    """A fresh store with the corpus experiment and the history experiment; their ids."""
    store = SqlStore(uri)
    try:
        return (int(store.experiments.create(EXPERIMENT).experiment_id),
                int(store.experiments.create(HISTORY_EXPERIMENT).experiment_id))
    finally:
        store.close()


def is_built(uri: str) -> bool:
    try:
        store = SqlStore(uri)
    except Exception:  # missing, older schema, unreachable: build it
        return False
    try:
        exp = store.experiments.get_by_name(EXPERIMENT)
        return exp is not None and exp.tags.get(FINGERPRINT_TAG) == fingerprint()
    finally:
        store.close()


def _finish(uri: str) -> None:
    store = SqlStore(uri)
    try:
        exp = store.experiments.get_by_name(EXPERIMENT)
        assert exp is not None
        store.experiments.set_tags(exp.experiment_id, {FINGERPRINT_TAG: fingerprint()})
    finally:
        store.close()


def _history_run(experiment_id: int) -> tuple[tuple, list[tuple], tuple]:
    """The run of query (d): its one long history in chunks of ``HISTORY_CHUNK`` points."""
    rid = "f" * 32
    points = list(data.history())
    chunks = []
    for start in range(0, len(points), HISTORY_CHUNK):
        steps, values, stamps = zip(*points[start:start + HISTORY_CHUNK], strict=True)
        chunks.append((rid, data.HISTORY_KEY, len(steps), pack("q", steps), pack("d", values), pack("q", stamps)))
    step, value, ts = points[-1]
    last = (rid, data.HISTORY_KEY, value, step, ts)
    run = (rid, experiment_id, "history", "FINISHED", data.BASE_TIME_MS, data.BASE_TIME_MS + 1, "active", None,
           "bench", "train.py", None)
    return run, chunks, last


# -- SQLite -----------------------------------------------------------------------------------


def sqlite_path(root: Path, n: int) -> Path:
    return root / f"shipyard-{n}-{fingerprint()}.db"


def build_sqlite(root: Path, n: int, progress: Progress) -> Path:
    path = sqlite_path(root, n)
    if path.exists() and is_built(f"sqlite:///{path}"):
        return path
    root.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    exp_id, hist_id = _new_store(f"sqlite:///{partial}")
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -262144")  # 256 MiB
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                           f"AND tbl_name IN ({', '.join('?' * len(_LOADED))})", _LOADED).fetchall()
    for name, _sql in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    done = 0
    for chunk in _chunks(n):
        rows = _rows(chunk, exp_id)
        conn.execute("BEGIN")
        for table in _LOADED:
            marks = ", ".join("?" * len(rows[table][0]))
            conn.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", rows[table])
        conn.execute("COMMIT")
        done += len(chunk)
        progress(done, n)
    run, chunks, last = _history_run(hist_id)
    conn.execute("BEGIN")
    conn.execute(f"INSERT INTO runs ({_COLUMNS['runs']}) VALUES ({', '.join('?' * 11)})", run)
    conn.executemany(f"INSERT INTO metric_chunks ({_COLUMNS['metric_chunks']}) VALUES (?, ?, ?, ?, ?, ?)", chunks)
    conn.execute(f"INSERT INTO latest_metrics ({_COLUMNS['latest_metrics']}) VALUES (?, ?, ?, ?, ?)", last)
    conn.execute("COMMIT")
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.close()
    _finish(f"sqlite:///{partial}")
    for suffix in ("-wal", "-shm"):
        Path(str(partial) + suffix).unlink(missing_ok=True)
    partial.replace(path)
    return path


# -- PostgreSQL -------------------------------------------------------------------------------


def postgres_uri(admin_uri: str, n: int) -> str:
    return admin_uri.rsplit("/", 1)[0] + f"/shipyard_scale_{n}"


def build_postgres(admin_uri: str, n: int, progress: Progress) -> str:
    uri = postgres_uri(admin_uri, n)
    if is_built(uri):
        return uri
    name = uri.rsplit("/", 1)[1]
    admin = sa.create_engine(normalize_url(admin_uri), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    exp_id, hist_id = _new_store(uri)
    engine = sa.create_engine(normalize_url(uri))
    with engine.begin() as sa_conn:
        raw = sa_conn.connection.dbapi_connection
        assert raw is not None
        with raw.cursor() as cur:
            cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                        "AND tablename = ANY(%s) AND indexname NOT LIKE %s", (list(_LOADED), "%pkey"))
            indexes = cur.fetchall()
            for index_name, _sql in indexes:
                cur.execute(f'DROP INDEX "{index_name}"')
            done = 0
            for chunk in _chunks(n):
                rows = _rows(chunk, exp_id)
                for table in _LOADED:
                    with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                        for row in rows[table]:
                            copy.write_row(row)
                done += len(chunk)
                progress(done, n)
            run, chunks, last = _history_run(hist_id)
            with cur.copy(f"COPY runs ({_COLUMNS['runs']}) FROM STDIN") as copy:
                copy.write_row(run)
            with cur.copy(f"COPY metric_chunks ({_COLUMNS['metric_chunks']}) FROM STDIN") as copy:
                for row in chunks:
                    copy.write_row(row)
            with cur.copy(f"COPY latest_metrics ({_COLUMNS['latest_metrics']}) FROM STDIN") as copy:
                copy.write_row(last)
            for _index_name, sql in indexes:
                cur.execute(sql)
    engine.dispose()
    vacuum = sa.create_engine(normalize_url(uri), isolation_level="AUTOCOMMIT")
    with vacuum.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    vacuum.dispose()
    _finish(uri)
    return uri


def timed_build(build: Callable[[], object]) -> float:
    start = time.perf_counter()
    build()
    return time.perf_counter() - start
