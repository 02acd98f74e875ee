"""The auth API: who am I, API tokens, users, projects and their members, the audit log.

A thin adapter over :class:`~shipyard.auth.service.AuthService`, built per request with the
request's principal, so every rule (one's own tokens, admins only, a project's owners) is the
service's; :class:`~shipyard.auth.remote.RemoteAuth` is the client of exactly these routes, and
its docstring is the table of them (paths, bodies, answers). Entities travel in the shapes of
:mod:`shipyard.auth.wire`. ``POST /auth/bootstrap`` is public: it carries the one-time code the
server printed when it started with ``--auth`` and no user existed.

Each route notes the user, token or project it acts on for the audit log (``request.state.touched``).
Without ``--auth`` the routes still answer, as the unrestricted local user (an operator's own
server), over the same tables the CLI administers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import Field
from starlette.responses import Response

from shipyard.auth import ANONYMOUS, Principal
from shipyard.auth.service import AuthService
from shipyard.auth.wire import (
    audit_query_from_params,
    event_to_wire,
    member_to_wire,
    principal_to_wire,
    project_to_wire,
    token_to_wire,
    user_to_wire,
)
from shipyard.errors import InvalidInput
from shipyard.server.responses import json_response
from shipyard.server.routing import PrefixRouter
from shipyard.server.schemas import Body

__all__ = ["router"]

router = PrefixRouter(prefixes=("/api/v1/auth/", "/api/v1/users", "/api/v1/projects", "/api/v1/audit"),
                      tags=["auth"])
API = "/api/v1"
Name = Annotated[str, Path(max_length=256)]
Short = Annotated[str, Field(max_length=256)]
Secret = Annotated[str, Field(max_length=4096)]
JSONL = "application/x-ndjson"


class Bootstrap(Body):
    name: Short
    password: Secret
    email: Short = ""
    code: Short


class CreateToken(Body):
    name: Short
    user: Short | None = None
    expires_in_ms: int | None = Field(default=None, gt=0, le=100 * 365 * 86_400_000)
    project: Short | None = None
    role: Short | int | None = None
    kind: Short = "api"


class CreateUser(Body):
    name: Short
    email: Short = ""
    password: Secret | None = None
    admin: bool = False
    service: bool = False


class SetPassword(Body):
    password: Secret
    current: Secret | None = None


class SetAdmin(Body):
    admin: bool


class Identity(Body):
    issuer: Annotated[str, Field(max_length=512)] | None = None
    subject: Annotated[str, Field(max_length=256)]


class CreateProject(Body):
    name: Short
    description: Annotated[str, Field(max_length=5000)] = ""


class Grant(Body):
    role: Short | int


def _service(request: Request) -> AuthService:
    principal: Principal = getattr(request.state, "principal", None) or ANONYMOUS
    authenticator = request.app.state.authenticator
    if authenticator is not None:
        service: AuthService = authenticator.service(principal)
        return service
    auth_store = getattr(request.app.state.client.store, "auth", None)
    if auth_store is None:
        raise InvalidInput("this server's tracking store keeps no users: the auth API needs a SQL store "
                           "(sqlite:// or postgresql://)")
    return AuthService(auth_store, principal)


def _note(request: Request, project: str | None, obj: str) -> None:
    touched = getattr(request.state, "touched", None)
    if touched is not None:
        touched.append((project, obj))


# -- signing in ------------------------------------------------------------------------------------
@router.post(f"{API}/auth/bootstrap", name="auth_bootstrap", status_code=201,
             summary="Create the first admin with the server's one-time code")
def bootstrap(body: Bootstrap, request: Request) -> Response:
    _note(request, None, f"user:{body.name}")
    authenticator = request.app.state.authenticator
    if authenticator is None:
        raise InvalidInput("this server does not require sign-in (started without --auth): there is no first "
                           "admin to create through it; use `shipyard users create` on its database")
    authenticator.check_bootstrap_code(body.code)
    user = _service(request).bootstrap(body.name, body.password, email=body.email)
    return json_response({"user": user_to_wire(user)}, 201)


@router.get(f"{API}/auth/whoami", name="whoami", summary="The principal of this request")
def whoami(request: Request) -> Response:
    return json_response({"principal": principal_to_wire(_service(request).whoami())})


# -- tokens ----------------------------------------------------------------------------------------
@router.post(f"{API}/auth/tokens", name="create_token", status_code=201,
             summary="Make an API token (its secret is in this answer only)")
def create_token(body: CreateToken, request: Request) -> Response:
    token, secret = _service(request).create_token(body.name, user=body.user, expires_in_ms=body.expires_in_ms,
                                                   project=body.project, role=body.role, kind=body.kind)
    _note(request, token.project, f"token:{token.token_id}")
    return json_response({"token": token_to_wire(token), "secret": secret}, 201)


@router.get(f"{API}/auth/tokens", name="list_tokens", summary="List API tokens (one's own unless admin)")
def list_tokens(request: Request, user: Annotated[str | None, Query(max_length=256)] = None,
                kind: Annotated[str | None, Query(max_length=32)] = None, all_users: bool = False) -> Response:
    found = _service(request).list_tokens(user, kind=kind, all_users=all_users)
    return json_response({"tokens": [token_to_wire(t) for t in found]})


@router.delete(f"{API}/auth/tokens/{{token_id}}", name="revoke_token", summary="Revoke an API token")
def revoke_token(token_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
    _note(request, None, f"token:{token_id}")
    return json_response({"token": token_to_wire(_service(request).revoke_token(token_id))})


# -- users -----------------------------------------------------------------------------------------
@router.post(f"{API}/users", name="create_user", status_code=201, summary="Create a user or service account")
def create_user(body: CreateUser, request: Request) -> Response:
    _note(request, None, f"user:{body.name}")
    user = _service(request).create_user(body.name, email=body.email, password=body.password, admin=body.admin,
                                         service=body.service)
    return json_response({"user": user_to_wire(user)}, 201)


@router.get(f"{API}/users", name="list_users", summary="List users")
def list_users(request: Request) -> Response:
    return json_response({"users": [user_to_wire(u) for u in _service(request).list_users()]})


@router.get(f"{API}/users/{{name}}", name="get_user", summary="Get a user (oneself, or any for an admin)")
def get_user(name: Name, request: Request) -> Response:
    return json_response({"user": user_to_wire(_service(request).get_user(name))})


@router.put(f"{API}/users/{{name}}/password", name="set_user_password", summary="Set a user's password")
def set_user_password(name: Name, body: SetPassword, request: Request) -> Response:
    _note(request, None, f"user:{name}")
    user = _service(request).set_password(name, body.password, current=body.current)
    return json_response({"user": user_to_wire(user)})


@router.post(f"{API}/users/{{name}}/disable", name="disable_user",
             summary="Disable a user: its password and every token are refused at once")
def disable_user(name: Name, request: Request) -> Response:
    _note(request, None, f"user:{name}")
    return json_response({"user": user_to_wire(_service(request).disable_user(name))})


@router.post(f"{API}/users/{{name}}/enable", name="enable_user", summary="Enable a disabled user")
def enable_user(name: Name, request: Request) -> Response:
    _note(request, None, f"user:{name}")
    return json_response({"user": user_to_wire(_service(request).enable_user(name))})


@router.put(f"{API}/users/{{name}}/admin", name="set_user_admin",
            summary="Make a user a server admin, or an ordinary user again")
def set_user_admin(name: Name, body: SetAdmin, request: Request) -> Response:
    _note(request, None, f"user:{name}")
    return json_response({"user": user_to_wire(_service(request).set_admin(name, body.admin))})


def _issuer(request: Request, given: str | None) -> str:
    """``given``, or the issuer this server signs people in with (SHIPYARD_SERVER_OIDC_ISSUER)."""
    if given:
        return given
    oidc = getattr(request.app.state, "oidc", None)
    if oidc is None:
        raise InvalidInput("give the identity's issuer: this server has no single sign-on provider set "
                           "(SHIPYARD_SERVER_OIDC_ISSUER) to take it from", field="issuer")
    return str(oidc.config.issuer)


@router.post(f"{API}/users/{{name}}/identities", name="link_user_identity", status_code=201,
             summary="Link a user to a single sign-on identity (issuer and subject)")
def link_user_identity(name: Name, body: Identity, request: Request) -> Response:
    _note(request, None, f"user:{name}")
    user = _service(request).link_identity(name, issuer=_issuer(request, body.issuer), subject=body.subject)
    return json_response({"user": user_to_wire(user)}, 201)


@router.delete(f"{API}/users/{{name}}/identities", name="unlink_user_identity",
               summary="Unlink a user from a single sign-on identity")
def unlink_user_identity(name: Name, request: Request, subject: Annotated[str, Query(max_length=256)],
                         issuer: Annotated[str | None, Query(max_length=512)] = None) -> Response:
    _note(request, None, f"user:{name}")
    user = _service(request).unlink_identity(name, issuer=_issuer(request, issuer), subject=subject)
    return json_response({"user": user_to_wire(user)})


# -- projects --------------------------------------------------------------------------------------
@router.post(f"{API}/projects", name="create_project", status_code=201, summary="Create a project")
def create_project(body: CreateProject, request: Request) -> Response:
    _note(request, body.name, f"project:{body.name}")
    project = _service(request).create_project(body.name, body.description)
    return json_response({"project": project_to_wire(project)}, 201)


@router.get(f"{API}/projects", name="list_projects", summary="List projects (one's own unless admin)")
def list_projects(request: Request) -> Response:
    return json_response({"projects": [project_to_wire(p) for p in _service(request).list_projects()]})


@router.get(f"{API}/projects/{{project}}/members", name="list_project_members", summary="List a project's members")
def list_project_members(project: Name, request: Request) -> Response:
    return json_response({"members": [member_to_wire(m) for m in _service(request).members(project)]})


@router.put(f"{API}/projects/{{project}}/members/{{user}}", name="set_project_member",
            summary="Give a user a role in a project")
def set_project_member(project: Name, user: Name, body: Grant, request: Request) -> Response:
    _note(request, project, f"member:{project}/{user}")
    return json_response({"member": member_to_wire(_service(request).grant(project, user, body.role))})


@router.delete(f"{API}/projects/{{project}}/members/{{user}}", name="remove_project_member",
               summary="Take a user's role in a project away")
def remove_project_member(project: Name, user: Name, request: Request) -> Response:
    _note(request, project, f"member:{project}/{user}")
    _service(request).revoke(project, user)
    return json_response(None)


# -- the audit log ---------------------------------------------------------------------------------
@router.get(f"{API}/audit", name="list_audit_events",
            summary="Read the audit log (every project: admins; one project: its owners)")
def list_audit_events(request: Request, format: Annotated[str, Query(max_length=16)] = "json") -> Response:
    params: dict[str, Any] = {k: v for k, v in request.query_params.items() if k != "format"}
    query = audit_query_from_params(params)
    if format == "jsonl":
        return Response("".join(_service(request).audit_jsonl(query)), media_type=JSONL)
    if format != "json":
        raise InvalidInput(f"format {format!r} is not one of json, jsonl", field="format")
    return json_response({"events": [event_to_wire(e) for e in _service(request).audit(query)]})
