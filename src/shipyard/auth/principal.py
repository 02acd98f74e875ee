"""The acting principal and what it may do.

Without authentication (the SDK on its own store, ``shipyard server`` without ``--auth``) the
principal is *unrestricted*: every permission in every project. A signed-in principal holds
the roles it was granted (``grants``), all of them as a server admin, and a project-scoped
token caps both to one project and one role (``scope``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from shipyard.auth.roles import Permission, minimum_role
from shipyard.entities.auth import DEFAULT_PROJECT, Role

__all__ = ["ANONYMOUS", "VISITOR", "Principal", "current_user", "local_principal"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a change; ``name`` is what the store records as its user.

    ``grants`` holds ``(project, role)`` pairs, or is ``None`` for an unrestricted principal.
    ``scope`` is a token's ``(project, role)`` limit. ``project`` is where this principal's new
    experiments, models, datasets, deployments and monitors go. ``token_id`` names the token
    that authenticated the request, if one did.
    """

    name: str
    anonymous: bool = True
    admin: bool = False
    grants: tuple[tuple[str, Role], ...] | None = None
    scope: tuple[str, Role] | None = None
    project: str = DEFAULT_PROJECT
    token_id: str | None = None

    @classmethod
    def signed_in(cls, name: str, *, admin: bool = False, grants: Iterable[tuple[str, Role]] = (),
                  scope: tuple[str, Role] | None = None, project: str | None = None,
                  token_id: str | None = None) -> Principal:
        """An authenticated user with these roles; new objects go to ``project``, or to the
        token's project, or to the default project."""
        chosen = project or (scope[0] if scope else DEFAULT_PROJECT)
        return cls(name, anonymous=False, admin=admin, grants=tuple(sorted(grants)), scope=scope, project=chosen,
                   token_id=token_id)

    @property
    def unrestricted(self) -> bool:
        return self.grants is None

    def role_in(self, project: str) -> Role | None:
        """This principal's role in ``project`` (``None``: no access at all)."""
        if self.grants is None or self.admin:
            role: Role | None = Role.OWNER
        else:
            role = next((r for p, r in self.grants if p == project), None)
        if self.scope is not None and role is not None:
            scope_project, scope_role = self.scope
            role = min(role, scope_role) if scope_project == project else None
        return role

    def visible_projects(self, permission: Permission = Permission.READ) -> tuple[str, ...] | None:
        """The projects where ``permission`` is granted (``None``: every project)."""
        if self.scope is None and (self.grants is None or self.admin):
            return None
        needed = minimum_role(permission) or Role.VIEWER
        candidates = [self.scope[0]] if self.scope is not None else [p for p, _ in self.grants or ()]
        return tuple(p for p in candidates if (self.role_in(p) or 0) >= needed)

    def can(self, permission: Permission, project: str | None = None) -> bool:
        """Whether ``permission`` is granted: in ``project`` for a project permission, or, with
        no project, whether it is granted in at least one (the route-level check; the object's
        project is checked when the object is read)."""
        if permission is Permission.PUBLIC or self.unrestricted:
            return True
        if self.anonymous:
            return False
        if permission is Permission.SIGNED_IN:
            return True
        if permission is Permission.ADMIN:
            return self.admin and self.scope is None  # a scoped token never administers the server
        needed = minimum_role(permission)
        assert needed is not None
        if project is not None:
            return (self.role_in(project) or 0) >= needed
        visible = self.visible_projects(permission)
        return visible is None or bool(visible)

    def run_user(self, claimed: str) -> str:
        """The user a new run records: a signed-in principal's own name, whatever the client
        claimed (a login it read from its OS, which nothing checked); without authentication the
        claimed one, as sent (the SDK's login; ``""`` when none was)."""
        return claimed if self.anonymous else self.name


# A server without authentication: every request acts as this principal.
ANONYMOUS = Principal("local")
# Who sends no credentials where sign-in is required (a server or serving with --auth): no role anywhere.
VISITOR = Principal("anonymous", anonymous=True, grants=())


def current_user() -> str:
    """The login name of the current user, or ``"unknown"`` when it cannot be found."""
    import getpass

    try:
        user = getpass.getuser()
    except Exception:  # no USER/LOGNAME and no passwd entry (e.g. a container's random uid)
        return "unknown"
    return user or "unknown"


def local_principal(name: str = "") -> Principal:
    """The SDK's principal, which nothing has authenticated: ``name`` when given (the
    ``acting_user`` setting, ``SHIPYARD_ACTING_USER``), else the login of the process."""
    return Principal(name or current_user())
