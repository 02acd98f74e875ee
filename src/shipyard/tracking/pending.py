"""Writing runs in as few transactions as the semantics allow.

A client that defers runs (the fluent SDK's) does not write a new run at ``create_run``: its id
is chosen here, as the store would (``uuid4().hex``), so ``run.info.run_id`` is known at once,
and the run waits in :class:`PendingRuns` with the params and tags logged to it. It is written
with one :meth:`~shipyard.store.protocol.RunStore.write` (one transaction: the run, its params,
tags and the metrics queued so far) by the first of: the background writer's next batch (a
marker queued at creation, so the run reaches the store within the writer's linger time),
``end_run`` (then its status and end time go into the same transaction), ``flush``, or any
other use of the client's store. A failure is raised at the next call, like a failed metric
write; it never vanishes.

The shape rules of what goes in (names, keys, values) are the tracking service's
(:mod:`shipyard.tracking.service`), checked before a run is kept here.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from shipyard.entities import Metric, Param, RunInfo, RunStatus, RunTag, RunWrite
from shipyard.errors import ShipyardError, StoreUnavailable
from shipyard.store.not_found import param_change_conflict
from shipyard.store.protocol import Store

__all__ = ["PendingRuns", "RunEnd"]

_RUN_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class RunEnd:
    """The end of a run, handed to the background writer so that the run's last queued metrics
    and its status go to the store in one transaction; the writer fills ``info`` or ``error``."""

    status: RunStatus
    end_time: int
    info: RunInfo | None = None
    error: BaseException | None = None
    # False: nobody waits for this end (a deferred run's, written with others in one transaction);
    # a failure is then kept by the writer and raised at the next call, like a failed metric write.
    wait: bool = True


@dataclass
class _Pending:
    info: RunInfo
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    written: bool = False


class PendingRuns:
    """Runs created by one client and not yet written to its store (thread-safe)."""

    def __init__(self) -> None:
        self._runs: dict[str, _Pending] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._runs)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._runs

    def add(self, info: RunInfo, tags: Mapping[str, str]) -> None:
        with self._lock:
            self._runs[info.run_id] = _Pending(info, dict(tags))

    def log_params(self, run_id: str, params: Sequence[Param]) -> bool:
        """Keep ``params`` with the pending run (``False``: it is not pending, write them to the
        store). A new value for a key raises ``Conflict`` as the store would; nothing is kept then."""
        pending = self._runs.get(run_id)
        if pending is None:
            return False
        with pending.lock:
            if pending.written:
                return False
            wanted = dict(pending.params)
            for p in params:
                old = wanted.setdefault(p.key, p.value)
                if old != p.value:
                    raise param_change_conflict(run_id, p.key, old, p.value)
            pending.params = wanted
            return True

    def set_tags(self, run_id: str, tags: Sequence[RunTag]) -> bool:
        """Keep ``tags`` with the pending run (``False``: it is not pending)."""
        pending = self._runs.get(run_id)
        if pending is None:
            return False
        with pending.lock:
            if pending.written:
                return False
            pending.tags.update((t.key, t.value) for t in tags)
            return True

    def write(self, store: Store, run_id: str, *, metrics: Sequence[Metric] = (), status: RunStatus | None = None,
              end_time: int | None = None) -> RunInfo | None:
        """Write the pending run with ``metrics`` (and ``status``/``end_time``) in one transaction;
        ``None`` when it is not pending (written already). A pending parent is written first, so
        that the store links the two. Whatever the outcome, the run is no longer pending: a
        failure is raised here once, and later calls meet the store's own answer."""
        pending = self._runs.get(run_id)
        if pending is None:
            return None
        parent = pending.info.parent_run_id
        if parent is not None and parent in self._runs:
            self.write(store, parent)
        with pending.lock:
            if pending.written:
                return None
            pending.written = True
            with self._lock:
                self._runs.pop(run_id, None)
            return store.runs.write(
                run_id, create=pending.info, params=[Param(k, v) for k, v in pending.params.items()],
                tags=[RunTag(k, v) for k, v in pending.tags.items()], metrics=metrics, status=status,
                end_time=end_time)

    def pending_info(self, run_id: str) -> RunInfo | None:
        """The info the run was created with, while it is pending."""
        pending = self._runs.get(run_id)
        return None if pending is None else pending.info

    def write_many(self, store: Store, batch: Sequence[tuple[str, Sequence[Metric], RunEnd | None]]
                   ) -> dict[str, RunInfo | ShipyardError]:
        """Write the pending runs among ``batch`` ((run id, metrics, end or ``None``) each, as the
        background writer gathered them) with one ``RunStore.write_many``: on SQL, one transaction
        for all of them. A pending parent of one of them is written with them, before it. Returns
        each written run's info or error; the runs of ``batch`` that were not pending are not in
        it (write them one by one). Raises ``StoreUnavailable`` when nothing was written: the runs
        are still pending then."""
        with self._lock:
            order: list[_Pending] = []
            for run_id, _metrics, _end in batch:
                self._with_parents(run_id, order)
        wanted = {run_id: (metrics, end) for run_id, metrics, end in batch}
        with contextlib.ExitStack() as held:
            for pending in sorted(order, key=lambda p: p.info.run_id):  # one order for every taker
                held.enter_context(pending.lock)
            taken = [pending for pending in order if not pending.written]
            writes = []
            for pending in taken:
                run_id = pending.info.run_id
                metrics, end = wanted.get(run_id, ((), None))
                writes.append(RunWrite(run_id, pending.info, [Param(k, v) for k, v in pending.params.items()],
                                       [RunTag(k, v) for k, v in pending.tags.items()], metrics,
                                       None if end is None else end.status, None if end is None else end.end_time))
            if not writes:
                return {}
            try:
                outcomes = store.runs.write_many(writes)
            except StoreUnavailable:
                raise  # nothing was written: they stay pending
            except BaseException:
                self._written(taken)
                raise
            self._written(taken)
        return {write.run_id: outcome for write, outcome in zip(writes, outcomes, strict=True)}

    def _written(self, runs: list[_Pending]) -> None:
        """No longer pending, whatever the outcome (under each run's lock)."""
        for pending in runs:
            pending.written = True
        with self._lock:
            for pending in runs:
                self._runs.pop(pending.info.run_id, None)

    def _with_parents(self, run_id: str, order: list[_Pending]) -> None:
        pending = self._runs.get(run_id)
        if pending is None or pending in order:
            return
        if pending.info.parent_run_id is not None:
            self._with_parents(pending.info.parent_run_id, order)
        order.append(pending)

    def write_all(self, store: Store) -> None:
        """Write every pending run (each in its own transaction); raise the first failure after
        trying them all."""
        failure: BaseException | None = None
        for run_id in list(self._runs):
            try:
                self.write(store, run_id)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
