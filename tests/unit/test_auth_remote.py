"""RemoteAuth against a stand-in for the server's auth API (httpx.MockTransport over a real
AuthService on SQLite), written from the JSON shapes in the docstring of shipyard.auth.remote.
The real server routes are tested end to end with the server."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from argon2 import PasswordHasher, Type

import shipyard.auth.passwords as passwords_module
from shipyard.auth.principal import Principal
from shipyard.auth.remote import RemoteAuth
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
from shipyard.entities.auth import DEFAULT_PROJECT, AuditEvent, AuditQuery, Role
from shipyard.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ShipyardError,
    StoreUnavailable,
    TooManyAttempts,
    Unauthenticated,
)
from shipyard.store.http import HttpClient
from shipyard.store.sql import SqlStore

PASSWORD = "tulip-granite-orbit"
CODE = "one-time-code"


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords_module, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1,
                                                                    type=Type.ID))


class FakeServer:
    """Just enough of the auth API: the principal from the Authorization header, one AuthService
    call per route, errors as the server renders them."""

    def __init__(self, store) -> None:
        self.store = store
        self.requests: list[httpx.Request] = []

    def principal(self, request: httpx.Request) -> Principal:
        service = AuthService(self.store, Principal("anonymous", grants=()))
        header = request.headers.get("authorization", "")
        if header.startswith("Bearer "):
            return service.authenticate_token(header[len("Bearer "):])
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[len("Basic "):]).decode().partition(":")
            return service.authenticate_password(name, password, address="10.0.0.1")
        return Principal("anonymous", grants=())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            status, body = self.route(request)
        except ShipyardError as err:
            return httpx.Response(err.http_status, json=err.to_dict())
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "application/x-ndjson"})
        return httpx.Response(status, json=body) if body is not None else httpx.Response(status)

    def route(self, request: httpx.Request) -> tuple[int, object]:
        path = [unquote(p) for p in request.url.raw_path.decode().split("?")[0].split("/")[3:]]
        method = request.method
        body = json.loads(request.content) if request.content else {}
        params = dict(request.url.params)
        if path == ["auth", "bootstrap"]:
            if body.pop("code") != CODE:
                raise PermissionDenied("wrong one-time code")
            return 200, {"user": user_to_wire(AuthService(self.store, Principal("x", grants=())).bootstrap(**body))}
        auth = AuthService(self.store, self.principal(request))
        match method, path:
            case "GET", ["auth", "whoami"]:
                return 200, {"principal": principal_to_wire(auth.whoami())}
            case "POST", ["auth", "tokens"]:
                token, secret = auth.create_token(**body)
                return 200, {"token": token_to_wire(token), "secret": secret}
            case "GET", ["auth", "tokens"]:
                tokens = auth.list_tokens(params.get("user"), kind=params.get("kind"),
                                          all_users=params.get("all_users") == "true")
                return 200, {"tokens": [token_to_wire(t) for t in tokens]}
            case "DELETE", ["auth", "tokens", token_id]:
                return 200, {"token": token_to_wire(auth.revoke_token(token_id))}
            case "POST", ["users"]:
                return 200, {"user": user_to_wire(auth.create_user(**body))}
            case "GET", ["users"]:
                return 200, {"users": [user_to_wire(u) for u in auth.list_users()]}
            case "GET", ["users", name]:
                return 200, {"user": user_to_wire(auth.get_user(name))}
            case "PUT", ["users", name, "password"]:
                return 200, {"user": user_to_wire(auth.set_password(name, **body))}
            case "POST", ["users", name, "disable"]:
                return 200, {"user": user_to_wire(auth.disable_user(name))}
            case "POST", ["users", name, "enable"]:
                return 200, {"user": user_to_wire(auth.enable_user(name))}
            case "POST", ["projects"]:
                return 200, {"project": project_to_wire(auth.create_project(**body))}
            case "GET", ["projects"]:
                return 200, {"projects": [project_to_wire(p) for p in auth.list_projects()]}
            case "GET", ["projects", project, "members"]:
                return 200, {"members": [member_to_wire(m) for m in auth.members(project)]}
            case "PUT", ["projects", project, "members", user]:
                return 200, {"member": member_to_wire(auth.grant(project, user, body["role"]))}
            case "DELETE", ["projects", project, "members", user]:
                auth.revoke(project, user)
                return 204, None
            case "GET", ["audit"]:
                query = audit_query_from_params(params)
                if params.get("format") == "jsonl":
                    return 200, "".join(auth.audit_jsonl(query))
                return 200, {"events": [event_to_wire(e) for e in auth.audit(query)]}
        raise NotFound(f"no route {method} {path}")


@pytest.fixture
def server(tmp_path) -> Iterator[FakeServer]:
    sql = SqlStore(f"sqlite:///{tmp_path / 'auth.db'}")
    yield FakeServer(sql.auth)
    sql.close()


def remote(server: FakeServer, **credentials) -> RemoteAuth:
    return RemoteAuth(HttpClient("http://shipyard.test", httpx.MockTransport(server), **credentials))


def test_an_admin_administers_the_server_remotely(server: FakeServer) -> None:
    anonymous = remote(server)
    with pytest.raises(PermissionDenied, match="one-time code"):
        anonymous.bootstrap("root", PASSWORD, code="guess")
    assert anonymous.bootstrap("root", PASSWORD, email="root@example.com", code=CODE).admin
    with pytest.raises(Conflict):
        anonymous.bootstrap("root2", PASSWORD, code=CODE)
    with pytest.raises(Unauthenticated, match="sign in first"):
        anonymous.list_projects()

    login = remote(server, basic=("root", PASSWORD))
    token, secret = login.create_token("laptop", expires_in_ms=86_400_000)
    assert token.user == "root"
    assert token.expires is not None
    assert secret.startswith(f"shy_{token.token_id}_")

    root = remote(server, token=secret)
    me = root.whoami()
    assert (me.name, me.admin, me.anonymous, me.token_id, me.grants) == ("root", True, False, token.token_id, ())
    ana = root.create_user("ana", email="ana@example.com", password=PASSWORD)
    assert (ana.name, ana.email, ana.admin) == ("ana", "ana@example.com", False)
    assert root.create_user("ci", service=True).service
    with pytest.raises(InvalidInput, match="too short"):
        root.create_user("eve", password="short")
    assert [u.name for u in root.list_users()] == ["ana", "ci", "root"]
    assert root.get_user("ana").email == "ana@example.com"
    assert root.disable_user("ana").disabled
    assert not root.enable_user("ana").disabled
    assert root.set_password("ana", "a-brand-new-passphrase").name == "ana"

    churn = root.create_project("churn", "customer churn")
    assert (churn.name, churn.created_by) == ("churn", "root")
    assert [p.name for p in root.list_projects()] == ["churn", DEFAULT_PROJECT]
    member = root.grant("churn", "ana", Role.EDITOR)
    assert (member.project, member.user, member.role) == ("churn", "ana", Role.EDITOR)
    root.grant("churn", "ci", "viewer")
    assert [(m.user, m.role) for m in root.members("churn")] == [("ana", Role.EDITOR), ("ci", Role.VIEWER)]
    ci_token, ci_secret = root.create_token("nightly", user="ci", project="churn", role="viewer")
    assert (ci_token.user, ci_token.project, ci_token.role) == ("ci", "churn", Role.VIEWER)
    assert remote(server, token=ci_secret).whoami().scope == ("churn", Role.VIEWER)
    assert {t.user for t in root.list_tokens(all_users=True)} == {"root", "ci"}
    assert [t.name for t in root.list_tokens("ci")] == ["nightly"]
    root.revoke("churn", "ci")
    with pytest.raises(NotFound, match="not a member"):
        root.revoke("churn", "ci")
    with pytest.raises(InvalidInput, match="no role in project 'churn'"):
        root.create_token("nightly 2", user="ci", project="churn")
    assert root.revoke_token(ci_token.token_id).revoked
    with pytest.raises(Unauthenticated, match="revoked"):
        remote(server, token=ci_secret).whoami()


def test_a_user_works_with_their_own_tokens_projects_and_audit(server: FakeServer) -> None:
    ops = AuthService(server.store, Principal("operator", anonymous=False, admin=True, grants=None))
    ops.create_user("ana", password=PASSWORD)
    ops.create_project("churn")
    ops.grant("churn", "ana", "owner")
    ops.record([AuditEvent(time=5, principal="ana", action="delete_run", method="DELETE", path="/api/v1/runs/1",
                           status=200, project="churn", object="run:1"),
                AuditEvent(time=6, principal="bob", action="create_run", method="POST", path="/api/v1/runs",
                           status=200, project=DEFAULT_PROJECT)])
    _, secret = ops.create_token("laptop", user="ana")
    ana = remote(server, token=secret)
    me = ana.whoami()
    assert me.grants == (("churn", Role.OWNER),)
    assert me.role_in("churn") is Role.OWNER
    scoped, scoped_secret = ana.create_token("ci", project="churn", role=Role.VIEWER)
    assert remote(server, token=scoped_secret).whoami().scope == ("churn", Role.VIEWER)
    assert [t.name for t in ana.list_tokens()] == ["ci", "laptop"]
    with pytest.raises(PermissionDenied):
        ana.list_users()
    with pytest.raises(PermissionDenied):
        ana.list_tokens(all_users=True)
    assert [p.name for p in ana.list_projects()] == ["churn"]
    events = ana.audit(AuditQuery(project="churn", since=1, until=10, limit=5))
    assert [(e.time, e.object, e.event_id is not None) for e in events] == [(5, "run:1", True)]
    lines = list(ana.audit_jsonl(AuditQuery(project="churn")))
    assert [json.loads(line)["action"] for line in lines] == ["delete_run"]
    with pytest.raises(PermissionDenied, match="name a project you own"):
        ana.audit_jsonl(AuditQuery())
    with pytest.raises(PermissionDenied, match="current password"):
        ana.set_password("ana", "a-brand-new-passphrase")
    ana.set_password("ana", "a-brand-new-passphrase", current=PASSWORD)
    assert ana.revoke_token(scoped.token_id).revoked
    audit_request = next(r for r in server.requests if r.url.path == "/api/v1/audit")
    assert dict(audit_request.url.params) == {"project": "churn", "since": "1", "until": "10", "limit": "5"}


def test_a_locked_sign_in_is_answered_at_once_not_retried(server: FakeServer) -> None:
    AuthService(server.store, Principal("operator", anonymous=False, admin=True, grants=None)).create_user(
        "ana", password=PASSWORD)
    wrong = remote(server, basic=("ana", "not-her-password"))
    for _ in range(5):
        with pytest.raises(Unauthenticated, match="wrong user name or password"):
            wrong.create_token("laptop")
    count = len(server.requests)
    with pytest.raises(TooManyAttempts) as locked:
        remote(server, basic=("ana", PASSWORD)).create_token("laptop")
    assert locked.value.details["retry_after"] > 0
    assert len(server.requests) == count + 1


def test_a_server_that_cannot_be_reached_is_store_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    auth = RemoteAuth(HttpClient("http://shipyard.test", httpx.MockTransport(refuse)))
    with pytest.raises(StoreUnavailable, match=r"cannot reach the Shipyard server at http://shipyard\.test"):
        auth.whoami()
    auth.close()
