"""The batched background writer of metrics.

``log_metric`` only validates and enqueues; one daemon thread drains the bounded queue in
batches (up to ``batch_size`` values, gathered for at most ``linger`` seconds) and writes
each batch in one transaction. ``flush`` waits until everything enqueued so far is
written. A failed write is kept and raised at the next call into the writer (or at
``flush``/``close``), never dropped silently.

A run's end (:meth:`MetricWriter.finish`) goes through the queue too: its last queued values and
its new status are written together by ``end_sink``, in one transaction, and ``finish`` waits.
An end that nobody waits for (:meth:`MetricWriter.end_later`: a run the SDK deferred) is written
with the batch it lands in: ``runs_sink`` takes every deferred run of a batch, with its values and
end, and writes them all in one transaction (a tuning loop's hundreds of short runs a second need
not pay one commit each); a failure is kept and raised at the next call, like a metric write's.

Loss bound: if the process is killed (SIGKILL, power loss of the process), what is lost
is what was still queued or in the batch being written: at most ``queue_size`` logging
calls plus one batch, and in practice the values logged, and the runs ended through
``end_later``, in the last ``linger`` seconds.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from shipyard.entities import Metric, RunInfo
from shipyard.errors import ShipyardError, StoreUnavailable
from shipyard.tracking.pending import RunEnd

Sink = Callable[[str, Sequence[Metric]], None]
EndSink = Callable[[str, Sequence[Metric], RunEnd], None]
# The runs it takes (run id -> info or error) of a batch's (run id, values, end or None).
RunsSink = Callable[[list[tuple[str, list[Metric], RunEnd | None]]], Mapping[str, RunInfo | BaseException]]
_FLUSH = object()
_STOP = object()
_RETRIES = (0.1, 0.5, 2.0)
_T = TypeVar("_T")


class MetricWriter:
    def __init__(self, sink: Sink, *, queue_size: int = 100_000, batch_size: int = 5_000,
                 linger: float = 0.05, end_sink: EndSink | None = None, runs_sink: RunsSink | None = None) -> None:
        self._sink = sink
        self._end_sink = end_sink
        self._runs_sink = runs_sink
        self._batch_size = batch_size
        self._linger = linger
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_size)
        self._errors: list[ShipyardError] = []
        self._errors_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def put(self, run_id: str, metric: Metric) -> None:
        """Enqueue one value (blocks while the queue is full)."""
        if self._errors:
            self.raise_pending()
        if self._thread is None:
            self._start()
        self._queue.put((run_id, metric))

    def put_many(self, run_id: str, metrics: Sequence[Metric]) -> None:
        if self._errors:
            self.raise_pending()
        if self._thread is None:
            self._start()
        self._queue.put((run_id, metrics))

    @property
    def running(self) -> bool:
        """Whether the writer's thread has started (something was queued through it)."""
        return self._thread is not None

    def finish(self, run_id: str, end: RunEnd) -> None:
        """Queue the end of ``run_id`` behind its metrics and wait until it is written: ``end_sink``
        gets the run's values still queued and ``end``, and fills ``end.info`` or ``end.error``.
        Failures of other writes stay pending (raised at the next call)."""
        if self._thread is None:
            self._start()
        self._queue.put((run_id, end))
        self._queue.put(_FLUSH)
        self._queue.join()
        if end.info is None and end.error is None:  # the thread died: never leave the caller without an answer
            end.error = ShipyardError(f"the end of run '{run_id}' was not written: the metric writer stopped")

    def end_later(self, run_id: str, end: RunEnd) -> None:
        """Queue the end of ``run_id`` behind its metrics without waiting (``end.wait`` is false):
        it is written with the batch it lands in, at the latest by :meth:`flush` or :meth:`close`;
        a failure is raised at the next call."""
        if self._thread is None:
            self._start()
        self._queue.put((run_id, end))

    def flush(self) -> None:
        """Wait until every value enqueued before this call is written; raise a pending error."""
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(_FLUSH)
            self._queue.join()
        self.raise_pending()

    def close(self) -> None:
        """Flush, then stop the thread."""
        try:
            self.flush()
        finally:
            if self._thread is not None and self._thread.is_alive():
                self._queue.put(_STOP)
                self._thread.join()
            self._thread = None

    def raise_pending(self) -> None:
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            first = errors[0]
            if len(errors) > 1:
                first.message += f" (and {len(errors) - 1} more failed metric write(s))"
                first.args = (first.message,)
            raise first

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="shipyard-metric-writer",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            batch: list[tuple[str, Metric | Sequence[Metric] | RunEnd]] = []
            taken = 1
            stop = item is _STOP
            if item not in (_FLUSH, _STOP):
                batch.append(item)  # type: ignore[arg-type]
                taken, stop = self._gather(batch)
            if batch:
                self._write(batch)
            for _ in range(taken):
                self._queue.task_done()
            if stop:
                return

    def _gather(self, batch: list[tuple[str, Metric | Sequence[Metric] | RunEnd]]) -> tuple[int, bool]:
        """Add queued items to ``batch`` until it is full, the linger time is over, or a flush
        or stop marker arrives. Returns (items taken from the queue, stop seen)."""
        taken = 1
        deadline = time.monotonic() + self._linger
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            taken += 1
            if item is _FLUSH:
                break
            if item is _STOP:
                return taken, True
            batch.append(item)  # type: ignore[arg-type]  # the queue holds these tuples and the two markers
        return taken, False

    def _write(self, batch: list[tuple[str, Metric | Sequence[Metric] | RunEnd]]) -> None:
        by_run: dict[str, list[Metric]] = {}
        ends: dict[str, RunEnd] = {}
        for run_id, value in batch:
            bucket = by_run.setdefault(run_id, [])
            if isinstance(value, Metric):
                bucket.append(value)
            elif isinstance(value, RunEnd):
                ends[run_id] = value
            else:
                bucket.extend(value)
        if self._runs_sink is not None:
            self._write_runs(by_run, ends)
        for run_id, metrics in by_run.items():
            end = ends.get(run_id)
            if end is not None:
                self._finish(run_id, metrics, end)
                continue
            try:
                self._write_with_retries(run_id, metrics)
            except ShipyardError as exc:
                self._fail(type(exc), run_id, metrics, exc.message, exc)
            except Exception as exc:  # a bug or an unexpected driver error: still surface it
                self._fail(ShipyardError, run_id, metrics, f"{type(exc).__name__}: {exc}", exc)

    def _write_runs(self, by_run: dict[str, list[Metric]], ends: dict[str, RunEnd]) -> None:
        """Offer the batch to ``runs_sink``; what it took leaves ``by_run`` with its outcome kept.
        If it fails as a whole, every run is left to the one-by-one path (which reports it)."""
        batch = [(run_id, metrics, ends.get(run_id)) for run_id, metrics in by_run.items()]
        assert self._runs_sink is not None
        try:
            outcomes = self._with_retries(lambda: self._runs_sink(batch))  # type: ignore[misc]
        except Exception:
            return
        for run_id, outcome in outcomes.items():
            metrics = by_run.pop(run_id, [])
            end = ends.get(run_id)
            if isinstance(outcome, RunInfo):
                if end is not None:
                    end.info = outcome
            elif end is not None and end.wait:
                end.error = outcome
            else:
                self._fail_run(run_id, metrics, end, outcome)

    def _finish(self, run_id: str, metrics: list[Metric], end: RunEnd) -> None:
        assert self._end_sink is not None, "finish() needs an end_sink"
        try:
            self._write_with_retries(run_id, metrics, end)
        except Exception as exc:  # the caller of finish() raises it, or the next call when nobody waits
            if end.wait:
                end.error = exc
            else:
                self._fail_run(run_id, metrics, end, exc)

    def _fail_run(self, run_id: str, metrics: list[Metric], end: RunEnd | None, cause: BaseException) -> None:
        cls = type(cause) if isinstance(cause, ShipyardError) else ShipyardError
        reason = cause.message if isinstance(cause, ShipyardError) else f"{type(cause).__name__}: {cause}"
        if end is None:
            self._fail(cls, run_id, metrics, reason, cause)
            return
        error = cls(f"run '{run_id}' was not ended as {end.status.value} (with {len(metrics)} metric value(s)): "
                    f"{reason}")
        error.__cause__ = cause
        with self._errors_lock:
            self._errors.append(error)

    def _write_with_retries(self, run_id: str, metrics: list[Metric], end: RunEnd | None = None) -> None:
        self._with_retries(lambda: self._call_sink(run_id, metrics, end))

    @staticmethod
    def _with_retries(write: Callable[[], _T]) -> _T:
        for delay in _RETRIES:
            try:
                return write()
            except StoreUnavailable:
                time.sleep(delay)
        return write()

    def _call_sink(self, run_id: str, metrics: list[Metric], end: RunEnd | None) -> None:
        if end is None:
            self._sink(run_id, metrics)
        else:
            self._end_sink(run_id, metrics, end)  # type: ignore[misc]

    def fail(self, run_id: str, metrics: Sequence[Metric], cause: ShipyardError) -> None:
        """Keep the failure to write ``metrics`` (raised at the next call), as for a failed batch."""
        self._fail(type(cause), run_id, list(metrics), cause.message, cause)

    def _fail(self, cls: type[ShipyardError], run_id: str, metrics: list[Metric], reason: str,
              cause: BaseException) -> None:
        error = cls(f"{len(metrics)} metric value(s) for run '{run_id}' were not written: {reason}")
        error.__cause__ = cause
        with self._errors_lock:
            self._errors.append(error)
