"""The adaptive micro-batcher: concurrent callers share predict calls and each gets exactly its rows."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import ShipyardError
from shipyard.serving.batcher import Batcher, BatcherClosed, batch_key, concat_inputs, split_outputs


class Recorder:
    """A real model-like function (an affine map of the input) that remembers each call's size."""

    def __init__(self, delay: float = 0.0, poison: float | None = None) -> None:
        self.calls: list[int] = []
        self.threads: set[str] = set()
        self.delay = delay
        self.poison = poison

    def __call__(self, data: object) -> object:
        self.calls.append(len(data))
        self.threads.add(threading.current_thread().name)
        if self.delay:
            time.sleep(self.delay)
        values = data["x"].to_numpy() if isinstance(data, pd.DataFrame) else np.asarray(data)
        if self.poison is not None and (values == self.poison).any():
            raise ValueError("poisoned row")
        if isinstance(data, pd.DataFrame):
            return pd.DataFrame({"double": values * 2, "tag": data["tag"].to_numpy()})
        return values * 2 + 1


def frame(start: int, rows: int) -> pd.DataFrame:
    return pd.DataFrame({"x": np.arange(start, start + rows, dtype=np.float64),
                         "tag": [f"r{start + i}" for i in range(rows)]})


async def fifty_callers(batcher: Batcher, make: object) -> list[tuple[object, object]]:
    rng = random.Random(7)
    inputs = []
    start = 0
    for _ in range(50):
        rows = rng.randint(1, 5)
        inputs.append(make(start, rows))
        start += rows

    async def call(data: object) -> tuple[object, object]:
        await asyncio.sleep(rng.random() * 0.002)  # arrive spread out, as real requests do
        return data, await batcher.submit(data, len(data))

    results = await asyncio.gather(*(call(d) for d in inputs))
    await batcher.close()
    return results


def test_concurrent_frames_each_get_their_own_rows() -> None:
    model = Recorder(delay=0.002)
    batcher = Batcher(model, max_batch_size=16, max_wait_ms=5)
    results = asyncio.run(fifty_callers(batcher, frame))
    for sent, got in results:
        assert isinstance(got, pd.DataFrame)
        np.testing.assert_array_equal(got["double"].to_numpy(), sent["x"].to_numpy() * 2)
        assert got["tag"].tolist() == sent["tag"].tolist()
    assert batcher.stats.requests == 50
    assert batcher.stats.batches == len(model.calls) < 50  # batches really formed
    assert max(model.calls) <= 16
    assert sum(model.calls) == sum(len(sent) for sent, _ in results)
    assert all(name.startswith("shipyard-predict") for name in model.threads)  # off the event loop


def test_concurrent_arrays_each_get_their_own_rows() -> None:
    model = Recorder(delay=0.001)
    batcher = Batcher(model, max_batch_size=32, max_wait_ms=5)

    def make(start: int, rows: int) -> np.ndarray:
        return np.arange(start * 3, (start + rows) * 3, dtype=np.float64).reshape(rows, 3)

    for sent, got in asyncio.run(fifty_callers(batcher, make)):
        np.testing.assert_array_equal(got, sent * 2 + 1)
    assert batcher.stats.batches < 50
    assert batcher.stats.largest > 5  # at least one batch held several requests


@pytest.mark.parametrize(("size", "wait"), [(1, 5.0), (64, 0.0)], ids=["size-1", "wait-0"])
def test_batching_off(size: int, wait: float) -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=size, max_wait_ms=wait)
    assert not batcher.enabled
    for sent, got in asyncio.run(fifty_callers(batcher, frame)):
        np.testing.assert_array_equal(got["double"].to_numpy(), sent["x"].to_numpy() * 2)
    assert len(model.calls) == 50


def test_the_window_is_waited_only_when_more_rows_are_expected() -> None:
    """A lone request on an idle model goes at once; after a batch of 4, a lone request waits (up
    to max_wait) for the others traffic says are coming."""

    async def timed(batcher: Batcher, *sizes: int) -> float:
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit(frame(i, n), n) for i, n in enumerate(sizes)))
        return time.perf_counter() - started

    async def scenario() -> tuple[float, float]:
        # A window far longer than any scheduling delay: a request that waits it out cannot pass for
        # one that went at once, however slow the machine.
        batcher = Batcher(Recorder(), max_batch_size=64, max_wait_ms=1_000)
        idle = await timed(batcher, 2)
        await timed(batcher, 1, 1, 1, 1)
        after_burst = await timed(batcher, 1)
        await batcher.close()
        return idle, after_burst

    idle, after_burst = asyncio.run(scenario())
    assert idle < 0.5
    assert 0.9 <= after_burst < 5


def test_a_full_batch_does_not_wait_for_the_deadline() -> None:
    async def run() -> float:
        batcher = Batcher(Recorder(), max_batch_size=4, max_wait_ms=5_000)
        started = time.perf_counter()
        await asyncio.gather(*(batcher.submit(frame(i, 1), 1) for i in range(4)))
        elapsed = time.perf_counter() - started
        await batcher.close()
        return elapsed

    assert asyncio.run(run()) < 1.0


