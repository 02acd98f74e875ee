"""MLflow's run, metric and run-artifact-listing calls over Shipyard's runs."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from fastapi import Depends, Request
from starlette.responses import Response

from shipyard.entities import (
    RUN_GRAMMAR,
    Comparison,
    DatasetVersion,
    Edge,
    LoggedModel,
    LoggedModelQuery,
    Metric,
    Node,
    NodeKind,
    Op,
    OrderBy,
    Param,
    Relation,
    Run,
    RunFilter,
    RunQuery,
)
from shipyard.errors import InvalidInput, NotFound
from shipyard.filters import parse_filter, parse_order_by
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import max_results, ok, page, run_id_of
from shipyard.server.mlflow_compat.experiments import view_type
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client
from shipyard.tracking import validation as rules
from shipyard.tracking.client import Client

# MLflow's log-batch limits, with its messages.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
# Reserved tags that are run attributes in Shipyard: searching on them searches the attribute.
_TAG_ATTRIBUTES = {wire.RUN_NAME_TAG: "run_name", wire.PARENT_RUN_TAG: "parent_run_id"}


def _now() -> int:
    return int(time.time() * 1000)


def runs_json(c: Client, runs: list[Run]) -> list[dict[str, Any]]:
    """Runs with their dataset inputs (from the lineage graph) and model outputs (the logged
    models made in them), in a fixed number of queries whatever the number of runs."""
    if not runs:
        return []
    by_id = {r.info.run_id: r for r in runs}
    inputs: dict[str, list[tuple[DatasetVersion, str]]] = {run_id: [] for run_id in by_id}
    versions: dict[str, DatasetVersion] = {}
    for edge in c.store.lineage.edges([Node(NodeKind.RUN, i) for i in by_id], upstream=True):
        if edge.relation is Relation.INPUT and edge.source.kind is NodeKind.DATASET:
            ref = edge.source.id
            if ref not in versions:
                name, _, version = ref.rpartition("@")
                versions[ref] = c.store.datasets.get_version(name, int(version))
            inputs[edge.target.id].append((versions[ref], edge.context))
    outputs: dict[str, list[LoggedModel]] = {run_id: [] for run_id in by_id}
    for model in _models_of(c, runs):
        if model.source_run_id in outputs:
            outputs[model.source_run_id].append(model)
    return [wire.run(r, datasets=inputs[i], outputs=outputs[i]) for i, r in by_id.items()]


def _models_of(c: Client, runs: list[Run]) -> list[LoggedModel]:
    if len(runs) == 1:
        return c.store.logged_models.list_for_run(runs[0].info.run_id)
    experiments = tuple(sorted({r.info.experiment_id for r in runs}))
    made_in = Comparison("attribute", "source_run_id", Op.IN, tuple(r.info.run_id for r in runs))
    query = LoggedModelQuery(experiments, RunFilter((made_in,)), max_results=50_000)
    return list(c.store.logged_models.search(query).items)


def run_json(c: Client, run: Run) -> dict[str, Any]:
    return runs_json(c, [run])[0]


def create_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tags = p.key_values("tags")
    run_name = p.str("run_name") or tags.pop(wire.RUN_NAME_TAG, None)
    tags.pop(wire.RUN_NAME_TAG, None)
    parent = tags.pop(wire.PARENT_RUN_TAG, None)
    c = client(request)
    run = c.create_run(p.str("experiment_id") or "0", run_name, start_time=p.int("start_time"), tags=tags,
                       parent_run_id=parent, user_id=p.str("user_id", default="") or "",
                       source=tags.get("mlflow.source.name", ""))
    return ok({"run": run_json(c, run)})


def get_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    return ok({"run": run_json(c, c.get_run(run_id_of(p)))})


def update_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    info = client(request).update_run(run_id_of(p), status=p.str("status"), run_name=p.str("run_name"),
                                      end_time=p.int("end_time"))
    return ok({"run_info": wire.run_info(info)})


def delete_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).delete_run(p.required("run_id"))
    return ok()


def restore_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).restore_run(p.required("run_id"))
    return ok()


def _metric(p: Params | dict[str, Any]) -> Metric:
    params = p if isinstance(p, Params) else Params(p)
    key = rules.check_metric_key(params.str("key", required=True))
    value = params.float("value", required=True)
    assert value is not None
    return Metric(key, value, params.int("step", default=0) or 0, params.int("timestamp") or _now())


def log_metric(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).log_batch(run_id_of(p), metrics=[_metric(p)])
    return ok()


def log_param(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    key = p.required("key")
    client(request).log_batch(run_id_of(p), params=[Param(key, _param_value(key, p.raw("value")))])
    return ok()


def _param_value(key: str, value: Any) -> str:
    if value is None:
        raise InvalidInput("Missing value for required parameter 'value'. "
                           "See the API docs for more information about request parameters.")
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > rules.MAX_PARAM_VALUE_LENGTH:
        raise InvalidInput(f"Param value '{text[:100]}...' had length {len(text)}, which exceeded length limit "
                           f"of {rules.MAX_PARAM_VALUE_LENGTH}")
    return text


def _set_tags(c: Client, run_id: str, tags: dict[str, str]) -> None:
    name = tags.pop(wire.RUN_NAME_TAG, None)
    if name is not None:
        c.update_run(run_id, run_name=name)
    if tags:
        c.set_tags(run_id, tags)


def set_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    _set_tags(client(request), run_id_of(p), {p.required("key"): p.str("value", default="") or ""})
    return ok()


def delete_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    client(request).delete_tag(p.required("run_id"), p.required("key"))
    return ok()


def log_batch(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    run_id = run_id_of(p)
    metrics, params, tags = p.list("metrics"), p.list("params"), p.list("tags")
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise InvalidInput(f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
                           f"Got {len(metrics)} metrics. Please split up metrics across multiple requests "
                           "and try again.")
    for what, items in (("params", params), ("tags", tags)):
        if len(items) > MAX_PARAMS_TAGS_PER_BATCH:
            raise InvalidInput(f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} "
                               f"{what}. Got {len(items)} {what}. Please split up {what} across multiple "
                               "requests and try again.")
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise InvalidInput(f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} metrics, "
                           f"params, and tags in total. Got {total} entities.")
    parsed_params = Params({"params": params}).key_values("params")
    c = client(request)
    c.log_batch(run_id, metrics=[_metric(_object("metrics", m)) for m in metrics],
                params=[Param(k, _param_value(k, v)) for k, v in parsed_params.items()])
    if tags:
        _set_tags(c, run_id, Params({"tags": tags}).key_values("tags"))
    return ok()


def _object(field: str, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"Invalid value {json.dumps(item)[:100]} in parameter '{field}': expected an object")
    return item


def log_inputs(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """Each MLflow dataset becomes a version of a Shipyard dataset (same name, its digest) and
    an input edge of the run in the lineage graph."""
    run_id = run_id_of(p)
    c = client(request)
    c.get_run(run_id)
    edges = []
    for item in p.list("datasets"):
        given = Params(_object("datasets", item))
        ds = Params(_object("dataset", given.raw("dataset") or {}))
        name = rules.check_dataset_name(ds.required("name"))
        digest = ds.required("digest")
        mlflow_fields = {k: ds.str(k) for k in ("digest", "source_type", "schema", "profile") if ds.has(k)}
        version, _ = c.store.datasets.log_version(
            name, digest=f"mlflow:{digest}", source=ds.str("source", default="") or "", kind="table",
            num_rows=_num_rows(ds.str("profile")), profile={"mlflow": mlflow_fields})
        context = given.key_values("tags").get("mlflow.data.context", "")
        edges.append(Edge(Node(NodeKind.DATASET, version.ref), Node(NodeKind.RUN, run_id), Relation.INPUT,
                          context))
    if edges:
        c.store.lineage.add_edges(edges)
    return ok()


def _num_rows(profile: str | None) -> int | None:
    try:
        rows = json.loads(profile or "{}").get("num_rows")
    except (ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and rows >= 0 else None


def log_outputs(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """A run's model outputs are the logged models made in it; this checks they exist."""
    c = client(request)
    c.get_run(p.required("run_id"))
    for item in p.list("models"):
        c.store.logged_models.get(Params(_object("models", item)).required("model_id"))
    return ok()


