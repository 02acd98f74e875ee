"""The one exception hierarchy of Shipyard.

Every error a user can see is a :class:`ShipyardError`. Each class carries a stable
``code`` (for scripts and the wire), the HTTP ``http_status`` the server answers with, and
the ``exit_code`` the CLI exits with, so each of those is mapped in exactly one place::

    ShipyardError                      INTERNAL_ERROR       500  exit 1
    ├── InvalidInput                   INVALID_INPUT        400  exit 2
    │   ├── RequestTooLarge            REQUEST_TOO_LARGE    413  exit 2
    │   ├── UnsupportedMediaType       UNSUPPORTED_MEDIA_TYPE 415  exit 2
    │   └── MethodNotAllowed           METHOD_NOT_ALLOWED   405  exit 2
    ├── NotFound                       NOT_FOUND            404  exit 3
    ├── AlreadyExists                  ALREADY_EXISTS       409  exit 4
    ├── Conflict                       CONFLICT             409  exit 4
    │   ├── RunNotActive               RUN_NOT_ACTIVE       409  exit 4
    │   └── ApprovalRequired           APPROVAL_REQUIRED    409  exit 4
    ├── Unauthenticated                UNAUTHENTICATED      401  exit 5
    ├── PermissionDenied               PERMISSION_DENIED    403  exit 5
    │   └── TooManyAttempts            TOO_MANY_ATTEMPTS    429  exit 5
    ├── SchemaOutOfDate                SCHEMA_OUT_OF_DATE   503  exit 6
    ├── StoreUnavailable               STORE_UNAVAILABLE    503  exit 6
    ├── NotReady                       NOT_READY            503  exit 6
    ├── ClusterUnavailable             CLUSTER_UNAVAILABLE  503  exit 6
    ├── StepFailed                     STEP_FAILED          422  exit 8
    ├── GateFailed                     GATE_FAILED          422  exit 8
    ├── ArtifactCorrupted              ARTIFACT_CORRUPTED   500  exit 7
    └── MissingDependency              MISSING_DEPENDENCY   500  exit 9

Foreign exceptions (SQLAlchemy, OS errors) are translated into these at the store
boundary; nothing above the store catches a driver error.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AlreadyExists",
    "ApprovalRequired",
    "ArtifactCorrupted",
    "ClusterUnavailable",
    "Conflict",
    "GateFailed",
    "InvalidInput",
    "MethodNotAllowed",
    "MissingDependency",
    "NotFound",
    "NotReady",
    "PermissionDenied",
    "RequestTooLarge",
    "RunNotActive",
    "SchemaOutOfDate",
    "ShipyardError",
    "StepFailed",
    "StoreUnavailable",
    "TooManyAttempts",
    "Unauthenticated",
    "UnsupportedMediaType",
    "error_class_for_code",
]


class ShipyardError(Exception):
    """Base of every Shipyard error; ``str(err)`` is a message meant for a person."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The wire shape of the error: ``{"error_code": ..., "message": ...}`` plus details."""
        body: dict[str, Any] = {"error_code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidInput(ShipyardError):
    """A value given by the caller breaks a rule; the message names the value and the rule."""

    code = "INVALID_INPUT"
    http_status = 400
    exit_code = 2


class NotFound(ShipyardError):
    """The named experiment, run, artifact or version does not exist."""

    code = "NOT_FOUND"
    http_status = 404
    exit_code = 3


class AlreadyExists(ShipyardError):
    """Something with that unique name or id exists already."""

    code = "ALREADY_EXISTS"
    http_status = 409
    exit_code = 4


class Conflict(ShipyardError):
    """The request contradicts what is stored (e.g. changing an immutable param)."""

    code = "CONFLICT"
    http_status = 409
    exit_code = 4


class RunNotActive(Conflict):
    """Writing to a run that is finished, failed, killed or deleted."""

    code = "RUN_NOT_ACTIVE"


class ApprovalRequired(Conflict):
    """Pointing a protected alias (``production`` by default) at a version nobody approved."""

    code = "APPROVAL_REQUIRED"


class Unauthenticated(ShipyardError):
    """No credentials, or credentials that are malformed, unknown, expired, revoked or of a
    disabled user, on a server that requires them (HTTP 401)."""

    code = "UNAUTHENTICATED"
    http_status = 401
    exit_code = 5


class PermissionDenied(ShipyardError):
    """The principal may not do this."""

    code = "PERMISSION_DENIED"
    http_status = 403
    exit_code = 5


class TooManyAttempts(PermissionDenied):
    """Sign-ins refused for a while after repeated failures (HTTP 429);
    ``details["retry_after"]`` holds the seconds to wait."""

    code = "TOO_MANY_ATTEMPTS"
    http_status = 429


class SchemaOutOfDate(ShipyardError):
    """The database was created by an older Shipyard; ``shipyard db upgrade`` migrates it."""

    code = "SCHEMA_OUT_OF_DATE"
    http_status = 503
    exit_code = 6


class StoreUnavailable(ShipyardError):
    """The tracking database cannot be reached or stayed busy past the retry budget."""

    code = "STORE_UNAVAILABLE"
    http_status = 503
    exit_code = 6


class ClusterUnavailable(ShipyardError):
    """The compute cluster (Ray) that was asked to run pipeline steps or tuning trials cannot be reached."""

    code = "CLUSTER_UNAVAILABLE"
    http_status = 503
    exit_code = 6


class StepFailed(ShipyardError):
    """A pipeline step's own code raised (after its retries); the pipeline run is FAILED and can be resumed.
    ``details`` name the step, its run and the pipeline run, and carry the step's traceback."""

    code = "STEP_FAILED"
    http_status = 422
    exit_code = 8


class GateFailed(ShipyardError):
    """A pipeline step's metrics did not pass its quality gate; the pipeline stopped there."""

    code = "GATE_FAILED"
    http_status = 422
    exit_code = 8


class ArtifactCorrupted(ShipyardError):
    """A stored artifact's bytes no longer match the digest recorded when it was logged."""

    code = "ARTIFACT_CORRUPTED"
    http_status = 500
    exit_code = 7


class MissingDependency(ShipyardError):
    """A package the operation needs is not installed; ``details`` name it (``package``) and the
    extra that brings it (``extra``: ``pip install 'shipyard-mlops[<extra>]'``)."""

    code = "MISSING_DEPENDENCY"
    http_status = 500
    exit_code = 9


class RequestTooLarge(InvalidInput):
    """The request body is over the size limit (HTTP 413); ``details["limit"]`` holds it in bytes."""

    code = "REQUEST_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidInput):
    """A body in a content type the endpoint does not read (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class MethodNotAllowed(InvalidInput):
    """The route exists, but not for this HTTP method (HTTP 405)."""

    code = "METHOD_NOT_ALLOWED"
    http_status = 405


class NotReady(ShipyardError):
    """A server's models are still loading, or failed to load (HTTP 503)."""

    code = "NOT_READY"
    http_status = 503
    exit_code = 6


_BY_CODE: dict[str, type[ShipyardError]] = {
    cls.code: cls
    for cls in (
        ShipyardError,
        InvalidInput,
        NotFound,
        AlreadyExists,
        Conflict,
        RunNotActive,
        ApprovalRequired,
        PermissionDenied,
        Unauthenticated,
        TooManyAttempts,
        SchemaOutOfDate,
        StoreUnavailable,
        ClusterUnavailable,
        StepFailed,
        GateFailed,
        ArtifactCorrupted,
        MissingDependency,
        RequestTooLarge,
        UnsupportedMediaType,
        MethodNotAllowed,
        NotReady,
    )
}


def error_class_for_code(code: str) -> type[ShipyardError]:
    """The class for a wire ``error_code`` (unknown codes map to :class:`ShipyardError`)."""
    return _BY_CODE.get(code, ShipyardError)
