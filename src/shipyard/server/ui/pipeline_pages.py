"""UI pages of pipelines: the pipeline runs of the projects the principal can see, and one pipeline
run with its params, its steps drawn as a DAG and a table of them.

Runs are read through ``tracking(request)`` (the request principal's scoped store) and interpreted
with the CLI's own readers in :mod:`shipyard.pipelines.records`, so ``shipyard pipeline list|show``
and these pages agree: a pipeline run of a project the principal holds no role in is not found.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Path, Query, Request
from starlette.responses import RedirectResponse, Response

from shipyard.entities import Comparison, Op, OrderBy, RunFilter, RunQuery, ViewType
from shipyard.pipelines.records import (
    PARENT_TAG,
    ROLE_TAG,
    pipeline_run,
    read_graph,
    step_runs,
    step_runs_of,
    summarize,
)
from shipyard.server.responses import tracking
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui.pipeline_view import counts, dag, step_rows
from shipyard.server.ui.rendering import UIRoute, page

__all__ = ["router"]

router = PrefixRouter(prefixes=("/ui/pipelines",), route_class=UIRoute, include_in_schema=False)

PAGE_SIZE = 25


@router.get("/ui/pipelines", name="ui_pipelines")
def pipelines_page(request: Request, page_token: Annotated[str, Query(max_length=1000)] = "") -> Response:
    shipyard = tracking(request)
    experiments = tuple(e.experiment_id for e in shipyard.search_experiments(ViewType.ACTIVE_ONLY))
    rows = []
    next_token = None
    if experiments:
        query = RunQuery(experiments, RunFilter((Comparison("tag", ROLE_TAG, Op.EQ, "pipeline"),)),
                         ViewType.ACTIVE_ONLY, (OrderBy("attribute", "start_time", ascending=False),), PAGE_SIZE,
                         page_token or None)
        result = shipyard.search(query)
        next_token = result.token
        steps = step_runs_of(shipyard, result)
        rows = [(summarize(run), counts(step_rows(steps[run.info.run_id]))) for run in result]
    return page(request, "pipelines.html", rows=rows, next_token=next_token, page_token=page_token,
                section="pipelines")


@router.get("/ui/pipelines/{run_id}", name="ui_pipeline")
def pipeline_page(run_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
    shipyard = tracking(request)
    run = shipyard.get_run(run_id)
    parent = run.data.tags.get(PARENT_TAG)
    if run.data.tags.get(ROLE_TAG) == "step" and parent:  # a step's link leads to its pipeline, at its row
        return RedirectResponse(f"/ui/pipelines/{quote(parent)}#step-{quote(run_id)}", status_code=303)
    summary = pipeline_run(shipyard, run_id)
    rows = step_rows(step_runs(shipyard, run_id))
    return page(request, "pipeline.html", summary=summary, run=run, rows=rows, counts=counts(rows),
                drawing=dag(shipyard.store, rows, summary.steps, read_graph(run)), section="pipelines")
