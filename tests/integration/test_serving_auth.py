"""Serving with ``--auth`` (``shipyard serve``, ``shipyard deploy run``), in-process on a real SQLite store:
every route of both apps for every role, against the serving permission table and generated from the apps'
routes; 401, 403 and 404 answers; tokens remembered for their TTL, then refused once revoked; and a serving
process on a remote store, whose tokens the team server checks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import shipyard
from shipyard.auth import ANONYMOUS, Permission, Principal
from shipyard.auth.service import AuthService
from shipyard.entities.auth import Role
from shipyard.errors import InvalidInput
from shipyard.serving import create_serving_app, load_served
from shipyard.serving.guard import SERVING_ROUTE_PERMISSIONS, ServingGuard, served_project, token_verifier
from tests.integration.serving_auth_world import MODEL_URI, PASSWORD, PRINCIPALS, World, build_world, serving
from tests.support import InProcessServer

# What each one holds in alpha, the project of everything served here (None: no role at all).
ROLE_IN_ALPHA = {"viewer": Role.VIEWER, "editor": Role.EDITOR, "maintainer": Role.MAINTAINER, "owner": Role.OWNER,
                 "admin": Role.OWNER, "other": None, "admin_scoped_to_beta": None}
LEAST = {Permission.READ: Role.VIEWER, Permission.WRITE: Role.EDITOR}
PREDICTION_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = build_world(tmp_path_factory.mktemp("serving-auth"))
    yield built
    built.client.close()


def _routes(app: Any) -> list[tuple[str, str, str]]:
    return sorted({(r.name, m, r.path) for r in app.routes for m in r.methods if m != "HEAD"})


def _request(method: str, path: str, served: str) -> tuple[str, dict[str, Any] | None]:
    """The URL and a valid body for a route: a permitted request must succeed, not fail on its input."""
    url = path.replace("{name}", served).replace("{version}", "1")
    if method != "POST":
        return url, None
    if url.endswith("/predict"):
        return url, {"inputs": [{"x": 3.0}]}
    if url.endswith("/infer"):
        return url, {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]}]}
    if url == "/invocations":
        return url, {"dataframe_records": [{"x": 3.0}]}
    assert url == "/v1/feedback", url
    return url, {"prediction_id": PREDICTION_ID, "value": 1}


def _expected(role: str, permission: Permission) -> str:
    if permission is Permission.PUBLIC:
        return "ok"
    if role == "anonymous":
        return "401"
    if permission is Permission.ADMIN:
        return "ok" if role == "admin" else "403"
    held = ROLE_IN_ALPHA[role]
    if held is None:
        return "404"
    return "ok" if held >= LEAST[permission] else "403"


def _outcome(response: httpx.Response) -> str:
    return "ok" if response.is_success else str(response.status_code)


def test_every_serving_route_declares_its_permission(world: World) -> None:
    names = {name for app in (world.serve_app(), world.deploy_app()) for name, _, _ in _routes(app)}
    assert names == set(SERVING_ROUTE_PERMISSIONS), "SERVING_ROUTE_PERMISSIONS must list exactly the routes served"
    # Only the probes are open; feedback changes the project's data; /metrics is the server's admins'.
    needs = {n: p for n, p in SERVING_ROUTE_PERMISSIONS.items() if p is not Permission.READ}
    assert needs == {"health_live": Permission.PUBLIC, "health_ready": Permission.PUBLIC, "ping": Permission.PUBLIC,
                     "health": Permission.PUBLIC, "feedback": Permission.WRITE, "metrics": Permission.ADMIN}


@pytest.mark.parametrize("kind", ["serve", "deploy"])
def test_every_route_for_every_role(world: World, kind: str) -> None:
    app = world.serve_app() if kind == "serve" else world.deploy_app()
    served = "alpha-model" if kind == "serve" else "alpha-api"
    routes = _routes(app)

    async def scenario() -> list[str]:
        wrong = []
        async with serving(app) as http:
            for name, method, path in routes:
                url, body = _request(method, path, served)
                for role in PRINCIPALS:
                    response = await http.request(method, url, json=body, headers=world.headers(role))
                    expected = _expected(role, SERVING_ROUTE_PERMISSIONS[name])
                    if _outcome(response) != expected:
                        wrong.append(f"{role} {method} {url}: expected {expected}, got {response.status_code} "
                                     f"{response.text[:200]}")
        return wrong

    wrong = asyncio.run(scenario())
    assert not wrong, "\n".join(wrong)
    assert len(routes) >= (15 if kind == "serve" else 13)


def test_refusals_are_json_errors_that_say_why(world: World) -> None:
    async def scenario() -> dict[str, httpx.Response]:
        async with serving(world.serve_app()) as http:
            row = {"inputs": [{"x": 1.0}]}
            return {
                "none": await http.post("/v1/models/alpha-model/predict", json=row),
                "oip": await http.post("/v2/models/alpha-model/infer", json={}),
                "malformed": await http.post("/invocations", headers={"authorization": "Bearer shy_nope"}),
                "basic": await http.get("/v1/models", auth=("vic", PASSWORD)),
                "in_url": await http.get(f"/v1/models?token={world.secrets['viewer']}"),
                "cookie": await http.get("/v1/models", headers={
                    "cookie": f"shipyard_session={world.secrets['viewer']}"}),
                "unknown": await http.get("/v1/models", headers={
                    "authorization": "Bearer shy_0123456789abcdef_" + "A" * 43}),
                "other": await http.post("/v1/models/alpha-model/predict", json=row, headers=world.headers("other")),
                "other_missing": await http.post("/v1/models/no-such/predict", json=row,
                                                 headers=world.headers("other")),
                "viewer_metrics": await http.get("/metrics", headers=world.headers("viewer")),
            }

    answers = asyncio.run(scenario())
    for key in ("none", "oip", "malformed", "basic", "in_url", "cookie", "unknown"):
        response = answers[key]
        assert response.status_code == 401, (key, response.text)
        assert response.headers["content-type"] == "application/json"
        assert response.headers["www-authenticate"] == 'Bearer realm="shipyard"'
        assert response.json()["error_code"] == "UNAUTHENTICATED"
        assert "Traceback" not in response.text
    assert "Authorization: Bearer shy_" in answers["none"].json()["message"]
    assert answers["oip"].json()["error"] == answers["oip"].json()["message"]  # the OIP clients' field
    assert "malformed" in answers["malformed"].json()["message"]
    assert "unknown API token" in answers["unknown"].json()["message"]
    # A principal without a role in the project learns nothing, not even which models exist.
    for key in ("other", "other_missing"):
        assert answers[key].status_code == 404
        assert answers[key].json()["error_code"] == "NOT_FOUND"
        assert "alpha" not in answers[key].text
    assert answers["other"].json() == answers["other_missing"].json()
    denied = answers["viewer_metrics"]
    assert denied.status_code == 403
    assert "server admin" in denied.json()["message"]


def test_feedback_needs_the_editor_role(world: World) -> None:
    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with serving(world.deploy_app()) as http:
            body = {"prediction_id": PREDICTION_ID, "value": 0}
            return (await http.post("/v1/feedback", json=body, headers=world.headers("viewer")),
                    await http.post("/v1/feedback", json=body, headers=world.headers("editor")))

    viewer, editor = asyncio.run(scenario())
    assert viewer.status_code == 403
    message = viewer.json()["message"]
    assert "holds the viewer role in project 'alpha'; this needs editor" in message
    assert editor.status_code == 202
    assert editor.json() == {"accepted": 1}


class Counting:
    """A verifier that counts how often it is asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def authenticate_token(self, secret: str, *, project: str | None = None) -> Principal:
        self.calls += 1
        return self.inner.authenticate_token(secret, project=project)


