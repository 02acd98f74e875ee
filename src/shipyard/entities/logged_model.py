"""Logged models (MLflow 3's ``LoggedModel``): a model as first-class output of an experiment,
with its own id, status, tags and params, before (and independent of) any registry version."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.entities.run import LifecycleStage, ViewType
from shipyard.entities.search import OrderBy, RunFilter

__all__ = ["LoggedModel", "LoggedModelDataset", "LoggedModelMetric", "LoggedModelQuery", "LoggedModelStatus", "RunLink",
           "RunLinkKind"]


class LoggedModelStatus(enum.StrEnum):
    PENDING = "PENDING"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class LoggedModelMetric:
    """A metric value measured on a logged model (MLflow: a metric logged with a ``model_id``), by
    run ``run_id``, optionally on a named dataset. The same value is also one of the run's metrics."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0
    run_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


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
    metrics: tuple[LoggedModelMetric, ...] = ()  # every value logged for it, oldest first


class RunLinkKind(enum.StrEnum):
    DATASET_INPUT = "dataset_input"
    MODEL_INPUT = "model_input"
    MODEL_OUTPUT = "model_output"


@dataclass(frozen=True, slots=True)
class RunLink:
    """One input or output of a run as MLflow's client records it (``log-inputs``, ``outputs``):
    a logged model used or produced (``ref`` is its id, ``step`` the output's step), or a dataset
    input (``ref`` is the dataset version's ``name@version``) with every input tag it was given.
    The first record of a (run, kind, ref) is kept, as MLflow keeps the first input."""

    run_id: str
    kind: RunLinkKind
    ref: str
    step: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LoggedModelDataset:
    """A dataset a logged-model search asks about: the models with a metric logged on it
    (any digest of that name when ``digest`` is ``None``)."""

    name: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class LoggedModelQuery:
    """A search of the logged models of ``experiment_ids``. ``filter`` is parsed with
    :data:`~shipyard.entities.search.LOGGED_MODEL_GRAMMAR`; ``order_by`` takes attributes
    (default: newest first, then by id); with ``datasets``, only the models that have a metric
    logged on one of them."""

    experiment_ids: tuple[str, ...]
    filter: RunFilter = field(default_factory=RunFilter)
    order_by: tuple[OrderBy, ...] = ()
    view: ViewType = ViewType.ACTIVE_ONLY
    max_results: int = 100
    page_token: str | None = None
    datasets: tuple[LoggedModelDataset, ...] = ()
