"""Due monitors evaluated in the background of a long-running process (``shipyard server``).

A :class:`MonitorScheduler` is a daemon thread that runs
:meth:`~shipyard.monitoring.service.MonitorService.run_due` at start and then every ``interval``
seconds, as one lease owner for its lifetime. Nothing here decides who evaluates what: every
worker of every server may run one, and the monitors' database lease
(:meth:`~shipyard.store.protocol.MonitorStore.acquire_lease`) lets one runner at a time evaluate a
monitor, and the store records each window once. A thread, not an asyncio task: an evaluation
reads Parquet and a retrain action runs a command, neither of which may hold up the event loop
that answers requests.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from shipyard.auth.principal import Principal
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.monitoring.service import MonitorService, RunResult

__all__ = ["MONITOR_PRINCIPAL", "MonitorScheduler"]

LOGGER = logging.getLogger("shipyard.monitoring")
# Who background passes act as, and what the store records for their changes (runs, alias moves,
# deployment revisions). Not a monitor's ``user``: that is whoever changed the definition last
# (a pass that rebuilds a reference changes it too), and acting as a person for what nobody did
# at the time would misstate the audit trail. Unrestricted, like the server process it runs in;
# not anonymous, so a run it creates records this name (Principal.run_user). The ':' is outside
# the user-name grammar, so no account can be confused with it.
MONITOR_PRINCIPAL = Principal("shipyard:monitor", anonymous=False)


class MonitorScheduler:
    """Runs the due windows of every monitor of ``services()`` (a fresh service per pass) every
    ``interval`` seconds until :meth:`stop`."""

    def __init__(self, services: Callable[[], MonitorService], interval: float, *, owner: str | None = None) -> None:
        from shipyard.monitoring.service import default_owner

        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise InvalidInput(f"the monitor scheduling interval must be a number of seconds above 0, got {interval!r}")
        self.services = services
        self.interval = float(interval)
        self.owner = owner or default_owner()
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="shipyard-monitor-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the pass under way (waiting for it at most ``timeout`` seconds; a retrain
        command still running then finishes in the daemon thread or dies with the process)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> list[RunResult]:
        """One pass over every monitor; a failure is logged, never raised (the next pass retries)."""
        try:
            results = self.services().run_due(owner=self.owner)
        except Exception:  # the scheduler must outlive a store outage or a bug in one pass
            LOGGER.exception("scheduled monitor pass failed; retrying in %.0fs", self.interval)
            return []
        finally:
            self.passes += 1
        for result in results:
            if result.evaluated:
                LOGGER.info("monitor %s: evaluated %d window(s), %d alert(s)", result.monitor, len(result.evaluated),
                            len(result.alerts))
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)
