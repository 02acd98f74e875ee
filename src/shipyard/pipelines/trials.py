"""Running tuning trials: ask the study for parameters, run the objective in a child run, tell the study.

The loop is the same in the tuning process (one at a time), in each of several worker processes sharing the
study through its database, and in Ray tasks: everything a worker needs is in a picklable :class:`StudySpec`,
and each trial records itself (params, metrics, status, error) on its own child run of the study's run.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import Metric, RunStatus
from shipyard.errors import InvalidInput, MissingDependency
from shipyard.pipelines.execute import worker_client
from shipyard.pipelines.search_space import SearchSpace
from shipyard.pipelines.targets import load_target
from shipyard.tracking import fluent

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

__all__ = ["ROLE_TAG", "STUDY_TAG", "TRIAL_TAG", "StudySpec", "Trial", "TrialOutcome", "TrialPruned",
           "import_optuna", "open_study", "run_trials"]

ROLE_TAG = "shipyard.tune.role"  # study | trial
STUDY_TAG = "shipyard.tune.study"
TRIAL_TAG = "shipyard.tune.trial"
STATE_TAG = "shipyard.tune.state"  # complete | pruned | failed
ERROR_TAG = "shipyard.error"
ERROR_ARTIFACT = "_shipyard/error.txt"
DEFAULT_METRIC = "objective"


class TrialPruned(Exception):
    """Raise it in an objective when :meth:`Trial.should_prune` says so (``optuna.TrialPruned`` works too)."""


def import_optuna() -> Any:
    """The ``optuna`` module, or ``MissingDependency`` naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise MissingDependency("tuning needs Optuna, which is not installed here: pip install 'shipyard-mlops[tune]'",
                                package="optuna", extra="tune") from None
    return optuna


@dataclass(frozen=True)
class StudySpec:
    """What a trial worker needs: where the study and the runs are, and what to run."""

    objective: str  # module:name, for workers that import it
    space: SearchSpace
    direction: str
    metric: str
    study_name: str
    storage: str | None  # an Optuna storage URL; None: the study object is passed in (one process)
    storage_options: dict[str, Any]
    sampler: str
    pruner: str
    seed: int | None
    tracking_uri: str
    artifact_uri: str
    experiment_id: str
    parent_run_id: str


@dataclass
class TrialOutcome:
    """One trial: its number, child run, state (complete, pruned, failed), objective value and metrics."""

    number: int
    run_id: str
    state: str
    params: dict[str, Any]
    value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""
    traceback: str = ""


class Trial:
    """Given to an objective that takes a ``trial`` argument: report intermediate values, ask about pruning."""

    def __init__(self, handle: Any, client: Client, run_id: str, metric: str, params: dict[str, Any]) -> None:
        self._handle = handle
        self._client = client
        self.run_id = run_id
        self.number: int = handle.number
        self.params = params
        self._metric = metric

    def report(self, value: float, step: int) -> None:
        """Record the objective's value after ``step`` (an epoch, say): a metric of the trial's run at that
        step, and what the pruner compares across trials."""
        self._client.log_metric(self.run_id, self._metric, float(value), step=int(step))
        self._handle.report(float(value), int(step))

    def should_prune(self) -> bool:
        """Whether this trial is doing worse than earlier ones at the same step (then ``raise TrialPruned()``)."""
        return bool(self._handle.should_prune())


def _sampler(spec: StudySpec, worker: int) -> Any:
    samplers = import_optuna().samplers
    seed = None if spec.seed is None else spec.seed + worker  # same seed in every worker would repeat trials
    return samplers.RandomSampler(seed=seed) if spec.sampler == "random" else samplers.TPESampler(seed=seed)


def _pruner(spec: StudySpec) -> Any:
    pruners = import_optuna().pruners
    return {"median": pruners.MedianPruner, "hyperband": pruners.HyperbandPruner,
            "none": pruners.NopPruner}[spec.pruner]()


@contextlib.contextmanager
def open_study(spec: StudySpec, worker: int = 0, *, create: bool = False) -> Iterator[Any]:
    """The study, created (``create``) or loaded from ``spec.storage``, for the block (its database
    connections are closed after it); in memory when there is no storage."""
    optuna = import_optuna()
    storage: Any = None
    if spec.storage is not None:
        storage = optuna.storages.RDBStorage(spec.storage, engine_kwargs=spec.storage_options or None)
    try:
        if create or storage is None:
            yield optuna.create_study(storage=storage, sampler=_sampler(spec, worker), pruner=_pruner(spec),
                                      study_name=spec.study_name, direction=spec.direction, load_if_exists=True)
        else:
            yield optuna.load_study(study_name=spec.study_name, storage=storage, sampler=_sampler(spec, worker),
                                    pruner=_pruner(spec))
    finally:
        if storage is not None:
            storage.engine.dispose()


