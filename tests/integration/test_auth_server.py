"""A server with ``--auth``: every route for every role, what other projects' members can learn,
why tokens are refused, throttled sign-ins, the audit log and the security headers.

The route-by-role matrix is generated from ``app.routes``, so a route added later is covered (or,
without a permission, refused) without anyone remembering to add it here.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from starlette.routing import BaseRoute

from shipyard.auth import ANONYMOUS, Permission
from shipyard.auth.service import AuthService
from shipyard.entities.auth import AuditQuery
from shipyard.server.audit import READ_ONLY_POSTS
from shipyard.server.permissions import ROUTE_PERMISSIONS
from tests.integration.auth_world import PASSWORD, PRINCIPALS, World, alpha_markers, build_world, ok
from tests.support import InProcessServer

ROLES = tuple(PRINCIPALS)
PROJECT_PERMISSIONS = (Permission.READ, Permission.WRITE, Permission.MAINTAIN, Permission.DELETE)
LEAST = {"viewer": Permission.READ, "editor": Permission.WRITE, "maintainer": Permission.MAINTAIN,
         "owner": Permission.DELETE}
ORDER = [Permission.PUBLIC, Permission.SIGNED_IN, Permission.READ, Permission.WRITE, Permission.MAINTAIN,
         Permission.ADMIN, Permission.DELETE]
# Routes whose 401 is the answer about the credentials they were given, not a refusal of the route.
SIGN_IN_ROUTES = frozenset({"auth_bootstrap", "ui_sign_in", "ui_bootstrap"})
CSRF = "matrix-csrf-token"
REFUSED = frozenset({401, 403, 404})


def _all_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI >= 0.16x wraps included routers
        yield from _all_routes(included.routes) if included is not None else (route,)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("auth-world"))
    yield built
    built.server.close()


@pytest.fixture(scope="module")
def matrix_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A world of its own: the matrix's permitted requests change and delete things."""
    built = build_world(tmp_path_factory.mktemp("matrix-world"))
    yield built
    built.server.close()


def _routes() -> list[tuple[str, str, str]]:
    """``(name, method, path)`` of every route of an app with auth, cheapest permission first and
    deletions last, so that what the matrix deletes is needed by no later route."""
    from shipyard.config import Settings
    from shipyard.server import create_app

    app = create_app(Settings.resolve(env={}, tracking_uri="sqlite:///:memory:", artifact_uri="unused"))
    try:
        found = {(r.name, m, r.path) for r in _all_routes(app.routes) for m in (getattr(r, "methods", None) or ())
                 if m != "HEAD"}
    finally:
        app.state.client.close()

    def rank(item: tuple[str, str, str]) -> tuple[int, bool, str, str]:
        permission = ROUTE_PERMISSIONS.get(item[0], Permission.ADMIN)
        return ORDER.index(permission), item[1] == "DELETE", item[0], item[1]

    return sorted(found, key=rank)


ROUTES = _routes()


def test_every_route_declares_its_permission() -> None:
    undeclared = sorted({name for name, _, _ in ROUTES} - set(ROUTE_PERMISSIONS))
    assert not undeclared, f"routes missing from ROUTE_PERMISSIONS: {undeclared}"
    assert len(ROUTES) > 200


def test_the_posts_left_out_of_the_audit_log_only_read() -> None:
    posts = {name for name, method, _ in ROUTES if method == "POST"}
    assert READ_ONLY_POSTS.issubset(posts)
    assert {ROUTE_PERMISSIONS[name] for name in READ_ONLY_POSTS} == {Permission.READ}


def test_a_route_without_a_permission_is_refused_even_to_an_admin(world: World) -> None:
    router = APIRouter()

    @router.get("/test-only/undeclared", name="test_only_undeclared")
    def undeclared() -> dict[str, str]:
        return {"reached": "yes"}

    world.server.app.include_router(router)
    response = world.request("admin", "GET", "/test-only/undeclared")
    assert response.status_code == 403
    assert "declares no permission" in response.json()["message"]


