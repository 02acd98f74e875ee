"""The shape a deployment must have: its limits (routes, shadows, batching, replicas) and how
each field is written, checked by :class:`~shipyard.deploy.rollout.DeploymentService` before any
change reaches a store (a store keeps only its integrity constraints)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from shipyard.entities import Batching, Deployment, DeploymentStatus, ModelRef, Resources, Route
from shipyard.errors import InvalidInput
from shipyard.tracking import validation as rules

__all__ = ["MAX_BATCH_SIZE", "MAX_REPLICAS", "MAX_ROUTES", "MAX_SHADOWS", "MAX_WAIT_MS", "check_deployment",
           "check_environment"]

MAX_ROUTES = 10
MAX_SHADOWS = 10
MAX_BATCH_SIZE = 100_000
MAX_WAIT_MS = 60_000
MAX_REPLICAS = 1000
_ENVIRONMENT = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")
# A Kubernetes quantity: 500m, 0.5, 2, 512Mi, 1G.
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?")


# -- shape rules ----------------------------------------------------------------------------------
def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", field=field)


def _ref(field: str, model: Any, version: Any) -> ModelRef:
    try:
        rules.check_model_name(model)
    except InvalidInput as exc:
        raise _invalid(f"{field}.model", str(exc)) from None
    return ModelRef(model, rules.check_whole(f"{field}.version", version, 1, 2**63 - 1))


def _quantity(field: str, value: Any) -> str:
    if not isinstance(value, str) or (value and not _QUANTITY.fullmatch(value)):
        raise _invalid(field, f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 4Gi) "
                              "nor empty (the platform's default)")
    return value


def check_environment(environment: Any) -> str:
    """An environment name: a letter, then letters, digits, ``_`` and ``-`` (at most 64)."""
    if not isinstance(environment, str) or not _ENVIRONMENT.fullmatch(environment):
        raise _invalid("environment", f"{environment!r} is not valid: start with a letter, then letters, "
                                      "digits, _ or - (at most 64), e.g. production, staging, eu-west")
    return environment


def check_deployment(d: Deployment) -> Deployment:
    """``d`` with every field checked (``InvalidInput`` naming the field) and normalised."""
    try:
        rules.check_deployment_name(d.name)
    except InvalidInput as exc:
        raise _invalid("name", str(exc)) from None
    routes = tuple(d.routes) if isinstance(d.routes, Sequence) else ()
    if not 1 <= len(routes) <= MAX_ROUTES:
        raise _invalid("routes", f"a deployment needs 1 to {MAX_ROUTES} routes (primary first, then the "
                                 f"canary), got {len(routes)}")
    checked_routes = []
    for i, route in enumerate(routes):
        ref = _ref(f"routes[{i}]", route.model, route.version)
        weight = rules.check_whole(f"routes[{i}].weight", route.weight, 0, 100)
        checked_routes.append(Route(ref.model, ref.version, weight))
    total = sum(r.weight for r in checked_routes)
    if total != 100:
        raise _invalid("routes", "the traffic weights must add up to 100, got "
                       + " + ".join(str(r.weight) for r in checked_routes) + f" = {total}")
    if len(d.shadows) > MAX_SHADOWS:
        raise _invalid("shadows", f"at most {MAX_SHADOWS} shadows, got {len(d.shadows)}")
    shadows = tuple(_ref(f"shadows[{i}]", s.model, s.version) for i, s in enumerate(d.shadows))
    seen: set[ModelRef] = set()
    for field, ref in [("routes", r.ref) for r in checked_routes] + [("shadows", s) for s in shadows]:
        if ref in seen:
            raise _invalid(field, f"version {ref.version} of model {ref.model!r} appears twice; a version "
                                  "either answers (a route) or shadows, once")
        seen.add(ref)
    b, r = d.batching, d.resources
    wait = b.max_wait_ms
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not math.isfinite(wait) \
            or not 0 <= wait <= MAX_WAIT_MS:
        raise _invalid("batching.max_wait_ms", f"must be a number of milliseconds from 0 to {MAX_WAIT_MS}, "
                                               f"got {wait!r}")
    return replace(
        d,
        environment=check_environment(d.environment),
        routes=tuple(checked_routes),
        shadows=shadows,
        batching=Batching(rules.check_whole("batching.max_batch_size", b.max_batch_size, 1, MAX_BATCH_SIZE),
                          float(wait)),
        resources=Resources(rules.check_whole("resources.replicas", r.replicas, 0, MAX_REPLICAS),
                            _quantity("resources.cpu", r.cpu), _quantity("resources.memory", r.memory)),
        status=rules.check_choice("status", d.status, DeploymentStatus),
        project=rules.check_project(d.project),
    )
