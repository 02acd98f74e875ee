"""UI pages of the model registry and lineage: models, versions with their card, evaluation and
quality-gate results, approvals and aliases, and the provenance graph.

The two forms (approve a version, point an alias at it) post with a CSRF token
(:func:`~shipyard.server.ui.rendering.read_form`) and call the same registry service as the API's
``approve_model_version`` and ``set_model_alias`` routes, as the request's principal, under the
same permissions (``maintain`` to approve, ``write`` to move an alias); a principal without
the permission sees the form's button disabled, with the role it needs. After a change the browser is
redirected back to the page (post/redirect/get), so reloading never posts twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import Path, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from shipyard.entities import NodeKind, RegisteredModel
from shipyard.errors import InvalidInput, NotFound, ShipyardError
from shipyard.lineage.explain import resolved_upstream
from shipyard.lineage.graph import walk
from shipyard.models.card import render_card
from shipyard.server.responses import client
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.gates_view import GateQuery, version_checks
from shipyard.server.ui.lineage_view import layout
from shipyard.server.ui.markdown import render_markdown
from shipyard.server.ui.rendering import UIRoute, page, read_form
from shipyard.tracking.client import Client

router = PrefixRouter(prefixes=("/ui/models", "/ui/lineage"), route_class=UIRoute, include_in_schema=False)

ModelName = Annotated[str, Path(max_length=1000)]
Version = Annotated[int, Path(ge=1, le=2**63 - 1)]
PAGE_SIZE = 100
MAX_GRAPH_RUN_NAMES = 200


def _quoted(text: str) -> str:
    """``text`` as a string literal of the filter grammar."""
    return "'" + text.replace("'", "''") + "'"


def version_url(name: str, version: int, **query: str) -> str:
    url = f"/ui/models/{quote(name, safe='')}/versions/{version}"
    return url + (f"?{urlencode(query)}" if query else "")


@router.get("/ui/models", name="ui_models")
def models_page(request: Request, page_token: Annotated[str | None, Query(max_length=10_000)] = None) -> Response:
    found = client(request).search_registered_models(max_results=PAGE_SIZE, page_token=page_token)
    return page(request, "models.html", models=list(found), next_token=found.token, section="models")


@router.get("/ui/models/{name}", name="ui_model")
def model_page(name: ModelName, request: Request) -> Response:
    shipyard = client(request)
    model = shipyard.get_registered_model(name)
    versions = shipyard.search_model_versions(f"name = {_quoted(model.name)}", max_results=PAGE_SIZE)
    history = list(reversed(shipyard.model_history(name)))
    return page(request, "model.html", model=model, versions=list(versions), more_versions=versions.token is not None,
                history=history, section="models")


def _version_page(request: Request, shipyard: Client, name: str, version: int, *, error: str = "",
                  status: int = 200) -> Response:
    model: RegisteredModel = shipyard.get_registered_model(name)
    found = shipyard.get_model_version(name, version)
    asked = request.method == "GET" and "gate_alias" in request.query_params
    checks = version_checks(shipyard, model, found, GateQuery.parse(dict(request.query_params), asked))
    stored = bool(found.card)
    card = found.card or render_card(shipyard.registry, name, version)  # a preview: a GET page stores nothing
    events = [e for e in reversed(shipyard.model_history(name)) if e.version == version]
    aliases = sorted({*model.aliases, *model.protected_aliases})
    return page(request, "version.html", status, model=model, version=found, card_html=render_markdown(card),
                card_stored=stored, events=events, aliases=aliases, error=error, checks=checks,
                done=request.query_params.get("done", ""), section="models")


@router.get("/ui/models/{name}/versions/{version}", name="ui_model_version")
def version_page(name: ModelName, version: Version, request: Request) -> Response:
    return _version_page(request, client(request), name, version)


@router.post("/ui/models/{name}/versions/{version}/approve", name="ui_approve_model_version")
async def approve_version(name: ModelName, version: Version, request: Request) -> Response:
    fields = await read_form(request)
    return await _change(request, name, version, "approved",
                         lambda shipyard: shipyard.approve_model_version(name, version,
                                                                         comment=fields.get("comment", "")[:1000]))


@router.post("/ui/models/{name}/versions/{version}/alias", name="ui_set_model_alias")
async def set_alias(name: ModelName, version: Version, request: Request) -> Response:
    fields = await read_form(request)
    alias = fields.get("alias", "").strip()
    if not alias:
        raise InvalidInput("choose an alias to point at this version (e.g. staging, production)")
    return await _change(request, name, version, f"alias {alias}",
                         lambda shipyard: shipyard.set_alias(name, alias, version))


async def _change(request: Request, name: str, version: int, done: str,
                  action: Callable[[Client], object]) -> Response:
    """Run ``action`` off the event loop; redirect back on success, or show the page with the error."""
    shipyard = client(request)
    try:
        await run_in_threadpool(action, shipyard)
    except ShipyardError as err:
        if isinstance(err, NotFound):
            raise
        return await run_in_threadpool(_version_page, request, shipyard, name, version, error=err.message,
                                       status=err.http_status)
    return RedirectResponse(version_url(name, version, done=done), status_code=303)


@router.get("/ui/lineage", name="ui_lineage")
def lineage_page(request: Request, ref: Annotated[str, Query(min_length=1, max_length=300)],
                 direction: Annotated[str, Query(pattern="^(upstream|downstream)$")] = "upstream") -> Response:
    shipyard = client(request)
    if direction == "upstream":  # a logged prediction has no edges of its own: its log row leads on
        graph = resolved_upstream(shipyard.registry, ref.strip())
    else:
        graph = walk(shipyard.registry, ref.strip(), upstream=False)
    names = {}
    for node in [n for n in graph.nodes if n.kind is NodeKind.RUN][:MAX_GRAPH_RUN_NAMES]:
        try:
            names[node.id] = shipyard.store.runs.get(node.id).info.run_name
        except NotFound:
            continue
    drawing = layout(graph, names)
    other = "downstream" if direction == "upstream" else "upstream"
    return page(request, "lineage.html", ref=ref, root=str(graph.root), direction=direction, drawing=drawing,
                other_url="/ui/lineage?" + urlencode({"ref": ref, "direction": other}), other=other,
                section="lineage")
