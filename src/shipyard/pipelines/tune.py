"""Hyperparameter tuning on Optuna: ``shipyard.tune(objective, space, n_trials=...)``.

A study is a parent run; each trial is a child run with its parameters, metrics and status; the best trial
is recorded on the parent (``best.<param>`` params, the ``best_<metric>`` metric, the ``shipyard.tune.best_run``
tag), and every trial's value is a metric of the parent by trial number, so studies compare in the UI like
any runs. Trials run one after the other here, in ``parallel`` worker processes that share the study
through its database (SQLite beside the tracking database, the tracking PostgreSQL server in a schema of its
own, or any Optuna storage URL), or as Ray tasks.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import inspect
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import Metric, RunStatus
from shipyard.errors import InvalidInput, StepFailed
from shipyard.pipelines.search_space import Categorical, Float, Int, SearchSpace, load_space, parse_space
from shipyard.pipelines.steps import parse_resources
from shipyard.pipelines.targets import reference_of
from shipyard.pipelines.trials import (
    DEFAULT_METRIC,
    ROLE_TAG,
    STUDY_TAG,
    StudySpec,
    TrialOutcome,
    import_optuna,
    open_study,
    run_trials,
)
from shipyard.tracking.client import default_artifact_uri

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

__all__ = ["TuneResult", "study_storage", "tune"]

DIRECTIONS = ("maximize", "minimize")
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")


@dataclass
class TuneResult:
    """The outcome of :func:`tune`: the study's run, every trial of this call, and the best trial."""

    run_id: str
    study_name: str
    direction: str
    metric: str
    trials: list[TrialOutcome]
    best: TrialOutcome | None
    storage: str | None = None
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best.params) if self.best else {}

    @property
    def best_value(self) -> float | None:
        return self.best.value if self.best else None


def _describe(dim: Float | Int | Categorical) -> str:
    if isinstance(dim, Categorical):
        return "one of " + json.dumps(list(dim.choices))
    kind = "int" if isinstance(dim, Int) else "float"
    extra = " log" if dim.log else (f" step {dim.step:g}" if dim.step not in (None, 1) else "")
    return f"{kind} [{dim.low:g}, {dim.high:g}]{extra}"


