"""Logged models (MLflow 3's ``LoggedModel``): a model as first-class output of an experiment,
with its own id, status, tags and params, before (and independent of) any registry version."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.entities.run import LifecycleStage, ViewType
from shipyard.entities.search import OrderBy, RunFilter

__all__ = ["LoggedModel", "LoggedModelQuery", "LoggedModelStatus"]


class LoggedModelStatus(enum.StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModel:
    """A model logged to experiment ``experiment_id``; its files are the folder
    ``artifact_path`` of run ``run_id``'s artifacts. ``model_id`` (``m-`` and 32 lowercase hex
    digits) is chosen by the caller, as MLflow clients do."""

    model_id: str
    experiment_id: str
    name: str
    run_id: str
    artifact_path: str
    source_run_id: str | None = None  # the run that produced it; None when logged outside a run
    status: LoggedModelStatus = LoggedModelStatus.PENDING
    status_message: str = ""
    model_type: str = ""
    creation_time: int = 0  # ms since the epoch; 0 on create means "now"
    last_update_time: int = 0
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoggedModelQuery:
    """A search of the logged models of ``experiment_ids``. ``filter`` is parsed with
    :data:`~shipyard.entities.search.LOGGED_MODEL_GRAMMAR`; ``order_by`` takes attributes
    (default: newest first, then by id)."""

    experiment_ids: tuple[str, ...]
    filter: RunFilter = field(default_factory=RunFilter)
    order_by: tuple[OrderBy, ...] = ()
    view: ViewType = ViewType.ACTIVE_ONLY
    max_results: int = 100
    page_token: str | None = None
