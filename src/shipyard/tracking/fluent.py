"""The fluent tracking SDK: ``shipyard.start_run()``, ``shipyard.log_metric(...)``...

Names and behaviour follow MLflow's fluent API so its users feel at home. One process-wide
:class:`~shipyard.tracking.client.Client` is built on first use from the configured
settings; each thread has its own stack of active runs (nested runs push onto it).
Logging without an active run starts one, as MLflow does. At interpreter exit, pending
metrics are written and runs still active are ended (FAILED when the program died of an
uncaught exception, FINISHED otherwise).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from shipyard.config import Settings
from shipyard.entities import (
    DEFAULT_EXPERIMENT_ID,
    ArtifactEntry,
    Experiment,
    Metric,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    ViewType,
)
from shipyard.errors import InvalidInput, RunNotActive, ShipyardError
from shipyard.tracking.client import Client, default_artifact_uri

ERROR_TAG = "shipyard.error"
ERROR_ARTIFACT = "_shipyard/error.txt"
REPRODUCES_ENV = "SHIPYARD_REPRODUCES"  # set by `shipyard reproduce` for the re-run
REPRODUCES_TAG = "shipyard.reproduces"


class _State:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.tracking_uri: str | None = None
        self.experiment_id: str | None = None
        self.client: Client | None = None
        self.seed: int | None = None
        self.user: str | None = None  # the process's login, looked up once (not per run)
        self.local = threading.local()
        self.stacks: list[list[ActiveRun]] = []


_state = _State()


class ActiveRun:
    """The run started by :func:`start_run`; as a context manager it ends the run on exit,
    FAILED (with the error recorded) when the block raised.

    The fluent client defers writing a new run (see :mod:`shipyard.tracking.pending`); reading
    its id, info or data writes it first, so an id handed to another process or client names a
    run that is in the store."""

    def __init__(self, run: Run, *, written: bool = False) -> None:
        self._run = run
        self._id = run.info.run_id
        self._written = written

    def _observed(self) -> None:
        if not self._written:
            self._written = True
            client = _state.client
            if client is not None:
                client.flush()

    @property
    def info(self) -> RunInfo:
        self._observed()
        return self._run.info

    @property
    def data(self) -> RunData:
        self._observed()
        return self._run.data

    @property
    def run_id(self) -> str:
        self._observed()
        return self._id

    def __repr__(self) -> str:
        return f"<ActiveRun {self._id} name={self._run.info.run_name!r}>"

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            _end(self, RunStatus.FINISHED)
            return
        # The block's own exception is what the user must see; a tracking error on top of it
        # becomes a note on it instead of replacing it.
        try:
            if isinstance(exc, KeyboardInterrupt):
                _end(self, RunStatus.KILLED)
                return
            try:
                _record_error(self._id, exc)
            finally:
                _end(self, RunStatus.FAILED)
        except ShipyardError as tracking_error:
            exc.add_note(f"shipyard: while ending run {self._id}: {tracking_error}")


# -- configuration ---------------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Track to ``uri`` from now on (``sqlite:///path.db``, ``postgresql://...``, or a folder)."""
    text = str(uri)
    if "://" not in text:  # a bare folder, like MLflow's ./mlruns
        text = f"sqlite:///{Path(text).expanduser() / 'shipyard.db'}"
    with _state.lock:
        old, _state.client = _state.client, None
        _state.tracking_uri = text
        _state.experiment_id = None
    if old is not None:
        old.close()


def get_tracking_uri() -> str:
    return default_client().tracking_uri


def default_client() -> Client:
    """The :class:`Client` the fluent functions use (built from the settings on first use).
    For code that offers the SDK's convenience of "the configured store" and otherwise takes a
    client explicitly, such as ``shipyard.lineage.explain(ref)``."""
    client = _state.client
    if client is None:
        with _state.lock:
            if _state.client is None:
                # Deferred runs: a run, its params, tags and first metrics reach the store as one write.
                _state.client = Client(settings=Settings.resolve(tracking_uri=_state.tracking_uri),
                                       defer_runs=True)
            client = _state.client
    return client


@contextlib.contextmanager
def activated(client: Client, run_id: str) -> Iterator[ActiveRun | None]:
    """Make ``run_id`` this thread's active run while the block runs, so that ``shipyard.log_metric``
    and friends called inside it (by a pipeline step, say) log to it; the run is not ended on exit.
    Does nothing (yields ``None``) when ``client`` is not the fluent functions' own client: their
    calls would go to another store."""
    if _state.client is not client:
        yield None
        return
    active = ActiveRun(client.store.runs.get(run_id), written=True)
    stack = _stack()
    stack.append(active)
    try:
        yield active
    finally:
        if active in stack:
            del stack[stack.index(active):]


