"""The batched background writer: batching, flush, error surfacing."""

from __future__ import annotations

import threading
import time

import pytest

from shipyard.entities import Metric
from shipyard.errors import RunNotActive, ShipyardError, StoreUnavailable
from shipyard.tracking.writer import MetricWriter
from tests.support import wait_for


class RecordingSink:
    def __init__(self, fail_with: Exception | None = None, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, list[Metric]]] = []
        self.fail_with = fail_with
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, run_id: str, metrics) -> None:
        with self.lock:
            if self.fail_with is not None and self.fail_times:
                self.fail_times -= 1
                raise self.fail_with
            self.calls.append((run_id, list(metrics)))


def test_values_are_batched_and_flushed() -> None:
    sink = RecordingSink()
    writer = MetricWriter(sink, batch_size=1000, linger=5.0)
    for i in range(2500):
        writer.put("r1", Metric("m", float(i), i, 0))
    writer.flush()  # a flush does not wait for the linger time
    written = [m.step for _, batch in sink.calls for m in batch]
    assert written == list(range(2500))
    assert len(sink.calls) <= 4
    writer.close()


def test_flush_returns_quickly_despite_linger() -> None:
    sink = RecordingSink()
    writer = MetricWriter(sink, linger=10.0)
    writer.put("r", Metric("m", 1.0))
    start = time.monotonic()
    writer.flush()
    assert time.monotonic() - start < 2.0
    assert len(sink.calls) == 1
    writer.close()


def test_batches_are_grouped_by_run() -> None:
    sink = RecordingSink()
    writer = MetricWriter(sink)
    writer.put("a", Metric("m", 1.0))
    writer.put_many("b", [Metric("m", 2.0), Metric("n", 3.0)])
    writer.put("a", Metric("m", 4.0))
    writer.flush()
    by_run = {run: [m.value for m in batch] for run, batch in sink.calls}
    assert by_run == {"a": [1.0, 4.0], "b": [2.0, 3.0]}
    writer.close()


def test_write_failure_surfaces_at_the_next_call_and_flush() -> None:
    sink = RecordingSink(fail_with=RunNotActive("run 'r' is FINISHED"), fail_times=1)
    writer = MetricWriter(sink)
    writer.put("r", Metric("m", 1.0))
    with pytest.raises(RunNotActive, match=r"1 metric value\(s\) for run 'r' were not written.*FINISHED"):
        writer.flush()
    writer.flush()  # reported once, then cleared
    sink.fail_times = 1
    writer.put("r", Metric("m", 2.0))
    # The background write fails in its own time: wait until it has.
    wait_for(lambda: writer._errors, timeout=10, interval=0.01, what="the failed write to be recorded")
    with pytest.raises(RunNotActive):
        writer.put("r", Metric("m", 3.0))
    writer.close()


def test_unexpected_errors_are_surfaced_too() -> None:
    writer = MetricWriter(RecordingSink(fail_with=RuntimeError("driver exploded"), fail_times=5))
    writer.put("r", Metric("m", 1.0))
    with pytest.raises(ShipyardError, match="RuntimeError: driver exploded"):
        writer.close()


def test_busy_store_is_retried() -> None:
    sink = RecordingSink(fail_with=StoreUnavailable("locked"), fail_times=2)
    writer = MetricWriter(sink)
    writer.put("r", Metric("m", 1.0))
    writer.flush()
    assert [m.value for _, batch in sink.calls for m in batch] == [1.0]
    writer.close()


def test_bounded_queue_applies_backpressure() -> None:
    gate = threading.Event()

    def slow_sink(run_id, metrics) -> None:
        gate.wait(30)

    writer = MetricWriter(slow_sink, queue_size=10, batch_size=1)
    for i in range(11):  # one in flight, ten queued
        writer.put("r", Metric("m", float(i)))
    blocked = threading.Thread(target=writer.put, args=("r", Metric("m", 99.0)))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # the twelfth put waits for room
    gate.set()
    blocked.join(5)
    assert not blocked.is_alive()
    writer.close()
