"""MLflow's error vocabulary, for the routes of the MLflow-compatible API.

The body has the same shape as every other error of the server (``{"error_code", "message"}``);
only the codes and statuses are MLflow's, because the ``mlflow`` client turns them into its
own exceptions (``RESOURCE_DOES_NOT_EXIST`` is what ``MlflowClient.get_run`` callers catch).
:func:`shipyard.server.errors.install_error_handlers` asks :func:`is_mlflow_path` which
vocabulary a request gets, so there is still one error renderer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/",
            "/ajax-api/2.0/mlflow-artifacts/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/",
            "/get-artifact", "/model-versions/get-artifact", "//model-versions/get-artifact")
MLFLOW_ARTIFACT_PATHS = ("/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/")
# MLflow's single-file upload call, whose clients send the bytes with no media type.
MLFLOW_UNTYPED_UPLOADS = ("/api/2.0/mlflow/upload-artifact", "/ajax-api/2.0/mlflow/upload-artifact")

# Shipyard code -> (MLflow code, HTTP status), as MLflow's own server answers.
_BY_CODE = {
    "NOT_FOUND": ("RESOURCE_DOES_NOT_EXIST", 404),
    "ALREADY_EXISTS": ("RESOURCE_ALREADY_EXISTS", 400),
    "INVALID_INPUT": ("INVALID_PARAMETER_VALUE", 400),
    "CONFLICT": ("INVALID_PARAMETER_VALUE", 400),  # e.g. a changed param, as MLflow answers
    "RUN_NOT_ACTIVE": ("INVALID_PARAMETER_VALUE", 400),
    "APPROVAL_REQUIRED": ("PERMISSION_DENIED", 403),
    "PERMISSION_DENIED": ("PERMISSION_DENIED", 403),
    "UNAUTHENTICATED": ("UNAUTHENTICATED", 401),
    "TOO_MANY_ATTEMPTS": ("REQUEST_LIMIT_EXCEEDED", 429),
    "REQUEST_TOO_LARGE": ("RESOURCE_LIMIT_EXCEEDED", 413),
    "UNSUPPORTED_MEDIA_TYPE": ("INVALID_PARAMETER_VALUE", 400),
    "INVALID_HOST": ("INVALID_PARAMETER_VALUE", 400),
    "METHOD_NOT_ALLOWED": ("ENDPOINT_NOT_FOUND", 405),
}


def is_mlflow_path(path: str) -> bool:
    return path.startswith(PREFIXES)


def mlflow_error(code: str, status: int) -> tuple[str, int]:
    """The MLflow code and status for a Shipyard error code and status (unknown codes keep
    their status; server faults become ``INTERNAL_ERROR``)."""
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status == 404:
        return "ENDPOINT_NOT_FOUND", 404
    if status >= 500:
        return "INTERNAL_ERROR", status
    return "BAD_REQUEST", status


# The texts the ``mlflow`` client and user code match (``pytest.raises(match=...)``, ``except``
# branches reading ``e.message``), by the rule a domain error names in its details. The native
# API keeps Shipyard's own wording; only the MLflow routes answer these.
_LOCAL_SOURCE = ("Invalid model version source: '{source}'. To use a local path as a model version source, the "
                 "run_id request parameter has to be specified and the local path has to be contained within the "
                 "artifact directory of the run specified by the run_id. (Shipyard refuses every local path: "
                 "register runs:/<run_id>/<path> instead.)")
_RELATIVE_SOURCE = ("Invalid model version source: '{source}'. If supplying a source as an http, https, local "
                    "file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided "
                    "without relative path references present. Please provide an absolute path.")
_BY_RULE: dict[str, tuple[str, str | None, int | None]] = {
    # rule: (message template, MLflow code (None: keep), status (None: keep))
    "local_source": (_LOCAL_SOURCE, None, None),
    "relative_path": (_RELATIVE_SOURCE, None, None),
    "remote_file_host": ("'{source}' is not a valid remote uri. Shipyard does not read file:// URIs of other "
                         "hosts; give an s3://, gs:// or https:// URI.", None, None),
    "artifact_immutable": ("{message}", "RESOURCE_CONFLICT", 409),
    "bad_request": ("{message}", "BAD_REQUEST", None),
}

# Shipyard's "not found" sentences -> the ones MLflow's stores raise for the same entity.
_NOT_FOUND: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^(?:parent )?run '([^']*)' does not exist"), lambda m: f"Run with id={m[1]} not found"),
    (re.compile(r"^run '([^']*)' has no tag '(.*)'$"), lambda m: f"No tag with name: {m[2]} in run with id {m[1]}"),
    (re.compile(r"^experiment '([^']*)' does not exist"),
     lambda m: f"No Experiment with id={m[1]} exists"),
    (re.compile(r"^logged model '([^']*)' does not exist"), lambda m: f"Logged model with ID '{m[1]}' not found."),
    (re.compile(r"^logged model '([^']*)' has no tag '(.*)'$"),
     lambda m: f"No tag with key '{m[2]}' found for model with ID '{m[1]}'."),
    (re.compile(r"^experiment '([^']*)' has no tag '(.*)'$"),
     lambda m: f"No tag with name: {m[2]} in experiment with id {m[1]}"),
    (re.compile(r"^registered model '(.*)' does not exist$"), lambda m: f"Registered Model with name={m[1]} not found"),
    (re.compile(r"^model '(.*)' has no version (\d+)$"),
     lambda m: f"Model Version (name={m[1]}, version={m[2]}) not found"),
]

# Shipyard's "already exists" sentences -> MLflow's.
_ALREADY_EXISTS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"^registered model '(.*)' already exists$"),
     lambda m: f"Registered Model (name={m[1]}) already exists."),
    (re.compile(r"^experiment '(.*)' already exists"), lambda m: f"Experiment '{m[1]}' already exists."),
]
_ENTITY_TEXTS = {"NOT_FOUND": _NOT_FOUND, "ALREADY_EXISTS": _ALREADY_EXISTS}

_DELETED_RUN = re.compile(r"^run '([^']*)' is deleted")


def mlflow_error_body(code: str, status: int, message: str,
                      details: Mapping[str, Any] | None = None) -> tuple[str, int, str]:
    """``(MLflow error code, HTTP status, message)`` for a Shipyard error on an MLflow route."""
    mlflow_code, mlflow_status = mlflow_error(code, status)
    details = details or {}
    rule = details.get("rule")
    if isinstance(rule, str) and rule in _BY_RULE:
        template, new_code, new_status = _BY_RULE[rule]
        text = template.format(source=details.get("source", ""), message=message)
        return new_code or mlflow_code, new_status or mlflow_status, text
    if code == "INVALID_INPUT" and "path" in details and isinstance(rule, str):
        return mlflow_code, mlflow_status, "Invalid path"  # an artifact path rule, as MLflow words it
    deleted = _DELETED_RUN.match(message) if code == "RUN_NOT_ACTIVE" else None
    if deleted:
        return (mlflow_code, mlflow_status,
                f"The run {deleted[1]} must be in the 'active' state. Current state is deleted.")
    for pattern, say in _ENTITY_TEXTS.get(code, ()):
        found = pattern.match(message)
        if found:
            return mlflow_code, mlflow_status, say(found)
    return mlflow_code, mlflow_status, message


# MLflow features Shipyard does not serve, by a word of their route, for a 404 that names them.
_UNSUPPORTED = (
    ("traces", "MLflow tracing"), ("trace", "MLflow tracing"), ("spans", "MLflow tracing"),
    ("assessments", "MLflow GenAI assessments"), ("gateway", "the MLflow AI gateway"),
    ("prompts", "the MLflow prompt registry"), ("scorers", "MLflow GenAI scorers"),
    ("webhooks", "MLflow webhooks"), ("datasets", "MLflow GenAI evaluation datasets"),
    ("review-queues", "MLflow review queues"), ("label-schemas", "MLflow label schemas"),
    ("issues", "MLflow issues"), ("presigned", "presigned artifact URLs"), ("mpu", "multipart uploads"),
    ("log-model", "the MLflow 1.x log-model call"),
)


def unsupported_route_message(path: str) -> str:
    words = set(path.strip("/").split("/"))
    for word, feature in _UNSUPPORTED:
        if word in words:
            return (f"{feature} is not supported by this Shipyard server ({path}); "
                    "see docs/mlflow.md for the MLflow API it serves")
    return f"no such MLflow API route {path}; see docs/mlflow.md for the MLflow API Shipyard serves"
