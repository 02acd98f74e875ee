"""What each role may do: the one table, in code and (kept equal by a test) in docs/security.md.

Every server route declares one :class:`Permission` (``server/permissions.py``); a project
permission is granted by the member's role in the project of the object the request touches,
a server permission by the principal alone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from shipyard.entities.auth import Role

__all__ = ["PERMISSION_TABLE", "Permission", "minimum_role", "permission_table_markdown"]


class Permission(enum.StrEnum):
    PUBLIC = "public"  # health, version, sign-in: no principal needed
    SIGNED_IN = "signed_in"  # whoami, one's own tokens: any authenticated principal
    READ = "read"
    WRITE = "write"
    MAINTAIN = "maintain"
    DELETE = "delete"
    ADMIN = "admin"


# permission → (minimum project role, or None for a server-level permission; what it covers)
PERMISSION_TABLE: Mapping[Permission, tuple[Role | None, str]] = {
    Permission.PUBLIC: (None, "health, version, the API schema, signing in: anyone, no credentials"),
    Permission.SIGNED_IN: (None, "who am I, one's own tokens and password: any signed-in user"),
    Permission.READ: (Role.VIEWER, "read and search experiments, runs, metrics, artifacts, models, datasets, "
                                   "lineage, deployments, monitors; call served models and deployments"),
    Permission.WRITE: (Role.EDITOR, "create experiments and runs, log params, metrics and artifacts, register "
                                    "models and versions, move unprotected aliases, log datasets, create monitors, "
                                    "send prediction feedback"),
    Permission.MAINTAIN: (Role.MAINTAINER, "approve model versions, protect aliases, create and change "
                                           "deployments (canary, promote, rollback)"),
    Permission.DELETE: (Role.OWNER, "delete experiments, runs, artifacts, models, versions, deployments and "
                                    "monitors; manage the project's members"),
    Permission.ADMIN: (None, "server administration: users, service accounts, projects, the audit log of "
                             "every project (server admins only)"),
}


def minimum_role(permission: Permission) -> Role | None:
    """The least project role that grants ``permission`` (``None``: not a project permission)."""
    return PERMISSION_TABLE[permission][0]


def permission_table_markdown() -> str:
    """The table as docs/security.md shows it."""
    lines = ["| permission | least role | covers |", "|---|---|---|"]
    for permission, (role, covers) in PERMISSION_TABLE.items():
        who = role.label if role is not None else ("server admin" if permission is Permission.ADMIN else "—")
        lines.append(f"| `{permission.value}` | {who} | {covers} |")
    return "\n".join(lines)
