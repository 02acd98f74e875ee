"""Pipeline runs as the store keeps them: tags on ordinary runs, and the searches that find them.

A pipeline run is a run tagged ``shipyard.pipeline.role = pipeline`` (with its graph as JSON); each step call
is a child run tagged ``role = step`` with its cache key, its outputs (a JSON list of
:class:`~shipyard.pipelines.outputs.OutputRecord`) and, for a cache hit, the run that produced the
outputs. Nothing here needs a table of its own, so every
store (SQLite, PostgreSQL, a team server over REST) holds pipelines, and their cache, as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shipyard.entities import Comparison, Op, OrderBy, Run, RunFilter, RunQuery, RunStatus, ViewType
from shipyard.errors import InvalidInput
from shipyard.tracking.service import HasTracking, TrackingService, as_tracking

# The functions here take the TrackingService an edge built for its principal, or a Client (the
# SDK's spelling): Tracking below.
Tracking = TrackingService | HasTracking

__all__ = ["PipelineSummary", "find_finished_step", "graph_text", "invalidate", "list_pipeline_runs", "read_graph",
           "read_params", "step_runs", "step_runs_of", "summarize"]

ROLE_TAG = "shipyard.pipeline.role"  # pipeline | step
NAME_TAG = "shipyard.pipeline.name"
PARAMS_TAG = "shipyard.pipeline.params"  # the parameters as JSON, for resume
STATUS_TAG = "shipyard.pipeline.status"
STEP_TAG = "shipyard.pipeline.step"  # the call's id in the graph
PARENT_TAG = "shipyard.pipeline.parent"
CACHED_FROM_TAG = "shipyard.pipeline.cached_from"
CACHE_KEY_TAG = "shipyard.pipeline.cache_key"
KEY_TAG = "shipyard.pipeline.key"
OUTPUTS_TAG = "shipyard.pipeline.outputs"
GRAPH_TAG = "shipyard.pipeline.graph"  # {call id: [the call ids it depends on]} as JSON, on the pipeline run
GATE_TAG = "shipyard.pipeline.gate"  # passed | failed, on a gated step's run
GATE_EXPR_TAG = "shipyard.pipeline.gate_expr"  # the gate's expressions, joined by " and "
TAG_LIMIT = 8000  # the longest tag value every store keeps
STEP_PAGE = 1000  # step runs read per search


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def find_finished_step(client: Tracking, experiment_id: str, key: str, *, parent: str | None = None) -> Run | None:
    """The newest FINISHED step run that stored outputs for ``key``: a cache entry, or with ``parent``, a step
    that run already finished (resume)."""
    if parent is None:
        text = f"tags.`{CACHE_KEY_TAG}` = {_quote(key)} and attributes.status = 'FINISHED'"
    else:
        text = (f"tags.`{PARENT_TAG}` = {_quote(parent)} and tags.`{KEY_TAG}` = {_quote(key)} "
                "and attributes.status = 'FINISHED'")
    found = as_tracking(client).search_runs([experiment_id], text, max_results=1,
                                            order_by=["attributes.start_time DESC"])
    for run in found:
        if OUTPUTS_TAG in run.data.tags:
            return run
    return None


def read_params(run: Run) -> dict[str, Any]:
    text = run.data.tags.get(PARAMS_TAG)
    if text is None:
        raise InvalidInput(f"run {run.info.run_id} has no recorded pipeline parameters; it cannot be resumed")
    params: dict[str, Any] = json.loads(text)
    return params


def graph_text(upstream: Mapping[str, Iterable[str]]) -> str | None:
    """The :data:`GRAPH_TAG` value of a graph given as each call id's upstream call ids, or ``None`` when it
    would not fit in a tag (the UI then draws the run from its lineage edges, as for runs older than the tag)."""
    text = json.dumps({call: sorted(ups) for call, ups in upstream.items()}, separators=(",", ":"))
    return text if len(text) <= TAG_LIMIT else None


def read_graph(run: Run) -> dict[str, list[str]] | None:
    """The graph recorded on pipeline run ``run`` (each call id with the call ids it depends on, in the order
    of the graph), or ``None`` for a run that recorded none (older runs, or a graph too big for a tag)."""
    text = run.data.tags.get(GRAPH_TAG)
    if text is None:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict) or not all(isinstance(v, list) for v in found.values()):
        return None
    return {str(call): [str(u) for u in ups] for call, ups in found.items()}


@dataclass(frozen=True)
class PipelineSummary:
    run_id: str
    pipeline: str
    status: str
    start_time: int
    end_time: int | None
    experiment_id: str
    steps: int
    params: dict[str, Any]


def summarize(run: Run) -> PipelineSummary:
    """The summary of pipeline run ``run`` (its name, status, step count and params, from its tags)."""
    tags = run.data.tags
    return PipelineSummary(run.info.run_id, tags.get(NAME_TAG, ""), run.info.status.value, run.info.start_time,
                           run.info.end_time, run.info.experiment_id, int(tags.get("shipyard.pipeline.steps", "0")),
                           json.loads(tags.get(PARAMS_TAG, "{}")))


def list_pipeline_runs(client: Tracking, *, pipeline: str | None = None,
                       max_results: int = 50) -> list[PipelineSummary]:
    """Pipeline runs in every active experiment, newest first."""
    tracking = as_tracking(client)
    text = f"tags.`{ROLE_TAG}` = 'pipeline'"
    if pipeline:
        text += f" and tags.`{NAME_TAG}` = {_quote(pipeline)}"
    experiments = [e.experiment_id for e in tracking.search_experiments(ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    runs = tracking.search_runs(experiments, text, max_results=max_results, order_by=["attributes.start_time DESC"])
    return [summarize(r) for r in runs]


def pipeline_run(client: Tracking, run_id: str) -> PipelineSummary:
    run = as_tracking(client).get_run(run_id)
    if run.data.tags.get(ROLE_TAG) != "pipeline":
        raise InvalidInput(f"run {run_id} is not a pipeline run (see `shipyard pipeline list`)")
    return summarize(run)


def step_runs(client: Tracking, run_id: str) -> list[Run]:
    """The step runs of pipeline run ``run_id``, in the order they started (a resumed run has the failed attempt
    and its retry both)."""
    tracking = as_tracking(client)
    return step_runs_of(tracking, [tracking.get_run(run_id)])[run_id]


def step_runs_of(client: Tracking, pipelines: Sequence[Run]) -> dict[str, list[Run]]:
    """The step runs of each of ``pipelines`` (pipeline run id -> its steps in the order they started), read
    by one search per page of ``STEP_PAGE`` steps however many pipeline runs there are (a list page of 25
    pipeline runs used to read each one's steps with two calls of its own)."""
    tracking = as_tracking(client)
    found: dict[str, list[Run]] = {run.info.run_id: [] for run in pipelines}
    if not found:
        return found
    experiments = tuple(dict.fromkeys(run.info.experiment_id for run in pipelines))
    query = RunQuery(experiments, RunFilter((Comparison("tag", PARENT_TAG, Op.IN, tuple(found)),)),
                     ViewType.ACTIVE_ONLY, (OrderBy("attribute", "start_time", ascending=True),), STEP_PAGE)
    while True:
        page = tracking.search(query)
        for step in page:
            found[step.data.tags[PARENT_TAG]].append(step)
        if page.token is None:
            return found
        query = replace(query, page_token=page.token)


def invalidate(client: Tracking, pipeline: str, step: str, *, experiment: str | None = None) -> int:
    """Stop every cached output of ``step`` of ``pipeline`` from being reused; returns how many entries were
    dropped. The runs and their artifacts stay (they are history); only their cache tag goes."""
    tracking = as_tracking(client)
    found = tracking.get_experiment_by_name(experiment or pipeline)
    if found is None:
        return 0
    text = (f"tags.`{NAME_TAG}` = {_quote(pipeline)} and tags.`{STEP_TAG}` = {_quote(step)} "
            f"and tags.`{CACHE_KEY_TAG}` IS NOT NULL")
    count = 0
    while True:  # each pass drops the tag the filter matches on, so the next pass starts over
        page = tracking.search_runs([found.experiment_id], text, max_results=1000)
        if not page:
            return count
        for run in page:
            tracking.set_tags(run.info.run_id, {"shipyard.pipeline.invalidated_key": run.data.tags[CACHE_KEY_TAG]})
            tracking.delete_tag(run.info.run_id, CACHE_KEY_TAG)
            count += 1


def status_of(run: Run) -> str:
    if run.data.tags.get("shipyard.pipeline.cache") in ("cached", "resumed"):
        return run.data.tags["shipyard.pipeline.cache"]
    if run.info.status is RunStatus.FINISHED:
        return "executed"
    return run.info.status.value.lower()