def _check_objective(objective: Callable[..., Any], space: SearchSpace) -> None:
    try:
        params = inspect.signature(objective).parameters
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unknown = [name for name in space if name not in params and not takes_any]
    if unknown:
        raise InvalidInput(f"search space: the objective {getattr(objective, '__name__', objective)!r} has no "
                           f"parameter {unknown[0]!r}; its parameters: {', '.join(params) or '(none)'}",
                           parameter=unknown[0])
    missing = [n for n, p in params.items() if n not in space and n != "trial" and p.default is p.empty
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise InvalidInput(f"the objective needs {missing[0]!r}, which the search space does not give; add it to "
                           "the space or give the parameter a default", parameter=missing[0])


def study_storage(tracking_uri: str, storage: str | None) -> tuple[str, dict[str, Any]]:
    """The Optuna storage URL (and engine options) for a study that several processes share: ``storage`` as
    given, else beside the tracking database: ``<db>.optuna.db`` next to a SQLite file, or the ``optuna``
    schema of the tracking PostgreSQL database (Optuna's tables cannot share a schema with Shipyard's: both
    keep an ``alembic_version`` table). Raises ``InvalidInput`` when there is no such place."""
    if storage:
        uri = storage
    elif tracking_uri.startswith("sqlite:///") and ":memory:" not in tracking_uri:
        path = tracking_uri[len("sqlite:///"):].split("?")[0]
        uri = "sqlite:///" + (path[:-3] if path.endswith(".db") else path) + ".optuna.db"
    elif tracking_uri.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        uri = "postgresql+psycopg://" + tracking_uri.split("://", 1)[1]
        return uri, {"connect_args": {"options": "-csearch_path=optuna"}, "pool_pre_ping": True}
    else:
        raise InvalidInput(f"parallel trials share the study through a database that every worker reaches; the "
                           f"tracking store {tracking_uri!r} is not one: pass storage='postgresql://...' (--storage)")
    if uri.startswith("sqlite:"):  # workers write one at a time: wait for the lock instead of failing
        return uri, {"connect_args": {"timeout": 60}}
    return uri, {}


def _ensure_schema(uri: str, options: dict[str, Any]) -> None:
    if "search_path=optuna" not in json.dumps(options):
        return
    import sqlalchemy as sa

    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA IF NOT EXISTS optuna")
    finally:
        engine.dispose()


def _whole(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInput(f"{name} must be a whole number >= {least}, got {value!r}")
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{name} {value!r} is not known; choose one of: {', '.join(allowed)}")
    return value


def tune(objective: Callable[..., Any] | str, space: Mapping[str, Any] | str, n_trials: int = 20,
         direction: str = "maximize", parallel: int = 1, executor: str = "local", *, metric: str | None = None,
         experiment: str | None = None, study_name: str | None = None, storage: str | None = None,
         sampler: str = "tpe", pruner: str = "median", seed: int | None = None, ray_address: str | None = None,
         resources: Mapping[str, Any] | None = None, client: Client | None = None,
         on_trial: Callable[[TrialOutcome], None] | None = None) -> TuneResult:
    """Search ``space`` for the parameters of ``objective`` that maximize (or minimize) its value.

    ``objective`` is a function (or ``"module:name"``) taking the space's parameters (and ``trial``, for
    pruning) and returning a number or a dict of metrics (``metric`` names the one to optimize). ``space``
    maps parameter names to ranges or choices (see :mod:`shipyard.pipelines.search_space`), or is the path
    of a YAML file. ``parallel`` workers share the study through ``storage`` (default: beside the tracking
    database); ``executor="ray"`` runs them as Ray tasks (``resources`` per worker) on ``ray_address``.
    ``sampler``: tpe (default) or random; ``pruner``: median (default), hyperband or none; ``seed`` makes
    the sampling repeatable. Raises ``InvalidInput`` before anything is recorded, and ``StepFailed`` when
    no trial completed.
    """
    import_optuna()  # before anything else: a missing extra is the first thing to hear about
    if isinstance(objective, str):
        from shipyard.pipelines.targets import load_target

        reference, objective = objective, load_target(objective, "objective", "myproject.train:objective")
        if not callable(objective):
            raise InvalidInput(f"objective {reference!r} is not a function")
    else:
        reference = reference_of(objective)
    checked = load_space(space) if isinstance(space, str) else parse_space(space)
    _check_objective(objective, checked)
    n_trials = _whole("n_trials", n_trials, 1)
    parallel = min(_whole("parallel", parallel, 1), n_trials)
    direction = _choice("direction", direction, DIRECTIONS)
    _choice("sampler", sampler, SAMPLERS)
    _choice("pruner", pruner, PRUNERS)
    _choice("executor", executor, ("local", "ray"))
    needs = parse_resources("tuning worker", resources)
    if ray_address and executor != "ray":
        raise InvalidInput("a Ray address only applies with executor='ray' (--executor ray)")
    if seed is not None:
        _whole("seed", seed, 0)
    if client is None:
        from shipyard.tracking.fluent import default_client

        client = default_client()
    shared = parallel > 1 or executor == "ray" or storage is not None
    uri, options = study_storage(client.tracking_uri, storage) if shared else (None, {})
    name = experiment or f"tune-{getattr(objective, '__name__', 'objective')}"
    with _cluster(executor, ray_address, needs) as on_ray:
        if uri is not None:
            _ensure_schema(uri, options)
        experiment_id = client.get_or_create_experiment(name).experiment_id
        run = client.create_run(experiment_id, study_name or name, tags={
            ROLE_TAG: "study", "shipyard.tune.direction": direction, "shipyard.tune.sampler": sampler,
            "shipyard.tune.pruner": pruner, "shipyard.tune.trials": str(n_trials),
            "shipyard.tune.objective": reference})
        spec = StudySpec(reference, checked, direction, metric or DEFAULT_METRIC, study_name or run.info.run_id,
                         uri, options, sampler, pruner, seed, client.tracking_uri,
                         default_artifact_uri(client.settings),
                         experiment_id, run.info.run_id)
        client.set_tags(run.info.run_id, {STUDY_TAG: spec.study_name})
        client.log_params(run.info.run_id, {f"space.{k}": _describe(v) for k, v in checked.items()})
        started = time.perf_counter()
        with open_study(spec, create=True) as study:
            try:
                if parallel == 1 and not on_ray:
                    trials = run_trials(spec, n_trials, objective=objective, study=study, client=client,
                                        on_trial=on_trial)
                else:
                    trials = _in_workers(spec, n_trials, parallel, objective, on_ray, needs, on_trial)
            except BaseException as exc:
                client.set_tags(run.info.run_id, {"shipyard.error": f"{type(exc).__name__}: {exc}"[:8000]})
                client.set_terminated(run.info.run_id, RunStatus.KILLED if isinstance(exc, KeyboardInterrupt)
                                      else RunStatus.FAILED)
                raise
            return _finish(client, spec, study, trials, time.perf_counter() - started)


@contextlib.contextmanager
def _cluster(executor: str, address: str | None, needs: dict[str, float]) -> Iterator[bool]:
    if executor != "ray":
        yield False
        return
    from shipyard.pipelines.ray_cluster import connected

    with connected(address) as cluster:
        cluster.check_fits("a tuning worker", {"cpus": 1.0, **needs})
        yield True


def _in_workers(spec: StudySpec, n_trials: int, parallel: int, objective: Callable[..., Any], on_ray: bool,
                needs: dict[str, float], on_trial: Callable[[TrialOutcome], None] | None) -> list[TrialOutcome]:
    shares = [n_trials // parallel + (1 if i < n_trials % parallel else 0) for i in range(parallel)]
    pending: list[futures.Future[list[TrialOutcome]]] = []
    pool: futures.ProcessPoolExecutor | None = None
    if on_ray:
        from shipyard.pipelines.ray_cluster import submit

        by_value = objective if getattr(objective, "__module__", "") == "__main__" else None
        pending = [submit(run_trials, (spec, share, worker, by_value), needs) for worker, share in enumerate(shares)]
    else:  # spawned, not forked: a forked child would inherit the parent's open database connections
        import multiprocessing

        pool = futures.ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn"))
        pending = [pool.submit(run_trials, spec, share, worker) for worker, share in enumerate(shares)]
    trials: list[TrialOutcome] = []
    try:
        for done in futures.as_completed(pending):
            batch = done.result()
            trials.extend(batch)
            for outcome in batch:
                if on_trial is not None:
                    on_trial(outcome)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    return sorted(trials, key=lambda t: t.number)


def _finish(client: Client, spec: StudySpec, study: Any, trials: list[TrialOutcome], seconds: float) -> TuneResult:
    run_id = spec.parent_run_id
    counts = {state: sum(t.state == state for t in trials) for state in ("complete", "pruned", "failed")}
    now = now_ms()
    values = [Metric("trial_value", t.value, t.number, now) for t in trials if t.value is not None]
    client.log_batch(run_id, metrics=values)
    best = None
    completed = [t for t in trials if t.state == "complete"]
    if completed:
        try:
            chosen = study.best_trial  # over the whole study: a study continued by name counts earlier trials
        except ValueError:
            chosen = None
        if chosen is not None:
            best = next((t for t in trials if t.number == chosen.number), None)
            if best is None:  # the best is from an earlier call: rebuild what the study knows of it
                best = TrialOutcome(chosen.number, "", "complete", dict(chosen.params), float(chosen.value))
    tags = {"shipyard.tune.completed": str(counts["complete"]), "shipyard.tune.pruned": str(counts["pruned"]),
            "shipyard.tune.failed": str(counts["failed"])}
    if best is not None:
        assert best.value is not None
        client.log_batch(run_id, metrics=[Metric(f"best_{spec.metric}", best.value, 0, now)])
        client.log_params(run_id, {f"best.{k}": str(v) for k, v in best.params.items()})
        tags.update({"shipyard.tune.best_trial": str(best.number), "shipyard.tune.best_run": best.run_id})
    client.set_tags(run_id, tags)
    if best is None:
        first = next((t for t in trials if t.state == "failed"), None)
        reason = f"; the first failure (trial {first.number}, run {first.run_id}): {first.error}" if first else ""
        error = StepFailed(f"no trial of study {spec.study_name!r} completed ({counts['failed']} failed, "
                           f"{counts['pruned']} pruned){reason}", run_id=run_id,
                           traceback=first.traceback if first else "")
        if first is not None and first.traceback:
            error.add_note(f"traceback of trial {first.number}:\n{first.traceback.rstrip()}")
        client.set_tags(run_id, {"shipyard.error": str(error)[:8000]})
        client.set_terminated(run_id, RunStatus.FAILED)
        raise error
    client.set_terminated(run_id, RunStatus.FINISHED)
    return TuneResult(run_id, spec.study_name, spec.direction, spec.metric, trials, best, spec.storage, seconds,
                      counts)
