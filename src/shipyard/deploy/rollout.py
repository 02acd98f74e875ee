"""The rollout rules: create, canary, shadow, promote, roll back, stop, over any Store.

:class:`DeploymentService` holds them. Each change reads the deployment, computes its next state
here and writes it as a new revision through ``store.deployments.save`` with the revision it
read, so of two people changing the same deployment at once one wins and the other gets
``Conflict`` (nothing is overwritten unseen). Every revision records the service's principal. A
change that would leave the deployment as it is records nothing and returns it. Versions are
named by ``models:/`` URIs and resolved now, to the concrete version they point to: a deployment
never follows an alias on its own.

Rollback undoes changes one at a time, like an editor's undo: it restores the state before the
latest change not yet undone, recorded as a new revision of kind ``rollback``; rolling back again
undoes the change before that, down to the state the deployment was created with.

The module-level functions (``canary(client, ...)``) are the SDK's spelling of the same calls, for
a :class:`~shipyard.tracking.client.Client`'s store and user.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from shipyard.auth import Principal
from shipyard.deploy.limits import check_deployment
from shipyard.entities import (
    Batching,
    Deployment,
    DeploymentEvent,
    DeploymentStatus,
    ModelRef,
    Resources,
    Route,
)
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.models.uri import parse_models_uri, resolve_model_version
from shipyard.tracking import validation as rules

if TYPE_CHECKING:
    from shipyard.store.protocol import Store
    from shipyard.tracking.client import Client

__all__ = ["DEFAULT_ENVIRONMENT", "DeploymentService", "canary", "create_deployment", "delete_deployment",
           "deployment_history", "get_deployment", "list_deployments", "promote", "resolve_version", "rollback",
           "rollback_target", "set_weight", "shadow", "start", "stop", "unshadow", "update"]

DEFAULT_ENVIRONMENT = "default"


def _weight(weight: object) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(f"weight: the canary's share of traffic must be a whole percentage from 0 to 100, "
                           f"got {weight!r}", field="weight")
    return weight


def _split(primary: ModelRef, canary: ModelRef, weight: int) -> tuple[Route, Route]:
    return Route(primary.model, primary.version, 100 - weight), Route(canary.model, canary.version, weight)


def _require_canary(d: Deployment, action: str) -> Route:
    if d.canary is None:
        raise Conflict(f"deployment {d.name!r} has no canary to {action}; start one with: "
                       f"shipyard deploy canary {d.name} --model models:/NAME/VERSION --weight 10")
    return d.canary


def rollback_target(events: Sequence[DeploymentEvent]) -> tuple[DeploymentEvent, DeploymentEvent] | None:
    """(the revision a rollback restores, the change it undoes) for a deployment's history, or
    ``None`` when every change since it was created has been undone."""
    undoable: list[DeploymentEvent] = []
    for event in events:
        if event.kind == "create":
            undoable = [event]
        elif event.kind == "delete":
            undoable = []
        elif event.kind == "rollback":
            if len(undoable) > 1:
                undoable.pop()
        else:
            undoable.append(event)
    return (undoable[-2], undoable[-1]) if len(undoable) > 1 else None


class DeploymentService:
    """Deployments in ``store``, changed as ``principal``."""

    def __init__(self, store: Store, principal: Principal) -> None:
        self.store = store
        self.principal = principal

    def resolve_version(self, model_uri: str) -> ModelRef:
        """The concrete version ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or
        ``models:/NAME/latest`` names now. Raises ``NotFound`` naming a missing model, version or
        alias, and ``InvalidInput`` for any other kind of URI."""
        if not isinstance(model_uri, str) or not model_uri.startswith("models:/"):
            raise InvalidInput(f"model: a deployment serves registered model versions, named models:/NAME/VERSION, "
                               f"models:/NAME@ALIAS or models:/NAME/latest; got {model_uri!r} (register a logged "
                               "model first: shipyard models register runs:/RUN_ID/PATH NAME)", field="model")
        version = resolve_model_version(self.store.models, model_uri)
        return ModelRef(version.name, version.version)

    # -- reading ------------------------------------------------------------------------------
    def get(self, name: str) -> Deployment:
        """Raises ``NotFound`` naming the deployment."""
        return self.store.deployments.get(name)

    def list(self, environment: str | None = None, *, projects: Sequence[str] | None = None) -> list[Deployment]:
        """Every deployment (of ``environment`` only, if given; of ``projects``), by name."""
        return self.store.deployments.list(environment, projects=projects)

    def history(self, name: str) -> builtins.list[DeploymentEvent]:
        """Every revision, oldest first (kept after a delete)."""
        return self.store.deployments.history(name)

    # -- changes ------------------------------------------------------------------------------
    def create(self, name: str, model_uri: str, environment: str = DEFAULT_ENVIRONMENT, *,
               batching: Batching | None = None, resources: Resources | None = None) -> Deployment:
        """Deploy the version ``model_uri`` names now, answering all traffic. Raises ``NotFound``
        naming a missing model or version, ``AlreadyExists`` for a taken name."""
        rules.check_deployment_name(name)
        ref = self.resolve_version(model_uri)
        deployment = Deployment(name, environment, (Route(ref.model, ref.version, 100),),
                                batching=batching or Batching(), resources=resources or Resources())
        return self.store.deployments.create(check_deployment(deployment), user=self.principal.name,
                                             detail=f"created in {environment}: {ref} at 100% ({model_uri})")

    def create_deployment(self, deployment: Deployment, *, detail: str = "") -> Deployment:
        """Create ``deployment`` as given, its routes and shadows naming concrete versions (the
        native API's spelling). Raises ``InvalidInput`` naming a field out of
        :mod:`shipyard.deploy.limits`, ``NotFound`` for a missing version, ``AlreadyExists``."""
        return self.store.deployments.create(check_deployment(deployment), user=self.principal.name, detail=detail)

    def save_revision(self, deployment: Deployment, *, kind: str, detail: str = "") -> Deployment:
        """Write ``deployment`` as the revision after ``deployment.revision``, a change of
        ``kind``. Raises ``InvalidInput`` as :meth:`create_deployment`, ``Conflict`` when that
        revision is no longer the current one."""
        return self.store.deployments.save(check_deployment(deployment), kind=kind, user=self.principal.name,
                                           detail=detail)

    def _change(self, name: str, kind: str, step: Callable[[Deployment], tuple[Deployment, str]]) -> Deployment:
        current = self.store.deployments.get(name)
        new, detail = step(current)
        if new.same_state(current):
            return current
        return self.store.deployments.save(check_deployment(new), kind=kind, user=self.principal.name, detail=detail)

    def canary(self, name: str, model_uri: str, weight: int) -> Deployment:
        """Send ``weight`` percent of traffic to the version ``model_uri`` names, the primary keeping
        the rest. An existing canary is replaced; a version that was a shadow stops shadowing."""
        weight = _weight(weight)
        ref = self.resolve_version(model_uri)

        def step(d: Deployment) -> tuple[Deployment, str]:
            primary = d.primary.ref
            if ref == primary:
                raise InvalidInput(f"model: {ref} is already the primary of deployment {name!r}; a canary must be "
                                   "another version", field="model")
            detail = f"canary {ref} at {weight}%, primary {primary} at {100 - weight}%"
            if d.canary is not None and d.canary.ref != ref:
                detail += f" (replaces canary {d.canary.ref})"
            if ref in d.shadows:
                detail += f" ({ref} no longer shadows)"
            return (replace(d, routes=_split(primary, ref, weight), shadows=tuple(s for s in d.shadows if s != ref)),
                    detail)

        return self._change(name, "canary", step)

    def set_weight(self, name: str, weight: int) -> Deployment:
        """Give the canary ``weight`` percent of traffic (the primary the rest)."""
        weight = _weight(weight)

        def step(d: Deployment) -> tuple[Deployment, str]:
            current = _require_canary(d, "re-weight")
            return (replace(d, routes=_split(d.primary.ref, current.ref, weight)),
                    f"canary {current.ref}: {current.weight}% -> {weight}%")

        return self._change(name, "canary", step)

    def shadow(self, name: str, model_uri: str) -> Deployment:
        """Mirror every request to the version ``model_uri`` names; its answers are logged, never returned."""
        ref = self.resolve_version(model_uri)

        def step(d: Deployment) -> tuple[Deployment, str]:
            if ref in {r.ref for r in d.routes}:
                role = "primary" if ref == d.primary.ref else "canary"
                raise InvalidInput(f"model: {ref} already answers requests of deployment {name!r} (the {role}); "
                                   "a shadow must be another version", field="model")
            if ref in d.shadows:
                return d, ""
            return replace(d, shadows=(*d.shadows, ref)), f"shadowing {ref}"

        return self._change(name, "shadow", step)

    def unshadow(self, name: str, model_uri: str) -> Deployment:
        """Stop mirroring requests to a shadow (``models:/NAME/VERSION`` is taken as written, so a
        version deleted from the registry since can still be removed)."""
        model, number, _ = parse_models_uri(model_uri) if isinstance(model_uri, str) else ("", None, None)
        ref = ModelRef(model, number) if number is not None else self.resolve_version(model_uri)

        def step(d: Deployment) -> tuple[Deployment, str]:
            if ref not in d.shadows:
                shadows = ", ".join(str(s) for s in d.shadows) or "none"
                raise NotFound(f"deployment {name!r} has no shadow {ref} (its shadows: {shadows})")
            return replace(d, shadows=tuple(s for s in d.shadows if s != ref)), f"stopped shadowing {ref}"

        return self._change(name, "shadow", step)

    def promote(self, name: str) -> Deployment:
        """Make the canary the primary, answering all traffic; the old primary stops serving.
        Raises ``Conflict`` when there is no canary."""
        def step(d: Deployment) -> tuple[Deployment, str]:
            new = _require_canary(d, "promote").ref
            return (replace(d, routes=(Route(new.model, new.version, 100),)),
                    f"canary {new} promoted to primary at 100% (was {d.primary.ref})")

        return self._change(name, "promote", step)

    def stop(self, name: str) -> Deployment:
        """Stop serving; routes and shadows are kept for :meth:`start`."""
        return self._change(name, "stop", lambda d: (replace(d, status=DeploymentStatus.STOPPED), "stopped"))

    def start(self, name: str) -> Deployment:
        """Serve again after :meth:`stop`."""
        return self._change(name, "update", lambda d: (replace(d, status=DeploymentStatus.ACTIVE), "started"))

    def update(self, name: str, *, environment: str | None = None, batching: Batching | None = None,
               resources: Resources | None = None) -> Deployment:
        """Change what is given: the environment, batching or resources."""
        def step(d: Deployment) -> tuple[Deployment, str]:
            new = replace(d, environment=d.environment if environment is None else environment,
                          batching=batching or d.batching, resources=resources or d.resources)
            changed = [label for label, a, b in (("environment", d.environment, new.environment),
                                                 ("batching", d.batching, new.batching),
                                                 ("resources", d.resources, new.resources)) if a != b]
            return new, "changed " + ", ".join(changed)

        return self._change(name, "update", step)

    def rollback(self, name: str) -> Deployment:
        """Restore the state before the latest change not yet undone, as a new revision of kind
        ``rollback``. Raises ``Conflict`` when there is nothing to roll back to (every change since
        the deployment was created is undone), and ``NotFound`` when a version it restores has been
        deleted from the registry since."""
        store = self.store.deployments
        current = store.get(name)
        events = store.history(name)
        if events[-1].revision != current.revision:
            raise Conflict(f"deployment {name!r} changed while its history was read; retry")
        found = rollback_target(events)
        if found is None:
            created = next(e.revision for e in reversed(events) if e.kind == "create")
            raise Conflict(f"deployment {name!r} has nothing to roll back to: revision {current.revision} is the "
                           f"state it was created with (revision {created})"
                           + (", every later change is rolled back" if current.revision != created else ""))
        target, undone = found
        state = target.deployment
        new = replace(current, environment=state.environment, routes=state.routes, shadows=state.shadows,
                      batching=state.batching, resources=state.resources, status=state.status)
        return store.save(new, kind="rollback", user=self.principal.name,
                          detail=f"rolled back to revision {target.revision} (undoing revision {undone.revision}: "
                                 f"{undone.kind})")

    def delete(self, name: str, *, detail: str = "deleted") -> None:
        """Remove a deployment; its history and lineage stay, the delete recorded with ``detail``."""
        self.store.deployments.delete(name, user=self.principal.name, detail=detail)


# -- the SDK's spelling: the same calls on a Client's store, as its user -------------------------
def resolve_version(client: Client, model_uri: str) -> ModelRef:
    return client.deployments.resolve_version(model_uri)


def get_deployment(client: Client, name: str) -> Deployment:
    return client.deployments.get(name)


def list_deployments(client: Client, environment: str | None = None) -> list[Deployment]:
    return client.deployments.list(environment)


def deployment_history(client: Client, name: str) -> list[DeploymentEvent]:
    return client.deployments.history(name)


def create_deployment(client: Client, name: str, model_uri: str, environment: str = DEFAULT_ENVIRONMENT, *,
                      batching: Batching | None = None, resources: Resources | None = None) -> Deployment:
    return client.deployments.create(name, model_uri, environment, batching=batching, resources=resources)


def canary(client: Client, name: str, model_uri: str, weight: int) -> Deployment:
    return client.deployments.canary(name, model_uri, weight)


def set_weight(client: Client, name: str, weight: int) -> Deployment:
    return client.deployments.set_weight(name, weight)


def shadow(client: Client, name: str, model_uri: str) -> Deployment:
    return client.deployments.shadow(name, model_uri)


def unshadow(client: Client, name: str, model_uri: str) -> Deployment:
    return client.deployments.unshadow(name, model_uri)


def promote(client: Client, name: str) -> Deployment:
    return client.deployments.promote(name)


def stop(client: Client, name: str) -> Deployment:
    return client.deployments.stop(name)


def start(client: Client, name: str) -> Deployment:
    return client.deployments.start(name)


def update(client: Client, name: str, *, environment: str | None = None, batching: Batching | None = None,
           resources: Resources | None = None) -> Deployment:
    return client.deployments.update(name, environment=environment, batching=batching, resources=resources)


def rollback(client: Client, name: str) -> Deployment:
    return client.deployments.rollback(name)


def delete_deployment(client: Client, name: str) -> None:
    client.deployments.delete(name)
