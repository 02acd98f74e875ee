"""Adaptive micro-batching: concurrent requests for one model share one ``predict`` call.

Each request's prepared input (a :class:`~shipyard.serving.tables.TableRows` block of checked
rows, a DataFrame or a numpy array) is queued with its row count. A single collector task per
model takes the oldest waiting request, then gathers compatible ones (blocks of the same
signature, frames with the same columns and dtypes, arrays with the same trailing shape and
dtype) until ``max_batch_size`` rows are waiting or the oldest has waited ``max_wait_ms``; in a
worker thread it joins them (one DataFrame built from the blocks' rows, ``pandas.concat``,
``numpy.concatenate``), calls ``predict`` once, and hands each caller the slice of the result
that belongs to its rows.

It is adaptive because only one batch per model runs at a time, and because the window is only
waited out when traffic says more rows are coming: while fewer rows wait than the previous batch
held (load is ramping up, or a burst is arriving), the collector waits up to ``max_wait_ms`` for
more; otherwise (a lone request on an idle model, or a full queue after a busy batch) it calls
``predict`` at once. Under load, requests pile up while a batch runs and the next batch takes
them all, so batches grow with load and a lone request never pays for the window.

When a batch of several requests fails, each request is retried on its own so that one caller's
poisonous rows fail only that caller. ``max_batch_size=1`` or ``max_wait_ms=0`` turns batching
off: every request calls ``predict`` directly, still in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.serving.tables import TableRows

__all__ = ["BatchStats", "Batcher", "BatcherClosed", "batch_key", "concat_inputs", "split_outputs"]

log = logging.getLogger("shipyard.serving")

# A batch whose predict took less CPU than this may run on the event loop's own thread (see _call);
# one that then keeps the loop longer than the limit counts against the model (see _judge_inline).
INLINE_BUDGET_SECONDS = 0.0005
INLINE_WALL_LIMIT_SECONDS = 0.005
INLINE_STRIKES = 3


class BatcherClosed(RuntimeError):
    """Raised by :meth:`Batcher.submit` once :meth:`Batcher.close` has begun."""


def batch_key(data: Any) -> Hashable:
    """Inputs with equal keys can be concatenated without changing any row's values or dtypes."""
    if isinstance(data, TableRows):
        return data.layout
    columns = getattr(data, "columns", None)
    if columns is not None:
        return ("frame", tuple(map(str, columns)), tuple(map(str, data.dtypes)))
    return ("array", data.dtype.str, tuple(data.shape[1:]))


def concat_inputs(parts: list[Any]) -> Any:
    """One model input of every part's rows, in order (a table block becomes its one DataFrame)."""
    if isinstance(parts[0], TableRows):
        return TableRows.join(parts)
    if len(parts) == 1:
        return parts[0]
    if hasattr(parts[0], "columns"):
        import pandas as pd

        return pd.concat(parts, ignore_index=True)
    import numpy as np

    return np.concatenate(parts)


def split_outputs(result: Any, sizes: list[int]) -> list[Any]:
    """``result`` cut into consecutive pieces of ``sizes`` rows (views, no copies)."""
    if len(sizes) == 1:
        return [result]
    total = sum(sizes)
    try:
        length = len(result)
    except TypeError:
        length = None
    if length != total:
        got = f"{length} rows" if length is not None else f"a {type(result).__name__}"
        raise ShipyardError(f"the model returned {got} for a batch of {total} rows, so predictions cannot be "
                            "matched to requests")
    rows = result.iloc if hasattr(result, "iloc") else result
    pieces, start = [], 0
    for size in sizes:
        pieces.append(rows[start:start + size])
        start += size
    return pieces


