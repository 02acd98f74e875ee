"""Deployments: a name that serves registered model versions, split by integer traffic weights,
with shadows that see every request but answer none, and the history of every change."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shipyard.entities.auth import DEFAULT_PROJECT

__all__ = ["DEPLOYMENT_EVENT_KINDS", "Batching", "Deployment", "DeploymentEvent", "DeploymentStatus",
           "ModelRef", "Resources", "Route"]


class DeploymentStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"  # serving traffic
    STOPPED = "STOPPED"  # kept, with its routes, but answering nothing until started again


@dataclass(frozen=True, slots=True, order=True)
class ModelRef:
    """Version ``version`` of registered model ``model``."""

    model: str
    version: int

    @property
    def uri(self) -> str:
        return f"models:/{self.model}/{self.version}"

    def __str__(self) -> str:
        return f"{self.model}/{self.version}"


@dataclass(frozen=True, slots=True)
class Route:
    """A model version that answers ``weight`` percent (0-100) of a deployment's requests."""

    model: str
    version: int
    weight: int

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.model, self.version)

    @property
    def uri(self) -> str:
        return self.ref.uri


@dataclass(frozen=True, slots=True)
class Batching:
    """How the serving app groups requests: up to ``max_batch_size`` rows per model call, waiting
    at most ``max_wait_ms`` for the batch to fill (``max_batch_size=1`` turns batching off)."""

    max_batch_size: int = 64
    max_wait_ms: float = 2.0


@dataclass(frozen=True, slots=True)
class Resources:
    """What each deployment asks of its platform, as Kubernetes spells it: ``replicas`` of the
    serving app, each with ``cpu`` (``"500m"``, ``"2"``) and ``memory`` (``"512Mi"``, ``"2Gi"``);
    an empty string leaves the platform's default."""

    replicas: int = 1
    cpu: str = ""
    memory: str = ""


@dataclass(frozen=True, slots=True)
class Deployment:
    """Deployment ``name`` in ``environment``. ``routes`` answer requests, their weights summing
    to 100: the primary first, then an optional canary. ``shadows`` receive a copy of every
    request and their answers are only logged. ``revision`` grows by one with every recorded
    change; ``user`` made the latest one, at ``last_update_time``. It belongs to ``project``
    from its creation on."""

    name: str
    environment: str
    routes: tuple[Route, ...]
    shadows: tuple[ModelRef, ...] = ()
    batching: Batching = field(default_factory=Batching)
    resources: Resources = field(default_factory=Resources)
    status: DeploymentStatus = DeploymentStatus.ACTIVE
    revision: int = 0
    creation_time: int = 0
    last_update_time: int = 0
    user: str = ""
    project: str = DEFAULT_PROJECT

    @property
    def primary(self) -> Route:
        return self.routes[0]

    @property
    def canary(self) -> Route | None:
        """The second route, when there is one."""
        return self.routes[1] if len(self.routes) > 1 else None

    @property
    def versions(self) -> tuple[ModelRef, ...]:
        """Every version it runs: the routes', then the shadows'."""
        return tuple(r.ref for r in self.routes) + tuple(self.shadows)

    def same_state(self, other: Deployment) -> bool:
        """Whether ``other`` serves the same way (everything but revision, times and user)."""
        return (self.environment, self.routes, self.shadows, self.batching, self.resources, self.status) == \
            (other.environment, other.routes, other.shadows, other.batching, other.resources, other.status)


# create: revision 1 (or the first after a delete); canary: a canary added, replaced or re-weighted;
# shadow: a shadow added or removed; promote: the canary became the primary; rollback: the state
# before the latest change, restored; update: batching, resources or environment changed, or
# started again; stop: stopped serving; delete: removed (its history stays).
DEPLOYMENT_EVENT_KINDS = ("create", "canary", "shadow", "promote", "rollback", "update", "stop", "delete")


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """Revision ``revision`` of deployment ``name``: what changed (``kind``, one of
    :data:`DEPLOYMENT_EVENT_KINDS`), who and when, the deployment as it was right after the change,
    and a sentence for people (``detail``). Kept after the deployment is deleted."""

    name: str
    revision: int
    kind: str
    timestamp: int
    user: str
    deployment: Deployment
    detail: str = ""
