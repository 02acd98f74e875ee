"""Failed sign-ins, counted per user name and per client address, in memory.

After ``limit`` failures within ``window_ms`` for a name, or from an address, further attempts
are refused (``TooManyAttempts``, with the seconds until the oldest failure leaves the window)
without checking the password at all, so a guesser gains nothing by going on. A success clears
that name's failures, everywhere; from the address it clears only that name's failures, so an
attacker who signs in to an account of their own between guesses does not reset the count of
their guesses at other names.

In memory and per process, on purpose: it slows online guessing without a write per request,
and a restart (or a second server process) forgets it. Both counts are bounded: entries older
than the window are pruned, and at most ``max_keys`` names and addresses are tracked.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from threading import Lock
from typing import TypeVar

from shipyard.clock import now_ms
from shipyard.errors import TooManyAttempts

__all__ = ["Throttle"]

T = TypeVar("T")


class Throttle:
    def __init__(self, *, limit: int = 5, window_ms: int = 5 * 60_000, clock: Callable[[], int] = now_ms,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window_ms = window_ms
        self.clock = clock
        self.max_keys = max_keys
        # key → failure times (and, per address, the name each was for), oldest first
        self._by_name: dict[str, deque[int]] = {}
        self._by_address: dict[str, deque[tuple[int, str]]] = {}
        self._lock = Lock()

    def check(self, name: str, address: str | None = None) -> None:
        """Raise ``TooManyAttempts`` when ``name`` or ``address`` has used up its attempts."""
        now = self.clock()
        start = now - self.window_ms
        with self._lock:
            oldest: list[int] = []
            times = self._by_name.get(name)
            if times is not None:
                _drop_before(times, start, lambda t: t)
                if len(times) >= self.limit:
                    oldest.append(times[-self.limit])
            failures = self._by_address.get(address) if address else None
            if failures is not None:
                _drop_before(failures, start, lambda f: f[0])
                if len(failures) >= self.limit:
                    oldest.append(failures[-self.limit][0])
        if oldest:
            retry_after = max(1, math.ceil((max(oldest) + self.window_ms - now) / 1000))
            raise TooManyAttempts(f"too many failed sign-ins for this user or from this address: try again in "
                                  f"{retry_after} s, or ask an admin to check the account", retry_after=retry_after)

    def failed(self, name: str, address: str | None = None) -> None:
        now = self.clock()
        with self._lock:
            if len(self) + 2 > self.max_keys:  # room for this name and this address
                self._prune(now - self.window_ms, self.max_keys - 2)
            self._by_name.setdefault(name, deque()).append(now)
            if address:
                self._by_address.setdefault(address, deque()).append((now, name))

    def succeeded(self, name: str, address: str | None = None) -> None:
        with self._lock:
            self._by_name.pop(name, None)
            if address and address in self._by_address:
                kept = deque(f for f in self._by_address[address] if f[1] != name)
                if kept:
                    self._by_address[address] = kept
                else:
                    del self._by_address[address]

    def __len__(self) -> int:
        """How many names and addresses are tracked."""
        return len(self._by_name) + len(self._by_address)

    def _prune(self, start: int, room: int) -> None:
        for name in [k for k, v in self._by_name.items() if not v or v[-1] <= start]:
            del self._by_name[name]
        for address in [k for k, v in self._by_address.items() if not v or v[-1][0] <= start]:
            del self._by_address[address]
        while len(self) > room:
            # Still full of recent failures (a spray across many names): forget the oldest keys
            # rather than grow without bound; the per-address count keeps limiting the sprayer.
            if len(self._by_name) >= len(self._by_address):
                del self._by_name[next(iter(self._by_name))]
            else:
                del self._by_address[next(iter(self._by_address))]


def _drop_before(entries: deque[T], start: int, when: Callable[[T], int]) -> None:
    while entries and when(entries[0]) <= start:
        entries.popleft()
