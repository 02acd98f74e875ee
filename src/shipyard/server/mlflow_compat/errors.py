"""MLflow's error vocabulary, for the routes of the MLflow-compatible API.

The body has the same shape as every other error of the server (``{"error_code", "message"}``);
only the codes and statuses are MLflow's, because the ``mlflow`` client turns them into its
own exceptions (``RESOURCE_DOES_NOT_EXIST`` is what ``MlflowClient.get_run`` callers catch).
:func:`shipyard.server.errors.install_error_handlers` asks :func:`is_mlflow_path` which
vocabulary a request gets, so there is still one error renderer.
"""

from __future__ import annotations

from shipyard.errors import ShipyardError

PREFIXES = ("/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/", "/api/2.0/mlflow-artifacts/",
            "/ajax-api/2.0/mlflow-artifacts/", "/api/3.0/mlflow/", "/ajax-api/3.0/mlflow/")
MLFLOW_ARTIFACT_PATHS = ("/api/2.0/mlflow-artifacts/artifacts/", "/ajax-api/2.0/mlflow-artifacts/artifacts/")

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


def mlflow_error_of(err: ShipyardError) -> tuple[str, int]:
    return mlflow_error(err.code, err.http_status)


# MLflow features Shipyard does not serve, by a word of their route, for a 404 that names them.
_UNSUPPORTED = (
    ("traces", "MLflow tracing"), ("trace", "MLflow tracing"), ("spans", "MLflow tracing"),
    ("assessments", "MLflow GenAI assessments"), ("gateway", "the MLflow AI gateway"),
    ("prompts", "the MLflow prompt registry"), ("scorers", "MLflow GenAI scorers"),
    ("webhooks", "MLflow webhooks"), ("datasets", "MLflow GenAI evaluation datasets"),
    ("review-queues", "MLflow review queues"), ("label-schemas", "MLflow label schemas"),
    ("issues", "MLflow issues"), ("presigned", "presigned artifact URLs"), ("mpu", "multipart uploads"),
    ("get-history-bulk-interval", "bulk metric-history sampling"), ("log-model", "the MLflow 1.x log-model call"),
)


def unsupported_route_message(path: str) -> str:
    words = set(path.strip("/").split("/"))
    for word, feature in _UNSUPPORTED:
        if word in words:
            return (f"{feature} is not supported by this Shipyard server ({path}); "
                    "see docs/mlflow.md for the MLflow API it serves")
    return f"no such MLflow API route {path}; see docs/mlflow.md for the MLflow API Shipyard serves"
