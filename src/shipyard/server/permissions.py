"""Who is asking, and what each route needs: deny by default.

Every request is resolved to a :class:`Principal` before any handler runs (:func:`authorize`
is a dependency of the whole app, so it runs for every route of every router, including
routers added later). Every route's name must appear in :data:`ROUTE_PERMISSIONS`; a route
that is missing is refused (403) until someone decides what it needs. Without ``--auth``
every request is the anonymous local user, who holds every permission; with it, the
principal comes from the request's credentials (:mod:`shipyard.server.authentication`) and
holds the roles of its user. Which role each permission needs is the one table in
:mod:`shipyard.auth.roles`.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from shipyard.auth import ANONYMOUS, Permission, Principal
from shipyard.auth.roles import minimum_role
from shipyard.errors import PermissionDenied, Unauthenticated
from shipyard.server.authentication import SIGN_IN_MESSAGE, VISITOR, Authenticator

ROUTE_PERMISSIONS: Mapping[str, Permission] = {
    # meta
    "health": Permission.PUBLIC,
    "version": Permission.PUBLIC,
    "openapi": Permission.PUBLIC,
    "api_docs": Permission.PUBLIC,
    "prometheus_metrics": Permission.ADMIN,  # every project's monitors and deployments
    # experiments
    "create_experiment": Permission.WRITE,
    "list_experiments": Permission.READ,
    "get_experiment": Permission.READ,
    "get_experiment_by_name": Permission.READ,
    "rename_experiment": Permission.WRITE,
    "delete_experiment": Permission.DELETE,
    "restore_experiment": Permission.WRITE,
    "set_experiment_tags": Permission.WRITE,
    "delete_experiment_tag": Permission.WRITE,
    # runs
    "create_run": Permission.WRITE,
    "write_run": Permission.WRITE,
    "get_run": Permission.READ,
    "update_run": Permission.WRITE,
    "delete_run": Permission.DELETE,
    "restore_run": Permission.WRITE,
    "log_params": Permission.WRITE,
    "set_run_tags": Permission.WRITE,
    "delete_run_tag": Permission.WRITE,
    "log_metrics": Permission.WRITE,
    "get_metric_history": Permission.READ,
    "get_metric_history_columns": Permission.READ,
    "search_runs": Permission.READ,
    # artifacts
    "list_artifacts": Permission.READ,
    "download_artifact": Permission.READ,
    "upload_artifact": Permission.WRITE,
    "delete_artifact": Permission.DELETE,
    # model registry (approving, and choosing which aliases need approval: maintainers)
    "create_registered_model": Permission.WRITE,
    "list_registered_models": Permission.READ,
    "search_registered_models": Permission.READ,
    "get_registered_model": Permission.READ,
    "update_registered_model": Permission.WRITE,
    "delete_registered_model": Permission.DELETE,
    "rename_registered_model": Permission.WRITE,
    "set_registered_model_tags": Permission.WRITE,
    "delete_registered_model_tag": Permission.WRITE,
    "get_registered_model_history": Permission.READ,
    "create_model_version": Permission.WRITE,
    "get_model_version": Permission.READ,
    "update_model_version": Permission.WRITE,
    "delete_model_version": Permission.DELETE,
    "set_model_version_tags": Permission.WRITE,
    "delete_model_version_tag": Permission.WRITE,
    "approve_model_version": Permission.MAINTAIN,
    "get_model_version_by_alias": Permission.READ,
    "set_model_alias": Permission.WRITE,
    "delete_model_alias": Permission.WRITE,
    "protect_model_alias": Permission.MAINTAIN,
    "unprotect_model_alias": Permission.MAINTAIN,
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
    # logged models (a search is a POST that reads)
    "create_logged_model": Permission.WRITE,
    "search_logged_models": Permission.READ,
    "get_logged_model": Permission.READ,
    "update_logged_model": Permission.WRITE,
    "delete_logged_model": Permission.DELETE,
    "set_logged_model_tags": Permission.WRITE,
    "delete_logged_model_tag": Permission.WRITE,
    "log_logged_model_params": Permission.WRITE,
    "list_run_logged_models": Permission.READ,
    "log_logged_model_metrics": Permission.WRITE,
    "add_run_links": Permission.WRITE,
    "query_run_links": Permission.READ,
    # deployments: every change (a revision is how canary, promote and rollback reach the server)
    "create_deployment": Permission.MAINTAIN,
    "list_deployments": Permission.READ,
    "get_deployment": Permission.READ,
    "save_deployment_revision": Permission.MAINTAIN,
    "get_deployment_history": Permission.READ,
    "delete_deployment": Permission.DELETE,
    # monitors (a runner takes the lease and records each window it evaluated)
    "create_monitor": Permission.WRITE,
    "list_monitors": Permission.READ,
    "get_monitor": Permission.READ,
    "save_monitor": Permission.WRITE,
    "delete_monitor": Permission.DELETE,
    "acquire_monitor_lease": Permission.WRITE,
    "release_monitor_lease": Permission.WRITE,
    "record_monitor_evaluation": Permission.WRITE,
    "list_monitor_evaluations": Permission.READ,
    "record_monitor_alert": Permission.WRITE,
    "list_monitor_alerts": Permission.READ,
    # the web UI (server/ui): pages read, its forms need what the API route doing the same change needs
    "ui_root": Permission.READ,
    "ui_index": Permission.READ,
    "ui_static": Permission.PUBLIC,
    "ui_login": Permission.PUBLIC,  # signing in, out, and making the first admin (server/ui/auth_pages.py)
    "ui_sign_in": Permission.PUBLIC,
    "ui_sign_out": Permission.PUBLIC,
    "ui_setup": Permission.PUBLIC,
    "ui_bootstrap": Permission.PUBLIC,
    "ui_oidc_login": Permission.PUBLIC,  # single sign-on: to the provider and back (server/ui/oidc_pages.py)
    "ui_oidc_callback": Permission.PUBLIC,
    "ui_experiments": Permission.READ,
    "ui_runs": Permission.READ,
    "ui_run": Permission.READ,
    "ui_run_artifacts": Permission.READ,
    "ui_artifact_raw": Permission.READ,
    "ui_compare": Permission.READ,
    "ui_compare_series": Permission.READ,
    "ui_models": Permission.READ,
    "ui_model": Permission.READ,
    "ui_model_version": Permission.READ,
    "ui_approve_model_version": Permission.MAINTAIN,
    "ui_set_model_alias": Permission.WRITE,
    "ui_lineage": Permission.READ,
    "ui_datasets": Permission.READ,
    "ui_dataset_version": Permission.READ,
    "ui_dataset_diff": Permission.READ,
    "ui_deployments": Permission.READ,
    "ui_deployment": Permission.READ,
    "ui_confirm_rollback": Permission.READ,
    "ui_rollback_deployment": Permission.MAINTAIN,
    "ui_monitors": Permission.READ,
    "ui_monitor": Permission.READ,
    "ui_pipelines": Permission.READ,
    "ui_pipeline": Permission.READ,
    # the MLflow-compatible API (server/mlflow_compat): the same rules, MLflow's routes
    "mlflow_create_experiment": Permission.WRITE,
    "mlflow_create_logged_model": Permission.WRITE,
    "mlflow_create_model_version": Permission.WRITE,
    "mlflow_create_registered_model": Permission.WRITE,
    "mlflow_create_run": Permission.WRITE,
    "mlflow_delete_artifact": Permission.DELETE,
    "mlflow_delete_experiment": Permission.DELETE,
    "mlflow_delete_experiment_tag": Permission.WRITE,
    "mlflow_delete_logged_model": Permission.DELETE,
    "mlflow_delete_logged_model_tag": Permission.WRITE,
    "mlflow_delete_model_version": Permission.DELETE,
    "mlflow_delete_model_version_tag": Permission.WRITE,
    "mlflow_delete_registered_model": Permission.DELETE,
    "mlflow_delete_registered_model_alias": Permission.WRITE,
    "mlflow_delete_registered_model_tag": Permission.WRITE,
    "mlflow_delete_run": Permission.DELETE,
    "mlflow_delete_tag": Permission.WRITE,
    "mlflow_download_artifact": Permission.READ,
    "mlflow_download_logged_model_artifact": Permission.READ,
    "mlflow_finalize_logged_model": Permission.WRITE,
    "mlflow_get_experiment": Permission.READ,
    "mlflow_get_experiment_by_name": Permission.READ,
    "mlflow_get_latest_versions": Permission.READ,
    "mlflow_get_logged_model": Permission.READ,
    "mlflow_get_metric_history": Permission.READ,
    "mlflow_get_metric_history_bulk": Permission.READ,
    "mlflow_get_metric_history_bulk_interval": Permission.READ,
    "mlflow_get_model_version_artifact": Permission.READ,
    "mlflow_get_run_artifact": Permission.READ,
    "mlflow_get_model_version": Permission.READ,
    "mlflow_get_model_version_by_alias": Permission.READ,
    "mlflow_get_model_version_download_uri": Permission.READ,
    "mlflow_get_registered_model": Permission.READ,
    "mlflow_get_run": Permission.READ,
    "mlflow_list_artifacts": Permission.READ,
    "mlflow_list_logged_model_artifacts": Permission.READ,
    "mlflow_log_batch": Permission.WRITE,
    "mlflow_log_inputs": Permission.WRITE,
    "mlflow_log_logged_model_params": Permission.WRITE,
    "mlflow_log_metric": Permission.WRITE,
    "mlflow_log_outputs": Permission.WRITE,
    "mlflow_log_param": Permission.WRITE,
    "mlflow_rename_registered_model": Permission.WRITE,
    "mlflow_restore_experiment": Permission.WRITE,
    "mlflow_restore_run": Permission.WRITE,
    "mlflow_search_datasets": Permission.READ,
    "mlflow_search_experiments": Permission.READ,
    "mlflow_search_logged_models": Permission.READ,
    "mlflow_search_model_versions": Permission.READ,
    "mlflow_search_registered_models": Permission.READ,
    "mlflow_search_runs": Permission.READ,
    "mlflow_server_info": Permission.PUBLIC,
    "mlflow_set_experiment_tag": Permission.WRITE,
    "mlflow_set_logged_model_tags": Permission.WRITE,
    "mlflow_set_model_version_tag": Permission.WRITE,
    "mlflow_set_registered_model_alias": Permission.WRITE,
    "mlflow_set_registered_model_tag": Permission.WRITE,
    "mlflow_set_tag": Permission.WRITE,
    "mlflow_transition_model_version_stage": Permission.WRITE,
    "mlflow_update_experiment": Permission.WRITE,
    "mlflow_update_model_version": Permission.WRITE,
    "mlflow_update_registered_model": Permission.WRITE,
    "mlflow_update_run": Permission.WRITE,
    "mlflow_upload_artifact": Permission.WRITE,
    "mlflow_upload_run_artifact": Permission.WRITE,
    # access control (server/routers/auth.py); each service call checks the object too
    # (one's own tokens, the project whose members change, the project whose audit log is read)
    "auth_bootstrap": Permission.PUBLIC,
    "whoami": Permission.SIGNED_IN,
    "create_token": Permission.SIGNED_IN,
    "list_tokens": Permission.SIGNED_IN,
    "revoke_token": Permission.SIGNED_IN,
    "create_user": Permission.ADMIN,
    "list_users": Permission.ADMIN,
    "get_user": Permission.SIGNED_IN,
    "set_user_password": Permission.SIGNED_IN,
    "disable_user": Permission.ADMIN,
    "enable_user": Permission.ADMIN,
    "set_user_admin": Permission.ADMIN,
    "link_user_identity": Permission.ADMIN,
    "unlink_user_identity": Permission.ADMIN,
    "create_project": Permission.ADMIN,
    "list_projects": Permission.SIGNED_IN,
    "list_project_members": Permission.READ,
    "set_project_member": Permission.DELETE,
    "remove_project_member": Permission.DELETE,
    "list_audit_events": Permission.DELETE,
}


def resolve_principal(scope: Scope) -> Principal:
    """Who sends the request in ``scope``: the anonymous local user on a server without
    authentication; otherwise the user its credentials name (raises ``Unauthenticated`` for bad
    ones, ``TooManyAttempts`` while sign-ins are throttled)."""
    authenticator: Authenticator | None = getattr(scope["app"].state, "authenticator", None)
    return ANONYMOUS if authenticator is None else authenticator.principal(scope)


async def authorize(request: Request) -> Principal:
    """Resolve the principal and check the matched route's declared permission: no credentials
    where some are needed is 401 (``Unauthenticated``), a principal without the permission 403.
    The object's own project is checked when the route reaches it (``responses.client``)."""
    route = request.scope.get("route")
    name = getattr(route, "name", None)
    permission = ROUTE_PERMISSIONS.get(name or "")
    if permission is None:
        raise PermissionDenied(f"route {getattr(route, 'path', request.url.path)} declares no permission "
                               "and is refused")
    request.state.permission = permission
    if getattr(request.app.state, "authenticator", None) is None:
        principal = resolve_principal(request.scope)
    else:  # database reads, and argon2 for a password: off the event loop
        try:
            principal = await run_in_threadpool(resolve_principal, request.scope)
        except Unauthenticated:
            if permission is not Permission.PUBLIC:
                raise
            # Stale credentials do not keep anyone from what needs none (the sign-in page, health).
            principal = VISITOR
    request.state.principal = principal
    if not principal.can(permission):
        if principal.anonymous and not principal.unrestricted:
            raise Unauthenticated(SIGN_IN_MESSAGE)
        raise PermissionDenied(refusal(principal, permission))
    return principal


def refusal(principal: Principal, permission: Permission) -> str:
    """Why ``principal`` may not use a route that needs ``permission``."""
    role = minimum_role(permission)
    if role is None:
        return f"{principal.name} may not do this: it needs a server admin (the {permission.value} permission)"
    return (f"{principal.name} lacks the {permission.value} permission: it needs the {role.label} role (or "
            "higher) in a project; a project owner or a server admin can grant it")