def _path_values(world: World, role: str, path: str) -> dict[str, str]:
    ids = world.ids
    spec = PRINCIPALS[role]
    own_name = spec[0] if spec else "nobody"
    if path.startswith(("/api/v1/registered-models", "/ui/models")):
        name = ids["model"]
    elif path.startswith(("/api/v1/datasets", "/ui/datasets")):
        name = ids["dataset"]
    elif path.startswith(("/api/v1/deployments", "/ui/deployments")):
        name = ids["deployment"]
    elif path.startswith("/api/v1/monitors"):
        name = ids["monitor"]
    else:  # /api/v1/users/{name}: one's own (reading another's is refused by the object, not the route)
        name = own_name
    return {"experiment_id": ids["experiment"], "run_id": ids["run"], "name": name, "version": "1",
            "alias": "staging", "key": "team", "tag_key": "team", "model_id": ids["logged_model"],
            "path": "ui.css" if path.startswith("/ui/static") else "notes.txt",
            "artifact_path": f"{ids['experiment']}/{ids['run']}/artifacts/notes.txt", "project": "alpha",
            "user": "nobody", "token_id": "0123456789abcdef"}


def _query(world: World) -> dict[str, Any]:
    """Every identifier any route reads from its query string (or MLflow's JSON body), all of alpha."""
    ids = world.ids
    return {"run_id": ids["run"], "run_uuid": ids["run"], "experiment_id": ids["experiment"],
            "experiment_ids": [ids["experiment"]], "experiment_name": "alpha-exp", "name": ids["model"],
            "version": "1", "alias": "staging", "key": "team", "model_id": ids["logged_model"],
            "metric_key": "alpha_acc", "path": "", "ref": f"run:{ids['run']}", "project": "alpha",
            "runs": ids["run"], "artifact_file_path": "notes.txt"}


def _request(world: World, role: str, name: str, method: str, path: str) -> httpx.Response:
    values = _path_values(world, role, path)
    url = re.sub(r"{([^}:]+)(?::path)?}", lambda m: values[m.group(1)], path)
    query = _query(world)
    kwargs: dict[str, Any] = {"params": query}
    kwargs["headers"] = {"x-shipyard-project": "alpha"}  # where the request's new objects go
    if path.startswith("/ui/") and method == "POST":
        kwargs["data"] = {"csrf_token": CSRF}
        kwargs["headers"]["cookie"] = f"shipyard_csrf={CSRF}"
    elif "artifact" in name and method == "PUT":
        kwargs["content"] = b"matrix bytes"
        kwargs["headers"]["content-type"] = "application/octet-stream"
    elif method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {k: v for k, v in query.items() if k != "path"} if name.startswith("mlflow_") else {}
    world.http.cookies.clear()  # nothing carries over from an earlier answer (a session, a CSRF cookie)
    return world.request(role, method, url, **kwargs)


def _holds(role: str, permission: Permission) -> bool:
    if permission is Permission.PUBLIC:
        return True
    if role == "anonymous":
        return False
    if permission is Permission.SIGNED_IN or role == "admin":
        return True
    if permission is Permission.ADMIN or role == "other":
        return False
    return PROJECT_PERMISSIONS.index(permission) <= PROJECT_PERMISSIONS.index(LEAST[role])


def _sent_to_sign_in(response: httpx.Response) -> bool:
    return response.status_code in (303, 204) and "/ui/login" in (response.headers.get("location", "")
                                                                  + response.headers.get("hx-redirect", ""))


@pytest.mark.parametrize(("name", "method", "path"), ROUTES, ids=[f"{m} {n}" for n, m, _ in ROUTES])
def test_each_role_reaches_exactly_what_its_permission_allows(matrix_world: World, name: str, method: str,
                                                              path: str) -> None:
    world = matrix_world
    permission = ROUTE_PERMISSIONS[name]
    for role in ROLES:
        holds = _holds(role, permission)
        before = None if holds else world.snapshot()
        response = _request(world, role, name, method, path)
        status = response.status_code
        where = f"{role} {method} {path} ({permission.value}) -> {status}: {response.text[:300]}"
        if holds:
            if name not in SIGN_IN_ROUTES:
                assert status not in (401, 403), where
            continue
        if role == "anonymous":
            if (path == "/" or path.startswith("/ui")) and _sent_to_sign_in(response):
                pass
            else:
                assert status == 401, where
                assert response.headers["www-authenticate"].startswith("Basic"), where
        elif role == "other" and permission in PROJECT_PERMISSIONS:
            # Holds this permission in beta only: alpha's objects are absent for it, and what it may
            # list or create (in its own project) must show nothing of alpha.
            assert status < 500, where
            if response.is_success:
                leaked = [m for m in alpha_markers(world) if m in response.text]
                assert not leaked, f"{where}\nleaked: {leaked}"
        else:
            assert status == 403, where
        assert world.snapshot() == before, f"a refused request changed something: {where}"


