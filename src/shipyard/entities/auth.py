"""Who may use a shared server: users, their API tokens, projects with a role per member, and
the audit log of every change. Secrets never appear here: a store keeps only their hashes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["DEFAULT_PROJECT", "ApiToken", "AuditEvent", "AuditQuery", "Membership", "Project", "Role", "User"]

# Where everything lives until someone makes projects (and where the migration put older data).
DEFAULT_PROJECT = "default"


class Role(enum.IntEnum):
    """A member's role in one project; each role may do what the roles below it may."""

    VIEWER = 1
    EDITOR = 2
    MAINTAINER = 3
    OWNER = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """``"viewer"`` → ``Role.VIEWER``; raises ``InvalidInput`` naming the roles."""
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            raise InvalidInput(f"role {text!r} is not one of " + ", ".join(r.label for r in cls)) from None


@dataclass(frozen=True, slots=True)
class User:
    """A person, or with ``service=True`` a service account (for CI: tokens only, no password).
    ``admin`` users administer the server (users, projects) and hold every role in every project."""

    name: str
    email: str = ""
    admin: bool = False
    service: bool = False
    disabled: bool = False
    creation_time: int = 0
    last_update_time: int = 0


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token of ``user``. The secret is shown once, when it is made, and stored hashed.
    With ``project`` set, the token acts only in that project and with at most ``role`` there
    (the user's own role caps it too). ``expires`` and ``last_used`` are epoch milliseconds
    (``None``: never / not yet). ``kind`` is ``"api"`` or ``"session"`` (a web UI sign-in)."""

    token_id: str
    user: str
    name: str
    kind: str = "api"
    project: str | None = None
    role: Role | None = None
    creation_time: int = 0
    expires: int | None = None
    last_used: int | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class Project:
    """A project: experiments, registered models, datasets, deployments and monitors belong to one."""

    name: str
    description: str = ""
    creation_time: int = 0
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class Membership:
    project: str
    user: str
    role: Role


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One request that changed something, or one that was refused. Append-only: nothing edits
    or deletes an event. ``action`` is the route's name (``delete_run``), ``object`` what it
    named (``run:3f2a…``, ``model:churn/3``), ``status`` the HTTP status it answered,
    ``address`` the client's address, ``detail`` a short note (the error message of a refusal)."""

    time: int
    principal: str
    action: str
    method: str
    path: str
    status: int
    project: str | None = None
    object: str | None = None
    address: str | None = None
    request_id: str | None = None
    detail: str = ""
    event_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Which events to read: each field given narrows the query; times are epoch milliseconds,
    ``since`` inclusive and ``until`` exclusive. Newest first, at most ``limit``."""

    project: str | None = None
    principal: str | None = None
    object: str | None = None
    action: str | None = None
    since: int | None = None
    until: int | None = None
    limit: int = 1000
