"""Many processes on one SQLite store, and a process killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import shipyard

pytestmark = pytest.mark.slow

WRITER = textwrap.dedent("""
    import sys, shipyard
    uri, worker = sys.argv[1], int(sys.argv[2])
    shipyard.set_tracking_uri(uri)
    shipyard.set_experiment("crowd")
    with shipyard.start_run(run_name=f"worker-{worker}", capture=False) as run:
        shipyard.log_params({"worker": worker})
        for step in range(2000):
            shipyard.log_metric("loss", 1.0 / (step + 1), step=step)
            if step % 500 == 0:
                shipyard.set_tag("progress", step)
            if step % 250 == 0:
                shipyard.flush()
    print(run.run_id)
""")


def _env() -> dict[str, str]:
    return {**os.environ, "SHIPYARD_CAPTURE_PACKAGES": "false", "PYTHONWARNINGS": "error"}


def test_eight_processes_write_one_sqlite_store(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'shared.db'}"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, uri, str(i)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=_env()) for i in range(8)]
    results = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err
    run_ids = [out.strip() for out, _ in results]
    client = shipyard.Client(tracking_uri=uri)
    try:
        for run_id in run_ids:
            history = client.get_metric_history(run_id, "loss")
            assert [m.step for m in history] == list(range(2000))
            run = client.get_run(run_id)
            assert run.data.tags["progress"] == "1500"
            assert run.info.status.value == "FINISHED"
    finally:
        client.close()


KILLED = textwrap.dedent("""
    import sys, shipyard
    shipyard.set_tracking_uri(sys.argv[1])
    run = shipyard.start_run(capture=False)
    print(run.run_id, flush=True)
    step = 0
    while True:
        shipyard.log_metric("m", float(step), step=step)
        step += 1
        if step % 100 == 0:
            shipyard.flush()
            print(step, flush=True)
""")


def test_sigkill_loses_at_most_the_queue_and_the_store_stays_readable(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'killed.db'}"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, uri], stdout=subprocess.PIPE, text=True,
                            env=_env())
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    flushed = 0
    deadline = time.monotonic() + 60
    while flushed < 3000 and time.monotonic() < deadline:
        flushed = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    proc.stdout.close()
    assert flushed >= 3000
    client = shipyard.Client(tracking_uri=uri)
    try:
        steps = [m.step for m in client.get_metric_history(run_id, "m")]
        # Everything flushed before the kill is there, in order, with no gap.
        assert steps[:flushed] == list(range(flushed))
        assert steps == list(range(len(steps)))
        run = client.get_run(run_id)
        assert run.info.status.value == "RUNNING"  # nobody ended it
        import sqlalchemy as sa

        engine = sa.create_engine(uri)
        with engine.connect() as conn:
            assert conn.execute(sa.text("PRAGMA integrity_check")).scalar() == "ok"
        engine.dispose()
    finally:
        client.close()