def _value(spec: StudySpec, result: Any, client: Client, run_id: str) -> tuple[float, dict[str, float]]:
    """The objective's value and the metrics to record, from what it returned. ``InvalidInput`` when the
    return value cannot be read (a mistake in the objective, the same for every trial)."""
    if isinstance(result, int | float) and not isinstance(result, bool):
        return float(result), {spec.metric: float(result)}
    if isinstance(result, Mapping):
        metrics = {k: float(v) for k, v in result.items()
                   if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)}
        if spec.metric in metrics:
            return metrics[spec.metric], metrics
        if spec.metric == DEFAULT_METRIC and len(metrics) == 1:
            return next(iter(metrics.values())), metrics
        if spec.metric == DEFAULT_METRIC:
            raise InvalidInput(f"the objective returned the metrics {sorted(metrics) or 'none'}; name the one to "
                               "optimize with metric=... (--metric)")
        raise InvalidInput(f"the objective returned no metric {spec.metric!r} (it returned "
                           f"{sorted(metrics) or 'none'})")
    if result is None:  # logged with shipyard.log_metric inside the objective
        client.flush()
        logged = dict(client.get_run(run_id).data.metrics)
        if spec.metric in logged:
            return float(logged[spec.metric]), {}
        raise InvalidInput(f"the objective returned nothing and logged no metric {spec.metric!r}; return a number, "
                           "a dict of metrics, or log the metric named by metric=... (--metric)")
    raise InvalidInput(f"the objective returned a {type(result).__qualname__}; return a number (the value to "
                       "optimize) or a dict of metrics")


def _accepts_trial(objective: Callable[..., Any]) -> bool:
    try:
        return "trial" in inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return False


def _one(study: Any, spec: StudySpec, objective: Callable[..., Any], client: Client) -> TrialOutcome:
    optuna = import_optuna()
    started = time.perf_counter()
    handle = study.ask()
    params = {name: dim.suggest(handle, name) for name, dim in spec.space.items()}
    run = client.create_run(spec.experiment_id, f"trial-{handle.number}", parent_run_id=spec.parent_run_id,
                            tags={ROLE_TAG: "trial", STUDY_TAG: spec.study_name, TRIAL_TAG: str(handle.number)})
    run_id = run.info.run_id
    client.log_params(run_id, {k: str(v) for k, v in params.items()})
    outcome = TrialOutcome(handle.number, run_id, "complete", params)
    kwargs = dict(params)
    if _accepts_trial(objective):
        kwargs["trial"] = Trial(handle, client, run_id, spec.metric, params)
    try:
        with fluent.activated(client, run_id):  # shipyard.log_metric in the objective logs to the trial's run
            result = objective(**kwargs)
        value, metrics = _value(spec, result, client, run_id)
        if math.isnan(value):
            raise ValueError(f"the objective's value {spec.metric!r} is NaN")
    except (TrialPruned, optuna.TrialPruned):
        study.tell(handle, state=optuna.trial.TrialState.PRUNED)
        client.set_tags(run_id, {STATE_TAG: "pruned"})
        client.set_terminated(run_id, RunStatus.KILLED)
        outcome.state, outcome.seconds = "pruned", time.perf_counter() - started
        return outcome
    except Exception as exc:
        study.tell(handle, state=optuna.trial.TrialState.FAIL)
        tb = exc.__traceback__.tb_next if exc.__traceback__ is not None else None  # from the objective's frame
        text = "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))
        client.set_tags(run_id, {STATE_TAG: "failed", ERROR_TAG: f"{type(exc).__name__}: {exc}"[:8000]})
        client.log_text(run_id, text, ERROR_ARTIFACT)
        client.set_terminated(run_id, RunStatus.FAILED)
        if isinstance(exc, InvalidInput):  # the objective's contract, not this trial's luck: stop the study
            raise
        outcome.state, outcome.error, outcome.traceback = "failed", f"{type(exc).__name__}: {exc}", text
        outcome.seconds = time.perf_counter() - started
        return outcome
    study.tell(handle, value)
    now = now_ms()
    if metrics:
        client.log_batch(run_id, metrics=[Metric(k, v, 0, now) for k, v in metrics.items()])
    client.set_tags(run_id, {STATE_TAG: "complete"})
    client.set_terminated(run_id, RunStatus.FINISHED)
    outcome.value, outcome.metrics, outcome.seconds = value, metrics, time.perf_counter() - started
    return outcome


def run_trials(spec: StudySpec, count: int, worker: int = 0, objective: Callable[..., Any] | None = None, *,
               study: Any = None, client: Client | None = None,
               on_trial: Callable[[TrialOutcome], None] | None = None) -> list[TrialOutcome]:
    """Run ``count`` trials of the study one after the other. In a worker (no ``client``) the study is loaded
    from its storage and the objective imported by name unless given (by value, for Ray)."""
    if client is None:
        client = worker_client(spec.tracking_uri, spec.artifact_uri)
    if objective is None:
        objective = load_target(spec.objective, "objective", "myproject.train:objective")
    outcomes = []
    with contextlib.nullcontext(study) if study is not None else open_study(spec, worker) as opened:
        for _ in range(count):
            outcome = _one(opened, spec, objective, client)
            outcomes.append(outcome)
            if on_trial is not None:
                on_trial(outcome)
    client.flush()
    return outcomes