# -- other projects: absent, word for word ---------------------------------------------------------
MISSING_RUN = "0" * 32


def _same_as_missing(world: World, role: str, method: str, hidden: str, missing: str, present: str,
                     absent: str, **kwargs: Any) -> None:
    """``hidden`` (naming ``present``) answers exactly as ``missing`` (naming ``absent``)."""
    seen = world.request(role, method, hidden, **kwargs)
    nothing = world.request(role, method, missing, **kwargs)
    assert seen.status_code == nothing.status_code == 404, (seen.text, nothing.text)
    assert seen.text.replace(present, "X") == nothing.text.replace(absent, "X")


def test_another_projects_objects_answer_like_missing_ones(world: World) -> None:
    run = world.ids["run"]
    _same_as_missing(world, "other", "GET", f"/api/v1/runs/{run}", f"/api/v1/runs/{MISSING_RUN}", run, MISSING_RUN)
    _same_as_missing(world, "other", "GET", f"/api/v1/runs/{run}/artifacts/notes.txt",
                     f"/api/v1/runs/{MISSING_RUN}/artifacts/notes.txt", run, MISSING_RUN)
    _same_as_missing(world, "other", "GET", f"/api/v1/runs/{run}/artifacts",
                     f"/api/v1/runs/{MISSING_RUN}/artifacts", run, MISSING_RUN)
    _same_as_missing(world, "other", "GET", "/api/v1/registered-models/alpha-model",
                     "/api/v1/registered-models/gamma-model", "alpha-model", "gamma-model")
    _same_as_missing(world, "other", "GET", "/api/v1/registered-models/alpha-model/versions/1",
                     "/api/v1/registered-models/gamma-model/versions/1", "alpha-model", "gamma-model")
    _same_as_missing(world, "other", "GET", "/api/v1/deployments/alpha-api", "/api/v1/deployments/gamma-api",
                     "alpha-api", "gamma-api")
    _same_as_missing(world, "other", "GET", "/api/v1/datasets/alpha-ds/versions/1",
                     "/api/v1/datasets/gamma-ds/versions/1", "alpha-ds", "gamma-ds")
    _same_as_missing(world, "other", "GET", f"/api/v1/experiments/{world.ids['experiment']}",
                     "/api/v1/experiments/999999", world.ids["experiment"], "999999")
    _same_as_missing(world, "other", "GET", f"/api/2.0/mlflow/runs/get?run_id={run}",
                     f"/api/2.0/mlflow/runs/get?run_id={MISSING_RUN}", run, MISSING_RUN)
    exp = world.ids["experiment"]
    _same_as_missing(world, "other", "GET",
                     f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{run}/artifacts/notes.txt",
                     f"/api/2.0/mlflow-artifacts/artifacts/{exp}/{MISSING_RUN}/artifacts/notes.txt", run, MISSING_RUN)