def _stack() -> list[ActiveRun]:
    stack = getattr(_state.local, "stack", None)
    if stack is None:
        stack = _state.local.stack = []
        with _state.lock:
            _state.stacks.append(stack)
    return stack


# -- experiments -----------------------------------------------------------------------
def set_experiment(experiment_name: str | None = None, experiment_id: str | None = None) -> Experiment:
    """Make an experiment the active one (created when the name is new)."""
    client = default_client()
    if (experiment_name is None) == (experiment_id is None):
        raise InvalidInput("set_experiment takes exactly one of experiment_name or experiment_id")
    if experiment_id is not None:
        experiment = client.get_experiment(str(experiment_id))
    else:
        experiment = client.get_or_create_experiment(experiment_name)  # type: ignore[arg-type]
    if experiment.lifecycle_stage.value == "deleted":
        raise RunNotActive(f"experiment {experiment.name!r} is deleted; restore it with "
                           f"`shipyard experiments restore {experiment.experiment_id}` or pick another name")
    _state.experiment_id = experiment.experiment_id
    return experiment


def create_experiment(name: str, tags: Mapping[str, Any] | None = None) -> str:
    return default_client().create_experiment(name, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return default_client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return default_client().get_experiment_by_name(name)


# -- runs --------------------------------------------------------------------------------
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    capture: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active run of this thread.

    ``capture`` (default: the settings) records git commit/branch/diff, entry point, Python,
    OS, host, user and installed packages; ``capture=False`` skips all of it.
    """
    client = default_client()
    stack = _stack()
    if stack and not nested:
        raise InvalidInput(f"run '{stack[-1]._id}' is already active; call end_run() first, "
                           "or start_run(nested=True) to start a child run")
    if run_id is not None:
        run = _resume(client, run_id)
    else:
        run = _create(client, experiment_id, run_name, stack[-1]._id if stack else None,
                      dict(tags or {}), description, capture)
    active = ActiveRun(run, written=run_id is not None)
    stack.append(active)
    return active


def _resume(client: Client, run_id: str) -> Run:
    run = client.get_run(run_id)
    if run.info.lifecycle_stage.value == "deleted":
        raise RunNotActive(f"run '{run_id}' is deleted; restore it before resuming it")
    if run.info.status is not RunStatus.RUNNING:
        client.update_run(run_id, status=RunStatus.RUNNING)
    return client.get_run(run_id)


def _create(client: Client, experiment_id: str | None, run_name: str | None, parent: str | None,
            tags: dict[str, Any], description: str | None, capture: bool | None) -> Run:
    from shipyard.tracking.capture import capture_run_context

    settings = client.settings
    if capture is not None:
        settings = settings.replace(capture_git=capture, capture_diff=capture, capture_packages=capture,
                                    capture_system=capture)
    context = capture_run_context(settings)
    if description is not None:
        tags["shipyard.note"] = description
    if _state.seed is not None:
        tags.setdefault("shipyard.seed", str(_state.seed))
    # Under `shipyard reproduce` the first top-level run of the process tree is the reproduction;
    # the variable is consumed so later runs and child processes are not taken for it.
    reproduces = os.environ.pop(REPRODUCES_ENV, "").strip() if parent is None else ""
    if reproduces:
        tags[REPRODUCES_TAG] = reproduces
    experiment = str(experiment_id or _state.experiment_id or DEFAULT_EXPERIMENT_ID)
    run = client.create_run(experiment, run_name, tags={**context.tags, **tags}, parent_run_id=parent,
                            user_id=_state.user or _remember_user(client.principal.name),
                            source=context.tags.get("shipyard.source.entry_point", ""), defer=True)
    if context.artifacts and default_artifact_uri(settings).lower().startswith(("http://", "https://")):
        client.flush()  # a server takes artifacts only for a run it has: write the deferred run now
    for path, content in context.artifacts.items():
        client.artifacts.log_bytes(run.info.run_id, content, path)
    if reproduces:
        from shipyard.entities import Edge, Node, NodeKind, Relation

        client.store.lineage.add_edges([Edge(Node(NodeKind.RUN, reproduces), Node(NodeKind.RUN, run.info.run_id),
                                             Relation.REPRODUCED, "reproduce")])
    return run


def _remember_user(user: str) -> str:
    _state.user = user
    return user


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the active run of this thread (no-op when there is none)."""
    stack = _stack()
    if stack:
        _end(stack[-1], status)


def _end(active: ActiveRun, status: RunStatus | str) -> None:
    stack = _stack()
    ending = [active]
    if active in stack:
        # Ending a parent ends the children still open above it.
        ending = stack[stack.index(active):][::-1]
        del stack[stack.index(active):]
    client = default_client()
    for run in ending:
        client.set_terminated(run._id, status)


def _record_error(run_id: str, exc: BaseException) -> None:
    client = default_client()
    message = f"{type(exc).__name__}: {exc}"
    client.set_tag(run_id, ERROR_TAG, message[:8000])
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    client.log_text(run_id, text, ERROR_ARTIFACT)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def _run_id(run_id: str | None = None) -> str:
    if run_id is not None:
        return run_id
    stack = getattr(_state.local, "stack", None)
    if stack:
        active: str = stack[-1]._id
        return active
    return start_run()._id


def get_run(run_id: str) -> Run:
    return default_client().get_run(run_id)


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: ViewType | str = ViewType.ACTIVE_ONLY,
    max_results: int = 1000,
    order_by: Sequence[str] | None = None,
    output_format: str = "list",
    experiment_names: Sequence[str] | None = None,
    page_token: str | None = None,
) -> Any:
    """Search runs with MLflow's filter grammar; ``output_format="pandas"`` gives a DataFrame.

    Without ids or names, searches the active experiment (set_experiment) or Default.
    """
    client = default_client()
    ids = [str(e) for e in experiment_ids or []]
    for name in experiment_names or []:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise InvalidInput(f"no experiment is named {name!r}")
        ids.append(found.experiment_id)
    if not ids:
        ids = [_state.experiment_id or DEFAULT_EXPERIMENT_ID]
    if output_format not in ("list", "pandas"):
        raise InvalidInput(f"output_format must be 'list' or 'pandas', got {output_format!r}")
    runs = client.search_runs(ids, filter_string, run_view_type, max_results, order_by, page_token)
    if output_format == "pandas":
        from shipyard.tracking.frames import runs_to_dataframe

        return runs_to_dataframe(runs)
    return runs


