from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from starlette.responses import Response

from shipyard.entities import ViewType
from shipyard.errors import NotFound
from shipyard.server import schemas
from shipyard.server.responses import json_response, tracking
from shipyard.server.routing import PrefixRouter
from shipyard.wire import experiment_to_wire

router = PrefixRouter(prefix="/api/v1/experiments", tags=["experiments"])
ExperimentId = Annotated[str, Path(max_length=64)]


@router.post("", name="create_experiment", status_code=201, summary="Create an experiment")
def create_experiment(body: schemas.CreateExperiment, request: Request) -> Response:
    c = tracking(request)
    made = c.create_experiment(body.name, body.tags, project=body.project)
    return json_response(experiment_to_wire(c.get_experiment(made)), 201)


@router.get("", name="list_experiments", summary="List experiments (of the projects given, if any)")
def list_experiments(request: Request, view: ViewType = ViewType.ACTIVE_ONLY,
                     projects: schemas.ProjectsQuery = None) -> Response:
    found = tracking(request).search_experiments(view, projects=projects)
    return json_response({"experiments": [experiment_to_wire(e) for e in found]})


@router.get("/by-name", name="get_experiment_by_name", summary="Get an experiment by its name")
def get_experiment_by_name(request: Request, name: Annotated[str, Query(max_length=1000)]) -> Response:
    found = tracking(request).get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"no experiment is named {name!r}")
    return json_response(experiment_to_wire(found))


@router.get("/{experiment_id}", name="get_experiment", summary="Get an experiment")
def get_experiment(experiment_id: ExperimentId, request: Request) -> Response:
    return json_response(experiment_to_wire(tracking(request).get_experiment(experiment_id)))


@router.patch("/{experiment_id}", name="rename_experiment", summary="Rename an experiment")
def rename_experiment(experiment_id: ExperimentId, body: schemas.RenameExperiment, request: Request) -> Response:
    return json_response(experiment_to_wire(tracking(request).rename_experiment(experiment_id, body.name)))


@router.delete("/{experiment_id}", name="delete_experiment", summary="Soft-delete an experiment")
def delete_experiment(experiment_id: ExperimentId, request: Request) -> Response:
    tracking(request).delete_experiment(experiment_id)
    return json_response(None)


@router.post("/{experiment_id}/restore", name="restore_experiment", summary="Restore a deleted experiment")
def restore_experiment(experiment_id: ExperimentId, request: Request) -> Response:
    tracking(request).restore_experiment(experiment_id)
    return json_response(None)


@router.put("/{experiment_id}/tags", name="set_experiment_tags", summary="Set experiment tags")
def set_experiment_tags(experiment_id: ExperimentId, body: schemas.ExperimentTags, request: Request) -> Response:
    tracking(request).set_experiment_tags(experiment_id, body.tags)
    return json_response(None)


@router.delete("/{experiment_id}/tags/{key:path}", name="delete_experiment_tag", summary="Delete a tag")
def delete_experiment_tag(experiment_id: ExperimentId, key: str, request: Request) -> Response:
    tracking(request).delete_experiment_tag(experiment_id, key)
    return json_response(None)