def test_searches_and_lists_leave_other_projects_out_of_pages_and_counts(world: World) -> None:
    exp, beta_exp = world.ids["experiment"], world.ids["beta_experiment"]
    listed = ok(world.request("other", "GET", "/api/v1/experiments"))["experiments"]
    assert [e["name"] for e in listed] == ["beta-exp"]
    both = ok(world.request("other", "POST", "/api/v1/runs/search",
                            json={"experiment_ids": [beta_exp], "max_results": 10}))
    assert [r["info"]["run_id"] for r in both["runs"]] == [world.ids["beta_run"]]
    probe = world.request("other", "POST", "/api/v1/runs/search",
                          json={"experiment_ids": [exp], "filter_string": "params.alpha_lr = '0.1'"})
    missing = world.request("other", "POST", "/api/v1/runs/search",
                            json={"experiment_ids": ["999999"], "filter_string": "params.alpha_lr = '0.1'"})
    assert (probe.status_code, probe.text.replace(exp, "X")) == (missing.status_code,
                                                                 missing.text.replace("999999", "X"))
    models = ok(world.request("other", "POST", "/api/v1/registered-models/search",
                              json={"filter_string": "name = 'alpha-model'"}))
    assert models["registered_models"] == []
    versions = ok(world.request("other", "POST", "/api/v1/model-versions/search",
                                json={"filter_string": "name = 'alpha-model'"}))
    assert versions["model_versions"] == []
    mlflow = ok(world.request("other", "GET", "/api/2.0/mlflow/registered-models/search"))
    assert "alpha" not in str(mlflow)
    for path in ("/api/v1/datasets", "/api/v1/deployments", "/api/v1/monitors", "/api/v1/registered-models"):
        answer = ok(world.request("other", "GET", path))
        assert not [m for m in alpha_markers(world) if m in str(answer)], (path, answer)
    # The members of alpha see it all.
    assert "alpha-model" in str(ok(world.request("viewer", "GET", "/api/v1/registered-models")))


# -- tokens and credentials ---------------------------------------------------------------------------
def _message(response: httpx.Response, status: int = 401) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "TOO_MANY_ATTEMPTS"}[status]
    return body["message"]


def test_bad_tokens_are_refused_with_the_reason(world: World) -> None:
    operator = world.operator()
    url = "/api/v1/experiments"
    assert "malformed" in _message(world.http.get(url, headers={"authorization": "Bearer not-a-token"}))
    unknown = "shy_0123456789abcdef_" + "x" * 43
    assert "unknown API token" in _message(world.http.get(url, headers={"authorization": f"Bearer {unknown}"}))
    token, secret = operator.create_token("short-lived", user="vic", expires_in_ms=1)
    time.sleep(0.01)
    assert "expired" in _message(world.http.get(url, headers={"authorization": f"Bearer {secret}"}))
    token, secret = operator.create_token("revoked", user="vic")
    assert world.http.get(url, headers={"authorization": f"Bearer {secret}"}).status_code == 200
    operator.revoke_token(token.token_id)
    assert "revoked" in _message(world.http.get(url, headers={"authorization": f"Bearer {secret}"}))
    # What needs no credentials is not refused for stale ones: health checks, the sign-in page.
    assert world.http.get("/health", headers={"authorization": f"Bearer {secret}"}).status_code == 200
    assert world.http.get("/ui/login", headers={"cookie": f"shipyard_session={secret}"}).status_code == 200
    assert "unsupported Authorization" in _message(world.http.get(url, headers={"authorization": "Token abc"}))
    garbled = world.http.get(url, headers={"authorization": "Basic !!!"})
    assert "malformed Basic" in _message(garbled)


def test_a_token_scoped_elsewhere_reaches_nothing_more(world: World) -> None:
    operator = world.operator()
    _, beta_only = operator.create_token("beta only", user="root", project="beta", role="viewer")
    headers = {"authorization": f"Bearer {beta_only}"}
    run = world.ids["run"]
    assert world.http.get(f"/api/v1/runs/{run}", headers=headers).status_code == 404  # alpha: absent
    assert world.http.get(f"/api/v1/runs/{world.ids['beta_run']}", headers=headers).status_code == 200
    refused = world.http.post(f"/api/v1/runs/{world.ids['beta_run']}/params", headers=headers,
                              json={"params": [{"key": "x", "value": "1"}]})
    assert "write" in _message(refused, 403)
    assert "admin" in _message(world.http.get("/api/v1/users", headers=headers), 403)


def test_a_token_in_the_query_string_is_refused(world: World) -> None:
    for name in ("token", "access_token", "api_key"):
        response = world.http.get(f"/api/v1/experiments?{name}={world.secrets['viewer']}")
        assert "Authorization header" in _message(response)
    # Even beside a valid header: the token in the URL is already in someone's logs.
    response = world.request("viewer", "GET", "/api/v1/experiments", params={"token": "x"})
    assert response.status_code == 401