# -- logging -----------------------------------------------------------------------------
def log_param(key: str, value: Any) -> None:
    default_client().log_params(_run_id(), {key: value})


def log_params(params: Mapping[str, Any]) -> None:
    default_client().log_params(_run_id(), params)


def log_metric(key: str, value: float, step: int | None = None, timestamp: int | None = None,
               run_id: str | None = None) -> None:
    default_client().log_metric(_run_id(run_id), key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None,
                run_id: str | None = None) -> None:
    default_client().log_metrics(_run_id(run_id), metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    default_client().set_tags(_run_id(), {key: value})


def set_tags(tags: Mapping[str, Any]) -> None:
    default_client().set_tags(_run_id(), tags)


def delete_tag(key: str) -> None:
    default_client().delete_tag(_run_id(), key)


def get_metric_history(run_id: str, key: str) -> list[Metric]:
    return default_client().get_metric_history(run_id, key)


def flush() -> None:
    """Write every metric logged so far; raises if a background write failed."""
    if _state.client is not None:
        _state.client.flush()


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> ArtifactEntry:
    return default_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> list[ArtifactEntry]:
    return default_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_text(text: str, artifact_file: str) -> ArtifactEntry:
    return default_client().log_text(_run_id(), text, artifact_file)


def log_dict(dictionary: Mapping[str, Any], artifact_file: str) -> ArtifactEntry:
    return default_client().log_dict(_run_id(), dictionary, artifact_file)


def log_figure(figure: Any, artifact_file: str) -> ArtifactEntry:
    return default_client().log_figure(_run_id(), figure, artifact_file)


def list_artifacts(run_id: str | None = None, path: str | None = None) -> list[ArtifactEntry]:
    return default_client().list_artifacts(_run_id(run_id), path)


def download_artifacts(run_id: str, artifact_path: str = "",
                       dst_path: str | os.PathLike[str] | None = None) -> Path:
    return default_client().download_artifacts(run_id, artifact_path, dst_path)


def log_dataset(source: Any, name: str | None = None, *, context: str = "", snapshot: bool = False,
                output: bool = False) -> Any:
    """Record that the active run read ``source`` (a file, folder, glob or an in-memory table);
    returns its :class:`~shipyard.entities.DatasetVersion`. See ``Client.log_dataset``."""
    return default_client().log_dataset(_run_id(), source, name, context=context, snapshot=snapshot, output=output)


def log_model(model: Any, artifact_path: str = "model", *, flavor: str | None = None, signature: Any = None,
              input_example: Any = None, code_paths: list[str] | None = None,
              artifacts: dict[str, str] | None = None, registered_model_name: str | None = None,
              flavor_options: dict[str, Any] | None = None) -> Any:
    """Log ``model`` (scikit-learn, XGBoost, LightGBM, PyTorch, ONNX, or a
    ``shipyard.models.PythonModel``) to the active run; with ``registered_model_name`` it also
    becomes the next version of that registered model. ``flavor_options`` go to the flavor
    (e.g. ``{"init_kwargs": {...}}`` for a PyTorch module)."""
    client = default_client()
    run_id = _run_id()
    manifest = client.log_model(run_id, model, artifact_path, flavor=flavor, signature=signature,
                                input_example=input_example, code_paths=code_paths, artifacts=artifacts,
                                flavor_options=flavor_options)
    if registered_model_name is not None:
        client.register_model(f"runs:/{run_id}/{manifest.artifact_path}", registered_model_name)
    return manifest


def register_model(model_uri: str, name: str) -> Any:
    """Register the logged model at ``runs:/<run_id>/<path>`` as the next version of ``name``."""
    return default_client().register_model(model_uri, name)


def set_alias(name: str, alias: str, version: int) -> Any:
    """Point ``alias`` of model ``name`` at ``version``: ``load_model("models:/name@alias")``."""
    return default_client().set_alias(name, alias, version)


def delete_alias(name: str, alias: str) -> None:
    default_client().delete_alias(name, alias)


def search_registered_models(filter_string: str | None = None, *, max_results: int = 100,
                             page_token: str | None = None) -> Any:
    """Registered models matching e.g. ``name LIKE 'churn%'``, by name."""
    return default_client().search_registered_models(filter_string, max_results=max_results, page_token=page_token)


def search_model_versions(filter_string: str | None = None, *, max_results: int = 100,
                          page_token: str | None = None) -> Any:
    """Model versions matching e.g. ``name = 'churn' and tags.candidate = 'yes'``, newest first."""
    return default_client().search_model_versions(filter_string, max_results=max_results, page_token=page_token)


def evaluate_model(model_uri: str, data: Any, *, target: str, model_type: str | None = None,
                   experiment_id: str | None = None, dataset_name: str | None = None) -> Any:
    """Evaluate a model on labelled data and log the metrics as a run linked to the version."""
    return default_client().evaluate_model(model_uri, data, target=target, model_type=model_type,
                                    experiment_id=experiment_id, dataset_name=dataset_name)


def promote_model(name: str, version: int, to: str, *, require: Sequence[str] = (), compare_to: str | None = None,
                  compare_metrics: Sequence[str] = (), max_regression: float = 0.01, dry_run: bool = False) -> Any:
    """Move alias ``to`` to the version only if its quality gates pass; see ``Client.promote_model``."""
    return default_client().promote_model(name, version, to, require=require, compare_to=compare_to,
                                   compare_metrics=compare_metrics, max_regression=max_regression, dry_run=dry_run)


def load_model(model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Any:
    """Load ``runs:/<run_id>/<path>`` or a local model folder; ``.predict(data)`` checks the
    input against the model's signature."""
    return default_client().load_model(model_uri, dst_path)


def seed_everything(seed: int) -> dict[str, bool]:
    """Seed random, numpy and torch (where installed); the seed is recorded as the tag
    ``shipyard.seed`` on the active run and on runs started later in this process."""
    from shipyard.tracking.seed import seed_everything as _seed

    seeded = _seed(seed)
    _state.seed = seed
    stack = getattr(_state.local, "stack", None)
    if stack:
        default_client().set_tags(stack[-1]._id, {"shipyard.seed": str(seed)})
    return seeded


# -- process exit ----------------------------------------------------------------------
def _at_exit() -> None:
    client = _state.client
    if client is None:
        return
    status = RunStatus.FAILED if getattr(sys, "last_value", None) is not None else RunStatus.FINISHED
    try:
        for stack in list(_state.stacks):
            while stack:
                client.set_terminated(stack.pop()._id, status)
        client.close()
    except Exception as exc:  # at exit nobody can catch it: say it, do not hide it
        print(f"shipyard: could not finish tracking at exit: {exc}", file=sys.stderr)


atexit.register(_at_exit)


def _reset_for_tests() -> None:
    """End every run and forget the client (used by the test suite between tests)."""
    _at_exit()
    with _state.lock:
        _state.client = None
        _state.tracking_uri = None
        _state.experiment_id = None
        _state.seed = None
        _state.user = None
        _state.stacks.clear()
        _state.local = threading.local()

