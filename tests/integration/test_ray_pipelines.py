"""Pipelines on a real local Ray cluster (2 CPUs, one per module): steps as Ray tasks, values through the
artifact store, failures and bad addresses reported the way the local executor reports them."""

from __future__ import annotations

import importlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from shipyard.errors import InvalidInput, StepFailed
from tests.ci import require

ray = require("ray")

pytestmark = pytest.mark.slow

PAUSE = 3.0  # each slow step sleeps this long; run one after the other they take twice as long

PROJECT = f'''
import time

import numpy as np
import pandas as pd
from shipyard.pipelines import pipeline, step


@step
def seed(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({{"x": rng.normal(size=n), "y": rng.integers(0, 5, size=n)}})


@step(resources={{"cpus": 1}})
def slow_sum(df: pd.DataFrame, pause: float = {PAUSE}) -> np.ndarray:
    time.sleep(pause)
    return df.groupby("y")["x"].sum().to_numpy()


@step(resources={{"cpus": 1, "memory": "64MB"}})
def slow_max(df: pd.DataFrame, pause: float = {PAUSE}) -> np.ndarray:
    time.sleep(pause)
    return df.groupby("y")["x"].max().to_numpy()


@step
def combine(a: np.ndarray, b: np.ndarray) -> dict:
    return {{"total": float(a.sum()), "top": float(b.max())}}


@pipeline
def fan(n: int = 200, pause: float = {PAUSE}):
    df = seed(n)
    combine(slow_sum(df, pause=pause), slow_max(df, pause=pause))


def explode(values):
    raise ValueError(f"cannot use {{len(values)}} values")


@step
def broken(df: pd.DataFrame) -> dict:
    return explode(df)


@pipeline
def fails(n: int = 10):
    broken(seed(n))


@step(resources={{"cpus": 64}})
def greedy(n: int) -> int:
    return n


@pipeline
def too_big():
    greedy(1)


@step
def crash(n: int) -> int:
    import os

    os._exit(3)  # the worker process dies, as on an out-of-memory kill


@pipeline
def crashes():
    crash(1)


def objective(x: float) -> dict:
    import os

    time.sleep(0.2)
    return {{"score": -(x - 1.0) ** 2, "pid": os.getpid()}}
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One local Ray cluster with 2 CPUs for the module, started in this process from the project folder
    (Ray puts the driver's working directory on its workers' path, so they import the project as we do)."""
    folder = tmp_path_factory.mktemp("rayproject")
    (folder / "rayflows.py").write_text(textwrap.dedent(PROJECT))
    before = os.getcwd()
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
        yield ray.get_runtime_context().gcs_address, folder
    finally:
        ray.shutdown()
        os.chdir(before)
        sys.path.remove(str(folder))
        sys.modules.pop("rayflows", None)


@pytest.fixture
def flows(cluster: tuple[str, Path], fluent: str):
    return importlib.import_module("rayflows")


def _cli(folder: Path, tracking_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIPYARD_CAPTURE_PACKAGES": "false", "COLUMNS": "200"}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-c", "from shipyard.cli import main; main()", "--tracking-uri", tracking_uri]
    return subprocess.run([*command, "pipeline", *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=240)


def test_independent_steps_overlap_on_ray_and_results_equal_the_local_executor(flows, fluent: str) -> None:
    on_ray = flows.fan.run(executor="ray", cache=False)
    local = flows.fan.run(cache=False, pause=0.0)
    assert on_ray.executed == ["seed", "slow_sum", "slow_max", "combine"]
    assert on_ray.output("combine") == local.output("combine")
    assert (on_ray.output("slow_max") == local.output("slow_max")).all()
    client = shipyard.Client(fluent)
    spans = [client.get_run(on_ray.steps[s].run_id).info for s in ("slow_sum", "slow_max")]
    assert all(s.status.value == "FINISHED" for s in spans)
    # each step sleeps PAUSE seconds in its own Ray worker: their runs overlap in time
    assert max(s.start_time for s in spans) < min(s.end_time for s in spans)
    # the values went through the artifact store (each step ran in another process)
    assert on_ray.steps["combine"].outputs["output"].serializer == "json"
    client.close()


def test_a_step_raising_inside_ray_reaches_the_user_and_the_run(flows, fluent: str) -> None:
    with pytest.raises(StepFailed, match="ValueError: cannot use 10 values") as caught:
        flows.fails.run(executor="ray")
    remote = caught.value.details["traceback"]
    assert "rayflows.py" in remote
    assert "in explode" in remote
    assert 'raise ValueError(f"cannot use' in remote
    assert any("traceback of step 'broken'" in note for note in caught.value.__notes__)
    client = shipyard.Client(fluent)
    step_run = client.get_run(caught.value.details["run_id"])
    assert step_run.info.status.value == "FAILED"
    assert step_run.data.tags["shipyard.error"] == "ValueError: cannot use 10 values"
    with client.artifacts.open(step_run.info.run_id, "_shipyard/error.txt") as stream:
        stored = stream.read().decode()
    assert "in explode" in stored
    assert client.get_run(caught.value.details["pipeline_run_id"]).info.status.value == "FAILED"
    client.close()


def test_a_step_asking_more_than_the_cluster_has_is_refused_before_anything_is_recorded(flows, fluent: str) -> None:
    with pytest.raises(InvalidInput, match=r"step 'greedy' asks for cpus=64 but the Ray cluster .* has 2 in total"):
        flows.too_big.run(executor="ray")
    client = shipyard.Client(fluent)
    assert client.search_experiments() == [] or not client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "")
    client.close()


def test_the_cli_runs_on_a_cluster_by_address(cluster: tuple[str, Path], tmp_path: Path) -> None:
    address, folder = cluster
    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    done = _cli(folder, uri, "run", "rayflows.py:fan", "-p", "pause=0.5", "--executor", "ray", "--ray-address",
                address, "--json")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert [(s["step"], s["status"]) for s in steps] == [
        ("seed", "executed"), ("slow_sum", "executed"), ("slow_max", "executed"), ("combine", "executed")]


def test_an_unreachable_address_is_one_clear_line_and_records_nothing(cluster: tuple[str, Path],
                                                                      tmp_path: Path) -> None:
    _, folder = cluster
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"sqlite:///{tmp_path / 'nothing.db'}"
    failed = _cli(folder, uri, "run", "rayflows.py:fan", "--executor", "ray", "--ray-address", f"127.0.0.1:{port}")
    assert failed.returncode == 6, failed.stderr
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in failed.stderr
    assert "Traceback" not in failed.stderr
    listed = _cli(folder, uri, "list", "--json")
    assert json.loads(listed.stdout) == []


def test_tuning_trials_run_as_ray_tasks_sharing_the_study(flows, fluent: str) -> None:
    from shipyard.pipelines.tune import tune

    result = tune(flows.objective, {"x": {"type": "float", "low": -3, "high": 3}}, n_trials=6, parallel=2,
                  executor="ray", metric="score", seed=0)
    assert sorted(t.number for t in result.trials) == list(range(6))
    assert len({t.metrics["pid"] for t in result.trials}) == 2  # two Ray workers, one study
    assert result.storage is not None
    assert result.storage.endswith(".optuna.db")
    client = shipyard.Client(fluent)
    assert client.get_run(result.run_id).data.tags["shipyard.tune.best_run"] == result.best.run_id
    client.close()


def test_a_worker_that_dies_ends_its_steps_run_failed(flows, fluent: str) -> None:
    with pytest.raises(StepFailed, match="step 'crash' of pipeline 'crashes' failed") as caught:
        flows.crashes.run(executor="ray")
    client = shipyard.Client(fluent)
    step_run = client.get_run(caught.value.details["run_id"])
    assert step_run.info.status.value == "FAILED"  # not left RUNNING
    assert "worker" in step_run.data.tags["shipyard.error"].lower()
    client.close()


SCRIPT = """
import os

from shipyard import pipeline, step


@step
def marker() -> dict:
    return {"marker": float(os.environ.get("SHIPYARD_TEST_MARKER", "0")), "pid": os.getpid()}


@pipeline
def probe():
    marker()


if __name__ == "__main__":
    import sys

    result = probe.run(executor="ray", ray_address=sys.argv[1], cache=False)
    print(result.steps["marker"].metrics["marker"], result.steps["marker"].metrics["pid"] != os.getpid())
"""


def test_a_script_run_as_main_sends_its_steps_by_value_with_the_shipyard_environment(
        cluster: tuple[str, Path], tmp_path: Path) -> None:
    address, _ = cluster
    (tmp_path / "probe_script.py").write_text(SCRIPT)
    env = {**os.environ, "SHIPYARD_CAPTURE_PACKAGES": "false", "SHIPYARD_TEST_MARKER": "42",
           "SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'probe.db'}"}
    done = subprocess.run([sys.executable, "probe_script.py", address], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    # a worker ran it (another process) and saw the driver's SHIPYARD_* variables
    assert done.stdout.split()[-2:] == ["42.0", "True"]