@dataclass
class BatchStats:
    """Counts since start, for tests and logs (the metrics module has the labelled series)."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)


@dataclass
class _Item:
    data: Any
    rows: int
    key: Hashable
    enqueued: float
    future: asyncio.Future[Any]


class Batcher:
    """Batches ``predict`` calls for one model. ``on_batch(rows, requests, seconds)`` is called
    after each ``predict`` (for metrics). Create it inside the running event loop's lifetime;
    call :meth:`close` at shutdown to finish what is queued."""

    def __init__(self, predict: Callable[[Any], Any], *, max_batch_size: int = 64, max_wait_ms: float = 2.0,
                 on_batch: Callable[[int, int, float], None] | None = None, name: str = "model",
                 inline: bool = False) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_wait_ms < 0:
            raise ValueError("max_wait_ms must be 0 or more")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.enabled = max_batch_size > 1 and max_wait_ms > 0
        self._on_batch = on_batch
        self.stats = BatchStats()
        self._pending: deque[_Item] = deque()
        self._rows_by_key: dict[Hashable, int] = {}
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._in_flight = 0
        self._last_rows = 0  # rows of the previous batch: how many are worth waiting for
        # Batches of up to this many rows run on the event loop's thread (see _call); -1: never.
        self._inline_rows = 0 if inline else -1
        self._inline_strikes = 0
        self.name = name
        # One thread per model: batches of one model run one at a time (that is what lets the
        # next batch grow); unbatched calls use asyncio's shared default pool instead.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"shipyard-predict-{name}")

    async def submit(self, data: Any, rows: int) -> Any:
        """The prediction for ``data`` (``rows`` rows), computed alone or within a batch."""
        if self._closing:
            raise BatcherClosed("the server is shutting down")
        if not self.enabled:
            self._in_flight += 1
            try:
                return (await self._call(None, [data], [rows]))[0]
            finally:
                self._in_flight -= 1
        loop = asyncio.get_running_loop()
        item = _Item(data, rows, batch_key(data), loop.time(), loop.create_future())
        self._pending.append(item)
        self._rows_by_key[item.key] = self._rows_by_key.get(item.key, 0) + rows
        self._ensure_started()
        assert self._wakeup is not None
        self._wakeup.set()
        return await item.future

    @property
    def closed(self) -> bool:
        return self._closing

    def _ensure_started(self) -> None:
        loop = asyncio.get_running_loop()
        # A new event loop (a test client per test) needs its own collector task and event.
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            self._task = loop.create_task(self._collect(), name="shipyard-batcher")

    async def _collect(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            first = self._pending[0]
            wanted = min(self.max_batch_size, self._last_rows)
            while not self._closing and self._rows_by_key.get(first.key, 0) < wanted:
                remaining = first.enqueued + self.max_wait - loop.time()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            batch = self._take(first.key)
            self._last_rows = sum(item.rows for item in batch)
            self._in_flight += 1
            try:
                await self._execute(batch)
            finally:
                self._in_flight -= 1

    def _take(self, key: Hashable) -> list[_Item]:
        """The oldest waiting items with ``key``, in arrival order, up to ``max_batch_size`` rows
        (the first one always, even when it alone is larger)."""
        batch: list[_Item] = []
        kept: deque[_Item] = deque()
        rows = 0
        while self._pending:
            item = self._pending.popleft()
            if item.future.done():  # the caller went away (cancelled): nothing to compute
                self._forget(item)
                continue
            if item.key == key and (not batch or rows + item.rows <= self.max_batch_size):
                batch.append(item)
                rows += item.rows
                self._forget(item)
            else:
                kept.append(item)
                if item.key == key:  # full: the rest waits for the next batch, in order
                    break
        kept.extend(self._pending)
        self._pending = kept
        return batch

    def _forget(self, item: _Item) -> None:
        left = self._rows_by_key[item.key] - item.rows
        if left:
            self._rows_by_key[item.key] = left
        else:  # keys come from clients' column sets: do not let them accumulate
            del self._rows_by_key[item.key]

    async def _execute(self, batch: list[_Item]) -> None:
        if not batch:
            return
        try:
            results = await self._call(self._executor, [i.data for i in batch], [i.rows for i in batch])
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, error=exc)
                return
            log.warning("a batch of %d requests failed (%s); retrying each request on its own",
                        len(batch), type(exc).__name__)
            for item in batch:
                try:
                    result = (await self._call(self._executor, [item.data], [item.rows]))[0]
                except Exception as single:
                    _settle(item.future, error=single)
                else:
                    _settle(item.future, result=result)
            return
        for item, result in zip(batch, results, strict=True):
            _settle(item.future, result=result)

    def _run_batch(self, parts: list[Any], sizes: list[int]) -> tuple[list[Any], float, float]:
        """Concatenate, predict, split; returns (pieces, seconds, CPU seconds of this thread)."""
        start, cpu = time.perf_counter(), time.thread_time()
        pieces = split_outputs(self._predict(concat_inputs(parts)), sizes)
        return pieces, time.perf_counter() - start, time.thread_time() - cpu

    def _record(self, sizes: list[int], seconds: float) -> None:
        rows, stats = sum(sizes), self.stats
        stats.batches += 1
        stats.requests += len(sizes)
        stats.rows += rows
        stats.largest = max(stats.largest, rows)
        if len(stats.sizes) < 10_000:
            stats.sizes.append(len(sizes))
        if self._on_batch is not None:
            self._on_batch(rows, len(sizes), seconds)

    async def _call(self, executor: ThreadPoolExecutor | None, parts: list[Any], sizes: list[int]) -> list[Any]:
        rows = sum(sizes)
        inline = rows <= self._inline_rows
        if inline:
            pieces, seconds, cpu = self._run_batch(parts, sizes)
        else:
            pieces, seconds, cpu = await asyncio.get_running_loop().run_in_executor(
                executor, self._run_batch, parts, sizes)
        self._judge_inline(rows, seconds, cpu, inline)
        self._record(sizes, seconds)
        return pieces

    def _judge_inline(self, rows: int, seconds: float, cpu: float, inline: bool) -> None:
        """Handing a batch to a thread and its answer back (GIL hand-offs, a loop wake-up) costs
        more than a fast model's whole predict. So, for a model that only computes (``inline``),
        batches of a size seen to take less CPU than the budget run on the event loop's thread:
        CPU, because a thread's wall time includes waiting for the GIL. A batch over the budget
        sends its size and larger back to the thread. One that held the loop longer than the
        wall limit (waiting on something: other threads, a device, the network) is a strike, and
        after a few strikes this model's batches always run in the thread."""
        if self._inline_rows < 0:
            return
        if inline and seconds > INLINE_WALL_LIMIT_SECONDS:
            self._inline_strikes += 1
            if self._inline_strikes >= INLINE_STRIKES:
                self._inline_rows = -1
                log.info("model %s: predict held the event loop over %.0f ms %d times; its batches run in a "
                         "thread from now on", self.name, INLINE_WALL_LIMIT_SECONDS * 1000, INLINE_STRIKES)
                return
        if cpu < INLINE_BUDGET_SECONDS and seconds < INLINE_WALL_LIMIT_SECONDS:
            self._inline_rows = max(self._inline_rows, rows)
        elif rows <= self._inline_rows:
            self._inline_rows = rows - 1

    async def close(self, timeout: float = 30.0) -> None:
        """Stop taking requests, finish every queued and running batch (within ``timeout`` s)."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        deadline = time.monotonic() + timeout
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for item in self._pending:
            _settle(item.future, error=BatcherClosed("the server shut down before this request ran"))
        self._pending.clear()
        self._executor.shutdown(wait=False)


def _settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
