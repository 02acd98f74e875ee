"""Choosing an executor, and what a step's resources become on Ray (no cluster needed here; see
tests/integration/test_ray_pipelines.py for the real one)."""

from __future__ import annotations

import socket

import pytest

from shipyard.errors import ClusterUnavailable, InvalidInput
from shipyard.pipelines import pipeline, step
from shipyard.pipelines.ray_cluster import Cluster, check_reachable, ray_options


def test_resources_are_checked_and_memory_sizes_read() -> None:
    @step(resources={"cpus": 2, "gpus": 0.5, "memory": "1.5GiB", "accelerator_tpu": 1})
    def fit(n: int) -> int:
        return n

    assert fit.resources == {"cpus": 2.0, "gpus": 0.5, "memory": 1.5 * 2**30, "accelerator_tpu": 1.0}
    assert ray_options(fit.resources) == {"max_retries": 0, "num_cpus": 2.0, "num_gpus": 0.5,
                                          "memory": int(1.5 * 2**30), "resources": {"accelerator_tpu": 1.0}}


@pytest.mark.parametrize(("resources", "message"), [
    ({"cpus": -1}, "resource 'cpus' must be a number >= 0, got -1"),
    ({"cpus": "two"}, "resource 'cpus' must be a number >= 0, got 'two'"),
    ({"memory": "lots"}, "memory 'lots' is not a size; write bytes or e.g. '512MB'"),
    ({"memory": "4 parsecs"}, "memory '4 parsecs' is not a size"),
    ([("cpus", 1)], "resources must be a dict such as"),
], ids=["negative", "text", "memory-word", "memory-unit", "not-a-dict"])
def test_bad_resources_name_the_step_and_the_resource(resources: object, message: str) -> None:
    with pytest.raises(InvalidInput, match="step 'fit'") as caught:
        step(name="fit", resources=resources)(lambda n: n)
    assert message in str(caught.value)


def test_a_cluster_refuses_a_request_larger_than_all_its_nodes() -> None:
    cluster = Cluster("10.0.0.5:6379", {"CPU": 4.0, "memory": 8e9}, 2)
    cluster.check_fits("step 'a'", {"cpus": 4, "memory": 1e9})
    with pytest.raises(InvalidInput, match=r"step 'b' asks for gpus=1 but the Ray cluster at 10.0.0.5:6379 has 0"):
        cluster.check_fits("step 'b'", {"cpus": 1, "gpus": 1})


def test_an_address_where_nothing_listens_fails_in_seconds() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ClusterUnavailable, match=f"cannot reach the Ray cluster at 127\\.0\\.0\\.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    with pytest.raises(ClusterUnavailable, match=r"ray://127\.0\.0\.1"):
        check_reachable(f"ray://127.0.0.1:{port}")
    with pytest.raises(InvalidInput, match="expected HOST:PORT"):
        check_reachable("http://head:8265")
    check_reachable("auto")  # Ray resolves it itself


@step
def one(n: int) -> int:
    return n


@pipeline
def tiny(n: int = 1):
    one(n)


def test_an_unknown_executor_or_a_stray_address_is_refused_before_anything_is_recorded(fluent: str) -> None:
    import shipyard
    from shipyard.pipelines.records import list_pipeline_runs

    with pytest.raises(InvalidInput, match="executor 'spark' is not known; choose one of: local, ray"):
        tiny.run(executor="spark")
    with pytest.raises(InvalidInput, match="a Ray address only applies with executor='ray'"):
        tiny.run(ray_address="127.0.0.1:6379")
    assert list_pipeline_runs(shipyard.Client(fluent)) == []
