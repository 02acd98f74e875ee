"""UI pages of datasets and deployments: dataset versions with schema and profile, the diff of
two versions, deployments with their traffic split, history and monitors, and a rollback behind a
confirmation page.

The rollback form posts the revision it was shown; when the deployment changed meanwhile the
rollback is refused (``Conflict``), so a confirmation never applies to a state nobody looked at.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from shipyard.deploy.rollout import rollback_target
from shipyard.entities import Node, NodeKind
from shipyard.errors import Conflict, InvalidInput
from shipyard.server.responses import client
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.dataset_view import diff_view
from shipyard.server.ui.monitor_view import status_class
from shipyard.server.ui.rendering import UIRoute, page, read_form

router = PrefixRouter(prefixes=("/ui/datasets", "/ui/deployments"), route_class=UIRoute, include_in_schema=False)

Name = Annotated[str, Path(max_length=1000)]
Version = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.get("/ui/datasets", name="ui_datasets")
def datasets_page(request: Request) -> Response:
    return page(request, "datasets.html", datasets=client(request).store.datasets.list_datasets(),
                section="datasets")


@router.get("/ui/datasets/{name}/versions/{version}", name="ui_dataset_version")
def dataset_version_page(name: Name, version: Version, request: Request) -> Response:
    shipyard = client(request)
    found = shipyard.store.datasets.get_version(name, version)
    versions = shipyard.store.datasets.list_versions(name)
    node = Node(NodeKind.DATASET, found.ref)
    used_by = [(e.relation.value, e.target.id) for e in shipyard.store.lineage.edges([node], upstream=False)
               if e.target.kind is NodeKind.RUN]
    made_by = [(e.relation.value, e.source.id) for e in shipyard.store.lineage.edges([node], upstream=True)
               if e.source.kind is NodeKind.RUN]
    columns = list(found.profile.get("columns", [])) if isinstance(found.profile, dict) else []
    return page(request, "dataset.html", dataset=found, versions=versions, used_by=used_by, made_by=made_by,
                profile_columns=columns, section="datasets")


@router.get("/ui/datasets/{name}/diff", name="ui_dataset_diff")
def dataset_diff_page(name: Name, request: Request, old: Annotated[int, Query(ge=1, le=2**63 - 1)],
                      new: Annotated[int, Query(ge=1, le=2**63 - 1)]) -> Response:
    datasets = client(request).store.datasets
    view = diff_view(datasets.get_version(name, old), datasets.get_version(name, new))
    return page(request, "dataset_diff.html", diff=view, versions=datasets.list_versions(name), section="datasets")


@router.get("/ui/deployments", name="ui_deployments")
def deployments_page(request: Request) -> Response:
    return page(request, "deployments.html", deployments=client(request).deployments.list(), section="deployments")


def _deployment_context(request: Request, name: str) -> dict[str, Any]:
    service = client(request).deployments
    deployment = service.get(name)
    history = service.history(name)
    return {"deployment": deployment, "history": list(reversed(history)), "target": rollback_target(history)}


@router.get("/ui/deployments/{name}", name="ui_deployment")
def deployment_page(name: Name, request: Request) -> Response:
    context = _deployment_context(request, name)
    # Only the monitors this principal may read: the same scoped store as every other page.
    monitors = client(request).store.monitors.list(deployment=name)
    return page(request, "deployment.html", **context, monitors=monitors, status_class=status_class,
                done=request.query_params.get("done", ""), section="deployments")


@router.get("/ui/deployments/{name}/rollback", name="ui_confirm_rollback")
def confirm_rollback_page(name: Name, request: Request) -> Response:
    context = _deployment_context(request, name)
    if context["target"] is None:
        raise Conflict(f"deployment {name!r} has nothing to roll back to: every change since it was created "
                       "is rolled back already")
    return page(request, "rollback.html", **context, section="deployments")


@router.post("/ui/deployments/{name}/rollback", name="ui_rollback_deployment")
async def rollback(name: Name, request: Request) -> Response:
    fields = await read_form(request)
    seen = fields.get("revision", "")
    if not seen.isdigit():
        raise InvalidInput("the rollback form is missing the revision it confirmed; open the deployment again")
    service = client(request).deployments

    def apply() -> None:
        current = service.get(name)
        if current.revision != int(seen):
            raise Conflict(f"deployment {name!r} changed since the confirmation was shown (revision {seen} then, "
                           f"{current.revision} now); nothing was rolled back: review it and confirm again")
        service.rollback(name)

    await run_in_threadpool(apply)
    return RedirectResponse(f"/ui/deployments/{quote(name, safe='')}?done=rollback", status_code=303)