def test_incompatible_inputs_are_not_mixed() -> None:
    model = Recorder()
    batcher = Batcher(model, max_batch_size=64, max_wait_ms=20)
    narrow = np.ones((2, 2))
    wide = np.ones((3, 4))

    async def run() -> tuple[object, object]:
        out = await asyncio.gather(batcher.submit(narrow, 2), batcher.submit(wide, 3))
        await batcher.close()
        return out

    got_narrow, got_wide = asyncio.run(run())
    assert got_narrow.shape == (2, 2)
    assert got_wide.shape == (3, 4)
    assert sorted(model.calls) == [2, 3]
    assert batch_key(narrow) != batch_key(wide)
    assert batch_key(frame(0, 1)) != batch_key(frame(0, 1).astype({"x": "float32"}))


def test_a_failing_request_fails_alone() -> None:
    model = Recorder(poison=13.0)
    batcher = Batcher(model, max_batch_size=64, max_wait_ms=20)

    async def run() -> list[object]:
        calls = [batcher.submit(frame(start, 3), 3) for start in (0, 12, 20)]  # 12..14 holds the poison
        out = await asyncio.gather(*calls, return_exceptions=True)
        await batcher.close()
        return out

    first, poisoned, last = asyncio.run(run())
    assert isinstance(poisoned, ValueError)
    assert first["double"].tolist() == [0.0, 2.0, 4.0]
    assert last["double"].tolist() == [40.0, 42.0, 44.0]
    assert model.calls[0] == 9  # one batch first, then each request alone
    assert sorted(model.calls[1:]) == [3, 3, 3]


def test_close_finishes_queued_and_running_batches() -> None:
    model = Recorder(delay=0.05)
    batcher = Batcher(model, max_batch_size=2, max_wait_ms=1_000)

    async def run() -> list[object]:
        tasks = [asyncio.ensure_future(batcher.submit(frame(i, 1), 1)) for i in range(5)]
        await asyncio.sleep(0.01)  # the first batch is running, the rest queued
        await batcher.close()
        assert all(t.done() for t in tasks)
        assert batcher.closed
        with pytest.raises(BatcherClosed, match="shutting down"):
            await batcher.submit(frame(0, 1), 1)
        return [t.result() for t in tasks]

    results = asyncio.run(run())
    assert [r["double"].tolist() for r in results] == [[0.0], [2.0], [4.0], [6.0], [8.0]]


def test_concat_and_split() -> None:
    parts = [frame(0, 2), frame(2, 3)]
    joined = concat_inputs(parts)
    assert joined["x"].tolist() == [0, 1, 2, 3, 4]
    assert list(joined.index) == [0, 1, 2, 3, 4]
    pieces = split_outputs(np.arange(5), [2, 3])
    assert [p.tolist() for p in pieces] == [[0, 1], [2, 3, 4]]
    series_pieces = split_outputs(pd.Series([1, 2, 3]), [1, 2])
    assert [p.tolist() for p in series_pieces] == [[1], [2, 3]]
    with pytest.raises(ShipyardError, match="returned 4 rows for a batch of 5"):
        split_outputs(np.arange(4), [2, 3])
    with pytest.raises(ShipyardError, match="returned a float"):
        split_outputs(1.5, [2, 3])
    assert split_outputs(1.5, [2]) == [1.5]  # one request: nothing to match


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="max_batch_size"):
        Batcher(Recorder(), max_batch_size=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        Batcher(Recorder(), max_wait_ms=-1)


def _sequential_calls(batcher: Batcher, count: int, rows: int = 4) -> list[object]:
    async def run() -> list[object]:
        results = [await batcher.submit(np.arange(rows, dtype=np.float64).reshape(rows, 1), rows)
                   for _ in range(count)]
        await batcher.close()
        return results

    return asyncio.run(run())


def test_a_fast_computing_model_runs_on_the_event_loop_thread() -> None:
    model = Recorder()
    _sequential_calls(Batcher(model, name="fast", inline=True), 5)
    # The first batch measures the model in the thread; the next ones run where the loop runs.
    assert model.threads == {"MainThread", "shipyard-predict-fast_0"}


def test_models_not_known_to_only_compute_always_run_in_a_thread() -> None:
    model = Recorder()
    _sequential_calls(Batcher(model, name="any"), 5)
    assert model.threads == {"shipyard-predict-any_0"}


def test_a_model_over_the_cpu_budget_stays_in_the_thread() -> None:
    def busy(data: object) -> object:
        threads.add(threading.current_thread().name)
        end = time.thread_time() + 0.002
        while time.thread_time() < end:  # CPU, not sleep: the budget is CPU time
            pass
        return np.asarray(data)

    threads: set[str] = set()
    _sequential_calls(Batcher(busy, name="busy", inline=True), 4)
    assert threads == {"shipyard-predict-busy_0"}


def test_a_model_that_waits_on_the_loop_is_sent_back_to_the_thread_for_good() -> None:
    # Cheap in CPU while it runs in the thread, then it starts waiting (a device, the network):
    # a few batches that hold the loop past the wall limit and it never runs there again.
    slow = {"on": False}
    model = Recorder()

    def predict(data: object) -> object:
        if slow["on"] and threading.current_thread().name == "MainThread":
            time.sleep(0.01)
        return model(data)

    batcher = Batcher(predict, name="waits", inline=True)

    async def run() -> None:
        one = np.zeros((1, 1))
        await batcher.submit(one, 1)
        await batcher.submit(one, 1)
        assert "MainThread" in model.threads
        slow["on"] = True
        for _ in range(6):
            await batcher.submit(one, 1)
        model.threads.clear()
        for _ in range(3):
            await batcher.submit(one, 1)
        await batcher.close()

    asyncio.run(run())
    assert model.threads == {"shipyard-predict-waits_0"}