def test_a_token_is_checked_once_per_ttl_and_a_revoked_one_is_refused_after_it(world: World) -> None:
    token, secret = world.operator.create_token("short-lived", user="vic")
    now = [1000.0]
    verifier = Counting(token_verifier(world.client.store))
    guard = ServingGuard(verifier, "alpha", ttl_seconds=30, clock=lambda: now[0])
    headers = {"authorization": f"Bearer {secret}"}

    async def predict(http: httpx.AsyncClient, times: int) -> list[int]:
        answers = await asyncio.gather(*(http.post("/v1/models/alpha-model/predict", json={"inputs": [{"x": 1.0}]},
                                                   headers=headers) for _ in range(times)))
        return [a.status_code for a in answers]

    async def scenario() -> tuple[list[int], int, list[int], httpx.Response]:
        async with serving(world.serve_app(guard)) as http:
            first = await predict(http, 20)  # concurrent first requests share one check
            checks = verifier.calls
            world.operator.revoke_token(token.token_id)
            now[0] += 29.9
            cached = await predict(http, 5)  # within the TTL: still the remembered answer
            now[0] += 0.2
            refused = await http.post("/v1/models/alpha-model/predict", json={"inputs": [{"x": 1.0}]},
                                      headers=headers)
            return first, checks, cached, refused

    first, checks, cached, refused = asyncio.run(scenario())
    assert first == [200] * 20
    assert checks == 1
    assert cached == [200] * 5
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
    assert verifier.calls == 2


