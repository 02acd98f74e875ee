"""Who is asking, and what each route needs: deny by default.

Every request is resolved to a :class:`Principal` before any handler runs (:func:`authorize`
is a dependency of the whole app, so it runs for every route of every router, including
routers added later). Every route's name must appear in :data:`ROUTE_PERMISSIONS`; a route
that is missing is refused (403) until someone decides what it needs. Today every
request is the anonymous local user, who holds every permission; users, tokens and
per-project roles plug in at :func:`resolve_principal` and :meth:`Principal.can`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import Request
from starlette.types import Scope

from shipyard.errors import PermissionDenied


class Permission(enum.StrEnum):
    PUBLIC = "public"  # health, version, API schema: no principal needed
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    name: str
    anonymous: bool = True

    def can(self, permission: Permission) -> bool:
        # Without authentication configured, the local user may do everything.
        return True


ANONYMOUS = Principal("local")

ROUTE_PERMISSIONS: Mapping[str, Permission] = {
    # meta
    "health": Permission.PUBLIC,
    "version": Permission.PUBLIC,
    "openapi": Permission.PUBLIC,
    "api_docs": Permission.PUBLIC,
    "prometheus_metrics": Permission.READ,
    # experiments
    "create_experiment": Permission.WRITE,
    "list_experiments": Permission.READ,
    "get_experiment": Permission.READ,
    "get_experiment_by_name": Permission.READ,
    "rename_experiment": Permission.WRITE,
    "delete_experiment": Permission.WRITE,
    "restore_experiment": Permission.WRITE,
    "set_experiment_tags": Permission.WRITE,
    "delete_experiment_tag": Permission.WRITE,
    # runs
    "create_run": Permission.WRITE,
    "get_run": Permission.READ,
    "update_run": Permission.WRITE,
    "delete_run": Permission.WRITE,
    "restore_run": Permission.WRITE,
    "log_params": Permission.WRITE,
    "set_run_tags": Permission.WRITE,
    "delete_run_tag": Permission.WRITE,
    "log_metrics": Permission.WRITE,
    "get_metric_history": Permission.READ,
    "search_runs": Permission.READ,
    # artifacts
    "list_artifacts": Permission.READ,
    "download_artifact": Permission.READ,
    "upload_artifact": Permission.WRITE,
    # model registry (approving, and choosing which aliases need approval: admin)
    "create_registered_model": Permission.WRITE,
    "list_registered_models": Permission.READ,
    "search_registered_models": Permission.READ,
    "get_registered_model": Permission.READ,
    "update_registered_model": Permission.WRITE,
    "delete_registered_model": Permission.WRITE,
    "rename_registered_model": Permission.WRITE,
    "set_registered_model_tags": Permission.WRITE,
    "delete_registered_model_tag": Permission.WRITE,
    "get_registered_model_history": Permission.READ,
    "create_model_version": Permission.WRITE,
    "get_model_version": Permission.READ,
    "update_model_version": Permission.WRITE,
    "delete_model_version": Permission.WRITE,
    "set_model_version_tags": Permission.WRITE,
    "delete_model_version_tag": Permission.WRITE,
    "approve_model_version": Permission.ADMIN,
    "get_model_version_by_alias": Permission.READ,
    "set_model_alias": Permission.WRITE,
    "delete_model_alias": Permission.WRITE,
    "protect_model_alias": Permission.ADMIN,
    "unprotect_model_alias": Permission.ADMIN,
    "list_model_versions": Permission.READ,
    "search_model_versions": Permission.READ,
    # datasets and lineage (a query of edges is a POST that reads)
    "log_dataset_version": Permission.WRITE,
    "list_datasets": Permission.READ,
    "list_dataset_versions": Permission.READ,
    "get_dataset_version": Permission.READ,
    "add_lineage_edges": Permission.WRITE,
    "query_lineage_edges": Permission.READ,
    "get_lineage_graph": Permission.READ,
    "explain_lineage": Permission.READ,
}


def resolve_principal(scope: Scope) -> Principal:
    return ANONYMOUS


def authorize(request: Request) -> Principal:
    """Resolve the principal and check the matched route's declared permission."""
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    permission = ROUTE_PERMISSIONS.get(name or "")
    if permission is None:
        raise PermissionDenied(f"route {getattr(route, 'path', request.url.path)} declares no permission "
                               "and is refused")
    principal = resolve_principal(request.scope)
    request.state.principal = principal
    if not principal.can(permission):
        raise PermissionDenied(f"{principal.name} lacks the {permission.value} permission for this route")
    return principal
