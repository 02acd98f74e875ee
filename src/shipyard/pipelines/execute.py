"""Running one step: read its inputs, call it (retrying with backoff), store its outputs, end its run.

The same function runs in the pipeline's own process (local executor) and in a worker process
(``--parallel N``): everything it needs is in a picklable :class:`StepTask`, and what it returns is a
picklable :class:`TaskResult`. The step's run was created (with its params and lineage edges) by the
pipeline before the task starts; the task writes the outputs, metrics and final status.
"""

from __future__ import annotations

import importlib
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import Metric, RunStatus
from shipyard.errors import InvalidInput
from shipyard.pipelines.outputs import OutputRecord, encode_records, load_output, save_outputs, split_outputs
from shipyard.pipelines.records import CACHE_KEY_TAG, KEY_TAG, OUTPUTS_TAG
from shipyard.pipelines.steps import Step
from shipyard.tracking import fluent

if TYPE_CHECKING:
    from shipyard.tracking.client import Client

__all__ = ["KEY_TAG", "OUTPUTS_TAG", "StepTask", "TaskResult", "execute", "execute_in_worker", "numeric_items",
           "record_lost", "step_reference", "warm_worker",
           "worker_client"]

ATTEMPTS_TAG = "shipyard.pipeline.attempts"
ERROR_TAG = "shipyard.error"
ERROR_ARTIFACT = "_shipyard/error.txt"


@dataclass(frozen=True)
class StepTask:
    call: str
    step: str  # "module:attribute" of the Step, for a worker to import
    run_id: str
    key: str
    cacheable: bool
    literals: dict[str, Any]
    inputs: dict[str, OutputRecord]
    tracking_uri: str = ""
    artifact_uri: str = ""


@dataclass(frozen=True)
class TaskResult:
    call: str
    ok: bool
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    attempts: int = 1
    seconds: float = 0.0
    error: str = ""  # "Type: message" of the last failure
    traceback: str = ""
    user_error: bool = True  # False: the inputs did not fit the step (not retried)


def numeric_items(values: dict[str, Any]) -> dict[str, float]:
    """The metrics a step reports: the number-valued items of a returned dict (bools are not metrics)."""
    out: dict[str, float] = {}
    for value in values.values():
        if isinstance(value, dict):
            out.update({k: float(v) for k, v in value.items()
                        if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)})
    return out


def execute(client: Client, step: Step, task: StepTask, live: dict[tuple[str, str], Any]) -> TaskResult:
    """Run ``task`` and record its outcome on its run (FINISHED with outputs, or FAILED with the error).
    ``live`` holds values already in memory by (run id, output path); new outputs are added to it."""
    started = time.perf_counter()
    attempts = 0
    try:
        kwargs = dict(task.literals)
        for name, record in task.inputs.items():
            if (record.run_id, record.path) not in live:
                live[(record.run_id, record.path)] = load_output(client.artifacts, record)
            kwargs[name] = live[(record.run_id, record.path)]
        for name, value in kwargs.items():
            step.check_argument(name, value)
    except Exception as exc:
        return _fail(client, task, exc, attempts, started, user_error=False)
    delay = step.retry_delay
    while True:
        attempts += 1
        try:
            # shipyard.log_metric inside the step logs to the step's run
            with fluent.activated(client, task.run_id):
                result = step.fn(**kwargs)
            values = split_outputs(step.name, step.outputs, result)
            records = save_outputs(client, task.run_id, step.name, values, allow_pickle=step.pickle)
            break
        except InvalidInput as exc:  # an output that cannot be stored: retrying will not help
            return _fail(client, task, exc, attempts, started, user_error=False)
        except Exception as exc:
            if attempts > step.retries:
                return _fail(client, task, exc, attempts, started)
            time.sleep(delay)
            delay *= 2
    for name, value in values.items():
        live[(task.run_id, records[name].path)] = value
    metrics = {k: v for k, v in numeric_items(values).items() if not math.isnan(v)}
    tags = {OUTPUTS_TAG: encode_records(records), ATTEMPTS_TAG: str(attempts)}
    if task.cacheable:  # with the outputs all stored: only then is the run a cache entry
        tags[CACHE_KEY_TAG] = task.key
    client.flush()  # what the step logged itself (shipyard.log_metric) is written before its run ends
    now = now_ms()  # metrics, tags and the end in one transaction
    client.tracking.write_run(task.run_id, tags=tags.items(), status=RunStatus.FINISHED, end_time=now,
                              metrics=[Metric(k, v, 0, now) for k, v in metrics.items()])
    return TaskResult(task.call, True, records, metrics, attempts, time.perf_counter() - started)


