"""MLflow's run, metric and run-artifact-listing calls over Shipyard's runs."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from fastapi import Depends, Request
from starlette.responses import Response

from shipyard.clock import now_ms
from shipyard.entities import (
    RUN_GRAMMAR,
    DatasetVersion,
    Edge,
    LifecycleStage,
    LoggedModelMetric,
    Metric,
    Node,
    NodeKind,
    OrderBy,
    Param,
    Relation,
    Run,
    RunFilter,
    RunLink,
    RunLinkKind,
    RunQuery,
)
from shipyard.errors import InvalidInput, NotFound, RunNotActive
from shipyard.filters import parse_filter, parse_order_by
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import max_results, ok, page, run_id_of
from shipyard.server.mlflow_compat.experiments import view_type
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import client, tracking
from shipyard.tracking import validation as rules
from shipyard.tracking.service import TrackingService

# MLflow's log-batch limits, with its messages.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
# Reserved tags that are run attributes in Shipyard: searching on them searches the attribute.
_TAG_ATTRIBUTES = {wire.RUN_NAME_TAG: "run_name", wire.PARENT_RUN_TAG: "parent_run_id"}



def runs_json(c: TrackingService, runs: list[Run]) -> list[dict[str, Any]]:
    """Runs with their dataset inputs (from the lineage graph, with the input tags MLflow sent)
    and their model inputs and outputs (as recorded), in a fixed number of queries whatever the
    number of runs."""
    if not runs:
        return []
    by_id = {r.info.run_id: r for r in runs}
    links = c.store.logged_models.run_links(list(by_id))
    inputs: dict[str, list[tuple[DatasetVersion, dict[str, str]]]] = {run_id: [] for run_id in by_id}
    versions: dict[str, DatasetVersion] = {}
    for edge in c.store.lineage.edges([Node(NodeKind.RUN, i) for i in by_id], upstream=True):
        if edge.relation is Relation.INPUT and edge.source.kind is NodeKind.DATASET:
            ref = edge.source.id
            if ref not in versions:
                name, _, version = ref.rpartition("@")
                versions[ref] = c.store.datasets.get_version(name, int(version))
            given = next((x.tags for x in links[edge.target.id]
                          if x.kind is RunLinkKind.DATASET_INPUT and x.ref == ref), None)
            tags = dict(given) if given is not None else \
                {wire.DATASET_CONTEXT_TAG: edge.context} if edge.context else {}
            inputs[edge.target.id].append((versions[ref], tags))
    return [wire.run(r, datasets=inputs[i],
                     model_inputs=[x.ref for x in links[i] if x.kind is RunLinkKind.MODEL_INPUT],
                     outputs=[(x.ref, x.step) for x in links[i] if x.kind is RunLinkKind.MODEL_OUTPUT])
            for i, r in by_id.items()]


def run_json(c: TrackingService, run: Run) -> dict[str, Any]:
    return runs_json(c, [run])[0]


def create_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tags = p.key_values("tags")
    run_name = p.str("run_name") or tags.pop(wire.RUN_NAME_TAG, None)
    tags.pop(wire.RUN_NAME_TAG, None)
    parent = tags.pop(wire.PARENT_RUN_TAG, None)
    if parent is not None and not 0 < len(parent) <= 32:  # not a run id of any store: keep it as the tag
        tags[wire.PARENT_RUN_TAG], parent = parent, None
    c = tracking(request)
    run = c.create_run(p.str("experiment_id") or "0", run_name, start_time=p.int("start_time"), tags=tags,
                       parent_run_id=parent, user_id=p.str("user_id", default="") or "",
                       source=tags.get("mlflow.source.name", ""))
    return ok({"run": run_json(c, run)})


def get_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = tracking(request)
    return ok({"run": run_json(c, c.get_run(run_id_of(p)))})


def update_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    info = tracking(request).update_run(run_id_of(p), status=p.str("status"), run_name=p.str("run_name"),
                                      end_time=p.int("end_time"))
    return ok({"run_info": wire.run_info(info)})


def delete_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tracking(request).delete_run(p.required("run_id"))
    return ok()


def restore_run(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tracking(request).restore_run(p.required("run_id"))
    return ok()


def _metric(p: Params | dict[str, Any]) -> tuple[Metric, str | None, LoggedModelMetric | None]:
    """The run's metric and, for one logged with a ``model_id``, the model's record of it."""
    params = p if isinstance(p, Params) else Params(p)
    key = rules.check_metric_key(params.str("key", required=True))
    value = params.float("value", required=True)
    assert value is not None
    metric = Metric(key, value, params.int("step", default=0) or 0, params.int("timestamp") or now_ms())
    model_id = params.str("model_id")
    if not model_id:
        return metric, None, None
    return metric, model_id, LoggedModelMetric(key, value, metric.step, metric.timestamp, "",
                                               params.str("dataset_name", default="") or "",
                                               params.str("dataset_digest", default="") or "")


def _batch_metric(item: Any) -> tuple[Metric, str | None, LoggedModelMetric | None]:
    """:func:`_metric` of one ``log-batch`` item, without its typed getters for the shape the
    ``mlflow`` client sends (a key, a number, integer step and timestamp, no model): a batch is
    a thousand items, and the getters were a third of the request's time. Anything else takes
    :func:`_metric`, so what is accepted and every message stay the same."""
    if type(item) is dict:
        key, value, step, timestamp = item.get("key"), item.get("value"), item.get("step", 0), item.get("timestamp")
        if (type(key) is str and key and type(value) in (float, int) and type(step) is int
                and type(timestamp) is int and timestamp and item.get("model_id") in (None, "")):
            # type() above admits only float and int (not bool), which isinstance would not narrow alike
            return Metric(rules.check_metric_key(key), float(value), step, timestamp), None, None  # type: ignore[arg-type]
    return _metric(_object("metrics", item))


def _log_metrics(c: TrackingService, run_id: str, parsed: list[tuple[Metric, str | None, LoggedModelMetric | None]],
                 params: list[Param] | None = None) -> None:
    """Log to the run; values logged with a ``model_id`` are recorded for that model too (its
    existence checked first, so an unknown model writes nothing)."""
    by_model: dict[str, list[LoggedModelMetric]] = {}
    for _, model_id, measured in parsed:
        if model_id and measured:
            by_model.setdefault(model_id, []).append(dataclasses.replace(measured, run_id=run_id))
    for model_id in by_model:
        c.store.logged_models.get(model_id)
    c.log_batch(run_id, metrics=[m for m, _, _ in parsed], params=params or [])
    for model_id, model_metrics in by_model.items():
        c.store.logged_models.log_metrics(model_id, model_metrics)


def log_metric(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    _log_metrics(tracking(request), run_id_of(p), [_metric(p)])
    return ok()


def log_param(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    key = p.required("key")
    tracking(request).log_batch(run_id_of(p), params=[Param(key, _param_value(key, p.raw("value")))])
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


def _set_tags(c: TrackingService, run_id: str, tags: dict[str, str]) -> None:
    name = tags.pop(wire.RUN_NAME_TAG, None)
    if name is not None:
        c.update_run(run_id, run_name=name)
    if tags:
        c.set_tags(run_id, tags)


def set_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    _set_tags(tracking(request), run_id_of(p), {p.required("key"): p.str("value", default="") or ""})
    return ok()


def delete_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tracking(request).delete_tag(p.required("run_id"), p.required("key"))
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
    for index, item in enumerate(metrics):
        if _object("metrics", item).get("timestamp") in (None, ""):
            raise InvalidInput(f"Missing value for required parameter 'metrics[{index}].timestamp'. "
                               "See the API docs for more information about request parameters.")
    parsed_params = Params({"params": params}).key_values("params")
    c = tracking(request)
    _log_metrics(c, run_id, [_batch_metric(m) for m in metrics],
                 [Param(k, _param_value(k, v)) for k, v in parsed_params.items()])
    if tags:
        _set_tags(c, run_id, Params({"tags": tags}).key_values("tags"))
    return ok()


def _object(field: str, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"Invalid value {json.dumps(item)[:100]} for parameter '{field}' supplied: "
                           "expected an object")
    return item


def log_inputs(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """Each MLflow dataset becomes a version of a Shipyard dataset (same name, its digest) and
    an input edge of the run in the lineage graph; its input tags and the models given are
    recorded as the run's links (the first record of each is kept, as MLflow keeps it)."""
    run_id = run_id_of(p)
    c = tracking(request)
    _writable_run(c, run_id)
    edges, links = [], []
    for item in p.list("datasets"):
        given = Params(_object("datasets", item))
        ds = Params(_object("dataset", given.raw("dataset") or {}))
        name = rules.check_dataset_name(ds.required("name"))
        digest = ds.required("digest")
        mlflow_fields = {k: ds.str(k) for k in ("digest", "source_type", "schema", "profile") if ds.has(k)}
        version, _ = client(request).datasets.log_version(
            name, digest=f"mlflow:{digest}", source=ds.str("source", default="") or "", kind="table",
            num_rows=_num_rows(ds.str("profile")), profile={"mlflow": mlflow_fields})
        tags = given.key_values("tags")
        edges.append(Edge(Node(NodeKind.DATASET, version.ref), Node(NodeKind.RUN, run_id), Relation.INPUT,
                          tags.get(wire.DATASET_CONTEXT_TAG, "")))
        links.append(RunLink(run_id, RunLinkKind.DATASET_INPUT, version.ref, tags=tags))
    for item in p.list("models"):
        # A model used by the run (e.g. evaluated by it), recorded as MLflow records it; a lineage
        # edge too when it is a model of this server held by another run (a self-loop would trap walks).
        model_id = Params(_object("models", item)).required("model_id")
        links.append(RunLink(run_id, RunLinkKind.MODEL_INPUT, model_id))
        try:
            model = c.store.logged_models.get(model_id)
        except NotFound:
            continue
        if model.run_id != run_id:
            edges.append(Edge(Node(NodeKind.RUN, model.run_id), Node(NodeKind.RUN, run_id), Relation.INPUT,
                              f"{wire.MODEL_INPUT_CONTEXT}{model_id}"))
    if edges:
        c.store.lineage.add_edges(edges)
    c.store.logged_models.add_run_links(links)
    return ok()