def test_grants_revocations_and_disabling_take_effect_after_the_ttl(world: World) -> None:
    operator = world.operator
    operator.create_user("tess")
    headers = {"authorization": f"Bearer {operator.create_token('tess', user='tess')[1]}"}
    now = [0.0]
    guard = world.guard(ttl_seconds=5, clock=lambda: now[0])
    changes = [lambda: operator.grant("alpha", "tess", "viewer"), lambda: operator.revoke("alpha", "tess"),
               lambda: operator.disable_user("tess")]

    async def scenario() -> list[tuple[int, int]]:
        seen = []
        async with serving(world.serve_app(guard)) as http:
            before = (await http.get("/v1/models", headers=headers)).status_code
            for change in changes:
                change()
                now[0] += 4.9
                within = (await http.get("/v1/models", headers=headers)).status_code
                seen.append((before, within))
                now[0] += 0.2
                before = (await http.get("/v1/models", headers=headers)).status_code
            seen.append((before, before))
        return seen

    # No role: 404; granted, then taken away, then the user disabled: each seen only once the entry lapses.
    assert asyncio.run(scenario()) == [(404, 404), (200, 200), (404, 404), (401, 401)]


def test_without_a_guard_nothing_is_checked(world: World) -> None:
    app = create_serving_app([load_served(world.client, MODEL_URI)])
    # The routes are the app's own endpoints, not wrapped.
    assert all(r.endpoint.__name__ == "endpoint" for r in app.routes)

    async def scenario() -> int:
        async with serving(app) as http:
            return (await http.post("/v1/models/alpha-model/predict", json={"inputs": [{"x": 2.0}]})).status_code

    assert asyncio.run(scenario()) == 200


def test_a_store_without_users_or_a_folder_model(world: World, tmp_path: Path) -> None:
    empty = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'empty.db'}", artifact_uri=str(tmp_path / "a"))
    try:
        with pytest.raises(InvalidInput, match="no user yet"):
            token_verifier(empty.store)
    finally:
        empty.close()
    assert served_project(world.client, "runs:/" + world.client.get_model_version("alpha-model", 1).run_id
                          + "/model", "default") == "alpha"
    assert served_project(world.client, str(tmp_path), "chosen") == "chosen"


# -- a serving process on a remote store: the team server checks the tokens ------------------------------------
def test_a_remote_store_checks_tokens_on_the_team_server(world: World, tmp_path: Path) -> None:
    from shipyard.store.rest import RestStore

    with InProcessServer(tmp_path, server_auth=True) as server:
        operator = AuthService(server.app.state.client.store.auth, ANONYMOUS)
        operator.create_project("alpha")
        for user, role in (("vic", "viewer"), ("otto", None)):
            operator.create_user(user)
            if role:
                operator.grant("alpha", user, role)
        vic, vic_secret = operator.create_token("vic", user="vic")
        otto = operator.create_token("otto", user="otto")[1]
        store = RestStore("http://testserver", transport=server.transport)
        verifier = Counting(token_verifier(store))
        now = [0.0]
        guard = ServingGuard(verifier, "alpha", ttl_seconds=30, clock=lambda: now[0])

        async def scenario() -> list[tuple[int, str]]:
            async with serving(world.serve_app(guard)) as http:
                def ask(secret: str) -> Any:
                    return http.post("/v1/models/alpha-model/predict", json={"inputs": [{"x": 1.0}]},
                                     headers={"authorization": f"Bearer {secret}"})

                answers = [await ask(vic_secret), await ask(vic_secret), await ask(otto)]
                operator.revoke_token(vic.token_id)
                now[0] += 31
                answers.append(await ask(vic_secret))
                return [(a.status_code, a.json().get("message", "")) for a in answers]

        answers = asyncio.run(scenario())
        store.close()
    assert [status for status, _ in answers] == [200, 200, 404, 401]
    assert "revoked" in answers[3][1]
    assert "testserver" not in answers[3][1]  # the team server's address is not told to callers
    assert verifier.calls == 3


def test_a_team_server_without_auth_cannot_check_tokens(tmp_path: Path) -> None:
    from shipyard.store.rest import RestStore

    with InProcessServer(tmp_path) as server:
        store = RestStore("http://testserver", transport=server.transport)
        try:
            with pytest.raises(InvalidInput, match="does not check who calls it"):
                token_verifier(store)
        finally:
            store.close()
