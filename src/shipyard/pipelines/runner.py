"""Running a pipeline: a parent run, one child run per step, the cache, gates, retries, resume.

Each step call is, in the order of the graph: keyed (:mod:`shipyard.pipelines.cache`), looked up (a
FINISHED step run carrying the same ``shipyard.pipeline.cache_key`` tag in the pipeline's experiment,
so the cache is wherever the store is: a team server shares it between machines), then either
recorded as a hit (a child run linked to the run that produced the outputs) or executed. A failing step
ends the pipeline run FAILED with the error, after the steps already running have finished and stored
their outputs; ``resume`` continues that run from there.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import gc
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.clock import now_ms
from shipyard.entities import Edge, Metric, Node, NodeKind, Relation, RunStatus
from shipyard.errors import GateFailed, InvalidInput, StepFailed
from shipyard.pipelines import execute as ex
from shipyard.pipelines.cache import step_key
from shipyard.pipelines.executors import Executor, open_executor
from shipyard.pipelines.graph import Call, Graph, Ref
from shipyard.pipelines.outputs import OutputRecord, decode_records, load_output
from shipyard.pipelines.records import (
    CACHED_FROM_TAG,
    GATE_EXPR_TAG,
    GATE_TAG,
    GRAPH_TAG,
    NAME_TAG,
    PARAMS_TAG,
    PARENT_TAG,
    ROLE_TAG,
    STATUS_TAG,
    STEP_TAG,
    find_finished_step,
    graph_text,
    read_params,
)
from shipyard.tracking.client import default_artifact_uri
from shipyard.tracking.service import new_run_info

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion, Run
    from shipyard.models.gates import GateResult, PromotionResult
    from shipyard.pipelines.dsl import Pipeline
    from shipyard.tracking.client import Client

__all__ = ["RUN_OPTIONS", "PipelineRun", "StepOutcome", "run_pipeline"]

RUN_OPTIONS = frozenset({"experiment", "cache", "rerun", "resume", "parallel", "register", "promote_to",
                         "model_step", "executor", "ray_address", "client", "on_step"})


@dataclass
class StepOutcome:
    """What happened to one step call in this pipeline run."""

    call: str
    status: str  # executed | cached | resumed | failed | skipped
    run_id: str | None = None
    key: str = ""
    outputs: dict[str, OutputRecord] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    cached_from: str | None = None
    seconds: float = 0.0
    attempts: int = 0
    gates: list[GateResult] = field(default_factory=list)
    error: str = ""

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class PipelineRun:
    """The outcome of :meth:`Pipeline.run`: the parent run, each step's outcome, the registered version."""

    run_id: str
    pipeline: str
    status: str
    params: dict[str, Any]
    steps: dict[str, StepOutcome]
    model_version: ModelVersion | None = None
    promotion: PromotionResult | None = None
    _client: Client | None = field(default=None, repr=False)
    _live: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    @property
    def executed(self) -> list[str]:
        return [c for c, s in self.steps.items() if s.status == "executed"]

    @property
    def cached(self) -> list[str]:
        return [c for c, s in self.steps.items() if s.status in ("cached", "resumed")]

    def output(self, call: str, name: str = "output") -> Any:
        """The value of a step's output (read from the artifact store unless still in memory)."""
        outcome = self.steps.get(call)
        if outcome is None or name not in outcome.outputs:
            raise InvalidInput(f"pipeline run {self.run_id} has no output {name!r} of step {call!r}")
        record = outcome.outputs[name]
        key = (record.run_id, record.path)
        if key not in self._live:
            assert self._client is not None
            self._live[key] = load_output(self._client.artifacts, record)
        return self._live[key]


_DONE = frozenset({"executed", "cached", "resumed"})
_WAITING = StepOutcome("", "waiting")


def _client_for(client: Client | None) -> Client:
    if client is not None:
        return client
    from shipyard.tracking.fluent import default_client

    return default_client()


