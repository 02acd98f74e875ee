"""The access-control rules: users and passwords, API tokens, project members, the audit log.

:class:`AuthService` is built, like the other domain services, from its store (here an
:class:`~shipyard.store.protocol.AuthStore`) and the acting :class:`Principal`; the store only
persists. What it decides:

- **who may do what here**: users, service accounts and projects are made by server admins;
  anyone signed in makes and revokes their own tokens; a project's owners (``delete`` in the
  permission table) manage its members; its viewers see them; the audit log is read by admins,
  or by a project's owners for that project. An unrestricted principal (the SDK or CLI on the
  database itself) may do everything. A project the principal holds no role in does not exist
  for it (``NotFound`` with the store's own message).
- **passwords** (:mod:`shipyard.auth.passwords`): the policy, argon2id, and signing in:
  unknown user and wrong password answer the same, failures are throttled
  (:mod:`shipyard.auth.throttle`), and a verification already made with the same stored hash
  is not made again.
- **tokens** (:mod:`shipyard.auth.tokens`): the secret format, its hash, and why one is refused.

The throttle and the verification cache must outlive a request, and a service is built per
request: unless given, they are shared by every service over the same store object.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import cache
from threading import Lock
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from shipyard.auth.passwords import (
    MAX_LENGTH,
    VerifiedPasswords,
    check_password,
    hash_password,
    needs_rehash,
    verify_password,
)
from shipyard.auth.principal import Principal
from shipyard.auth.roles import Permission, minimum_role
from shipyard.auth.throttle import Throttle
from shipyard.auth.tokens import hash_secret, new_secret, new_token_id, parse_secret, secret_matches
from shipyard.auth.wire import role_from_wire
from shipyard.clock import now_ms
from shipyard.entities.auth import ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from shipyard.store.not_found import project_not_found, token_not_found

if TYPE_CHECKING:
    from shipyard.store.protocol import AuthStore

__all__ = ["TOKEN_KINDS", "AuthService"]

TOKEN_KINDS = ("api", "session")
_USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]{0,63}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_TOKEN_NAME_MAX = 100
_TOUCH_EVERY_MS = 60_000
_LONGEST_TOKEN_MS = 10 * 366 * 86_400_000
_WRONG = ("wrong user name or password: check both (names are case-sensitive), or ask an admin to reset "
          "the password")
_UNKNOWN_TOKEN = "unknown API token: it was never made here, or it was copied wrong; sign in again or make a new one"

_SHARED: WeakKeyDictionary[Any, tuple[Throttle, VerifiedPasswords]] = WeakKeyDictionary()
_SHARED_LOCK = Lock()


def _shared(store: Any, clock: Callable[[], int]) -> tuple[Throttle, VerifiedPasswords]:
    with _SHARED_LOCK:
        try:
            found = _SHARED.get(store)
            if found is None:
                found = _SHARED[store] = (Throttle(clock=clock), VerifiedPasswords())
            return found
        except TypeError:  # a store that cannot be weakly referenced: per service, then
            return Throttle(clock=clock), VerifiedPasswords()


@cache
def _dummy_hash() -> str:
    # Verified against when the user is unknown, so that answer takes as long as a wrong password.
    return hash_password("not a password: only spends the time of a verification")


def _role(value: Role | str | int) -> Role:
    role = role_from_wire(value)
    if role is None:
        raise InvalidInput("role: give one of " + ", ".join(r.label for r in Role), field="role")
    return role


def _identity(issuer: str, subject: str) -> tuple[str, str]:
    issuer, subject = (issuer or "").strip(), (subject or "").strip()
    if not issuer.startswith(("https://", "http://")):
        raise InvalidInput(f"issuer {issuer!r} is not a URL: give the provider's issuer as its discovery document "
                           "names it (by default the server's SHIPYARD_SERVER_OIDC_ISSUER)", field="issuer")
    if not subject:
        raise InvalidInput("subject is empty: give the provider's `sub` claim for the person (its admin console "
                           "shows it)", field="subject")
    return issuer, subject


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class AuthService:
    """Users, tokens, projects and the audit log in ``store``, as ``principal``."""

    def __init__(self, store: AuthStore, principal: Principal, *, clock: Callable[[], int] = now_ms,
                 throttle: Throttle | None = None, verified: VerifiedPasswords | None = None) -> None:
        self.store = store
        self.principal = principal
        self.clock = clock
        self._throttle = throttle
        self._verified = verified

    # -- who may ------------------------------------------------------------------------------------------
    def whoami(self) -> Principal:
        return self.principal

    def _signed_in(self) -> None:
        if self.principal.anonymous and not self.principal.unrestricted:
            raise Unauthenticated("sign in first: send an API token (Authorization: Bearer shy_…) or a user "
                                  "name and password")

    def _admin(self, what: str) -> None:
        self._signed_in()
        if not self.principal.can(Permission.ADMIN):
            why = " (a project-scoped token never administers the server)" if self.principal.scope else ""
            raise PermissionDenied(f"{what} needs a server admin; {self.principal.name!r} is not one{why}")

    def _is_admin(self) -> bool:
        return self.principal.can(Permission.ADMIN)

    def _in_project(self, name: str, permission: Permission, what: str) -> Project:
        """Project ``name`` if the principal holds ``permission`` there; ``NotFound`` if it holds
        no role there at all, ``PermissionDenied`` naming the role needed if too low a one."""
        self._signed_in()
        held = self.principal.role_in(name)
        if held is None:
            raise project_not_found(name)
        project = self.store.get_project(name)
        needed = minimum_role(permission)
        if needed is not None and held < needed:
            raise PermissionDenied(f"{what} in project {name!r} needs the {needed.label} role; "
                                   f"{self.principal.name!r} holds {held.label} there", project=name)
        return project

    # -- users --------------------------------------------------------------------------------------------
    def create_user(self, name: str, *, email: str = "", password: str | None = None, admin: bool = False,
                    service: bool = False) -> User:
        """A new user (server admins only). A service account has no password: it uses tokens an admin
        makes for it. Raises ``InvalidInput`` naming the rule a name, email or password breaks,
        ``AlreadyExists``, ``PermissionDenied``."""
        self._admin("creating a user")
        return self._new_user(name, email=email, password=password, admin=admin, service=service)

    def _new_user(self, name: str, *, email: str, password: str | None, admin: bool, service: bool) -> User:
        if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
            raise InvalidInput(f"user name {name!r} is not valid: use 1 to 64 letters, digits and _ . @ + -, "
                               "starting with a letter or digit", field="name")
        email = (email or "").strip()
        if email and not _EMAIL.fullmatch(email):
            raise InvalidInput(f"email {email!r} is not an address like name@example.com", field="email")
        if service and password is not None:
            raise InvalidInput("a service account has no password: it signs in with API tokens that an admin "
                               "makes for it (shipyard tokens create --user NAME)", field="password")
        hashed = None
        if password is not None:
            check_password(password, name=name)
            hashed = hash_password(password)
        user = User(name=name, email=email, admin=bool(admin), service=bool(service))
        return self.store.create_user(user, password_hash=hashed)

    def bootstrap(self, name: str, password: str, *, email: str = "") -> User:
        """The first admin of a server without users (the caller checked the one-time code).
        Raises ``Conflict`` once any user exists."""
        if self.store.count_users() > 0:
            raise Conflict("this server has users already: the first admin is made only once; sign in as an "
                           "admin and use shipyard users create")
        return self._new_user(name, email=email, password=password, admin=True, service=False)

    def get_user(self, name: str) -> User:
        """A user: one's own, or any for an admin."""
        self._signed_in()
        if name != self.principal.name and not self._is_admin():
            raise PermissionDenied(f"reading user {name!r} needs a server admin; you may read your own")
        return self.store.get_user(name)

    def list_users(self) -> list[User]:
        self._admin("listing users")
        return self.store.list_users()

    def set_password(self, name: str, password: str, *, current: str | None = None) -> User:
        """A new password for ``name``: an admin sets anyone's; a user sets their own and gives
        ``current`` (a stolen token alone must not take over the account)."""
        self._signed_in()
        admin = self._is_admin()
        if name != self.principal.name and not admin:
            raise PermissionDenied(f"setting the password of {name!r} needs a server admin; you may set your own")
        user = self.store.get_user(name)
        if user.service:
            raise InvalidInput(f"{name!r} is a service account: it has no password, only API tokens", field="name")
        stored = self.store.password_hash(name)
        if not admin and stored is not None:
            throttle = self._guard()[0]
            throttle.check(name)
            if current is None or not verify_password(stored, current):
                throttle.failed(name)
                raise PermissionDenied("the current password is not right: give the one you sign in with now",
                                       field="current")
        check_password(password, name=name)
        return self.store.update_user(name, password_hash=hash_password(password))

    def disable_user(self, name: str) -> User:
        """Refuse ``name`` from now on, by password and by every token it has (server admins only).
        Raises ``Conflict`` for the last admin who can sign in."""
        self._admin("disabling a user")
        self._keep_an_admin(name)
        return self.store.update_user(name, disabled=True)

    def set_admin(self, name: str, admin: bool = True) -> User:
        """Make ``name`` a server admin, or (``admin=False``) an ordinary user again (server admins
        only). Raises ``Conflict`` when that would leave no enabled admin, ``InvalidInput`` for a
        service account (it acts for one project's CI through scoped tokens, never as an admin)."""
        self._admin("making or unmaking an admin")
        user = self.store.get_user(name)
        if admin and user.service:
            raise InvalidInput(f"{name!r} is a service account: it cannot be an admin; make a person's account "
                               "an admin instead", field="name")
        if not admin:
            self._keep_an_admin(name)
        return self.store.update_user(name, admin=bool(admin))

    def _keep_an_admin(self, name: str) -> None:
        user = self.store.get_user(name)
        if user.admin and not user.disabled:
            others = [u for u in self.store.list_users() if u.admin and not u.disabled and u.name != name]
            if not others:
                raise Conflict(f"{name!r} is the only enabled admin: make another admin first, or nobody could "
                               "administer the server")

    def link_identity(self, name: str, *, issuer: str, subject: str) -> User:
        """Link the existing user ``name`` to the single sign-on identity ``(issuer, subject)`` (server
        admins only): from then on, signing in through that provider account is signing in as
        ``name``, password account or not. The subject is the provider's ``sub`` claim, never a
        name or e-mail address (see :meth:`authenticate_identity`)."""
        self._admin("linking a user to a sign-on identity")
        issuer, subject = _identity(issuer, subject)
        return self.store.link_identity(name, issuer=issuer, subject=subject)

    def unlink_identity(self, name: str, *, issuer: str, subject: str) -> User:
        """Undo :meth:`link_identity` (server admins only); the user and its password stay."""
        self._admin("unlinking a user from a sign-on identity")
        issuer, subject = _identity(issuer, subject)
        return self.store.unlink_identity(name, issuer=issuer, subject=subject)

    def enable_user(self, name: str) -> User:
        self._admin("enabling a user")
        return self.store.update_user(name, disabled=False)

    # -- signing in ---------------------------------------------------------------------------------------
    def _guard(self) -> tuple[Throttle, VerifiedPasswords]:
        if self._throttle is None or self._verified is None:
            throttle, verified = _shared(self.store, self.clock)
            self._throttle = self._throttle or throttle
            self._verified = self._verified or verified
        return self._throttle, self._verified

    def authenticate_password(self, name: str, password: str, *, address: str | None = None,
                              project: str | None = None) -> Principal:
        """The principal of ``name`` if ``password`` is theirs. ``TooManyAttempts`` (with
        ``retry_after`` seconds) after 5 failures for the name or from ``address`` in 5 minutes;
        ``Unauthenticated`` with one message for an unknown user, a wrong password and a user
        without one; ``Unauthenticated`` for a disabled user (said only to the right password)."""
        throttle, verified = self._guard()
        throttle.check(name, address)
        try:
            user: User | None = self.store.get_user(name)
            stored = self.store.password_hash(name)
        except NotFound:
            user, stored = None, None
        if user is None or stored is None or len(password) > MAX_LENGTH:
            verify_password(_dummy_hash(), password[:MAX_LENGTH])
            throttle.failed(name, address)
            raise Unauthenticated(_WRONG)
        if (name, password, stored) not in verified:
            if not verify_password(stored, password):
                throttle.failed(name, address)
                raise Unauthenticated(_WRONG)
            if needs_rehash(stored):  # made with older parameters: upgrade it now that we know the password
                stored = hash_password(password)
                self.store.update_user(name, password_hash=stored)
            verified.add(name, password, stored)
        if user.disabled:
            raise Unauthenticated(f"user {name!r} is disabled: ask an admin to enable it")
        throttle.succeeded(name, address)
        return self.principal_for(user, project=project)

    def authenticate_token(self, secret: str, *, project: str | None = None) -> Principal:
        """The principal of the token ``secret`` (scoped as the token is). ``Unauthenticated``
        saying which: malformed, unknown (or a wrong secret: the same answer), revoked, expired,
        of a disabled user. Its last use is recorded, at most once a minute."""
        token_id = parse_secret(secret)
        try:
            token, stored, user, memberships = self.store.token_holder(token_id)
        except NotFound:
            raise Unauthenticated(_UNKNOWN_TOKEN) from None
        if not secret_matches(secret, stored):
            raise Unauthenticated(_UNKNOWN_TOKEN)
        if token.revoked:
            raise Unauthenticated(f"API token {token_id} ({token.name!r}) was revoked: sign in again or make a "
                                  "new one")
        now = self.clock()
        if token.expires is not None and token.expires <= now:
            raise Unauthenticated(f"API token {token_id} ({token.name!r}) expired at {_when(token.expires)}: sign "
                                  "in again or make a new one")
        if user.disabled:
            raise Unauthenticated(f"user {user.name!r} is disabled: ask an admin to enable it")
        if token.last_used is None or now - token.last_used >= _TOUCH_EVERY_MS:
            self.store.touch_token(token_id, now)
        scope = None if token.project is None else (token.project, token.role or Role.OWNER)
        return self.principal_for(user, scope=scope, token_id=token_id, project=project, memberships=memberships)

    def authenticate_identity(self, issuer: str, subject: str, *, names: Sequence[str], email: str = "",
                              grants: Sequence[tuple[str, Role]] = ()) -> Principal:
        """The principal of the user linked to the single sign-on identity ``(issuer, subject)``
        (the provider checked who it is). At its first sign-in the user is made: named by the first
        of ``names`` that is a valid user name, with ``email`` if it is an address, holding
        ``grants``, without password or admin. A user is found by that identity only, never by a
        name or e-mail address that happens to match (whoever controls a provider account with
        that name would take the Shipyard account over): ``Conflict`` when the name is another
        user's. ``Unauthenticated`` for a disabled user or when no name is usable."""
        try:
            user = self.store.user_by_identity(issuer, subject)
        except NotFound:
            user = self._first_sign_in(issuer, subject, names, email, grants)
        if user.disabled:
            raise Unauthenticated(f"user {user.name!r} is disabled: ask an admin to enable it")
        return self.principal_for(user)

    def _first_sign_in(self, issuer: str, subject: str, names: Sequence[str], email: str,
                       grants: Sequence[tuple[str, Role]]) -> User:
        name = next((n for n in names if isinstance(n, str) and _USER_NAME.fullmatch(n)), None)
        if name is None:
            raise Unauthenticated("the sign-in provider gave no usable user name (tried: " + ", ".join(
                repr(n)[:80] for n in names) + "): a name is 1 to 64 letters, digits and _ . @ + -; ask the "
                "operator to choose another claim (SHIPYARD_SERVER_OIDC_USERNAME_CLAIM)")
        email = email if isinstance(email, str) and _EMAIL.fullmatch(email) and len(email) <= 320 else ""
        user = User(name=name, email=email)
        try:
            return self.store.create_linked_user(user, issuer=issuer, subject=subject, grants=grants)
        except AlreadyExists as err:
            if "user" in err.details:
                raise Conflict(f"the user name {name!r} belongs to another Shipyard user, who is not linked to this "
                               "sign-in: sign in with that user's password, or ask the operator to name users by "
                               "another claim (SHIPYARD_SERVER_OIDC_USERNAME_CLAIM, e.g. email)", user=name) from None
            return self.store.user_by_identity(issuer, subject)  # a concurrent first sign-in made it

    def principal_for(self, user: User, *, scope: tuple[str, Role] | None = None, token_id: str | None = None,
                      project: str | None = None, memberships: list[Membership] | None = None) -> Principal:
        """``user`` as a principal, with the roles of its memberships (read here unless given; an
        admin holds every role)."""
        if memberships is None and not user.admin:
            memberships = self.store.grants(user.name)
        grants = () if user.admin else [(m.project, Role(m.role)) for m in memberships or ()]
        return Principal.signed_in(user.name, admin=user.admin, grants=grants, scope=scope, project=project,
                                   token_id=token_id)

    # -- tokens -------------------------------------------------------------------------------------------
    def create_token(self, name: str, *, user: str | None = None, expires_in_ms: int | None = None,
                     project: str | None = None, role: Role | str | int | None = None,
                     kind: str = "api") -> tuple[ApiToken, str]:
        """A new token of ``user`` (default: oneself; another user's, service accounts included, only
        for an admin) and its secret, which is shown this once. With ``project`` it acts only there,
        with at most ``role``. A scoped principal makes only tokens within its own scope."""
        self._signed_in()
        owner = user or self.principal.name
        if owner != self.principal.name and not self._is_admin():
            raise PermissionDenied(f"making a token for {owner!r} needs a server admin; you may make your own")
        if not isinstance(name, str) or not name.strip() or len(name) > _TOKEN_NAME_MAX or not name.isprintable():
            raise InvalidInput(f"token name {name!r} is not valid: give 1 to {_TOKEN_NAME_MAX} printable characters "
                               "that say what it is for (e.g. 'ci nightly')", field="name")
        if kind not in TOKEN_KINDS:
            raise InvalidInput(f"token kind {kind!r} is not one of {', '.join(TOKEN_KINDS)}", field="kind")
        if expires_in_ms is not None and (isinstance(expires_in_ms, bool) or not isinstance(expires_in_ms, int)
                                          or not 0 < expires_in_ms <= _LONGEST_TOKEN_MS):
            raise InvalidInput(f"expires_in_ms: expected a positive number of milliseconds, at most 10 years, got "
                               f"{expires_in_ms!r}; leave it out for a token that does not expire",
                               field="expires_in_ms")
        cap = None if role is None else _role(role)
        if cap is not None and project is None:
            raise InvalidInput("a role limits a token within one project: give the project too", field="role")
        project, cap = self._within_scope(project, cap)
        target = self.store.get_user(owner)
        if target.disabled:
            raise InvalidInput(f"user {owner!r} is disabled: enable it before making tokens for it", field="user")
        if project is not None:
            if not self._is_admin() and self.principal.role_in(project) is None:
                raise project_not_found(project)  # as for an absent one: a name tells nothing
            self.store.get_project(project)
            if self.principal_for(target).role_in(project) is None:
                raise InvalidInput(f"user {owner!r} has no role in project {project!r}: grant one first "
                                   f"(shipyard projects grant {project} {owner} ROLE)", field="project")
        now = self.clock()
        token_id = new_token_id()
        secret = new_secret(token_id)
        token = ApiToken(token_id=token_id, user=owner, name=name.strip(), kind=kind, project=project, role=cap,
                         expires=self._within_lifetime(None if expires_in_ms is None else now + expires_in_ms))
        return self.store.create_token(token, secret_hash=hash_secret(secret)), secret

    def _within_lifetime(self, expires: int | None) -> int | None:
        """A token made with an expiring token expires no later than it (a stolen web session or CI
        token must not mint one that outlives it)."""
        if self.principal.token_id is None:
            return expires
        try:
            parent, _ = self.store.get_token(self.principal.token_id)
        except NotFound:
            return expires
        if parent.expires is None:
            return expires
        return parent.expires if expires is None else min(expires, parent.expires)

    def _within_scope(self, project: str | None, role: Role | None) -> tuple[str | None, Role | None]:
        """A token made with a project-scoped token reaches no further than that token."""
        if self.principal.scope is None:
            return project, role
        scope_project, scope_role = self.principal.scope
        if project not in (None, scope_project) or (role is not None and role > scope_role):
            raise PermissionDenied(f"this token is limited to project {scope_project!r} as {scope_role.label}: "
                                   "it can make tokens only within that")
        return scope_project, role or scope_role

    def list_tokens(self, user: str | None = None, *, kind: str | None = None,
                    all_users: bool = False) -> list[ApiToken]:
        """One's own tokens (or ``user``'s, or with ``all_users`` everyone's: admins only), newest first."""
        self._signed_in()
        owner = None if all_users else (user or self.principal.name)
        if owner != self.principal.name and not self._is_admin():
            raise PermissionDenied("listing the tokens of other users needs a server admin; you may list your own")
        return [t for t in self.store.list_tokens(owner, kind=kind) if self._reaches(t)]

    def _reaches(self, token: ApiToken) -> bool:
        """A project-scoped principal sees and revokes only the tokens of its own project."""
        return self.principal.scope is None or token.project == self.principal.scope[0]

    def revoke_token(self, token_id: str) -> ApiToken:
        """Revoke one of one's own tokens (an admin: anyone's). Another user's token is ``NotFound``."""
        self._signed_in()
        try:
            token, _ = self.store.get_token(token_id)
        except NotFound:
            raise token_not_found(token_id) from None
        if (token.user != self.principal.name and not self._is_admin()) or not self._reaches(token):
            raise token_not_found(token_id)
        self.store.revoke_token(token_id)
        return self.store.get_token(token_id)[0]

    # -- projects -----------------------------------------------------------------------------------------
    def create_project(self, name: str, description: str = "") -> Project:
        """A new project (server admins only, who hold every role in it). Raises ``InvalidInput``,
        ``AlreadyExists``."""
        self._admin("creating a project")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
            raise InvalidInput(f"project name {name!r} is not valid: use 1 to 64 letters, digits and _ . -, "
                               "starting with a letter or digit", field="name")
        return self.store.create_project(Project(name=name, description=description or "",
                                                 created_by=self.principal.name))

    def list_projects(self) -> list[Project]:
        """Every project for an admin; the ones one is a member of otherwise."""
        self._signed_in()
        visible = self.principal.visible_projects(Permission.READ)
        projects = self.store.list_projects()
        return projects if visible is None else [p for p in projects if p.name in visible]

    def grant(self, project: str, user: str, role: Role | str | int) -> Membership:
        """Give ``user`` ``role`` in ``project`` (replacing any other): its owners, or an admin."""
        chosen = _role(role)
        self._in_project(project, Permission.DELETE, "managing members")
        self.store.set_member(project, user, chosen)
        return Membership(project=project, user=user, role=chosen)

    def revoke(self, project: str, user: str) -> None:
        """Take ``user``'s role in ``project`` away: its owners, or an admin."""
        self._in_project(project, Permission.DELETE, "managing members")
        if not any(m.user == user for m in self.store.members(project)):
            raise NotFound(f"user {user!r} is not a member of project {project!r}; see: shipyard projects "
                           f"members {project}", project=project, user=user)
        self.store.set_member(project, user, None)

    def members(self, project: str) -> list[Membership]:
        """The members of ``project``, for anyone who may read it."""
        self._in_project(project, Permission.READ, "listing members")
        return self.store.members(project)

    # -- audit --------------------------------------------------------------------------------------------
    def record(self, events: Iterable[AuditEvent]) -> None:
        """Append ``events`` to the audit log. Only the server's audit writer calls this; no route does."""
        self.store.record_audit(list(events))

    def audit(self, query: AuditQuery) -> list[AuditEvent]:
        """Events matching ``query``, newest first: all of them for an admin, one project's for its owners."""
        self._signed_in()
        if self._is_admin():
            return self.store.audit(query)
        if query.project is None:
            raise PermissionDenied("the audit log of every project is for server admins: name a project you own "
                                   "(--project NAME)")
        self._in_project(query.project, Permission.DELETE, "reading the audit log")
        return self.store.audit(query)

    def audit_jsonl(self, query: AuditQuery) -> Iterator[str]:
        """The same events as JSON lines (each ending in a newline); permissions are checked now,
        before the first line is asked for."""
        events = self.audit(query)
        return (json.dumps(e.to_dict(), separators=(",", ":")) + "\n" for e in events)