def _fail(client: Client, task: StepTask, exc: BaseException, attempts: int, started: float, *,
          user_error: bool = True) -> TaskResult:
    message = f"{type(exc).__name__}: {exc}"
    tb = exc.__traceback__
    if tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # start at the step's own code: the frame that called it is ours, not the user's
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    client.set_tags(task.run_id, {ERROR_TAG: message[:8000], ATTEMPTS_TAG: str(attempts)})
    client.log_text(task.run_id, text, ERROR_ARTIFACT)
    client.set_terminated(task.run_id, RunStatus.FAILED)
    return TaskResult(task.call, False, attempts=attempts, seconds=time.perf_counter() - started, error=message,
                      traceback=text, user_error=user_error)


def step_reference(step: Step) -> str:
    """How a worker process finds the step: the module and the name it is bound to there."""
    return f"{step.fn.__module__}:{step.fn.__qualname__}"


def _import_step(reference: str) -> Step:
    module_name, _, attribute = reference.partition(":")
    candidates = [module_name] + (["__mp_main__"] if module_name == "__main__" else [])
    for name in candidates:
        module = sys.modules.get(name) or importlib.import_module(name)
        found: Any = module
        for part in attribute.split("."):
            found = getattr(found, part, None)
        if isinstance(found, Step):
            return found
    raise InvalidInput(f"step {reference!r} cannot be imported in a worker process: define steps at the top level "
                       "of an importable module to run them in parallel")


_worker: dict[tuple[str, str], Client] = {}


def worker_client(tracking_uri: str, artifact_uri: str) -> Client:
    """In a worker process (a pool process, a Ray worker), the client on the driver's stores, built once. It
    is the fluent SDK's own client, so ``shipyard.log_metric`` inside a step or a trial reaches the run it is
    running for. ``artifact_uri`` is the driver's resolved artifact location (``default_artifact_uri``)."""
    key = (tracking_uri, artifact_uri)
    if key not in _worker:
        if artifact_uri:
            os.environ["SHIPYARD_ARTIFACT_URI"] = artifact_uri  # read by the settings of the client built next
        fluent.set_tracking_uri(tracking_uri)  # closes the client of other stores, if this worker had one
        _worker.clear()
        _worker[key] = fluent.default_client()
    return _worker[key]


def execute_in_worker(task: StepTask, step: Step | None = None) -> TaskResult:
    """:func:`execute` in another process (a pool process, a Ray worker on any node), with a client of its own
    on the same stores. ``step`` is given when the worker cannot import it (a step of a ``__main__`` script
    travels by value to Ray); otherwise the worker imports it by its reference."""
    client = worker_client(task.tracking_uri, task.artifact_uri)
    started = time.perf_counter()
    try:
        found = step if step is not None else _import_step(task.step)
    except Exception as exc:
        return _fail(client, task, exc, 0, started, user_error=False)
    result = execute(client, found, task, {})
    client.flush()
    return result


def warm_worker(tracking_uri: str, artifact_uri: str) -> int:
    """Import what a step task needs and open its client, in a Ray worker that is about to be given steps:
    run while the pipeline prepares, it takes the worker's start-up off the steps' path. Returns the pid."""
    worker_client(tracking_uri, artifact_uri)
    return os.getpid()


def record_lost(client: Client, task: StepTask, error: str) -> TaskResult:
    """Record on the step's run that the process running it was lost (a worker that died, a Ray task that
    never returned): the run is FAILED with ``error`` (which carries any remote traceback) instead of being
    left RUNNING."""
    message = error.strip().splitlines()[0] if error.strip() else "the worker running the step was lost"
    client.set_tags(task.run_id, {ERROR_TAG: message[:8000]})
    client.log_text(task.run_id, error, ERROR_ARTIFACT)
    client.set_terminated(task.run_id, RunStatus.FAILED)
    return TaskResult(task.call, False, error=message, traceback=error, user_error=False)
