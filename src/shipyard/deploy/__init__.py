"""Deployments: which registered model versions serve a name, with what share of traffic, and
the rules that move them (canary, shadow, promote, rollback): :class:`DeploymentService`, over a
Store, as a principal (the functions are the SDK's spelling, for a
:class:`~shipyard.tracking.client.Client`). :mod:`shipyard.deploy.traffic` splits requests
between the routes for the serving app."""

from shipyard.deploy.rollout import (
    DEFAULT_ENVIRONMENT,
    DeploymentService,
    canary,
    create_deployment,
    delete_deployment,
    deployment_history,
    get_deployment,
    list_deployments,
    promote,
    resolve_version,
    rollback,
    rollback_target,
    set_weight,
    shadow,
    start,
    stop,
    unshadow,
    update,
)
from shipyard.deploy.traffic import TrafficSplit, bucket

__all__ = ["DEFAULT_ENVIRONMENT", "DeploymentService", "TrafficSplit", "bucket", "canary", "create_deployment",
           "delete_deployment", "deployment_history", "get_deployment", "list_deployments", "promote",
           "resolve_version", "rollback", "rollback_target", "set_weight", "shadow", "start", "stop", "unshadow",
           "update"]