@contextlib.contextmanager
def _old_objects_set_aside() -> Iterator[None]:
    """While the pipeline runs, the garbage collector leaves alone every object that existed before:
    the libraries the pipeline's module imported (pandas, scikit-learn: hundreds of thousands of
    objects) would otherwise be walked by the full collection that importing the store's libraries
    sets off, 60-90 ms of a run that takes its steps from the cache. Everything is handed back to the
    collector when the run ends (cycles that became garbage meanwhile are collected then). Skipped
    when the process froze objects itself (a serving process does): unfreezing would undo that."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@_old_objects_set_aside()
def run_pipeline(pipeline: Pipeline, params: Mapping[str, Any], *, experiment: str | None = None, cache: bool = True,
                 rerun: Sequence[str] = (), resume: str | None = None, parallel: int = 1,
                 register: str | None = None, promote_to: str | None = None, model_step: str | None = None,
                 executor: str = "local", ray_address: str | None = None, client: Client | None = None,
                 on_step: Callable[[StepOutcome], None] | None = None) -> PipelineRun:
    """Run ``pipeline`` with ``params``.

    ``experiment``: where its runs go (default: the pipeline's name). ``cache=False`` executes every step;
    ``rerun`` names steps to execute even if cached (per-step invalidation). ``resume``: a failed run of this
    pipeline to continue (its parameters are reused). ``parallel``: how many independent steps may run at
    once, each in its own process (with ``executor="ray"``: at most this many Ray tasks at once; by default
    as many as the cluster's resources allow). ``executor``: ``"local"`` (this machine) or ``"ray"`` (each
    step a Ray task asking for its ``resources``, on the cluster at ``ray_address``, ``RAY_ADDRESS``, or a
    new local instance). ``register``: register the model a step produced (``model_step`` when
    several did) under this name once every gate passed; ``promote_to``: then move this alias to it through
    the registry's gates, which re-check every step gate. ``on_step`` is called with each step's outcome as it
    is known (the CLI prints it). Raises ``StepFailed`` or ``GateFailed`` (the
    pipeline run is FAILED then), ``InvalidInput``, ``ClusterUnavailable`` or ``MissingDependency`` before
    anything is recorded.
    """
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise InvalidInput(f"parallel must be a whole number >= 1, got {parallel!r}")
    if promote_to and not register:
        raise InvalidInput("promote_to needs register=<model name>: only a registered version can be promoted")
    client = _client_for(client)
    parent: Run | None = None
    if resume:
        parent = _resumable(client, pipeline, resume)
        stored = read_params(parent)
        given = dict(params.items())
        if given and any(stored.get(k) != v for k, v in given.items()):
            raise InvalidInput(f"run {resume} ran with parameters {stored}; a resumed run keeps them (start a new run "
                               "to change parameters)")
        params = stored
    values = pipeline.params(params)
    graph = pipeline.build(values)
    unknown = sorted(set(rerun) - {c.step.name for c in graph.calls.values()} - set(graph.calls))
    if unknown:
        raise InvalidInput(f"cannot re-run {unknown[0]!r}: pipeline {pipeline.name!r} has the steps "
                           f"{', '.join(graph.calls)}")
    runner = _Runner(client, pipeline, graph, values, cache=cache, rerun=set(rerun), on_step=on_step)
    stores = (client.tracking_uri, default_artifact_uri(client.settings))
    with open_executor(executor, parallel=parallel, graph=graph, ray_address=ray_address, stores=stores) as pool:
        runner.start(experiment, parent)
        result = runner.run(pool)
    if register:
        runner.register(result, register, promote_to, model_step)
    return result


def _resumable(client: Client, pipeline: Pipeline, run_id: str) -> Run:
    run = client.get_run(run_id)
    tags = run.data.tags
    if tags.get(ROLE_TAG) != "pipeline":
        raise InvalidInput(f"run {run_id} is not a pipeline run; resume takes the id `shipyard pipeline list` shows")
    if tags.get(NAME_TAG) != pipeline.name:
        raise InvalidInput(f"run {run_id} is a run of pipeline {tags.get(NAME_TAG)!r}, not {pipeline.name!r}")
    if run.info.status is RunStatus.FINISHED:
        raise InvalidInput(f"run {run_id} finished; there is nothing to resume (run the pipeline again: "
                           "unchanged steps come from the cache)")
    return run


class _Runner:
    def __init__(self, client: Client, pipeline: Pipeline, graph: Graph, params: dict[str, Any], *, cache: bool,
                 rerun: set[str], on_step: Callable[[StepOutcome], None] | None = None) -> None:
        self.on_step = on_step
        self.client = client
        self.pipeline = pipeline
        self.graph = graph
        self.params = params
        self.cache = cache
        self.rerun = rerun
        self.outcomes: dict[str, StepOutcome] = {}
        self.live: dict[tuple[str, str], Any] = {}
        self.run_id = ""
        self.experiment_id = ""
        self.resumed_from: str | None = None

    # -- the parent run ------------------------------------------------------------------
    def start(self, experiment: str | None, parent: Run | None) -> None:
        client = self.client
        if parent is not None:
            self.run_id = self.resumed_from = parent.info.run_id
            self.experiment_id = parent.info.experiment_id
            client.update_run(self.run_id, status=RunStatus.RUNNING)
            # a run from before the graph was recorded gains it on resume
            client.set_tags(self.run_id, {STATUS_TAG: "running", "shipyard.pipeline.resumed": "true",
                                          **self._graph_tag()})
            return
        from shipyard.auth import current_user
        from shipyard.tracking.capture import capture_run_context

        # The run's origin (git state, system, packages) is gathered while the store opens: the first store call
        # imports SQLAlchemy and the tables while git answers in processes of its own (the same capture as before).
        with futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-capture") as background:
            capturing = background.submit(capture_run_context, client.settings)
            self.experiment_id = client.get_or_create_experiment(experiment or self.pipeline.name).experiment_id
            context = capturing.result()
        text = json.dumps(self.params, sort_keys=True, allow_nan=True)
        if len(text) > 8000:
            raise InvalidInput(f"pipeline {self.pipeline.name!r}: its parameters take {len(text)} characters as JSON; "
                               "at most 8000 are recorded (pass big values through a step that reads them)")
        tags = {**context.tags, ROLE_TAG: "pipeline", NAME_TAG: self.pipeline.name, PARAMS_TAG: text,
                STATUS_TAG: "running", "shipyard.pipeline.steps": str(len(self.graph.calls)), **self._graph_tag()}
        params = {k: _param_text(v) for k, v in self.params.items()}
        self.run_id = self._new_run(self.pipeline.name, tags, params=params, parent=None,
                                    user_id=client.principal.run_user(current_user()),
                                    source=context.tags.get("shipyard.source.entry_point", ""))
        for path, content in context.artifacts.items():
            client.artifacts.log_bytes(self.run_id, content, path)

    def _graph_tag(self) -> dict[str, str]:
        text = graph_text({c: self.graph.calls[c].upstream() for c in self.graph.order()})
        # a graph too big for a tag is left out: the UI then draws the run from its lineage edges
        return {} if text is None else {GRAPH_TAG: text}

    def _new_run(self, name: str, tags: dict[str, str], *, params: dict[str, str] | None = None,
                 metrics: dict[str, float] | None = None, finished: bool = False, parent: str | None = "",
                 user_id: str = "", source: str = "") -> str:
        """Create a run of the pipeline's experiment with its tags, params and metrics in one transaction (a child
        of the pipeline's run unless ``parent`` is None; ``finished``: ended at once, as a cache hit is)."""
        tracking = self.client.tracking
        info = new_run_info(tracking.principal, self.experiment_id, name,
                            parent_run_id=self.run_id if parent == "" else parent, user_id=user_id, source=source)
        tracking.write_run(info.run_id, create=info, tags=tags.items(), params=(params or {}).items(),
                           metrics=[Metric(k, v, 0, info.start_time) for k, v in (metrics or {}).items()],
                           status=RunStatus.FINISHED if finished else None, end_time=now_ms() if finished else None)
        return info.run_id

    def _finish(self, status: RunStatus, error: str = "") -> None:
        tags = {STATUS_TAG: status.value.lower()}
        if error:
            tags[ex.ERROR_TAG] = error[:8000]
        try:
            self.client.flush()  # what steps logged in this process is written before the run ends
        finally:
            self.client.tracking.write_run(self.run_id, tags=tags.items(), status=status, end_time=now_ms())

    # -- scheduling ----------------------------------------------------------------------
    def run(self, pool: Executor | None) -> PipelineRun:
        order = self.graph.order()
        pending = list(order)
        running: dict[futures.Future[ex.TaskResult], str] = {}
        stop: Exception | None = None
        try:
            while pending or running:
                if stop is None:
                    for call_id in list(pending):
                        if not all(self.outcomes.get(u, _WAITING).status in _DONE
                                   for u in self.graph.calls[call_id].upstream()):
                            continue
                        if pool is not None and len(running) >= pool.slots:
                            break
                        pending.remove(call_id)
                        stop = self._start_call(call_id, pool, running)
                        if stop is not None or (pool is None and running):
                            break
                if not running:
                    if stop is not None or not pending:
                        break
                    continue
                done, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                for future in done:
                    call_id = running.pop(future)
                    error = self._finish_call(call_id, self._result(call_id, future))
                    stop = stop or error
        except BaseException as exc:
            for call_id in pending:
                self.outcomes.setdefault(call_id, StepOutcome(call_id, "skipped"))
            self._finish(RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED,
                         f"{type(exc).__name__}: {exc}")
            raise
        for call_id in pending:
            self.outcomes.setdefault(call_id, StepOutcome(call_id, "skipped"))
        if stop is not None:
            self._finish(RunStatus.FAILED, str(stop))
            raise stop
        self._finish(RunStatus.FINISHED)
        return PipelineRun(self.run_id, self.pipeline.name, "FINISHED", self.params,
                           {c: self.outcomes[c] for c in order}, _client=self.client, _live=self.live)

    def _result(self, call_id: str, future: futures.Future[ex.TaskResult]) -> ex.TaskResult:
        try:
            return future.result()
        except Exception as exc:  # the worker itself was lost: the step's run must not stay RUNNING
            outcome = self.outcomes[call_id]
            task = ex.StepTask(call_id, "", outcome.run_id or "", outcome.key, False, {}, {})
            return ex.record_lost(self.client, task, str(exc) or type(exc).__name__)

    def _inputs(self, call: Call) -> dict[str, OutputRecord]:
        inputs = {}
        for name, ref in call.refs().items():
            produced = self.outcomes[ref.call].outputs
            inputs[name] = produced[ref.output]
        return inputs

    def _key(self, call: Call, inputs: dict[str, OutputRecord]) -> tuple[str, dict[str, str]]:
        files = _path_digests(call.literals())
        key = step_key(call.step.fn, literals=call.literals(), inputs={k: r.digest for k, r in inputs.items()},
                       files=files, outputs=call.step.outputs, pickle=call.step.pickle)
        return key, files

    def _start_call(self, call_id: str, pool: Executor | None,
                    running: dict[futures.Future[ex.TaskResult], str]) -> Exception | None:
        call = self.graph.calls[call_id]
        inputs = self._inputs(call)
        key, files = self._key(call, inputs)
        forced = call_id in self.rerun or call.step.name in self.rerun
        found: Run | None = None
        status = "cached"
        if self.resumed_from and not forced:
            found = find_finished_step(self.client, self.experiment_id, key, parent=self.resumed_from)
            status = "resumed"
        if found is None and self.cache and call.step.cache and not forced:
            found = find_finished_step(self.client, self.experiment_id, key)
            status = "cached"
        if found is not None:
            return self._record_hit(call, key, inputs, found, status)
        run_id = self._create_step_run(call, key, inputs, files)
        task = ex.StepTask(call_id, ex.step_reference(call.step), run_id, key, self.cache and call.step.cache,
                           call.literals(), inputs, self.client.tracking_uri,
                           default_artifact_uri(self.client.settings))
        self.outcomes[call_id] = StepOutcome(call_id, "running", run_id, key)
        if pool is None:
            future: futures.Future[ex.TaskResult] = futures.Future()
            future.set_result(ex.execute(self.client, call.step, task, self.live))
        else:
            future = pool.submit(call.step, task)
        running[future] = call_id
        return None

    def _step_tags(self, call: Call, key: str) -> dict[str, str]:
        return {ROLE_TAG: "step", NAME_TAG: self.pipeline.name, STEP_TAG: call.id, PARENT_TAG: self.run_id,
                ex.KEY_TAG: key, "shipyard.pipeline.function": f"{call.step.fn.__module__}.{call.step.fn.__qualname__}"}

    def _edges(self, call: Call, run_id: str, inputs: dict[str, OutputRecord]) -> list[Edge]:
        me = Node(NodeKind.RUN, run_id)
        edges = [Edge(Node(NodeKind.RUN, record.run_id), me, Relation.STEP, f"{call.args[name].call}.{record.name} "
                      f"-> {name}") for name, record in inputs.items() if isinstance(call.args[name], Ref)]
        for before in sorted(call.after):
            before_run = self.outcomes[before].run_id
            if before_run:
                edges.append(Edge(Node(NodeKind.RUN, before_run), me, Relation.STEP, "after"))
        return edges

    def _create_step_run(self, call: Call, key: str, inputs: dict[str, OutputRecord], files: dict[str, str]) -> str:
        client = self.client
        params = {k: _param_text(v) for k, v in call.literals().items()}
        params.update({name: f"{call.args[name].call}.{r.name}" for name, r in inputs.items()})
        run_id = self._new_run(f"{self.pipeline.name}.{call.id}", self._step_tags(call, key), params=params)
        edges = self._edges(call, run_id, inputs)
        if edges:
            client.store.lineage.add_edges(edges)
        for argument, _digest in files.items():  # raw data read by the step: dataset -> step in lineage
            from pathlib import Path

            path = call.literals()[argument]
            client.log_dataset(run_id, path, Path(path).stem or argument, context=argument)
        return run_id

    def _record_hit(self, call: Call, key: str, inputs: dict[str, OutputRecord], found: Run,
                    status: str) -> Exception | None:
        tags = found.data.tags
        origin = tags.get(CACHED_FROM_TAG) or found.info.run_id
        outputs = decode_records(tags[ex.OUTPUTS_TAG])
        metrics = dict(found.data.metrics)
        # One transaction for the run (tags, metrics, FINISHED) and one for its edges: a hit reads no outputs.
        run_id = self._new_run(f"{self.pipeline.name}.{call.id}",
                               {**self._step_tags(call, key), CACHED_FROM_TAG: origin,
                                ex.OUTPUTS_TAG: tags[ex.OUTPUTS_TAG], "shipyard.pipeline.cache": status},
                               metrics=metrics, finished=True)
        edges = self._edges(call, run_id, inputs)
        edges.append(Edge(Node(NodeKind.RUN, origin), Node(NodeKind.RUN, run_id), Relation.STEP, status))
        self.client.store.lineage.add_edges(edges)
        outcome = StepOutcome(call.id, status, run_id, key, outputs, metrics, cached_from=origin)
        self.outcomes[call.id] = outcome
        return self._check_gates(call, outcome)

    def _finish_call(self, call_id: str, result: ex.TaskResult) -> Exception | None:
        call = self.graph.calls[call_id]
        outcome = self.outcomes[call_id]
        outcome.seconds, outcome.attempts = result.seconds, result.attempts
        if not result.ok:
            outcome.status, outcome.error = "failed", result.error
            if self.on_step is not None:
                self.on_step(outcome)
            tries = f" after {result.attempts} attempts" if result.attempts > 1 else ""
            failed = StepFailed(f"step {call_id!r} of pipeline {self.pipeline.name!r} failed{tries}: {result.error} "
                                f"(run {outcome.run_id}; its traceback is the artifact {ex.ERROR_ARTIFACT}; finished "
                                f"steps are kept: resume with `shipyard pipeline run ... --resume {self.run_id}`)",
                                step=call_id, run_id=outcome.run_id, pipeline_run_id=self.run_id,
                                traceback=result.traceback)
            if result.traceback:  # where the step ran (a pool process, a Ray node), so the user sees it here
                failed.add_note(f"traceback of step {call_id!r}:\n{result.traceback.rstrip()}")
            return failed
        outcome.status, outcome.outputs, outcome.metrics = "executed", result.outputs, result.metrics
        if outcome.metrics == {} and call.step.gates:  # metrics logged with shipyard.log_metric inside the step
            assert outcome.run_id is not None  # an executed step has its run
            outcome.metrics = dict(self.client.get_run(outcome.run_id).data.metrics)
        return self._check_gates(call, outcome)

    def _check_gates(self, call: Call, outcome: StepOutcome) -> Exception | None:
        stop = self._gates(call, outcome)
        if self.on_step is not None:
            self.on_step(outcome)
        return stop

    def _gates(self, call: Call, outcome: StepOutcome) -> Exception | None:
        if not call.step.gates:
            return None
        from shipyard.models.gates import check_requirement, parse_requirements

        outcome.gates = [check_requirement(cmp, outcome.metrics) for cmp in parse_requirements(call.step.gates)]
        expressions = " and ".join(g.gate for g in outcome.gates)
        self.client.set_tags(outcome.run_id or self.run_id, {GATE_TAG: "passed" if outcome.gates_passed else "failed",
                                                             GATE_EXPR_TAG: expressions[:8000]})
        if outcome.gates_passed:
            return None
        report = "; ".join(f"{g.gate}: {'no value' if g.candidate is None else f'{g.candidate:g}'} ({g.reason})"
                           for g in outcome.gates if not g.passed)
        return GateFailed(f"pipeline {self.pipeline.name!r} stopped: step {call.id!r} did not pass its gate: {report}",
                          step=call.id, pipeline_run_id=self.run_id,
                          gates=[{"gate": g.gate, "value": g.candidate, "passed": g.passed} for g in outcome.gates])

    # -- registry ------------------------------------------------------------------------
    def register(self, result: PipelineRun, name: str, promote_to: str | None, model_step: str | None) -> None:
        from shipyard.models.evaluate import EVALUATION_RUN_TAG

        models = [(c, o, r) for c, o in result.steps.items() for r in o.outputs.values() if r.serializer == "model"]
        if model_step is not None:
            models = [m for m in models if m[0] == model_step]
        if len(models) != 1:
            which = ", ".join(f"{c}.{r.name}" for c, _, r in models) or "none"
            raise InvalidInput(f"register needs exactly one model output (pass model_step=<step>); found: {which}")
        call_id, _, record = models[0]
        version = self.client.register_model(record.uri, name, tags={"shipyard.pipeline.run": self.run_id})
        gated = [c for c in self.graph.order() if self.graph.calls[c].step.gates and
                 c in self.graph.downstream(call_id)]
        if gated:  # the gated step's metrics are this version's evaluation, where the registry's gates read them
            self.client.set_model_version_tag(name, version.version, EVALUATION_RUN_TAG,
                                              result.steps[gated[-1]].run_id)
        result.model_version = self.client.get_model_version(name, version.version)
        if promote_to:
            require = [g for c in self.graph.calls.values() for g in c.step.gates]
            result.promotion = self.client.promote_model(name, version.version, promote_to, require=require)


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, allow_nan=True)
    return text if len(text) <= 6000 else text[:5997] + "..."


def _path_digests(literals: Mapping[str, Any]) -> dict[str, str]:
    """The content digest of each literal argument that names an existing file or folder (its data is an
    input of the step, so new data must miss the cache)."""
    import os

    out: dict[str, str] = {}
    for name, value in literals.items():
        if isinstance(value, str) and value and len(value) < 4096 and os.path.exists(value):
            from shipyard.data.digest import digest_file, digest_folder

            out[name] = digest_folder(value).digest if os.path.isdir(value) else digest_file(value)
    return out