def _writable_run(c: TrackingService, run_id: str) -> None:
    """Links are additions, taken by a finished run too; a deleted run takes none until restored."""
    if c.get_run(run_id).info.lifecycle_stage is LifecycleStage.DELETED:
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before logging to it")


def _num_rows(profile: str | None) -> int | None:
    try:
        rows = json.loads(profile or "{}").get("num_rows")
    except (ValueError, AttributeError):
        return None
    return rows if isinstance(rows, int) and rows >= 0 else None


def log_outputs(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    """The models a run produced, each at a step, as the client records them after
    ``log_model`` (recorded as given, like MLflow, which does not look the models up)."""
    c = tracking(request)
    run_id = p.required("run_id")
    models = [Params(_object("models", item)) for item in p.list("models")]
    if not models:
        raise InvalidInput("Missing value for required parameter 'models'. "
                           "See the API docs for more information about request parameters.")
    _writable_run(c, run_id)
    c.store.logged_models.add_run_links([RunLink(run_id, RunLinkKind.MODEL_OUTPUT, m.required("model_id"),
                                                 m.int("step", default=0) or 0) for m in models])
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
    c = tracking(request)
    if not experiment_ids:
        return ok({"runs": []})
    result = c.search(query)
    return ok({"runs": runs_json(c, result), "next_page_token": result.token})


def get_metric_history(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    history = tracking(request).get_metric_history(run_id_of(p), p.required("metric_key"))
    items, token = page(history, p, default_max=25_000, limit=25_000 if p.has("page_token") else 10**9)
    return ok({"metrics": [wire.metric(m) for m in items], "next_page_token": token})


def list_artifacts(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = tracking(request)
    run = c.get_run(run_id_of(p))
    path = p.str("path", default="") or ""
    try:
        entries = c.list_artifacts(run.info.run_id, path or None)
    except NotFound:
        entries = []  # MLflow lists an absent folder as empty
    files = [wire.compact({"path": e.path, "is_dir": e.is_dir, "file_size": e.size}) for e in entries]
    return ok({"root_uri": wire.run_artifact_uri(run.info.experiment_id, run.info.run_id), "files": files})

