"""The MLflow REST API's routes: which call each (method, path) makes. Every route is also
served under ``/ajax-api/…`` (MLflow's UI prefix, which some clients use), kept out of the
native OpenAPI schema (docs/mlflow.md lists them), and named ``mlflow_<call>`` in the
server's one permission table (:data:`shipyard.server.permissions.ROUTE_PERMISSIONS`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shipyard._version import __version__
from shipyard.server.mlflow_compat import artifacts, experiments, logged_models, registry, runs, ui_calls
from shipyard.server.mlflow_compat.common import ok
from shipyard.server.routing import PrefixRouter

TRACKING: list[tuple[str, str, Callable[..., Any]]] = [
    ("POST", "experiments/create", experiments.create_experiment),
    ("GET", "experiments/get", experiments.get_experiment),
    ("GET", "experiments/get-by-name", experiments.get_experiment_by_name),
    ("POST", "experiments/search", experiments.search_experiments),
    ("GET", "experiments/search", experiments.search_experiments),
    ("POST", "experiments/update", experiments.update_experiment),
    ("POST", "experiments/delete", experiments.delete_experiment),
    ("POST", "experiments/restore", experiments.restore_experiment),
    ("POST", "experiments/set-experiment-tag", experiments.set_experiment_tag),
    ("POST", "experiments/delete-experiment-tag", experiments.delete_experiment_tag),
    ("POST", "runs/create", runs.create_run),
    ("GET", "runs/get", runs.get_run),
    ("POST", "runs/update", runs.update_run),
    ("POST", "runs/delete", runs.delete_run),
    ("POST", "runs/restore", runs.restore_run),
    ("POST", "runs/search", runs.search_runs),
    ("POST", "runs/log-metric", runs.log_metric),
    ("POST", "runs/log-parameter", runs.log_param),
    ("POST", "runs/set-tag", runs.set_tag),
    ("POST", "runs/delete-tag", runs.delete_tag),
    ("POST", "runs/log-batch", runs.log_batch),
    ("POST", "runs/log-inputs", runs.log_inputs),
    ("POST", "runs/outputs", runs.log_outputs),
    ("GET", "metrics/get-history", runs.get_metric_history),
    ("GET", "metrics/get-history-bulk", ui_calls.get_metric_history_bulk),
    ("GET", "metrics/get-history-bulk-interval", ui_calls.get_metric_history_bulk_interval),
    ("POST", "experiments/search-datasets", ui_calls.search_datasets),
    ("POST", "upload-artifact", ui_calls.upload_run_artifact),
    ("GET", "artifacts/list", runs.list_artifacts),
    ("POST", "logged-models", logged_models.create_logged_model),
    ("POST", "logged-models/search", logged_models.search_logged_models),
    ("GET", "logged-models/{model_id}", logged_models.get_logged_model),
    ("PATCH", "logged-models/{model_id}", logged_models.finalize_logged_model),
    ("DELETE", "logged-models/{model_id}", logged_models.delete_logged_model),
    ("PATCH", "logged-models/{model_id}/tags", logged_models.set_logged_model_tags),
    ("DELETE", "logged-models/{model_id}/tags/{tag_key}", logged_models.delete_logged_model_tag),
    ("POST", "logged-models/{model_id}/params", logged_models.log_logged_model_params),
    ("GET", "logged-models/{model_id}/artifacts/directories", logged_models.list_logged_model_artifacts),
    ("GET", "logged-models/{model_id}/artifacts/files", logged_models.download_logged_model_artifact),
    ("POST", "registered-models/create", registry.create_registered_model),
    ("GET", "registered-models/get", registry.get_registered_model),
    ("POST", "registered-models/rename", registry.rename_registered_model),
    ("PATCH", "registered-models/update", registry.update_registered_model),
    ("DELETE", "registered-models/delete", registry.delete_registered_model),
    ("GET", "registered-models/search", registry.search_registered_models),
    ("POST", "registered-models/get-latest-versions", registry.get_latest_versions),
    ("GET", "registered-models/get-latest-versions", registry.get_latest_versions),
    ("POST", "registered-models/set-tag", registry.set_registered_model_tag),
    ("DELETE", "registered-models/delete-tag", registry.delete_registered_model_tag),
    ("POST", "registered-models/alias", registry.set_registered_model_alias),
    ("DELETE", "registered-models/alias", registry.delete_registered_model_alias),
    ("GET", "registered-models/alias", registry.get_model_version_by_alias),
    ("POST", "model-versions/create", registry.create_model_version),
    ("GET", "model-versions/get", registry.get_model_version),
    ("PATCH", "model-versions/update", registry.update_model_version),
    ("DELETE", "model-versions/delete", registry.delete_model_version),
    ("GET", "model-versions/search", registry.search_model_versions),
    ("GET", "model-versions/get-download-uri", registry.get_model_version_download_uri),
    ("POST", "model-versions/set-tag", registry.set_model_version_tag),
    ("DELETE", "model-versions/delete-tag", registry.delete_model_version_tag),
    ("POST", "model-versions/transition-stage", registry.transition_model_version_stage),
]
# MLflow's UI serves two downloads outside its API prefixes; its tests (and some scripts) reach
# the second with a doubled slash, which MLflow's server accepts too.
ROOT: list[tuple[str, Callable[..., Any]]] = [
    ("/get-artifact", ui_calls.get_run_artifact),
    ("/model-versions/get-artifact", ui_calls.get_model_version_artifact),
    ("//model-versions/get-artifact", ui_calls.get_model_version_artifact),
]
ARTIFACTS: list[tuple[str, str, Callable[..., Any]]] = [
    ("GET", "artifacts", artifacts.list_artifacts),
    ("GET", "artifacts/{artifact_path:path}", artifacts.download_artifact),
    ("PUT", "artifacts/{artifact_path:path}", artifacts.upload_artifact),
    ("DELETE", "artifacts/{artifact_path:path}", artifacts.delete_artifact),
]


def server_info() -> Any:
    """What the 3.x client asks before choosing upload and download strategies."""
    return ok({"store_type": "SqlStore", "server_type": "shipyard", "version": __version__,
               "workspaces_enabled": False, "trace_archival_enabled": False,
               "multipart_uploads_enabled": False, "multipart_downloads_enabled": False,
               "presigned_upload_run_id_supported": False, "presigned_upload_model_id_supported": False,
               "features_enabled": {}})


def route_name(handler: Callable[..., Any]) -> str:
    return f"mlflow_{handler.__name__}"


UI_PREFIXES = ("/api", "/ajax-api")


def build_routers() -> list[PrefixRouter]:
    """One router per API prefix and first path segment (``/api/2.0/mlflow/runs``, …): a request
    then tries the few routes of its own resource, not all 120 (see :mod:`shipyard.server.routing`)."""
    groups: dict[str, PrefixRouter] = {}

    def add(prefix: str, path: str, handler: Callable[..., Any], method: str, name: str) -> None:
        group = f"{prefix}/{path.split('/', 1)[0]}"
        if group not in groups:
            groups[group] = PrefixRouter(include_in_schema=False, prefixes=(group,))
        groups[group].add_api_route(f"{prefix}/{path}", handler, methods=[method], name=name)

    for ui in UI_PREFIXES:
        for method, path, handler in TRACKING:
            add(f"{ui}/2.0/mlflow", path, handler, method, route_name(handler))
        for method, path, handler in ARTIFACTS:
            add(f"{ui}/2.0/mlflow-artifacts", path, handler, method, route_name(handler))
        add(f"{ui}/3.0/mlflow", "server-info", server_info, "GET", "mlflow_server_info")
    root = PrefixRouter(include_in_schema=False, prefixes=tuple(path for path, _ in ROOT))
    for path, handler in ROOT:
        root.add_api_route(path, handler, methods=["GET"], name=route_name(handler))
    return [*groups.values(), root]
