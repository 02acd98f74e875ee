"""Where a pipeline's steps execute: in the pipeline's own process, in a local process pool, or on Ray.

The runner hands each step that is ready to an executor and waits on the futures it returns; it does not
know which executor it has. Every out-of-process executor runs :func:`~shipyard.pipelines.execute.execute_in_worker`,
which reads its inputs from the artifact store and records its outcome on the step's run itself.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from shipyard.errors import InvalidInput
from shipyard.pipelines import execute as ex
from shipyard.pipelines.steps import Step

if TYPE_CHECKING:
    from shipyard.pipelines.graph import Graph

__all__ = ["EXECUTORS", "Executor", "ProcessPool", "RayTasks", "open_executor"]

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    """Runs step tasks out of the pipeline's process; at most ``slots`` are handed to it at once."""

    slots: int

    def submit(self, step: Step, task: ex.StepTask) -> futures.Future[ex.TaskResult]: ...

    def close(self) -> None: ...


class ProcessPool:
    """``--parallel N`` on one machine: N spawned processes (not forked: a forked child would inherit the
    parent's open database connections)."""

    def __init__(self, slots: int) -> None:
        import multiprocessing

        self.slots = slots
        self._pool = futures.ProcessPoolExecutor(slots, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, step: Step, task: ex.StepTask) -> futures.Future[ex.TaskResult]:
        return self._pool.submit(ex.execute_in_worker, task)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class RayTasks:
    """Each step a Ray task asking for the step's ``resources``; Ray places it on a node that has them."""

    def __init__(self, slots: int, *, warm: int = 0, stores: tuple[str, str] = ("", "")) -> None:
        from shipyard.pipelines.ray_cluster import submit

        self.slots = slots
        # Start `warm` workers now, while the pipeline records its run and looks up its cache: a worker's
        # first task otherwise pays for its start and for importing Shipyard (seconds).
        self._warming = [submit(ex.warm_worker, stores, {}) for _ in range(warm)]

    def submit(self, step: Step, task: ex.StepTask) -> futures.Future[ex.TaskResult]:
        from shipyard.pipelines.ray_cluster import submit

        # A step of a script run as __main__ cannot be imported by a worker: it travels by value (cloudpickle).
        by_value = step if step.fn.__module__ == "__main__" else None
        return submit(ex.execute_in_worker, (task, by_value), step.resources)

    def close(self) -> None:
        pass


@contextlib.contextmanager
def open_executor(kind: str, *, parallel: int, graph: Graph, ray_address: str | None = None,
                  stores: tuple[str, str] = ("", "")) -> Iterator[Executor | None]:
    """The executor for a run, ready before anything is recorded (so an unreachable cluster or a step asking
    for more than the cluster has fails first). ``None``: run each step in this process, one at a time.
    ``stores`` (tracking URI, artifact URI) lets Ray workers open their client ahead of the first step."""
    if kind not in EXECUTORS:
        raise InvalidInput(f"executor {kind!r} is not known; choose one of: {', '.join(EXECUTORS)}")
    if ray_address and kind != "ray":
        raise InvalidInput("a Ray address only applies with executor='ray' (--executor ray)")
    if kind == "local":
        if parallel == 1:
            yield None
            return
        pool = ProcessPool(parallel)
        try:
            yield pool
        finally:
            pool.close()
        return
    from shipyard.pipelines.ray_cluster import connected

    with connected(ray_address) as cluster:
        for call in graph.calls.values():
            cluster.check_fits(f"step {call.id!r}", {"cpus": 1.0, **call.step.resources})
        # Ray's scheduler places as many as the cluster's resources allow; parallel > 1 caps that further.
        slots = parallel if parallel > 1 else max(1, len(graph.calls))
        warm = min(slots, len(graph.calls), int(cluster.resources.get("CPU", 1)))
        yield RayTasks(slots, warm=warm if stores[0] else 0, stores=stores)
