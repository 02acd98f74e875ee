"""AuthStore on SQL: users, API tokens, projects with their members, and the audit log.

The store keeps what the :class:`~shipyard.auth.service.AuthService` decided: hashes it was
given (never a secret), unique names, and the links between them. The audit log is
append-only twice over: this class has no method that edits or deletes an event, and triggers
in the database refuse UPDATE and DELETE on ``audit_events`` from anyone (see ``tables.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from shipyard.clock import now_ms
from shipyard.entities.auth import ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.store.not_found import project_not_found, token_not_found, user_not_found
from shipyard.store.sql.database import Database
from shipyard.store.sql.tables import api_tokens, audit_events, project_members, projects, user_identities, users
from shipyard.store.sql.upsert import upsert

__all__ = ["SqlAuthStore"]

# The widths of the columns. Names, hashes and descriptions longer than these are refused (the
# service checks its own, narrower rules first); audit fields are cut instead, because an event
# must be recorded whatever a client put in its request.
_NAME = 256
_EMAIL = 320
_PASSWORD_HASH = 512
_TOKEN_ID = 64
_KIND = 16
_SECRET_HASH = 128
_DESCRIPTION = 5000
_ISSUER = 512
_SUBJECT = 256
_AUDIT_WIDTHS = {"principal": 256, "action": 256, "method": 16, "path": 2000, "project": 256,
                 "object": 1000, "address": 256, "request_id": 256, "detail": 5000}


def _fits(field: str, value: str | None, width: int) -> None:
    if value is not None and len(value) > width:
        raise InvalidInput(f"{field}: at most {width} characters, got {len(value)}", field=field)


def _role(role: Any) -> int:
    try:
        return int(Role(role))
    except ValueError:
        raise InvalidInput(f"role: {role!r} is not one of " + ", ".join(f"{r.label} ({int(r)})" for r in Role),
                           field="role") from None


def _user(row: Any) -> User:
    return User(name=row.name, email=row.email, admin=bool(row.admin), service=bool(row.service),
                disabled=bool(row.disabled), creation_time=row.creation_time, last_update_time=row.last_update_time)


def _token(row: Any) -> ApiToken:
    return ApiToken(token_id=row.token_id, user=row.user_name, name=row.name, kind=row.kind, project=row.project,
                    role=None if row.role is None else Role(row.role), creation_time=row.creation_time,
                    expires=row.expires, last_used=row.last_used, revoked=bool(row.revoked))


def _project(row: Any) -> Project:
    return Project(name=row.name, description=row.description, creation_time=row.creation_time,
                   created_by=row.created_by)


def _event(row: Any) -> AuditEvent:
    return AuditEvent(time=row.time, principal=row.principal, action=row.action, method=row.method, path=row.path,
                      status=row.status, project=row.project, object=row.object, address=row.address,
                      request_id=row.request_id, detail=row.detail, event_id=row.event_id)


def _user_row(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(users).where(users.c.name == name)).first()
    if row is None:
        raise user_not_found(name)
    return row


def _project_row(conn: sa.Connection, name: str) -> Any:
    row = conn.execute(sa.select(projects).where(projects.c.name == name)).first()
    if row is None:
        raise project_not_found(name)
    return row


def _token_row(conn: sa.Connection, token_id: str) -> Any:
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
    if row is None:
        raise token_not_found(token_id)
    return row


def _cut(field: str, value: str | None) -> str | None:
    return None if value is None else value[:_AUDIT_WIDTHS[field]]


_TOKEN_HOLDER = (
    sa.select(api_tokens,
              *(column.label(f"holder_{column.name}") for column in users.c if column.name != "password_hash"),
              project_members.c.project.label("member_project"), project_members.c.role.label("member_role"))
    .select_from(api_tokens.join(users, users.c.name == api_tokens.c.user_name)
                 .outerjoin(project_members, project_members.c.user_name == api_tokens.c.user_name))
    .where(api_tokens.c.token_id == sa.bindparam("token_id"))
    .order_by(project_members.c.project))


class SqlAuthStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- users -------------------------------------------------------------------------------
    def create_user(self, user: User, *, password_hash: str | None = None) -> User:
        _fits("name", user.name, _NAME)
        _fits("email", user.email, _EMAIL)
        _fits("password_hash", password_hash, _PASSWORD_HASH)
        now = now_ms()
        stored = replace(user, creation_time=now, last_update_time=now)
        exists = AlreadyExists(f"user {user.name!r} already exists; see: shipyard users list", user=user.name)
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(users.c.name).where(users.c.name == user.name)).first():
                    raise exists
                conn.execute(users.insert().values(
                    name=stored.name, email=stored.email, password_hash=password_hash, admin=stored.admin,
                    service=stored.service, disabled=stored.disabled, creation_time=now, last_update_time=now))
        except sa_exc.IntegrityError:  # a concurrent create of the same name won the INSERT
            raise exists from None
        return stored

    def get_user(self, name: str) -> User:
        with self._db.read() as conn:
            return _user(_user_row(conn, name))

    def list_users(self) -> list[User]:
        with self._db.read() as conn:
            return [_user(r) for r in conn.execute(sa.select(users).order_by(users.c.name))]

    def update_user(self, name: str, *, email: str | None = None, admin: bool | None = None,
                    disabled: bool | None = None, password_hash: str | None = None) -> User:
        _fits("email", email, _EMAIL)
        _fits("password_hash", password_hash, _PASSWORD_HASH)
        given = {"email": email, "admin": admin, "disabled": disabled, "password_hash": password_hash}
        changes = {column: value for column, value in given.items() if value is not None}
        with self._db.write() as conn:
            row = _user_row(conn, name)
            if changes:
                # Never backwards, even if the clock is: "changed since" queries rely on it.
                changes["last_update_time"] = max(now_ms(), row.last_update_time)
                conn.execute(users.update().where(users.c.name == name).values(**changes))
            return _user(_user_row(conn, name))

    def password_hash(self, name: str) -> str | None:
        with self._db.read() as conn:
            password_hash: str | None = _user_row(conn, name).password_hash
            return password_hash

    def count_users(self) -> int:
        with self._db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    # -- tokens ------------------------------------------------------------------------------
    def create_token(self, token: ApiToken, *, secret_hash: str) -> ApiToken:
        _fits("token_id", token.token_id, _TOKEN_ID)
        _fits("name", token.name, _NAME)
        _fits("kind", token.kind, _KIND)
        _fits("secret_hash", secret_hash, _SECRET_HASH)
        taken = AlreadyExists(f"token id {token.token_id!r} is taken; make a new token id", token=token.token_id)
        try:
            with self._db.write() as conn:
                _user_row(conn, token.user)
                if token.project is not None:
                    _project_row(conn, token.project)
                if conn.execute(sa.select(api_tokens.c.token_id)
                                .where(api_tokens.c.token_id == token.token_id)).first():
                    raise taken
                # "Newest first" must hold for tokens made within one millisecond too (a login
                # right after another): each of a user's tokens is younger than the one before.
                latest = conn.execute(sa.select(sa.func.max(api_tokens.c.creation_time))
                                      .where(api_tokens.c.user_name == token.user)).scalar()
                now = now_ms() if latest is None else max(now_ms(), latest + 1)
                stored = replace(token, creation_time=now)
                conn.execute(api_tokens.insert().values(
                    token_id=stored.token_id, user_name=stored.user, name=stored.name, kind=stored.kind,
                    project=stored.project, role=None if stored.role is None else _role(stored.role),
                    secret_hash=secret_hash, creation_time=now, expires=stored.expires,
                    last_used=stored.last_used, revoked=stored.revoked))
        except sa_exc.IntegrityError:  # a concurrent create of the same id won the INSERT
            raise taken from None
        return stored

    def get_token(self, token_id: str) -> tuple[ApiToken, str]:
        with self._db.read() as conn:
            row = _token_row(conn, token_id)
            return _token(row), row.secret_hash

    def token_holder(self, token_id: str) -> tuple[ApiToken, str, User, list[Membership]]:
        # What every request signed in with a token needs, in one statement built once: this runs
        # per request, where building the query each time cost more than running it.
        with self._db.read() as conn:
            rows = conn.execute(_TOKEN_HOLDER, {"token_id": token_id}).all()
        if not rows:
            raise token_not_found(token_id)
        first = rows[0]
        user = User(name=first.holder_name, email=first.holder_email, admin=bool(first.holder_admin),
                    service=bool(first.holder_service), disabled=bool(first.holder_disabled),
                    creation_time=first.holder_creation_time, last_update_time=first.holder_last_update_time)
        return (_token(first), first.secret_hash, user,
                [Membership(r.member_project, first.user_name, Role(r.member_role)) for r in rows
                 if r.member_project is not None])

    def list_tokens(self, user: str | None = None, *, kind: str | None = None) -> list[ApiToken]:
        stmt = sa.select(api_tokens)
        if user is not None:
            stmt = stmt.where(api_tokens.c.user_name == user)
        if kind is not None:
            stmt = stmt.where(api_tokens.c.kind == kind)
        stmt = stmt.order_by(api_tokens.c.creation_time.desc(), api_tokens.c.token_id)
        with self._db.read() as conn:
            return [_token(r) for r in conn.execute(stmt)]

    def revoke_token(self, token_id: str) -> None:
        with self._db.write() as conn:
            _token_row(conn, token_id)
            conn.execute(api_tokens.update().where(api_tokens.c.token_id == token_id).values(revoked=True))

    def touch_token(self, token_id: str, when: int) -> None:
        # Only forwards: two requests finishing out of order must not move the last use back.
        with self._db.write() as conn:
            conn.execute(api_tokens.update()
                         .where(api_tokens.c.token_id == token_id,
                                sa.or_(api_tokens.c.last_used.is_(None), api_tokens.c.last_used < when))
                         .values(last_used=when))

    # -- projects ----------------------------------------------------------------------------
    def create_project(self, project: Project) -> Project:
        _fits("name", project.name, _NAME)
        _fits("description", project.description, _DESCRIPTION)
        _fits("created_by", project.created_by, _NAME)
        stored = replace(project, creation_time=now_ms())
        exists = AlreadyExists(f"project {project.name!r} already exists; see: shipyard projects list",
                               project=project.name)
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(projects.c.name).where(projects.c.name == project.name)).first():
                    raise exists
                conn.execute(projects.insert().values(
                    name=stored.name, description=stored.description, creation_time=stored.creation_time,
                    created_by=stored.created_by))
        except sa_exc.IntegrityError:  # a concurrent create of the same name won the INSERT
            raise exists from None
        return stored

    def get_project(self, name: str) -> Project:
        with self._db.read() as conn:
            return _project(_project_row(conn, name))

    def list_projects(self) -> list[Project]:
        with self._db.read() as conn:
            return [_project(r) for r in conn.execute(sa.select(projects).order_by(projects.c.name))]

    def set_member(self, project: str, user: str, role: Role | None) -> None:
        with self._db.write() as conn:
            _project_row(conn, project)
            _user_row(conn, user)
            if role is None:
                conn.execute(project_members.delete().where(project_members.c.project == project,
                                                            project_members.c.user_name == user))
                return
            # ON CONFLICT: two grants to the same member at once both succeed, the last one wins.
            upsert(conn, project_members, [{"project": project, "user_name": user, "role": _role(role)}],
                   keys=("project", "user_name"))

    def members(self, project: str) -> list[Membership]:
        with self._db.read() as conn:
            _project_row(conn, project)
            rows = conn.execute(sa.select(project_members).where(project_members.c.project == project)
                                .order_by(project_members.c.user_name))
            return [Membership(r.project, r.user_name, Role(r.role)) for r in rows]

    def grants(self, user: str) -> list[Membership]:
        with self._db.read() as conn:
            rows = conn.execute(sa.select(project_members).where(project_members.c.user_name == user)
                                .order_by(project_members.c.project))
            return [Membership(r.project, r.user_name, Role(r.role)) for r in rows]

    # -- single sign-on identities ----------------------------------------------------------
    def user_by_identity(self, issuer: str, subject: str) -> User:
        with self._db.read() as conn:
            row = conn.execute(sa.select(users).join(user_identities, user_identities.c.user_name == users.c.name)
                               .where(user_identities.c.issuer == issuer, user_identities.c.subject == subject)
                               ).first()
        if row is None:
            raise NotFound(f"no user is linked to subject {subject!r} of {issuer}", issuer=issuer, subject=subject)
        return _user(row)

    def create_linked_user(self, user: User, *, issuer: str, subject: str,
                           grants: Sequence[tuple[str, Role]] = ()) -> User:
        _fits("name", user.name, _NAME)
        _fits("email", user.email, _EMAIL)
        _fits("issuer", issuer, _ISSUER)
        _fits("subject", subject, _SUBJECT)
        now = now_ms()
        stored = replace(user, creation_time=now, last_update_time=now)
        taken = AlreadyExists(f"user {user.name!r} already exists; see: shipyard users list", user=user.name)
        linked = AlreadyExists(f"subject {subject!r} of {issuer} is linked to a user already", issuer=issuer,
                               subject=subject)
        try:
            with self._db.write() as conn:
                if conn.execute(sa.select(users.c.name).where(users.c.name == user.name)).first():
                    raise taken
                if conn.execute(sa.select(user_identities.c.user_name).where(
                        user_identities.c.issuer == issuer, user_identities.c.subject == subject)).first():
                    raise linked
                for project, _ in grants:
                    _project_row(conn, project)
                conn.execute(users.insert().values(
                    name=stored.name, email=stored.email, password_hash=None, admin=stored.admin,
                    service=stored.service, disabled=stored.disabled, creation_time=now, last_update_time=now))
                conn.execute(user_identities.insert().values(issuer=issuer, subject=subject, user_name=stored.name,
                                                             creation_time=now))
                for project, role in grants:
                    conn.execute(project_members.insert().values(project=project, user_name=stored.name,
                                                                 role=_role(role)))
        except sa_exc.IntegrityError:  # a concurrent first sign-in won the INSERT of the name or the identity
            raise linked from None
        return stored

    def link_identity(self, name: str, *, issuer: str, subject: str) -> User:
        _fits("issuer", issuer, _ISSUER)
        _fits("subject", subject, _SUBJECT)
        linked = AlreadyExists(f"subject {subject!r} of {issuer} is linked to a user already", issuer=issuer,
                               subject=subject)
        try:
            with self._db.write() as conn:
                user = _user(_user_row(conn, name))
                if conn.execute(sa.select(user_identities.c.user_name).where(
                        user_identities.c.issuer == issuer, user_identities.c.subject == subject)).first():
                    raise linked
                conn.execute(user_identities.insert().values(issuer=issuer, subject=subject, user_name=name,
                                                             creation_time=now_ms()))
        except sa_exc.IntegrityError:  # a concurrent link or first sign-in won the INSERT
            raise linked from None
        return user

    def unlink_identity(self, name: str, *, issuer: str, subject: str) -> User:
        with self._db.write() as conn:
            user = _user(_user_row(conn, name))
            gone = conn.execute(user_identities.delete().where(
                user_identities.c.user_name == name, user_identities.c.issuer == issuer,
                user_identities.c.subject == subject)).rowcount
        if not gone:
            raise NotFound(f"user {name!r} is not linked to subject {subject!r} of {issuer}", user=name,
                           issuer=issuer, subject=subject)
        return user

    # -- audit -------------------------------------------------------------------------------
    def record_audit(self, events: Sequence[AuditEvent]) -> None:
        rows = [{
            "time": e.time, "principal": _cut("principal", e.principal), "action": _cut("action", e.action),
            "method": _cut("method", e.method), "path": _cut("path", e.path), "status": e.status,
            "project": _cut("project", e.project), "object": _cut("object", e.object),
            "address": _cut("address", e.address), "request_id": _cut("request_id", e.request_id),
            "detail": _cut("detail", e.detail or ""),
        } for e in events]
        if rows:
            with self._db.write() as conn:
                conn.execute(audit_events.insert(), rows)

    def audit(self, query: AuditQuery) -> list[AuditEvent]:
        limit = query.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit: expected a whole number of at least 1, got {limit!r}", field="limit")
        stmt = sa.select(audit_events)
        for column, value in (("project", query.project), ("principal", query.principal),
                              ("object", query.object), ("action", query.action)):
            if value is not None:
                stmt = stmt.where(audit_events.c[column] == value)
        if query.since is not None:
            stmt = stmt.where(audit_events.c.time >= query.since)
        if query.until is not None:
            stmt = stmt.where(audit_events.c.time < query.until)
        stmt = stmt.order_by(audit_events.c.time.desc(), audit_events.c.event_id.desc()).limit(limit)
        with self._db.read() as conn:
            return [_event(r) for r in conn.execute(stmt)]
