"""What one revision of a deployment serves: its routing table, the loaded versions it routes to,
and the lease a request holds on them.

A :class:`RoutingTable` is immutable: :class:`~shipyard.serving.deployment.DeploymentServing`
builds a new one per revision and swaps it in whole, so a request routed by the old table keeps
the versions it leased until it ends.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.deploy.traffic import BUCKETS, TrafficSplit, bucket
from shipyard.entities import Batching, Deployment, ModelRef
from shipyard.serving.models import ModelSet, ServedModel

__all__ = ["SHADOW_BACKLOG", "SHADOW_BACKLOG_UNBATCHED", "HeldVersion", "Lease", "RoutingTable"]

# Requests waiting per shadow version; beyond it they are dropped (and counted) rather than queued.
SHADOW_BACKLOG = 256
# Without batching a shadow's predict calls share asyncio's default thread pool with the callers'
# work: keep its share of those threads small.
SHADOW_BACKLOG_UNBATCHED = 2


class HeldVersion:
    """One loaded version with one batcher (per batching setting); leased by the requests using it."""

    def __init__(self, ref: ModelRef, served: ServedModel, batching: Batching, folder: Path | None,
                 on_batch: Callable[[int, int, float], None]) -> None:
        self.ref = ref
        self.served = served
        self.batching = batching
        self.folder = folder
        self.batcher = served.batcher(max_batch_size=batching.max_batch_size, max_wait_ms=batching.max_wait_ms,
                                      on_batch=on_batch, name=str(ref))
        self.leases = 0
        self.retired = False
        self.shadow_waiting = 0

    @property
    def key(self) -> tuple[ModelRef, Batching]:
        return self.ref, self.batching

    @property
    def shadow_backlog(self) -> int:
        return SHADOW_BACKLOG if self.batcher.enabled else SHADOW_BACKLOG_UNBATCHED


@dataclass(frozen=True)
class RoutingTable:
    """What one revision serves: each route's version (in route order) and the shadows."""

    deployment: Deployment
    split: TrafficSplit
    routes: tuple[HeldVersion, ...]
    shadows: tuple[HeldVersion, ...]
    models: ModelSet = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", ModelSet(v.served for v in self.routes))

    @property
    def versions(self) -> tuple[HeldVersion, ...]:
        return self.routes + self.shadows

    def pick(self, key: str | None, rng: random.Random | None = None) -> tuple[HeldVersion, str]:
        """(the version answering a request with routing ``key``, its role)."""
        b = bucket(key, self.split.salt) if key else (rng or random).randrange(BUCKETS)
        index = self.split.index_of_bucket(b)
        return self.routes[index], "primary" if index == 0 else "canary"

    def describe(self) -> list[dict[str, Any]]:
        d = self.deployment
        listed = [{"version": str(r.ref), "role": "primary" if i == 0 else "canary", "weight": r.weight}
                  for i, r in enumerate(d.routes)]
        return listed + [{"version": str(ref), "role": "shadow"} for ref in d.shadows]


@dataclass
class Lease:
    """The versions one request holds: the one answering it, and the shadows it will be mirrored to
    (each mirror takes a lease of its own, so the request gives all of these back when it ends)."""

    table: RoutingTable
    version: HeldVersion
    role: str
    shadows: list[HeldVersion]
