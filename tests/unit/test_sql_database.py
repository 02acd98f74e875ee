"""The SQL store around search: planner statistics kept, the garbage collector left as found."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

import pytest

from shipyard.entities import RunQuery
from shipyard.store.sql import SqlStore


def _stat_tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT DISTINCT tbl FROM sqlite_stat1").fetchall() if conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone() else []
    return {tbl for (tbl,) in rows}


def test_a_sqlite_store_that_wrote_keeps_planner_statistics_after_close(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqlStore(f"sqlite:///{path}")
    exp = store.experiments.create("e")
    for i in range(3):
        store.runs.create(exp.experiment_id, run_name=f"r{i}", start_time=i)
    store.close()
    # The search planner reads these: without them it scans every run of the experiment.
    assert {"runs", "experiments"} <= _stat_tables(path)


def test_a_sqlite_store_that_only_read_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    SqlStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
    store = SqlStore(f"sqlite:///{path}")
    store.experiments.get("0")
    store.close()
    assert _stat_tables(path) == set()


@pytest.mark.parametrize("enabled", [True, False])
def test_search_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path, enabled: bool) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 's.db'}")
    exp = store.experiments.create("e")
    run = store.runs.create(exp.experiment_id, run_name="r", start_time=1)
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        found = store.runs.search(RunQuery((exp.experiment_id,))).items
        assert [r.run_id for r in found] == [run.run_id]
        assert store.runs.get(run.run_id).run_id == run.run_id
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
        store.close()
