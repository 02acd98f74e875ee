"""MLflow's experiment calls over Shipyard's experiments."""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from starlette.responses import Response

from shipyard.entities import EXPERIMENT_GRAMMAR, Comparison, Experiment, LifecycleStage, Op, ViewType
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.filters import parse_filter, parse_order_by
from shipyard.server.mlflow_compat import wire
from shipyard.server.mlflow_compat.common import ok, page
from shipyard.server.mlflow_compat.request import Params, mlflow_params
from shipyard.server.responses import tracking
from shipyard.tracking.service import TrackingService

VIEW_TYPES = {"ACTIVE_ONLY": ViewType.ACTIVE_ONLY, "DELETED_ONLY": ViewType.DELETED_ONLY, "ALL": ViewType.ALL,
              "1": ViewType.ACTIVE_ONLY, "2": ViewType.DELETED_ONLY, "3": ViewType.ALL}


def view_type(p: Params, name: str) -> ViewType:
    raw = p.raw(name)
    if raw in (None, ""):
        return ViewType.ACTIVE_ONLY
    view = VIEW_TYPES.get(str(raw).upper())
    if view is None:
        raise InvalidInput(f"Invalid value {raw!r} for parameter '{name}': expected ACTIVE_ONLY, DELETED_ONLY or ALL")
    return view


def create_experiment(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    name = p.required("name")
    location = p.str("artifact_location")
    tags = p.key_values("tags")
    tags.pop(wire.ARTIFACT_LOCATION_TAG, None)  # only the argument sets it
    if location:
        # Recorded and reported as given (a relative path is made absolute against the server's
        # working directory, as MLflow does); the proxy still writes only to its own store.
        tags[wire.ARTIFACT_LOCATION_TAG] = _absolute_location(location)
    experiment_id = tracking(request).create_experiment(name, tags=tags)
    return ok({"experiment_id": experiment_id})


def _absolute_location(location: str) -> str:
    if "://" in location or location.startswith(("/", "mlflow-artifacts:", "s3:", "gs:")) or ":" in location[:10]:
        return location
    return str(Path.cwd() / location)


def get_experiment(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    return ok({"experiment": wire.experiment(tracking(request).get_experiment(p.required("experiment_id")))})


def get_experiment_by_name(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    name = p.required("experiment_name")
    found = tracking(request).get_experiment_by_name(name)
    if found is None:
        raise NotFound(f"Could not find experiment with name '{name}'")
    return ok({"experiment": wire.experiment(found)})


def update_experiment(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    experiment_id = p.required("experiment_id")
    new_name = p.str("new_name")
    if new_name:
        tracking(request).rename_experiment(experiment_id, new_name)
    else:
        tracking(request).get_experiment(experiment_id)
    return ok()


def delete_experiment(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tracking(request).delete_experiment(p.required("experiment_id"))
    return ok()


def restore_experiment(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    tracking(request).restore_experiment(p.required("experiment_id"))
    return ok()


def _active(c: TrackingService, experiment_id: str) -> str:
    """MLflow refuses tag changes on a deleted experiment (400); Shipyard's native API allows them."""
    if c.get_experiment(experiment_id).lifecycle_stage is LifecycleStage.DELETED:
        raise Conflict(f"The experiment {experiment_id} must be in the 'active' state. Current state is deleted.")
    return experiment_id


def set_experiment_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = tracking(request)
    c.set_experiment_tags(_active(c, p.required("experiment_id")), {p.required("key"): p.str("value", default="")})
    return ok()


def delete_experiment_tag(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    c = tracking(request)
    c.delete_experiment_tag(_active(c, p.required("experiment_id")), p.required("key"))
    return ok()


def search_experiments(request: Request, p: Params = Depends(mlflow_params)) -> Response:
    found = tracking(request).search_experiments(view_type(p, "view_type"))
    for cmp in parse_filter(p.str("filter"), EXPERIMENT_GRAMMAR):
        found = [e for e in found if _matches(cmp, _field(e, cmp))]
    orders = parse_order_by(p.list("order_by"), EXPERIMENT_GRAMMAR) or ()
    # Stable sorts, last key first: the first clause decides, ties fall to the next.
    found.sort(key=lambda e: int(e.experiment_id))
    found.sort(key=lambda e: e.creation_time, reverse=True)
    for order in reversed(orders):
        present = [e for e in found if _field(e, order) is not None]
        missing = [e for e in found if _field(e, order) is None]
        present.sort(key=functools.partial(_field, cmp=order), reverse=not order.ascending)
        found = present + missing
    items, token = page(found, p, default_max=1000)
    return ok({"experiments": [wire.experiment(e) for e in items], "next_page_token": token})


# Experiments are few (hundreds, not millions), so their filter is applied here to the typed
# comparisons rather than compiled to SQL like the run, model and version searches.
def _field(e: Experiment, cmp: Any) -> Any:
    if cmp.kind == "tag":
        return e.tags.get(cmp.key)
    value: Any = {"name": e.name, "experiment_id": e.experiment_id, "creation_time": e.creation_time,
             "last_update_time": e.last_update_time}[cmp.key]
    return int(value) if cmp.key == "experiment_id" and getattr(cmp, "op", None) is None else value


_COMPARE = {Op.EQ: operator.eq, Op.NE: operator.ne, Op.LT: operator.lt, Op.LE: operator.le,
            Op.GT: operator.gt, Op.GE: operator.ge}


def _like(pattern: str, flags: int = 0) -> Callable[[str], bool]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    compiled = re.compile(regex, flags | re.DOTALL)
    return lambda value: compiled.fullmatch(value) is not None


def _matches(cmp: Comparison, value: Any) -> bool:
    if cmp.op is Op.IS_NULL:
        return value is None
    if cmp.op is Op.IS_NOT_NULL:
        return value is not None
    if value is None:
        return False
    target: Any = cmp.value
    if cmp.op is Op.LIKE:
        return _like(str(target))(value)
    if cmp.op is Op.ILIKE:
        return _like(str(target), re.IGNORECASE)(value)
    if cmp.op is Op.IN:
        return value in target
    if cmp.op is Op.NOT_IN:
        return value not in target
    return bool(_COMPARE[cmp.op](value, target))
