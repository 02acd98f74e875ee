"""A SQLite store for the serving-with-``--auth`` tests: users with one role each in project ``alpha``
(and ``otto``, who owns ``beta``; ``root``, a server admin, also with a token scoped to ``beta``), a
token each, model ``alpha-model`` version 1 (predicts its input's ``x``) and deployment ``alpha-api`` of
it, both in ``alpha``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

import shipyard
from shipyard.auth import ANONYMOUS
from shipyard.auth.service import AuthService
from shipyard.config import Settings
from shipyard.entities import Deployment, Route
from shipyard.models import PythonModel
from shipyard.serving import create_serving_app, load_served
from shipyard.serving.deployment_app import create_deployment_app
from shipyard.serving.guard import ServingGuard, served_project, token_verifier
from tests.integration.auth_world import PASSWORD

__all__ = ["MODEL_URI", "PASSWORD", "PRINCIPALS", "World", "build_world", "serving"]

MODEL_URI = "models:/alpha-model/1"
# role in the matrix -> (user, project, role there, token scope); None: no credentials
PRINCIPALS: dict[str, tuple[str, str, str, str | None] | None] = {
    "anonymous": None,
    "viewer": ("vic", "alpha", "viewer", None),
    "editor": ("eddie", "alpha", "editor", None),
    "maintainer": ("mia", "alpha", "maintainer", None),
    "owner": ("olga", "alpha", "owner", None),
    "admin": ("root", "", "", None),
    "other": ("otto", "beta", "owner", None),
    "admin_scoped_to_beta": ("root", "", "", "beta"),
}


class Echo(PythonModel):
    def predict(self, context: Any, model_input: Any) -> Any:
        return model_input["x"].to_numpy()


@dataclass
class World:
    client: shipyard.Client
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def operator(self) -> AuthService:
        return AuthService(self.client.store.auth, ANONYMOUS)

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == "anonymous" else {"authorization": f"Bearer {self.secrets[role]}"}

    def guard(self, **options: Any) -> ServingGuard:
        options.setdefault("ttl_seconds", 60.0)
        return ServingGuard(token_verifier(self.client.store), served_project(self.client, MODEL_URI, "default"),
                            **options)

    def serve_app(self, guard: ServingGuard | None = None) -> Any:
        return create_serving_app([load_served(self.client, MODEL_URI)], max_wait_ms=0,
                                  guard=guard or self.guard())

    def deploy_app(self, guard: ServingGuard | None = None) -> Any:
        return create_deployment_app(self.client, "alpha-api", poll_seconds=60, prime=True,
                                     prediction_log=self.client.artifacts, guard=guard or self.guard())


def build_world(root: Path) -> World:
    """The store below ``root``, its users and tokens, and project alpha's model and deployment; the
    caller closes ``world.client``."""
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'db.sqlite'}",
                                artifact_uri=str(root / "artifacts"), capture_git=False, capture_diff=False,
                                capture_packages=False, capture_system=False)
    client = shipyard.Client(settings=settings)
    built = World(client)
    operator = built.operator
    for project in ("alpha", "beta"):
        operator.create_project(project)
    for role, spec in PRINCIPALS.items():
        if spec is None:
            continue
        user, project, held, scope = spec
        if user not in {u.name for u in operator.store.list_users()}:
            # One password (vic's, to show serving refuses it too): hashing them all would be slow.
            operator.create_user(user, password=PASSWORD if user == "vic" else None, admin=user == "root")
            if project:
                operator.grant(project, user, held)
        built.secrets[role] = operator.create_token(f"{role} token", user=user, project=scope)[1]
    run_id = client.create_run(client.create_experiment("alpha-exp", project="alpha"), "train").info.run_id
    client.log_model(run_id, Echo(), "model", input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    client.set_terminated(run_id)
    client.registry.create_registered_model("alpha-model", project="alpha")
    client.register_model(f"runs:/{run_id}/model", "alpha-model")
    client.store.deployments.create(Deployment("alpha-api", "staging", (Route("alpha-model", 1, 100),),
                                               project="alpha"), user="olga", detail="created")
    return built


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://serving") as http:
        yield http
