"""``RunStore.write_many`` as one ``write`` per run: the REST store's (one request each), the
access-scoped store's (each run checked on its own), and the SQL store's way of telling which run
of a failed batch transaction failed."""

from __future__ import annotations

from collections.abc import Sequence

from shipyard.entities import RunInfo, RunWrite
from shipyard.errors import InvalidInput, ShipyardError, StoreUnavailable
from shipyard.store.protocol import RunStore

__all__ = ["check_distinct", "write_each"]


def check_distinct(writes: Sequence[RunWrite]) -> None:
    """``InvalidInput`` when two writes of one batch name the same run."""
    if len({write.run_id for write in writes}) < len(writes):
        raise InvalidInput("a batch of run writes names a run twice; merge its writes into one")


def write_each(runs: RunStore, writes: Sequence[RunWrite]) -> list[RunInfo | ShipyardError]:
    """Each write with ``runs.write``; its info or the error it met, in order. ``StoreUnavailable``
    is raised as long as nothing was written (the caller may retry the whole batch)."""
    check_distinct(writes)
    outcomes: list[RunInfo | ShipyardError] = []
    for write in writes:
        try:
            outcomes.append(runs.write(write.run_id, create=write.create, params=write.params, tags=write.tags,
                                       metrics=write.metrics, status=write.status, end_time=write.end_time))
        except StoreUnavailable as exc:
            if not any(isinstance(outcome, RunInfo) for outcome in outcomes):
                raise
            outcomes.append(exc)
        except ShipyardError as exc:
            outcomes.append(exc)
    return outcomes
