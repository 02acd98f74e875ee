"""UI pages of tracking: experiments, the runs table, one run, its artifacts, runs compared
(params diffed, metric charts overlaid, params against a metric in parallel coordinates).

Each page reads through ``client(request)``, the same domain entry point and principal as the
API, and the artifact routes check paths with the API's own functions
(:func:`~shipyard.artifacts.paths.normalize_artifact_path`, :func:`require_run`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import Path, Query, Request
from starlette.responses import RedirectResponse, Response

from shipyard.artifacts.paths import normalize_artifact_path
from shipyard.entities import Comparison, Node, NodeKind, Op, Relation, Run, RunFilter, RunQuery, ViewType
from shipyard.errors import InvalidInput, NotFound
from shipyard.server.responses import client, json_response
from shipyard.server.routers.artifacts import file_entry, require_run
from shipyard.server.routing import PrefixRouter
from shipyard.server.ui import previews
from shipyard.server.ui.parallel_view import SCALE, parallel_plot
from shipyard.server.ui.rendering import UIRoute, page, static_response
from shipyard.server.ui.runs_view import RunsView, available_columns, cell, shown_columns
from shipyard.tracking.capture import DIFF_ARTIFACT, REQUIREMENTS_ARTIFACT
from shipyard.tracking.client import Client
from shipyard.wire import history_to_wire

router = PrefixRouter(prefixes=("/ui/", "/ui"), route_class=UIRoute, include_in_schema=False)
root_router = PrefixRouter(prefixes=("/",), route_class=UIRoute, include_in_schema=False)

RunId = Annotated[str, Path(max_length=64)]
MAX_COMPARE = 100
CHART_POINTS = 1000  # per run on the run page; the min/max thinning keeps every spike
COMPARE_POINTS_TOTAL = 20_000  # across the runs of one comparison chart
MIN_POINTS_PER_RUN = 200
DIFF_LIMIT = 256 * 1024
CODE_TAGS = (("Commit", "shipyard.git.commit"), ("Branch", "shipyard.git.branch"),
             ("Remote", "shipyard.git.remote"), ("Uncommitted changes", "shipyard.git.dirty"),
             ("Entry point", "shipyard.source.entry_point"), ("Arguments", "shipyard.source.argv"))
ENV_TAGS = (("Python", "shipyard.env.python"), ("Platform", "shipyard.env.platform"),
            ("Host", "shipyard.env.hostname"), ("User", "shipyard.user"), ("Seed", "shipyard.seed"))


@root_router.get("/", name="ui_root")
def ui_root() -> Response:
    return RedirectResponse("/ui/experiments", status_code=307)


@router.get("/ui", name="ui_index")
def ui_index() -> Response:
    return RedirectResponse("/ui/experiments", status_code=307)


@router.get("/ui/static/{path:path}", name="ui_static")
def ui_static(path: str) -> Response:
    return static_response(path)


@router.get("/ui/experiments", name="ui_experiments")
def experiments_page(request: Request) -> Response:
    found = client(request).search_experiments(ViewType.ACTIVE_ONLY)
    return page(request, "experiments.html", experiments=sorted(found, key=lambda e: e.name.lower()),
                section="experiments")


@router.get("/ui/experiments/{experiment_id}", name="ui_runs")
def runs_page(experiment_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
    shipyard = client(request)
    experiment = shipyard.get_experiment(experiment_id)
    view = RunsView.from_query(parse_qs(request.url.query, keep_blank_values=True))
    runs: Sequence[Run] = []
    next_token = None
    if view.error is None:
        result = shipyard.store.runs.search(view.query(experiment.experiment_id))
        runs, next_token = result.items, result.next_page_token
    available = available_columns(runs, view.columns or ())
    columns = shown_columns(view, available)
    rows = [(run, [cell(run, c) for c in columns]) for run in runs]
    return page(request, "runs.html", 400 if view.error else 200, experiment=experiment, view=view, rows=rows,
                columns=columns, available=available, next_token=next_token, section="experiments")


def _child_runs(shipyard: Client, run: Run) -> Sequence[Run]:
    parent = Comparison("attribute", "parent_run_id", Op.EQ, run.info.run_id)
    query = RunQuery((run.info.experiment_id,), RunFilter((parent,)), ViewType.ACTIVE_ONLY, max_results=200)
    return shipyard.store.runs.search(query).items


def _datasets(shipyard: Client, run_id: str) -> list[tuple[str, object]]:
    """(relation, dataset version or its node) of every dataset the run read or wrote."""
    node = Node(NodeKind.RUN, run_id)
    edges: list[tuple[Relation, Node]] = [
        (e.relation, e.source) for e in shipyard.store.lineage.edges([node], upstream=True)
        if e.relation is Relation.INPUT]
    edges += [(e.relation, e.target) for e in shipyard.store.lineage.edges([node], upstream=False)
              if e.relation is Relation.OUTPUT]
    found: list[tuple[str, object]] = []
    for relation, dataset in edges:
        if dataset.kind is not NodeKind.DATASET:
            continue
        name, _, version = dataset.id.rpartition("@")
        try:
            found.append((relation.value, shipyard.store.datasets.get_version(name, int(version))))
        except (NotFound, ValueError):
            found.append((relation.value, dataset))
    return found


def _artifact_text(shipyard: Client, run_id: str, path: str) -> str | None:
    """A small text artifact (the recorded diff, the requirements), or ``None`` when absent."""
    try:
        entry = file_entry(shipyard.artifacts, run_id, path)
    except NotFound:
        return None
    preview = previews.build_preview(shipyard.artifacts, run_id, entry)
    return preview.text + ("\n… (truncated; download the file for the rest)" if preview.truncated else "")


@router.get("/ui/runs/{run_id}", name="ui_run")
def run_page(run_id: RunId, request: Request) -> Response:
    shipyard = client(request)
    run = shipyard.store.runs.get(run_id)
    experiment = shipyard.get_experiment(run.info.experiment_id)
    tags = run.data.tags
    versions = shipyard.search_model_versions(f"run_id = '{run.info.run_id}'", max_results=100)
    return page(
        request, "run.html", run=run, experiment=experiment,
        user_tags=sorted((k, v) for k, v in tags.items() if not k.startswith(("shipyard.", "mlflow."))),
        code=[(label, tags[key]) for label, key in CODE_TAGS if key in tags],
        environment=[(label, tags[key]) for label, key in ENV_TAGS if key in tags],
        diff=_artifact_text(shipyard, run_id, DIFF_ARTIFACT),
        requirements=_artifact_text(shipyard, run_id, REQUIREMENTS_ARTIFACT),
        datasets=_datasets(shipyard, run_id), children=_child_runs(shipyard, run), versions=versions,
        metrics=sorted(run.data.latest_metrics.values(), key=lambda m: m.key),
        chart_points=CHART_POINTS, section="experiments")


@router.get("/ui/runs/{run_id}/artifacts", name="ui_run_artifacts")
def artifacts_page(run_id: RunId, request: Request, path: Annotated[str, Query(max_length=4096)] = "") -> Response:
    clean = normalize_artifact_path(path, allow_root=True)
    shipyard = client(request)
    run = shipyard.store.runs.get(run_id)
    store = shipyard.artifacts
    entry = None
    preview = None
    if clean:
        found = store.walk(run_id, clean)
        if len(found) == 1 and found[0].path == clean:
            entry = found[0]
        elif not found:
            raise NotFound(f"run {run_id} has no artifact {clean!r}", run_id=run_id, path=clean)
    folder = clean.rpartition("/")[0] if entry is not None else clean
    listing = store.list(run_id, folder)
    if entry is not None:
        preview = previews.build_preview(store, run_id, entry)
    crumbs = []
    parts = clean.split("/") if clean else []
    for i, part in enumerate(parts):
        crumbs.append((part, "/".join(parts[: i + 1])))
    return page(request, "artifacts.html", run=run, path=clean, folder=folder, listing=listing, entry=entry,
                preview=preview, crumbs=crumbs, quote=quote, section="experiments")


@router.get("/ui/runs/{run_id}/raw/{path:path}", name="ui_artifact_raw")
def artifact_raw(run_id: RunId, path: str, request: Request) -> Response:
    """A raster image artifact with its own type, for ``<img>`` (anything else is the API's download)."""
    clean = normalize_artifact_path(path)
    shipyard = client(request)
    require_run(shipyard, run_id)
    media = previews.IMAGE_TYPES.get("." + clean.rsplit(".", 1)[-1].lower()) if "." in clean else None
    if media is None:
        raise InvalidInput(f"{clean!r} is not an image; download it through /api/v1/runs/{run_id}/artifacts/")
    entry = file_entry(shipyard.artifacts, run_id, clean)
    if entry.size is not None and entry.size > previews.IMAGE_LIMIT:
        raise InvalidInput(f"{clean!r} is over {previews.IMAGE_LIMIT // 2**20} MB; download it instead")
    with shipyard.artifacts.open(run_id, clean) as stream:
        data = stream.read()  # read to the end: the digest is checked
    return Response(data, media_type=media, headers={"content-security-policy": "default-src 'none'; sandbox",
                                                     "cache-control": "private, max-age=300"})


def _compare_runs(shipyard: Client, run_ids: Sequence[str]) -> list[Run]:
    ids = list(dict.fromkeys(r for r in run_ids if r))
    if not ids:
        raise InvalidInput("choose runs to compare: tick at least two runs in the runs table")
    if len(ids) > MAX_COMPARE:
        raise InvalidInput(f"at most {MAX_COMPARE} runs can be compared at once, got {len(ids)}")
    return [shipyard.store.runs.get(run_id) for run_id in ids]


def _diff_rows(runs: Sequence[Run], kind: str) -> list[tuple[str, list[str | float | None], bool]]:
    keys = sorted({k for r in runs for k in (r.data.params if kind == "param" else r.data.latest_metrics)})
    rows = []
    for key in keys:
        if kind == "param":
            values: list[str | float | None] = [r.data.params.get(key) for r in runs]
        else:
            values = [m.value if (m := r.data.latest_metrics.get(key)) else None for r in runs]
        distinct = {("nan" if isinstance(v, float) and math.isnan(v) else v) for v in values}
        rows.append((key, values, len(distinct) > 1))
    return rows


@router.get("/ui/compare", name="ui_compare")
def compare_page(request: Request, runs: Annotated[list[str], Query(max_length=MAX_COMPARE + 1)] = [],  # noqa: B006
                 only_diff: bool = False, pc_metric: Annotated[str, Query(max_length=1000)] = "") -> Response:
    shipyard = client(request)
    found = _compare_runs(shipyard, runs)
    params = _diff_rows(found, "param")
    metrics = _diff_rows(found, "metric")
    experiments = {r.info.experiment_id for r in found}
    metric_keys = [key for key, _, _ in metrics]
    if pc_metric and pc_metric not in metric_keys:
        raise InvalidInput(f"none of these runs has a metric {pc_metric[:100]!r} to plot the params against")
    plot = parallel_plot(found, pc_metric or metric_keys[0]) if metric_keys and params else None
    return page(request, "compare.html", runs=found, params=params, metrics=metrics, only_diff=only_diff,
                diff_count=sum(1 for _, _, differs in params if differs), plot=plot, color_scale=SCALE,
                metric_keys=metric_keys, section="experiments",
                experiments=[shipyard.store.experiments.get(e) for e in sorted(experiments)])


@router.get("/ui/compare/series", name="ui_compare_series")
def compare_series(request: Request, key: Annotated[str, Query(min_length=1, max_length=1000)],
                   runs: Annotated[list[str], Query(max_length=MAX_COMPARE + 1)] = []) -> Response:  # noqa: B006
    """One metric of every compared run, each thinned so the chart stays light (JSON for the chart)."""
    shipyard = client(request)
    found = _compare_runs(shipyard, runs)
    per_run = max(MIN_POINTS_PER_RUN, COMPARE_POINTS_TOTAL // len(found))
    series = []
    for run in found:
        history = shipyard.get_metric_history_columns(run.info.run_id, key, max_points=per_run)
        series.append({"run_id": run.info.run_id, "name": run.info.run_name, **history_to_wire(history)})
    return json_response({"key": key, "series": series})