def test_a_disabled_users_tokens_and_password_stop_at_once(world: World) -> None:
    operator = world.operator()
    operator.create_user("dora", password=PASSWORD)
    operator.grant("alpha", "dora", "viewer")
    _, secret = operator.create_token("dora's", user="dora")
    headers = {"authorization": f"Bearer {secret}"}
    assert world.http.get("/api/v1/experiments", headers=headers).status_code == 200
    ok(world.request("admin", "POST", "/api/v1/users/dora/disable"))
    assert "disabled" in _message(world.http.get("/api/v1/experiments", headers=headers))
    basic = world.http.get("/api/v1/experiments", auth=("dora", PASSWORD))
    assert "disabled" in _message(basic)
    ok(world.request("admin", "POST", "/api/v1/users/dora/enable"))
    assert world.http.get("/api/v1/experiments", headers=headers).status_code == 200


def test_basic_credentials_take_a_password_or_a_token(world: World) -> None:
    who = ok(world.http.get("/api/v1/auth/whoami", auth=("eddie", PASSWORD)))["principal"]
    assert (who["name"], who["grants"]) == ("eddie", [{"project": "alpha", "role": "editor"}])
    who = ok(world.http.get("/api/v1/auth/whoami", auth=("eddie", world.secrets["editor"])))["principal"]
    assert who["name"] == "eddie"
    assert who["token_id"]
    assert "another user" in _message(world.http.get("/api/v1/auth/whoami", auth=("vic", world.secrets["editor"])))


def test_password_guessing_is_throttled_and_audited(tmp_path: Path) -> None:
    # A server of its own: the guesses lock this test client's address out for five minutes.
    with InProcessServer(tmp_path, server_auth=True) as server:
        auth = server.app.state.client.store.auth
        AuthService(auth, ANONYMOUS).create_user("gus", password=PASSWORD)
        for _ in range(5):
            assert server.http.get("/api/v1/auth/whoami", auth=("gus", "wrong password 123")).status_code == 401
        throttled = server.http.get("/api/v1/auth/whoami", auth=("gus", "wrong password 123"))
        assert "too many failed sign-ins" in _message(throttled, 429)
        assert int(throttled.headers["retry-after"]) >= 1
        # The right password waits too: the guesser must not learn when it hit it.
        assert server.http.get("/api/v1/auth/whoami", auth=("gus", PASSWORD)).status_code == 429
        # So does another name from the same address.
        assert server.http.get("/api/v1/auth/whoami", auth=("root", "wrong password 123")).status_code == 429
        events = auth.audit(AuditQuery(principal="gus"))
        assert [e.status for e in events].count(401) == 5
        assert [e.status for e in events].count(429) == 2
        assert all(e.action == "whoami" and e.address == "127.0.0.1" for e in events)
        assert "too many" in events[0].detail


