"""The model registry over the native API: registered models, versions, aliases, approvals.

A thin adapter: every change (models, versions, tags, aliases, approvals) goes through the
registry's rules (:class:`~shipyard.models.registry.RegistryService`, acting as the request's
principal), the same door the MLflow adapter uses; reads and typed searches go to
``client.store.models``. Filters are parsed here into typed filters, and every change is
recorded under the principal who made it (``request.state.principal``), never a user the
client claims.

A version's source follows the registry's one rule (:func:`shipyard.models.sources.plan_version_source`):
a package a run of this server logged (``runs:/<run_id>/<path>``, canonicalised) or a remote URI
recorded as external; local paths and ``file://`` URIs are refused, so no version makes the
server read its own disk.

Model names cannot contain ``/`` (see ``check_model_name``), so ``{name}`` is one path segment.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from starlette.responses import Response

from shipyard.entities import MODEL_GRAMMAR, VERSION_GRAMMAR, Grammar, OrderBy, RegistryQuery, RunFilter
from shipyard.errors import InvalidInput
from shipyard.filters import check_comparison, parse_filter
from shipyard.models.registry import RegistryService
from shipyard.server import schemas
from shipyard.server.responses import client, json_response
from shipyard.server.routing import PrefixRouter
from shipyard.store.protocol import ModelStore
from shipyard.wire import model_version_to_wire, registered_model_to_wire, registry_event_to_wire

router = PrefixRouter(prefix="/api/v1/registered-models", tags=["model registry"])
versions_router = PrefixRouter(prefix="/api/v1/model-versions", tags=["model registry"])

ModelName = Annotated[str, Path(max_length=1000)]
Alias = Annotated[str, Path(max_length=1000)]
Version = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]
FilterText = Annotated[str, Query(max_length=10_000)]
MaxResults = Annotated[int, Query(ge=1, le=10_000)]
PageToken = Annotated[str | None, Query(max_length=10_000)]


def _models(request: Request) -> ModelStore:
    return client(request).store.models


def _registry(request: Request) -> RegistryService:
    """The registry's rules, acting as the request's principal."""
    return client(request).registry


def _query(grammar: Grammar, body: schemas.SearchRegistry) -> RegistryQuery:
    if body.filter is not None and body.filter_string:
        raise InvalidInput("give either filter or filter_string, not both")
    if body.filter is not None:
        flt = RunFilter(tuple(check_comparison(c.kind, c.key, c.op, c.value, grammar) for c in body.filter))
    else:
        flt = parse_filter(body.filter_string, grammar)
    order_by = tuple(OrderBy(o.kind, dict(grammar.aliases).get(o.key, o.key), o.ascending) for o in body.order_by)
    projects = None if body.projects is None else tuple(body.projects)
    return RegistryQuery(flt, body.max_results, body.page_token, order_by, projects)


# -- registered models ------------------------------------------------------------------------
@router.post("", name="create_registered_model", status_code=201, summary="Create a registered model")
def create_registered_model(body: schemas.CreateRegisteredModel, request: Request) -> Response:
    model = _registry(request).create_registered_model(body.name, description=body.description, tags=body.tags,
                                                       project=body.project)
    return json_response(registered_model_to_wire(model), 201)


@router.get("", name="list_registered_models", summary="Search registered models (filter string in the query)")
def list_registered_models(request: Request, filter: FilterText = "", max_results: MaxResults = 100,
                           page_token: PageToken = None, projects: schemas.ProjectsQuery = None) -> Response:
    return search_registered_models(schemas.SearchRegistry(filter_string=filter, max_results=max_results,
                                                            page_token=page_token, projects=projects), request)


@router.post("/search", name="search_registered_models", summary="Search registered models")
def search_registered_models(body: schemas.SearchRegistry, request: Request) -> Response:
    page = _models(request).search_models(_query(MODEL_GRAMMAR, body))
    return json_response({"registered_models": [registered_model_to_wire(m) for m in page.items],
                          "next_page_token": page.next_page_token})


@router.get("/{name}", name="get_registered_model", summary="Get a registered model")
def get_registered_model(name: ModelName, request: Request) -> Response:
    return json_response(registered_model_to_wire(_models(request).get_model(name)))


@router.patch("/{name}", name="update_registered_model", summary="Change a registered model's description")
def update_registered_model(name: ModelName, body: schemas.UpdateRegisteredModel, request: Request) -> Response:
    model = _registry(request).update_registered_model(name, description=body.description)
    return json_response(registered_model_to_wire(model))


@router.delete("/{name}", name="delete_registered_model",
               summary="Delete a registered model and its versions (force: even while aliased)")
def delete_registered_model(name: ModelName, request: Request, force: bool = False) -> Response:
    _registry(request).delete_registered_model(name, force=force)
    return json_response(None)


@router.post("/{name}/rename", name="rename_registered_model", summary="Rename a registered model")
def rename_registered_model(name: ModelName, body: schemas.RenameRegisteredModel, request: Request) -> Response:
    model = _registry(request).rename_registered_model(name, body.new_name)
    return json_response(registered_model_to_wire(model))


@router.put("/{name}/tags", name="set_registered_model_tags", summary="Set registered model tags")
def set_registered_model_tags(name: ModelName, body: schemas.RegistryTags, request: Request) -> Response:
    _registry(request).set_registered_model_tags(name, body.tags)
    return json_response(None)


@router.delete("/{name}/tags/{key:path}", name="delete_registered_model_tag",
               summary="Delete a registered model tag")
def delete_registered_model_tag(name: ModelName, key: str, request: Request) -> Response:
    _registry(request).delete_registered_model_tag(name, key)
    return json_response(None)


@router.get("/{name}/history", name="get_registered_model_history",
            summary="Every recorded change of a registered model, oldest first")
def get_registered_model_history(name: ModelName, request: Request) -> Response:
    return json_response({"events": [registry_event_to_wire(e) for e in _models(request).history(name)]})


# -- versions ---------------------------------------------------------------------------------
@router.post("/{name}/versions", name="create_model_version", status_code=201,
             summary="Register a model logged to a run (`runs:/<run_id>/<path>`) as the next version")
def create_model_version(name: ModelName, body: schemas.CreateModelVersion, request: Request) -> Response:
    version = _registry(request).create_model_version(name, body.source, run_id=body.run_id,
                                                      description=body.description, tags=body.tags,
                                                      status=body.status)
    return json_response(model_version_to_wire(version), 201)


@router.get("/{name}/versions/{version}", name="get_model_version", summary="Get a model version")
def get_model_version(name: ModelName, version: Version, request: Request) -> Response:
    return json_response(model_version_to_wire(_models(request).get_version(name, version)))


@router.patch("/{name}/versions/{version}", name="update_model_version",
              summary="Change a model version's description, status or model card")
def update_model_version(name: ModelName, version: Version, body: schemas.UpdateModelVersion,
                         request: Request) -> Response:
    updated = _registry(request).update_model_version(name, version, description=body.description,
                                                     status=body.status, card=body.card)
    return json_response(model_version_to_wire(updated))


@router.delete("/{name}/versions/{version}", name="delete_model_version",
               summary="Delete a model version (force: also the aliases pointing to it)")
def delete_model_version(name: ModelName, version: Version, request: Request, force: bool = False) -> Response:
    _registry(request).delete_model_version(name, version, force=force)
    return json_response(None)


@router.put("/{name}/versions/{version}/tags", name="set_model_version_tags", summary="Set model version tags")
def set_model_version_tags(name: ModelName, version: Version, body: schemas.RegistryTags,
                           request: Request) -> Response:
    _registry(request).set_model_version_tags(name, version, body.tags)
    return json_response(None)


@router.delete("/{name}/versions/{version}/tags/{key:path}", name="delete_model_version_tag",
               summary="Delete a model version tag")
def delete_model_version_tag(name: ModelName, version: Version, key: str, request: Request) -> Response:
    _registry(request).delete_model_version_tag(name, version, key)
    return json_response(None)


@router.post("/{name}/versions/{version}/approve", name="approve_model_version",
             summary="Approve a model version for protected aliases (as the calling principal)")
def approve_model_version(name: ModelName, version: Version, body: schemas.ApproveModelVersion,
                          request: Request) -> Response:
    approved = _registry(request).approve_model_version(name, version, comment=body.comment)
    return json_response(model_version_to_wire(approved))


# -- aliases ----------------------------------------------------------------------------------
@router.get("/{name}/aliases/{alias}", name="get_model_version_by_alias",
            summary="Get the version an alias points to")
def get_model_version_by_alias(name: ModelName, alias: Alias, request: Request) -> Response:
    return json_response(model_version_to_wire(_models(request).get_version_by_alias(name, alias)))


@router.put("/{name}/aliases/{alias}", name="set_model_alias",
            summary="Point an alias at a version (moving it); protected aliases take approved versions only")
def set_model_alias(name: ModelName, alias: Alias, body: schemas.SetAlias, request: Request) -> Response:
    version = _registry(request).set_alias(name, alias, body.version)
    return json_response(model_version_to_wire(version))


@router.delete("/{name}/aliases/{alias}", name="delete_model_alias", summary="Delete an alias")
def delete_model_alias(name: ModelName, alias: Alias, request: Request) -> Response:
    _registry(request).delete_alias(name, alias)
    return json_response(None)


@router.put("/{name}/protected-aliases/{alias}", name="protect_model_alias",
            summary="Protect an alias: only approved versions may take it")
def protect_model_alias(name: ModelName, alias: Alias, request: Request) -> Response:
    model = _registry(request).protect_alias(name, alias, True)
    return json_response(registered_model_to_wire(model))


@router.delete("/{name}/protected-aliases/{alias}", name="unprotect_model_alias",
               summary="Stop protecting an alias")
def unprotect_model_alias(name: ModelName, alias: Alias, request: Request) -> Response:
    model = _registry(request).protect_alias(name, alias, False)
    return json_response(registered_model_to_wire(model))


# -- version search ---------------------------------------------------------------------------
@versions_router.get("", name="list_model_versions", summary="Search model versions (filter string in the query)")
def list_model_versions(request: Request, filter: FilterText = "", max_results: MaxResults = 100,
                        page_token: PageToken = None, projects: schemas.ProjectsQuery = None) -> Response:
    return search_model_versions(schemas.SearchRegistry(filter_string=filter, max_results=max_results,
                                                        page_token=page_token, projects=projects), request)


@versions_router.post("/search", name="search_model_versions", summary="Search model versions, newest first")
def search_model_versions(body: schemas.SearchRegistry, request: Request) -> Response:
    page = _models(request).search_versions(_query(VERSION_GRAMMAR, body))
    return json_response({"model_versions": [model_version_to_wire(v) for v in page.items],
                          "next_page_token": page.next_page_token})
