"""A server with ``--auth`` and a small world in it, for the access-control tests.

Project ``alpha`` holds one of everything (experiment, run with an artifact, registered model
with a version and an alias, dataset version, lineage edge, logged model, deployment,
monitor), made through the API by its owner. Its members hold one role each; ``otto`` owns
project ``beta`` and nothing in ``alpha``; ``root`` is a server admin. Each principal signs
in with an API token of its own.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from shipyard.auth import ANONYMOUS
from shipyard.auth.service import AuthService
from tests.support import InProcessServer

PASSWORD = "a long enough passphrase 7"
# role in the matrix -> (user, project, role there); None: the request carries no credentials
PRINCIPALS: dict[str, tuple[str, str, str] | None] = {
    "anonymous": None,
    "viewer": ("vic", "alpha", "viewer"),
    "editor": ("eddie", "alpha", "editor"),
    "maintainer": ("mia", "alpha", "maintainer"),
    "owner": ("olga", "alpha", "owner"),
    "admin": ("root", "", ""),
    "other": ("otto", "beta", "owner"),
}
LOGGED_MODEL_ID = "m-" + "a1" * 16
DIGEST = "sha256:" + "ab" * 32
# Tables whose rows change without anyone changing the world: sign-ins touch tokens, requests
# append to the audit log.
VOLATILE_TABLES = frozenset({"audit_events", "api_tokens", "alembic_version"})


def ok(response: httpx.Response) -> Any:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


@dataclass
class World:
    server: InProcessServer
    root: Path
    secrets: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def http(self) -> httpx.Client:
        return self.server.http

    @property
    def store(self) -> Any:
        return self.server.app.state.client.store

    def operator(self) -> AuthService:
        """The auth service as the unrestricted operator (the CLI on the database itself)."""
        return AuthService(self.store.auth, ANONYMOUS)

    def headers(self, role: str, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if role != "anonymous":
            headers["authorization"] = f"Bearer {self.secrets[role]}"
        return headers

    def request(self, role: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.http.request(method, url, headers=headers, **kwargs)

    def snapshot(self) -> tuple[Any, ...]:
        """Every row of every table but the volatile ones, and every artifact file: what a refused
        request must leave as it was."""
        db = sqlite3.connect(self.root / "server.db")
        try:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                   "ORDER BY name") if row[0] not in VOLATILE_TABLES]
            rows = tuple((t, tuple(sorted(map(repr, db.execute(f'SELECT * FROM "{t}"'))))) for t in tables)
        finally:
            db.close()
        files = tuple(sorted(str(p.relative_to(self.server.artifact_root))
                             for p in self.server.artifact_root.rglob("*") if p.is_file()))
        return rows, files


def build_world(root: Path) -> World:
    server = InProcessServer(root, server_auth=True, capture_git=False, capture_packages=False)
    world = World(server, root)
    operator = world.operator()
    for project in ("alpha", "beta"):
        operator.create_project(project)
    for role, spec in PRINCIPALS.items():
        if spec is None:
            continue
        user, project, held = spec
        operator.create_user(user, password=PASSWORD, admin=role == "admin")
        if project:
            operator.grant(project, user, held)
        world.secrets[role] = operator.create_token(f"{role} token", user=user)[1]
    _seed_alpha(world)
    _seed_beta(world)
    return world


def _seed_alpha(world: World) -> None:
    def call(method: str, path: str, **kwargs: Any) -> Any:
        headers = {"x-shipyard-project": "alpha", **kwargs.pop("headers", {})}
        return ok(world.request("owner", method, f"/api/v1{path}", headers=headers, **kwargs))

    ids = world.ids
    ids["experiment"] = call("POST", "/experiments", json={"name": "alpha-exp", "project": "alpha"})["experiment_id"]
    ids["run"] = call("POST", "/runs", json={"experiment_id": ids["experiment"], "run_name": "alpha-run"})["info"][
        "run_id"]
    call("POST", f"/runs/{ids['run']}/params", json={"params": [{"key": "alpha_lr", "value": "0.1"}]})
    call("POST", f"/runs/{ids['run']}/metrics", json={"metrics": [{"key": "alpha_acc", "value": 0.9,
                                                                   "timestamp": 1}]})
    call("PUT", f"/runs/{ids['run']}/tags", json={"tags": [{"key": "team", "value": "alpha"}]})
    call("PUT", f"/runs/{ids['run']}/artifacts/notes.txt", content=b"alpha secret notes",
         headers={"content-type": "application/octet-stream"})
    ids["model"] = "alpha-model"
    call("POST", "/registered-models", json={"name": "alpha-model", "project": "alpha"})
    call("POST", "/registered-models/alpha-model/versions", json={"source": "s3://bucket/alpha"})
    call("PUT", "/registered-models/alpha-model/aliases/staging", json={"version": 1})
    ids["dataset"] = "alpha-ds"
    call("POST", "/datasets/alpha-ds/versions", json={"digest": DIGEST, "source": "s3://bucket/alpha.csv",
                                                      "kind": "file", "project": "alpha"})
    call("POST", "/lineage/edges", json={"edges": [{"source": "dataset:alpha-ds@1", "target": f"run:{ids['run']}",
                                                    "relation": "input"}]})
    ids["logged_model"] = LOGGED_MODEL_ID
    call("POST", "/logged-models", json={"model_id": LOGGED_MODEL_ID, "experiment_id": ids["experiment"],
                                         "name": "alpha-lm", "run_id": ids["run"], "artifact_path": "model"})
    ids["deployment"] = "alpha-api"
    call("POST", "/deployments", json={"name": "alpha-api", "environment": "staging", "project": "alpha",
                                       "routes": [{"model": "alpha-model", "version": 1, "weight": 100}]})
    ids["monitor"] = "alpha-mon"
    call("POST", "/monitors", json={"name": "alpha-mon", "deployment": "alpha-api", "project": "alpha"})


def _seed_beta(world: World) -> None:
    made = ok(world.request("other", "POST", "/api/v1/experiments", json={"name": "beta-exp", "project": "beta"}))
    world.ids["beta_experiment"] = made["experiment_id"]
    run = ok(world.request("other", "POST", "/api/v1/runs", json={"experiment_id": made["experiment_id"]}))
    world.ids["beta_run"] = run["info"]["run_id"]


def alpha_markers(world: World) -> list[str]:
    """Strings that only an answer about project alpha's objects contains."""
    return ["alpha-exp", "alpha-run", world.ids["run"], "alpha-model", "alpha-ds", "alpha-lm", "alpha-api",
            "alpha-mon", "alpha_lr", "alpha_acc", "alpha secret notes"]
