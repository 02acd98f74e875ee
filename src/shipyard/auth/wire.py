"""The auth entities to and from their JSON wire shape, shared by the server's auth API and
:class:`~shipyard.auth.remote.RemoteAuth` (which must not import each other), in the manner
of :mod:`shipyard.wire`. Roles travel as their labels (``"editor"``), times as epoch
milliseconds. Nothing here ever carries a password or a token's hash: a token's secret travels
once, beside the token, in the answer to its creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.auth.principal import Principal
from shipyard.entities.auth import DEFAULT_PROJECT, ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User
from shipyard.errors import InvalidInput

__all__ = ["audit_query_from_params", "audit_query_to_params", "event_from_wire", "event_to_wire",
           "member_from_wire", "member_to_wire", "principal_from_wire", "principal_to_wire", "project_from_wire",
           "project_to_wire", "role_from_wire", "token_from_wire", "token_to_wire", "user_from_wire", "user_to_wire"]


def role_from_wire(value: Any) -> Role | None:
    """``"editor"`` (or the number 2, or a ``Role``) → ``Role.EDITOR``; ``None`` stays ``None``."""
    if value is None or isinstance(value, Role):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return Role(value)
        except ValueError:
            raise InvalidInput(f"role {value!r} is not one of " + ", ".join(r.label for r in Role),
                               field="role") from None
    return Role.parse(value)


def _label(role: Role | None) -> str | None:
    return None if role is None else Role(role).label


def user_to_wire(u: User) -> dict[str, Any]:
    return {"name": u.name, "email": u.email, "admin": u.admin, "service": u.service, "disabled": u.disabled,
            "creation_time": u.creation_time, "last_update_time": u.last_update_time}


def user_from_wire(d: Mapping[str, Any]) -> User:
    return User(name=d["name"], email=d.get("email") or "", admin=bool(d.get("admin")),
                service=bool(d.get("service")), disabled=bool(d.get("disabled")),
                creation_time=d.get("creation_time") or 0, last_update_time=d.get("last_update_time") or 0)


def token_to_wire(t: ApiToken) -> dict[str, Any]:
    return {"token_id": t.token_id, "user": t.user, "name": t.name, "kind": t.kind, "project": t.project,
            "role": _label(t.role), "creation_time": t.creation_time, "expires": t.expires,
            "last_used": t.last_used, "revoked": t.revoked}


def token_from_wire(d: Mapping[str, Any]) -> ApiToken:
    return ApiToken(token_id=d["token_id"], user=d["user"], name=d["name"], kind=d.get("kind") or "api",
                    project=d.get("project"), role=role_from_wire(d.get("role")),
                    creation_time=d.get("creation_time") or 0, expires=d.get("expires"),
                    last_used=d.get("last_used"), revoked=bool(d.get("revoked")))


def project_to_wire(p: Project) -> dict[str, Any]:
    return {"name": p.name, "description": p.description, "creation_time": p.creation_time,
            "created_by": p.created_by}


def project_from_wire(d: Mapping[str, Any]) -> Project:
    return Project(name=d["name"], description=d.get("description") or "", creation_time=d.get("creation_time") or 0,
                   created_by=d.get("created_by") or "")


def member_to_wire(m: Membership) -> dict[str, Any]:
    return {"project": m.project, "user": m.user, "role": Role(m.role).label}


def member_from_wire(d: Mapping[str, Any]) -> Membership:
    role = role_from_wire(d["role"])
    assert role is not None
    return Membership(project=d["project"], user=d["user"], role=role)


def event_to_wire(e: AuditEvent) -> dict[str, Any]:
    return e.to_dict()


def event_from_wire(d: Mapping[str, Any]) -> AuditEvent:
    known = AuditEvent.__dataclass_fields__  # a newer peer's extra fields are not an error
    return AuditEvent(**{k: v for k, v in d.items() if k in known})


def principal_to_wire(p: Principal) -> dict[str, Any]:
    """What ``whoami`` answers. ``grants`` is ``null`` for an unrestricted principal."""
    return {"name": p.name, "anonymous": p.anonymous, "admin": p.admin,
            "grants": None if p.grants is None else [{"project": g, "role": r.label} for g, r in p.grants],
            "scope": None if p.scope is None else {"project": p.scope[0], "role": p.scope[1].label},
            "project": p.project, "token_id": p.token_id}


def principal_from_wire(d: Mapping[str, Any]) -> Principal:
    grants = d.get("grants")
    scope = d.get("scope")
    return Principal(
        name=d["name"], anonymous=bool(d.get("anonymous")), admin=bool(d.get("admin")),
        grants=None if grants is None else tuple((g["project"], Role.parse(g["role"])) for g in grants),
        scope=None if scope is None else (scope["project"], Role.parse(scope["role"])),
        project=d.get("project") or DEFAULT_PROJECT, token_id=d.get("token_id"))


_QUERY_TEXT = ("project", "principal", "object", "action")
_QUERY_TIMES = ("since", "until", "limit")


def audit_query_to_params(q: AuditQuery) -> dict[str, Any]:
    """The query string of ``GET /api/v1/audit``: only the fields that narrow the query."""
    given = {name: getattr(q, name) for name in (*_QUERY_TEXT, *_QUERY_TIMES)}
    return {k: v for k, v in given.items() if v is not None}


def audit_query_from_params(params: Mapping[str, Any]) -> AuditQuery:
    """The inverse of :func:`audit_query_to_params`, from a request's query string (text values);
    ``InvalidInput`` naming a time or limit that is not a whole number."""
    values: dict[str, Any] = {k: params[k] or None for k in _QUERY_TEXT if k in params}
    for name in _QUERY_TIMES:
        raw = params.get(name)
        if raw is None or raw == "":
            continue
        try:
            values[name] = int(raw)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name}: expected a whole number (epoch milliseconds for since and until), "
                               f"got {raw!r}", field=name) from None
    return AuditQuery(**values)
