"""Deployments over the native API: create, read, write a revision, history, delete.

A thin adapter: every route goes through
:class:`~shipyard.deploy.rollout.DeploymentService`, which checks names and limits
(:mod:`shipyard.deploy.limits`) on creates, revisions and deletes; the store checks versions and
revisions. pydantic only bounds the request's size and types here. Every revision is recorded under
the principal who made it (``request.state.principal.name``), never a user the client claims. The
rollout rules (canary, promote, rollback) live in :mod:`shipyard.deploy`, above the store: a client
applies them and sends the resulting revision, whose ``revision`` field is the one it read (a stale
one is ``409 CONFLICT``).

Deployment names cannot contain ``/`` (the registered model name rule), so ``{name}`` is one
path segment.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import Path, Query, Request
from pydantic import Field
from starlette.responses import Response

from shipyard.entities import Batching, Deployment, ModelRef, Resources, Route
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.server.schemas import Body, Key, ProjectsQuery, Text
from shipyard.wire import deployment_event_to_wire, deployment_to_wire

router = PrefixRouter(prefix="/api/v1/deployments", tags=["deployments"])

Name = Annotated[str, Path(max_length=1000)]
Whole = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
Detail = Annotated[str, Field(max_length=5000)]


class RouteIn(Body):
    model: Key
    version: Whole
    weight: Whole


class ShadowIn(Body):
    model: Key
    version: Whole


class BatchingIn(Body):
    max_batch_size: Whole = Batching().max_batch_size
    max_wait_ms: float = Batching().max_wait_ms


class ResourcesIn(Body):
    replicas: Whole = Resources().replicas
    cpu: Key = ""
    memory: Key = ""


class DeploymentState(Body):
    """What a deployment serves and how; ``routes`` are the primary first, then the canary."""

    environment: Key
    routes: Annotated[list[RouteIn], Field(max_length=100)]
    shadows: Annotated[list[ShadowIn], Field(max_length=100)] = []
    batching: BatchingIn = BatchingIn()
    resources: ResourcesIn = ResourcesIn()
    status: Key = "ACTIVE"
    detail: Detail = ""


class CreateDeployment(DeploymentState):
    name: Text
    project: Key = DEFAULT_PROJECT


class SaveRevision(DeploymentState):
    """The next state, ``revision`` being the revision it was made from, and what kind of change it is."""

    revision: Whole
    kind: Key


def _deployment(name: str, body: DeploymentState, revision: int = 0) -> Deployment:
    return Deployment(
        name=name, environment=body.environment,
        routes=tuple(Route(r.model, r.version, r.weight) for r in body.routes),
        shadows=tuple(ModelRef(s.model, s.version) for s in body.shadows),
        batching=Batching(body.batching.max_batch_size, body.batching.max_wait_ms),
        resources=Resources(body.resources.replicas, body.resources.cpu, body.resources.memory),
        status=body.status, revision=revision)  # type: ignore[arg-type]  # the service checks the status


@router.post("", name="create_deployment", status_code=201, summary="Create a deployment (its revision 1)")
def create_deployment(body: CreateDeployment, request: Request) -> Response:
    deployment = replace(_deployment(body.name, body), project=body.project)
    made = client(request).deployments.create_deployment(deployment, detail=body.detail)
    return json_response(deployment_to_wire(made), 201)


@router.get("", name="list_deployments",
            summary="List deployments by name (of one environment, of the projects, if given)")
def list_deployments(request: Request, environment: Annotated[str | None, Query(max_length=1000)] = None,
                     projects: ProjectsQuery = None) -> Response:
    found = client(request).deployments.list(environment, projects=projects)
    return json_response({"deployments": [deployment_to_wire(d) for d in found]})


@router.get("/{name}", name="get_deployment", summary="Get a deployment")
def get_deployment(name: Name, request: Request) -> Response:
    return json_response(deployment_to_wire(client(request).deployments.get(name)))


@router.post("/{name}/revisions", name="save_deployment_revision",
             summary="Write a deployment's next revision (409 when `revision` is not the current one)")
def save_deployment_revision(name: Name, body: SaveRevision, request: Request) -> Response:
    saved = client(request).deployments.save_revision(_deployment(name, body, body.revision), kind=body.kind,
                                                      detail=body.detail)
    return json_response(deployment_to_wire(saved))


@router.get("/{name}/history", name="get_deployment_history",
            summary="Every revision of a deployment, oldest first (kept after a delete)")
def get_deployment_history(name: Name, request: Request) -> Response:
    return json_response({"events": [deployment_event_to_wire(e) for e in client(request).deployments.history(name)]})


@router.delete("/{name}", name="delete_deployment", summary="Delete a deployment (its history stays)")
def delete_deployment(name: Name, request: Request,
                      detail: Annotated[str, Query(max_length=5000)] = "") -> Response:
    client(request).deployments.delete(name, detail=detail)
    return json_response(None)
