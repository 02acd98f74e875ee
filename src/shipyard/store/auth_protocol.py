"""The access-control part of the Store (:class:`AuthStore`), in a module of its own so that
:mod:`shipyard.store.protocol`, which re-exports it, stays small enough to read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from shipyard.entities.auth import ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User

__all__ = ["AuthStore"]


class AuthStore(Protocol):
    """Users, API tokens, projects with their members, and the audit log. The rules (password
    policy, hashing, token secrets, who may grant what) live in
    :class:`~shipyard.auth.service.AuthService`; the store keeps hashes it is given, unique
    names, and an audit log that nothing can edit or delete."""

    def create_user(self, user: User, *, password_hash: str | None = None) -> User:
        """Store ``user`` (times become now) with its password hash (``None``: no password, e.g.
        a service account). Raises ``AlreadyExists``."""
        ...

    def get_user(self, name: str) -> User:
        """Raises ``NotFound`` naming it."""
        ...

    def list_users(self) -> list[User]:
        """Every user, by name."""

    def update_user(self, name: str, *, email: str | None = None, admin: bool | None = None,
                    disabled: bool | None = None, password_hash: str | None = None) -> User:
        """Change what is given. Raises ``NotFound``."""
        ...

    def password_hash(self, name: str) -> str | None:
        """The stored password hash of ``name`` (``None``: it has none). Raises ``NotFound``."""
        ...

    def count_users(self) -> int:
        """How many users exist (zero: the server still waits for its first admin)."""

    def create_token(self, token: ApiToken, *, secret_hash: str) -> ApiToken:
        """Store ``token`` with the hash of its secret (creation time becomes now). Raises
        ``NotFound`` for an unknown user or project, ``AlreadyExists`` for a taken token id."""
        ...

    def get_token(self, token_id: str) -> tuple[ApiToken, str]:
        """The token and its stored secret hash. Raises ``NotFound``."""
        ...

    def token_holder(self, token_id: str) -> tuple[ApiToken, str, User, list[Membership]]:
        """The token, its secret hash, its user and the user's memberships, in one read. Raises ``NotFound``."""
        ...

    def list_tokens(self, user: str | None = None, *, kind: str | None = None) -> list[ApiToken]:
        """Tokens (of ``user``, of ``kind``), newest first, revoked ones included."""
        ...

    def revoke_token(self, token_id: str) -> None:
        """Revoke it for good. Raises ``NotFound``."""
        ...

    def touch_token(self, token_id: str, when: int) -> None:
        """Record ``when`` as the token's last use (nothing happens for an unknown id)."""
        ...

    def create_project(self, project: Project) -> Project:
        """Store ``project`` (creation time becomes now). Raises ``AlreadyExists``."""
        ...

    def get_project(self, name: str) -> Project:
        """Raises ``NotFound`` naming it."""

    def list_projects(self) -> list[Project]:
        """Every project, by name."""

    def set_member(self, project: str, user: str, role: Role | None) -> None:
        """Give ``user`` ``role`` in ``project`` (``None`` removes the member). Raises
        ``NotFound`` for an unknown project or user."""
        ...

    def members(self, project: str) -> list[Membership]:
        """The members of ``project``, by user. Raises ``NotFound``."""
        ...

    def grants(self, user: str) -> list[Membership]:
        """Every project ``user`` is a member of, by project."""

    def user_by_identity(self, issuer: str, subject: str) -> User:
        """The user linked to the single sign-on identity ``(issuer, subject)``. Raises ``NotFound``."""
        ...

    def create_linked_user(self, user: User, *, issuer: str, subject: str,
                           grants: Sequence[tuple[str, Role]] = ()) -> User:
        """Store ``user`` (no password; times become now), linked to the identity ``(issuer,
        subject)`` and holding ``grants``, all or nothing. Raises ``AlreadyExists`` for a taken
        name (``details["user"]``) or an identity linked already (``details["subject"]``),
        ``NotFound`` for an unknown project."""
        ...

    def link_identity(self, name: str, *, issuer: str, subject: str) -> User:
        """Link the existing user ``name`` to the identity ``(issuer, subject)``: signing in as it
        is signing in as ``name``. Raises ``NotFound`` for an unknown user, ``AlreadyExists`` for
        an identity linked already (to this user or another)."""
        ...

    def unlink_identity(self, name: str, *, issuer: str, subject: str) -> User:
        """Undo :meth:`link_identity`. Raises ``NotFound`` when ``name`` is not linked to it."""
        ...

    def record_audit(self, events: Sequence[AuditEvent]) -> None:
        """Append ``events`` (their ids are assigned here)."""
        ...

    def audit(self, query: AuditQuery) -> list[AuditEvent]:
        """The events that match ``query``, newest first."""
        ...
