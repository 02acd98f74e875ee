"""Splitting a deployment's requests between its routes, for the serving app.

The 100 percent of traffic is laid out as buckets 0-99, each route owning a contiguous range in
route order: with the primary at 90 and a canary at 10, buckets 0-89 go to the primary and 90-99
to the canary. A request is either drawn at random (weighted) or, given a key (a user or
session id), routed by its *sticky bucket*: a hash of the deployment's name and the key, so the
same key lands on the same version for as long as the weights stay, and different deployments
split their users independently. Because the canary's range grows from the top, raising its
weight (10 -> 25) only moves keys from the primary to the canary, never back.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shipyard.entities import Deployment, Route
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np

__all__ = ["BUCKETS", "TrafficSplit", "bucket"]

BUCKETS = 100


def _key_bytes(key: str | bytes | int) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode()


def bucket(key: str | bytes | int, salt: str = "") -> int:
    """The sticky bucket (0-99) of ``key``: the first 8 bytes of BLAKE2b(salt, NUL, key), modulo 100
    (deployment names hold no control characters, so salt and key cannot run into each other)."""
    digest = hashlib.blake2b(salt.encode() + b"\x00" + _key_bytes(key), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


class TrafficSplit:
    """Which route answers each request of one deployment revision (build a new one when the
    deployment changes). ``salt`` keeps the buckets of different deployments independent."""

    def __init__(self, routes: Sequence[Route], *, salt: str = "") -> None:
        if not routes or any(isinstance(r.weight, bool) or not 0 <= r.weight <= 100 for r in routes) \
                or sum(r.weight for r in routes) != BUCKETS:
            raise InvalidInput("routes: a traffic split needs routes with whole weights of 0-100 summing to 100, "
                               f"got {[r.weight for r in routes]}", field="routes")
        self.routes = tuple(routes)
        self.salt = salt
        bounds, total = [], 0
        for route in self.routes:
            total += route.weight
            bounds.append(total)
        self._bounds = bounds  # the exclusive upper bucket of each route

    @classmethod
    def of(cls, deployment: Deployment) -> TrafficSplit:
        """The split of ``deployment``, salted with its name."""
        return cls(deployment.routes, salt=deployment.name)

    def index_of_bucket(self, b: int) -> int:
        """The index of the route owning bucket ``b`` (0-99); zero-weight routes own none."""
        return bisect.bisect_right(self._bounds, b)

    def pick(self, key: str | bytes | int | None = None, *, rng: random.Random | None = None) -> Route:
        """The route of one request: sticky by ``key`` when given, else weighted at random."""
        b = bucket(key, self.salt) if key is not None else (rng or random).randrange(BUCKETS)
        return self.routes[self.index_of_bucket(b)]

    def pick_indices(self, keys: Iterable[str | bytes | int] | None = None, *, size: int | None = None,
                     rng: np.random.Generator | None = None) -> np.ndarray:
        """Route indices for many requests at once (a numpy array): sticky by ``keys``, or ``size``
        weighted random draws. Hashing is per key; the bucket-to-route lookup is vectorised."""
        import numpy as np

        if (keys is None) == (size is None):
            raise InvalidInput("give either keys (sticky routing) or size (random draws), not both")
        if keys is not None:
            buckets = np.fromiter((bucket(k, self.salt) for k in keys), dtype=np.int64)
        else:
            buckets = (rng or np.random.default_rng()).integers(0, BUCKETS, size=size)
        return np.searchsorted(np.asarray(self._bounds), buckets, side="right")

    def pick_many(self, keys: Iterable[str | bytes | int] | None = None, *, size: int | None = None,
                  rng: Any = None) -> list[Route]:
        """Like :meth:`pick_indices`, as routes."""
        return [self.routes[i] for i in self.pick_indices(keys, size=size, rng=rng).tolist()]

    def __repr__(self) -> str:
        return "TrafficSplit(" + ", ".join(f"{r.model}/{r.version}={r.weight}%" for r in self.routes) + ")"