def _mlflow_run_filter(text: str | None) -> RunFilter:
    comparisons = []
    for cmp in parse_filter(text, RUN_GRAMMAR):
        if cmp.kind == "tag" and cmp.key in _TAG_ATTRIBUTES:
            cmp = dataclasses.replace(cmp, kind="attribute", key=_TAG_ATTRIBUTES[cmp.key])
        comparisons.append(cmp)
    return RunFilter(tuple(comparisons))


def _mlflow_order_by(clauses: list[Any]) -> tuple[OrderBy, ...]:
    return tuple(dataclasses.replace(o, kind="attribute", key=_TAG_ATTRIBUTES[o.key])
                 if o.kind == "tag" and o.key in _TAG_ATTRIBUTES else o for o in parse_order_by(clauses))


def search_runs(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    experiment_ids = [str(e) for e in p.list("experiment_ids")]
    query = RunQuery(tuple(experiment_ids), _mlflow_run_filter(p.str("filter")), view_type(p, "run_view_type"),
                     _mlflow_order_by(p.list("order_by")), max_results(p, 1000), p.str("page_token"))
    c = client(request)
    if not experiment_ids:
        return ok({"runs": []})
    result = c.store.runs.search(query)
    return ok({"runs": runs_json(c, list(result.items)), "next_page_token": result.next_page_token})


def get_metric_history(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    history = client(request).get_metric_history(run_id_of(p), p.required("metric_key"))
    items, token = page(history, p, default_max=25_000, limit=25_000 if p.has("page_token") else 10**9)
    return ok({"metrics": [wire.metric(m) for m in items], "next_page_token": token})


def list_artifacts(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = client(request)
    run = c.get_run(run_id_of(p))
    path = p.str("path", default="") or ""
    try:
        entries = c.list_artifacts(run.info.run_id, path or None)
    except NotFound:
        entries = []  # MLflow lists an absent folder as empty
    files = [wire.compact({"path": e.path, "is_dir": e.is_dir, "file_size": e.size}) for e in entries]
    return ok({"root_uri": wire.run_artifact_uri(run.info.experiment_id, run.info.run_id), "files": files})

