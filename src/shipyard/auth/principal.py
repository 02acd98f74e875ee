"""The acting principal and the permission levels routes and services ask of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ANONYMOUS", "Permission", "Principal", "current_user", "local_principal"]


class Permission(enum.StrEnum):
    PUBLIC = "public"  # health, version, API schema: no principal needed
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a change; ``name`` is what the store records as its user."""

    name: str
    anonymous: bool = True

    def can(self, permission: Permission) -> bool:
        # Without authentication configured, the local user may do everything.
        return True


# A server without authentication: every request acts as this principal.
ANONYMOUS = Principal("local")


def current_user() -> str:
    """The login name of the current user, or ``"unknown"`` when it cannot be found."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (e.g. a container's random uid)
        return "unknown"
    return user or "unknown"


def local_principal() -> Principal:
    """The SDK's principal: the login of the process, which nothing has authenticated."""
    return Principal(current_user())
