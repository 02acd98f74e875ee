"""RemoteAuth: the public methods of :class:`~shipyard.auth.service.AuthService` over a Shipyard
server's auth API, for the CLI against an ``http(s)://`` tracking URI. The server builds an
``AuthService`` with the request's principal and calls the same method, so every rule is
checked there, once; errors come back as the same :mod:`shipyard.errors` classes.

The API (under ``/api/v1``; JSON bodies and answers; entities in the shapes of
:mod:`shipyard.auth.wire`: USER, TOKEN, PROJECT, MEMBER, EVENT, PRINCIPAL; roles as labels,
``"viewer"`` … ``"owner"``; times in epoch milliseconds; absent optional fields may be
omitted or ``null``)::

    whoami          GET    /auth/whoami                                  → {"principal": PRINCIPAL}
                    (also authenticate_token: the same route, sent with the token to check)
    bootstrap       POST   /auth/bootstrap  {name, password, email, code} → {"user": USER}
    create_token    POST   /auth/tokens     {name, user, expires_in_ms, project, role, kind}
                                                                  → {"token": TOKEN, "secret": "shy_…"}
    list_tokens     GET    /auth/tokens?user=&kind=&all_users=true      → {"tokens": [TOKEN]}
    revoke_token    DELETE /auth/tokens/{token_id}                       → {"token": TOKEN}
    create_user     POST   /users           {name, email, password, admin, service} → {"user": USER}
    list_users      GET    /users                                        → {"users": [USER]}
    get_user        GET    /users/{name}                                 → {"user": USER}
    set_password    PUT    /users/{name}/password {password, current}    → {"user": USER}
    disable_user    POST   /users/{name}/disable                         → {"user": USER}
    enable_user     POST   /users/{name}/enable                          → {"user": USER}
    set_admin       PUT    /users/{name}/admin {admin}                   → {"user": USER}
    link_identity   POST   /users/{name}/identities {issuer, subject}    → {"user": USER}
    unlink_identity DELETE /users/{name}/identities?issuer=&subject=     → {"user": USER}
                    (``issuer`` may be left out: the server's own sign-on provider)
    create_project  POST   /projects        {name, description}          → {"project": PROJECT}
    list_projects   GET    /projects                                     → {"projects": [PROJECT]}
    members         GET    /projects/{project}/members                   → {"members": [MEMBER]}
    grant           PUT    /projects/{project}/members/{user} {role}     → {"member": MEMBER}
    revoke          DELETE /projects/{project}/members/{user}            → {} (or 204)
    audit           GET    /audit?project=&principal=&object=&action=&since=&until=&limit=
                                                                         → {"events": [EVENT]}
    audit_jsonl     GET    /audit?…&format=jsonl      → application/x-ndjson: one EVENT per line

``bootstrap`` is public and carries the server's one-time code; ``set_password``'s ``current``
is needed when a user who is not an admin changes their own password. Who may call what is
decided by the service (``create_token`` makes one's own tokens; an admin's for anyone). The
route of ``create_token`` also accepts Basic credentials: that is how ``shipyard login`` trades
a password for a token.

These calls are not retried, unlike the REST store's: they are a person's commands, and a
refused sign-in (429, ``TooManyAttempts``) must say so at once, not wait out its lockout.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from shipyard.auth.principal import Principal
from shipyard.auth.wire import (
    audit_query_to_params,
    event_from_wire,
    member_from_wire,
    principal_from_wire,
    project_from_wire,
    token_from_wire,
    user_from_wire,
)
from shipyard.entities.auth import ApiToken, AuditEvent, AuditQuery, Membership, Project, Role, User
from shipyard.errors import StoreUnavailable, Unauthenticated
from shipyard.store.http import API, HttpClient, auth_headers, response_body, segment

__all__ = ["RemoteAuth"]


def _label(role: Role | str | None) -> str | None:
    return role.label if isinstance(role, Role) else role


class RemoteAuth:
    """Users, tokens, projects and the audit log of the server behind ``http``, as its principal."""

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
              headers: Mapping[str, str] | None = None) -> httpx.Response:
        try:
            return self._http.client.request(method, API + path, json=json, params=params, headers=headers)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"cannot reach the Shipyard server at {self._http.base_url}: "
                                   f"{type(exc).__name__}: {exc}") from exc

    def _call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        return response_body(self._send(method, path, json=json, params=params))

    # -- who am I ---------------------------------------------------------------------------------------
    def whoami(self) -> Principal:
        return principal_from_wire(self._call("GET", "/auth/whoami")["principal"])

    def authenticate_token(self, secret: str, *, project: str | None = None) -> Principal:
        """The principal of the API token ``secret`` as the server resolves it (``whoami`` sent with
        that token instead of this client's own): how a serving process on a remote store checks
        its callers. ``Unauthenticated`` with the server's reason."""
        response = self._send("GET", "/auth/whoami", headers=auth_headers(secret, project))
        if response.status_code == 401:
            # The server's reason alone: response_body would add how to sign in to this server,
            # naming its address to whoever sent the token.
            try:
                reason = str(response.json()["message"])
            except (ValueError, KeyError, TypeError):
                reason = "the API token was refused"
            raise Unauthenticated(reason)
        return principal_from_wire(response_body(response)["principal"])

    # -- users ------------------------------------------------------------------------------------------
    def bootstrap(self, name: str, password: str, *, email: str = "", code: str) -> User:
        body = {"name": name, "password": password, "email": email, "code": code}
        return user_from_wire(self._call("POST", "/auth/bootstrap", json=body)["user"])

    def create_user(self, name: str, *, email: str = "", password: str | None = None, admin: bool = False,
                    service: bool = False) -> User:
        body = {"name": name, "email": email, "password": password, "admin": admin, "service": service}
        return user_from_wire(self._call("POST", "/users", json=body)["user"])

    def get_user(self, name: str) -> User:
        return user_from_wire(self._call("GET", _user(name))["user"])

    def list_users(self) -> list[User]:
        return [user_from_wire(u) for u in self._call("GET", "/users")["users"]]

    def set_password(self, name: str, password: str, *, current: str | None = None) -> User:
        body = {"password": password, "current": current}
        return user_from_wire(self._call("PUT", _user(name, "password"), json=body)["user"])

    def disable_user(self, name: str) -> User:
        return user_from_wire(self._call("POST", _user(name, "disable"))["user"])

    def enable_user(self, name: str) -> User:
        return user_from_wire(self._call("POST", _user(name, "enable"))["user"])

    def set_admin(self, name: str, admin: bool = True) -> User:
        return user_from_wire(self._call("PUT", _user(name, "admin"), json={"admin": admin})["user"])

    def link_identity(self, name: str, *, issuer: str | None, subject: str) -> User:
        body = {"issuer": issuer, "subject": subject}
        return user_from_wire(self._call("POST", _user(name, "identities"), json=body)["user"])

    def unlink_identity(self, name: str, *, issuer: str | None, subject: str) -> User:
        params = {"subject": subject, **({"issuer": issuer} if issuer else {})}
        return user_from_wire(self._call("DELETE", _user(name, "identities"), params=params)["user"])

    # -- tokens -----------------------------------------------------------------------------------------
    def create_token(self, name: str, *, user: str | None = None, expires_in_ms: int | None = None,
                     project: str | None = None, role: Role | str | None = None,
                     kind: str = "api") -> tuple[ApiToken, str]:
        body = {"name": name, "user": user, "expires_in_ms": expires_in_ms, "project": project,
                "role": _label(role), "kind": kind}
        answer = self._call("POST", "/auth/tokens", json=body)
        return token_from_wire(answer["token"]), answer["secret"]

    def list_tokens(self, user: str | None = None, *, kind: str | None = None,
                    all_users: bool = False) -> list[ApiToken]:
        params = {k: v for k, v in (("user", user), ("kind", kind)) if v is not None}
        if all_users:
            params["all_users"] = "true"
        return [token_from_wire(t) for t in self._call("GET", "/auth/tokens", params=params)["tokens"]]

    def revoke_token(self, token_id: str) -> ApiToken:
        return token_from_wire(self._call("DELETE", f"/auth/tokens/{segment(token_id, 'token')}")["token"])

    # -- projects ---------------------------------------------------------------------------------------
    def create_project(self, name: str, description: str = "") -> Project:
        body = {"name": name, "description": description}
        return project_from_wire(self._call("POST", "/projects", json=body)["project"])

    def list_projects(self) -> list[Project]:
        return [project_from_wire(p) for p in self._call("GET", "/projects")["projects"]]

    def grant(self, project: str, user: str, role: Role | str) -> Membership:
        body = {"role": _label(role)}
        return member_from_wire(self._call("PUT", _member(project, user), json=body)["member"])

    def revoke(self, project: str, user: str) -> None:
        self._call("DELETE", _member(project, user))

    def members(self, project: str) -> list[Membership]:
        path = f"/projects/{segment(project, 'project')}/members"
        return [member_from_wire(m) for m in self._call("GET", path)["members"]]

    # -- audit ------------------------------------------------------------------------------------------
    def audit(self, query: AuditQuery) -> list[AuditEvent]:
        body = self._call("GET", "/audit", params=audit_query_to_params(query))
        return [event_from_wire(e) for e in body["events"]]

    def audit_jsonl(self, query: AuditQuery) -> Iterator[str]:
        """The server's JSON lines, each ending in a newline; errors are raised now."""
        response = self._send("GET", "/audit", params={**audit_query_to_params(query), "format": "jsonl"})
        if not response.is_success:
            response_body(response)
        return iter([line + "\n" for line in response.text.splitlines() if line.strip()])


def _user(name: str, *rest: str) -> str:
    return "/".join(("/users", segment(name, "user"), *rest))


def _member(project: str, user: str) -> str:
    return f"/projects/{segment(project, 'project')}/members/{segment(user, 'user')}"