# -- the audit log ------------------------------------------------------------------------------------
def test_every_change_is_audited_with_who_what_where_and_the_request_id(world: World) -> None:
    run = world.ids["run"]
    response = world.request("editor", "POST", f"/api/v1/runs/{run}/params",
                             json={"params": [{"key": "audited", "value": "1"}]},
                             headers={"x-request-id": "req-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    generated = world.request("editor", "PUT", f"/api/v1/runs/{run}/tags",
                              json={"tags": [{"key": "audited", "value": "yes"}]})
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    refused = world.request("viewer", "DELETE", f"/api/v1/runs/{run}", headers={"x-request-id": "req-43"})
    assert refused.status_code == 403
    events = {e.request_id: e for e in world.store.auth.audit(AuditQuery(object=f"run:{run}"))}
    logged = events["req-42"]
    assert (logged.principal, logged.action, logged.method, logged.status, logged.project) == (
        "eddie", "log_params", "POST", 200, "alpha")
    assert logged.path == f"/api/v1/runs/{run}/params"
    assert logged.address == "127.0.0.1"
    assert generated.headers["x-request-id"] in events
    reads = world.store.auth.audit(AuditQuery(action="get_run"))
    assert reads == [], "reads that succeed are not audited"
    denial = next(e for e in world.store.auth.audit(AuditQuery(principal="vic")) if e.request_id == "req-43")
    assert (denial.status, denial.action) == (403, "delete_run")
    assert "delete" in denial.detail


def test_the_audit_log_is_read_by_admins_and_project_owners(world: World) -> None:
    everything = ok(world.request("admin", "GET", "/api/v1/audit", params={"limit": 5}))["events"]
    assert len(everything) == 5
    alpha = ok(world.request("owner", "GET", "/api/v1/audit", params={"project": "alpha"}))["events"]
    assert alpha
    assert {e["project"] for e in alpha} == {"alpha"}
    assert world.request("owner", "GET", "/api/v1/audit").status_code == 403  # every project: admins only
    assert world.request("owner", "GET", "/api/v1/audit", params={"project": "beta"}).status_code == 404
    assert world.request("editor", "GET", "/api/v1/audit", params={"project": "alpha"}).status_code == 403
    lines = world.request("admin", "GET", "/api/v1/audit", params={"limit": 3, "format": "jsonl"})
    assert lines.headers["content-type"].startswith("application/x-ndjson")
    assert len(lines.text.splitlines()) == 3


# -- the auth API -------------------------------------------------------------------------------------
def test_tokens_are_made_listed_and_revoked_through_the_api(world: World) -> None:
    made = ok(world.http.post("/api/v1/auth/tokens", auth=("vic", PASSWORD), json={"name": "laptop"}))
    assert made["secret"].startswith("shy_")
    assert made["token"]["user"] == "vic"
    headers = {"authorization": f"Bearer {made['secret']}"}
    assert ok(world.http.get("/api/v1/auth/whoami", headers=headers))["principal"]["name"] == "vic"
    mine = ok(world.http.get("/api/v1/auth/tokens", headers=headers))["tokens"]
    assert made["token"]["token_id"] in {t["token_id"] for t in mine}
    assert "secret" not in str(mine)
    assert "hash" not in str(mine)
    assert world.request("other", "DELETE", f"/api/v1/auth/tokens/{made['token']['token_id']}").status_code == 404
    ok(world.http.delete(f"/api/v1/auth/tokens/{made['token']['token_id']}", headers=headers))
    assert world.http.get("/api/v1/auth/whoami", headers=headers).status_code == 401


def test_owners_manage_their_projects_members(world: World) -> None:
    world.operator().create_user("newbie", password=PASSWORD)
    member = ok(world.request("owner", "PUT", "/api/v1/projects/alpha/members/newbie", json={"role": "viewer"}))
    assert member == {"member": {"project": "alpha", "user": "newbie", "role": "viewer"}}
    assert world.request("maintainer", "PUT", "/api/v1/projects/alpha/members/newbie",
                         json={"role": "owner"}).status_code == 403
    assert world.request("owner", "PUT", "/api/v1/projects/beta/members/newbie",
                         json={"role": "owner"}).status_code == 404
    names = {m["user"] for m in ok(world.request("viewer", "GET", "/api/v1/projects/alpha/members"))["members"]}
    assert {"vic", "olga", "newbie"} <= names
    ok(world.request("owner", "DELETE", "/api/v1/projects/alpha/members/newbie"))
    assert [p["name"] for p in ok(world.request("viewer", "GET", "/api/v1/projects"))["projects"]] == ["alpha"]


def test_bootstrap_needs_the_servers_code(world: World) -> None:
    response = world.http.post("/api/v1/auth/bootstrap", json={"name": "eve", "password": PASSWORD, "code": "guess"})
    assert "no bootstrap code" in _message(response)


# -- headers ------------------------------------------------------------------------------------------
def test_security_headers_on_api_and_pages(world: World) -> None:
    api = world.request("viewer", "GET", "/api/v1/experiments")
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["x-content-type-options"] == "nosniff"
    page = world.request("viewer", "GET", "/ui/experiments")
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in page.text
    assert " on" + "click=" not in page.text
    login = world.http.get("/ui/login")
    assert login.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in login.headers


def test_without_auth_nothing_asks_for_credentials(tmp_path: Path) -> None:
    with InProcessServer(tmp_path) as server:
        assert server.http.get("/api/v1/experiments").status_code == 200
        who = ok(server.http.get("/api/v1/auth/whoami"))["principal"]
        assert who["name"] == "local"
        assert who["grants"] is None
        response = server.http.post("/api/v1/runs", json={"experiment_id": "0"})
        assert response.status_code == 201
        assert "x-request-id" not in response.headers
        assert server.http.get("/api/v1/experiments?token=abc").status_code == 200
        assert server.http.get("/api/v1/experiments").headers["x-frame-options"] == "DENY"
