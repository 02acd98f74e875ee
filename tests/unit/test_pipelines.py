"""Pipelines on a real SQLite store and local artifact store: DSL, serializers, cache, gates, failures, lineage."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import GateFailed, InvalidInput, StepFailed
from shipyard.pipelines import pipeline, register_serializer, step
from shipyard.pipelines.records import (
    GRAPH_TAG,
    graph_text,
    invalidate,
    list_pipeline_runs,
    read_graph,
    step_runs,
    summarize,
)

PROJECT = '''
import numpy as np
import pandas as pd
from shipyard.pipelines import step, pipeline
from shipyard.models import PythonModel

CALLS = []


class Threshold(PythonModel):
    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, context, model_input):
        return (model_input["a"] > self.cut).astype(int)


def scale(values, factor):
    return values * factor


@step
def load(path: str) -> pd.DataFrame:
    CALLS.append("load")
    return pd.read_csv(path)


@step
def left(df: pd.DataFrame, factor: float = 2.0) -> pd.DataFrame:
    CALLS.append("left")
    return pd.DataFrame({"a": scale(df["a"], factor)})


@step
def right(df: pd.DataFrame, shift: int = 1) -> np.ndarray:
    CALLS.append("right")
    return (df["b"].to_numpy() + shift).astype("float64")


@step
def join(a: pd.DataFrame, b: np.ndarray) -> pd.DataFrame:
    CALLS.append("join")
    return a.assign(b=b)


@step
def train(X: pd.DataFrame, cut: float = 10.0) -> Threshold:
    CALLS.append("train")
    return Threshold(cut)


@step(gate="metrics.positive_rate >= 0.5")
def evaluate(model: Threshold, X: pd.DataFrame) -> dict:
    CALLS.append("evaluate")
    return {"positive_rate": float(model.predict(None, X).mean()), "rows": len(X)}


@pipeline
def churn(path: str, factor: float = 2.0, shift: int = 1, cut: float = 10.0):
    df = load(path)
    X = join(left(df, factor=factor), right(df, shift=shift))
    evaluate(train(X, cut=cut), X)
'''


@pytest.fixture
def project(tmp_path: Path, fluent: str, monkeypatch: pytest.MonkeyPatch):
    """A project module on sys.path, its data file, and a fresh store; the module can be rewritten and reloaded."""
    folder = tmp_path / "proj"
    folder.mkdir()
    name = f"pipeproj_{tmp_path.name.replace('-', '_')}"
    (folder / f"{name}.py").write_text(textwrap.dedent(PROJECT))
    pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40) % 5}).to_csv(folder / "data.csv", index=False)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module(name)
    yield module, folder
    sys.modules.pop(name, None)


def _statuses(result) -> dict[str, str]:
    return {call: outcome.status for call, outcome in result.steps.items()}


def test_a_step_outside_a_pipeline_is_the_plain_function() -> None:
    @step
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8


def test_graph_as_text_mermaid_and_dot(project) -> None:
    module, _folder = project
    graph = module.churn.graph(path="data.csv")
    text = graph.to_text()
    assert graph.order() == ["load", "left", "right", "join", "train", "evaluate"] or \
        set(graph.order()[1:3]) == {"left", "right"}
    assert "join()  <- left (a), right (b)" in text
    assert "evaluate() [gate: metrics.positive_rate >= 0.5]" in text
    mermaid = graph.to_mermaid()
    assert mermaid.startswith("flowchart LR")
    assert "s_left -->|a| s_join" in mermaid
    dot = graph.to_dot()
    assert '"left" -> "join" [label="a"];' in dot


def test_cold_then_cached_then_changed_parameter_reruns_exactly_downstream(project) -> None:
    module, folder = project
    path = str(folder / "data.csv")
    first = module.churn.run(path=path)
    assert first.status == "FINISHED"
    assert first.executed == list(first.steps)
    assert first.steps["evaluate"].metrics == {"positive_rate": 0.85, "rows": 40.0}
    assert isinstance(first.output("train"), module.Threshold)
    module.CALLS.clear()
    again = module.churn.run(path=path)
    assert again.cached == list(again.steps)
    assert module.CALLS == []
    assert again.steps["join"].cached_from == first.steps["join"].run_id
    assert again.output("join").equals(first.output("join"))

    changed = module.churn.run(path=path, shift=2)  # only `right` and what needs it
    assert sorted(changed.executed) == ["evaluate", "join", "right", "train"]
    assert sorted(changed.cached) == ["left", "load"]
    # the evaluation's inputs changed but its result did not: still one more run of each
    assert changed.steps["evaluate"].metrics["positive_rate"] == 0.85


def test_editing_one_steps_code_reruns_it_and_its_descendants_only(project) -> None:
    module, folder = project
    path = str(folder / "data.csv")
    module.churn.run(path=path)
    source = folder / f"{module.__name__}.py"
    # outputs are content-addressed: an edit that changes the step's output re-runs what needs it
    edited = source.read_text().replace('(df["b"].to_numpy() + shift)', '(df["b"].to_numpy() + shift + 1)')
    source.write_text(edited)
    module = importlib.reload(module)
    result = module.churn.run(path=path)
    assert sorted(result.executed) == ["evaluate", "join", "right", "train"]
    # a project helper a step calls is part of its code too
    source.write_text(source.read_text().replace("return values * factor", "return values * factor + 1"))
    module = importlib.reload(module)
    result = module.churn.run(path=path)
    assert sorted(result.executed) == ["evaluate", "join", "left", "train"]


def test_new_data_in_the_same_file_misses_the_cache(project) -> None:
    module, folder = project
    path = folder / "data.csv"
    module.churn.run(path=str(path))
    pd.DataFrame({"a": np.arange(40.0) + 1, "b": np.arange(40) % 5}).to_csv(path, index=False)
    assert module.churn.run(path=str(path)).executed == list(module.churn.graph(path="x").order())


def test_every_step_run_and_the_pipeline_run_are_recorded_whole(project, fluent: str) -> None:
    module, folder = project
    path = str(folder / "data.csv")
    first = module.churn.run(path=path, cut=10.0)
    again = module.churn.run(path=path, cut=10.0)
    client = shipyard.Client(fluent)
    for result, state in ((first, "executed"), (again, "cached")):
        parent = client.get_run(result.run_id)
        assert parent.info.status.value == "FINISHED"
        assert parent.info.end_time is not None
        assert parent.data.params["cut"] == "10.0"
        assert parent.data.tags["shipyard.pipeline.status"] == "finished"
        for call, outcome in result.steps.items():
            run = client.get_run(outcome.run_id)
            assert run.info.status.value == "FINISHED", call
            assert run.info.parent_run_id == result.run_id
            assert run.info.end_time is not None
            assert (run.data.tags.get("shipyard.pipeline.cache") or "executed") == state
            assert "shipyard.pipeline.outputs" in run.data.tags
        evaluate = client.get_run(result.steps["evaluate"].run_id)
        assert evaluate.data.metrics == {"positive_rate": 0.85, "rows": 40.0}
    # an executed step's run has its arguments as params; a hit names the run that has them
    assert client.get_run(first.steps["train"].run_id).data.params == {"cut": "10.0", "X": "join.output"}
    assert client.get_run(again.steps["train"].run_id).data.tags["shipyard.pipeline.cached_from"] == \
        first.steps["train"].run_id


def test_the_graph_is_recorded_on_the_pipeline_run_and_read_back_in_order(project, fluent: str) -> None:
    module, folder = project
    result = module.churn.run(path=str(folder / "data.csv"))
    graph = module.churn.graph(path="x")
    recorded = read_graph(shipyard.Client(fluent).get_run(result.run_id))
    assert recorded == {c: sorted(graph.calls[c].upstream()) for c in graph.order()}
    assert list(recorded) == graph.order()
    assert recorded["join"] == ["left", "right"]
    # a passing gate is recorded beside its expression, as a failing one is
    tags = shipyard.Client(fluent).get_run(result.steps["evaluate"].run_id).data.tags
    assert (tags["shipyard.pipeline.gate"], tags["shipyard.pipeline.gate_expr"]) == \
        ("passed", "metrics.positive_rate >= 0.5")


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_pipeline_run_records_where_it_ran_from(fluent: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The capture runs while the store opens (another thread): it must record what a capture made here records.
    from shipyard.tracking.capture import DIFF_ARTIFACT, capture_run_context

    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")
    for args in (["init", "-q"], ["add", "train.py"], ["commit", "-q", "-m", "first"]):
        if args[0] == "add":
            (repo / "train.py").write_text("print(1)\n")
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)
    (repo / "train.py").write_text("print(2)\n")  # a dirty work tree: the diff is an artifact too
    monkeypatch.chdir(repo)

    @step
    def one(n: int) -> int:
        return n

    @pipeline
    def origin(n: int = 1) -> None:
        one(n)

    result = origin.run()
    client = shipyard.Client(fluent)
    expected = capture_run_context(client.settings)
    assert expected.tags["shipyard.git.dirty"] == "true"
    assert "shipyard.env.python" in expected.tags
    tags = client.get_run(result.run_id).data.tags
    assert {key: tags.get(key) for key in expected.tags} == expected.tags
    with client.artifacts.open(result.run_id, DIFF_ARTIFACT) as diff:
        assert diff.read() == expected.artifacts[DIFF_ARTIFACT]


def test_a_graph_too_big_for_a_tag_is_not_recorded() -> None:
    assert graph_text({f"call_{i}": [f"call_{i - 1}"] for i in range(1000)}) is None
    assert graph_text({"a": [], "b": ["a"]}) == '{"a":[],"b":["a"]}'


def test_an_old_run_without_the_graph_tag_still_renders_from_its_lineage(fluent: str) -> None:
    from shipyard.server.ui.pipeline_view import dag, step_rows

    @step
    def first() -> int:
        return 1

    @step
    def boom(x: int) -> int:
        raise ValueError("no")

    @step
    def last(x: int) -> int:
        return x

    @pipeline
    def stops():
        last(boom(first()))

    with pytest.raises(StepFailed):
        stops.run()
    client = shipyard.Client(fluent)
    parent = client.search_runs([client.get_experiment_by_name("stops").experiment_id],
                                "tags.`shipyard.pipeline.role` = 'pipeline'")[0]
    rows = step_rows(step_runs(client, parent.info.run_id))
    recorded = dag(client.store, rows, summarize(parent).steps, read_graph(parent))
    assert [(n.call, n.status_class) for n in recorded.nodes] == [("first", "executed"), ("boom", "failed"),
                                                                 ("last", "not-run")]
    assert len(recorded.edges) == 2
    for text in ("not json", "[1]", '{"a": 1}'):  # a tag that is not a graph reads as none
        client.set_tag(parent.info.run_id, GRAPH_TAG, text)
        assert read_graph(client.get_run(parent.info.run_id)) is None
    client.delete_tag(parent.info.run_id, GRAPH_TAG)  # as a run from before the graph was recorded
    old = client.get_run(parent.info.run_id)
    assert read_graph(old) is None
    drawn = dag(client.store, rows, summarize(old).steps, read_graph(old))
    assert [(n.call, n.status_class, n.title) for n in drawn.nodes] == [
        ("first", "executed", "first"), ("boom", "failed", "boom"), ("", "not-run", "1 step")]
    assert len(drawn.edges) == 1  # first -> boom, from the lineage; nothing recorded reaches what never ran


def test_defining_a_pipeline_imports_only_the_dsl() -> None:
    # The runner, the store (SQLAlchemy) and the serializers come with the first run, not with the module.
    code = ("import sys\nfrom shipyard import pipeline, step\n"
            "@step\ndef one(n: int) -> int:\n    return n\n"
            "@pipeline\ndef flow(n: int = 1):\n    one(n)\n"
            "print(sorted(m for m in ('shipyard.pipelines.runner', 'shipyard.pipelines.serializers', 'sqlalchemy')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_cache_rerun_and_invalidate(project, fluent: str) -> None:
    module, folder = project
    path = str(folder / "data.csv")
    module.churn.run(path=path)
    assert len(module.churn.run(path=path, cache=False).executed) == 6
    rerun = module.churn.run(path=path, rerun=["left"])
    assert rerun.executed == ["left"]  # same output as before: what needs it stays cached
    assert "load" in rerun.cached
    assert "right" in rerun.cached
    client = shipyard.Client(fluent)
    assert invalidate(client, "churn", "load") >= 1
    assert "load" in module.churn.run(path=path).executed


def test_lineage_explain_of_the_registered_model_reaches_every_step_and_the_raw_data(project) -> None:
    module, folder = project
    result = module.churn.run(path=str(folder / "data.csv"), register="churn-model", promote_to="staging")
    version = result.model_version
    assert version is not None
    assert result.promotion is not None
    assert result.promotion.promoted
    from shipyard.lineage import explain

    found = explain("models:/churn-model@staging")
    step_names = {r.run_name for r in found.runs}
    assert {f"churn.{s}" for s in ("load", "left", "right", "join", "train")} <= step_names
    assert [d.name for d in found.datasets] == ["data"]
    # a second, fully cached run registers a version whose lineage still reaches the data
    second = module.churn.run(path=str(folder / "data.csv"), register="churn-model")
    assert second.cached == list(second.steps)
    assert [d.name for d in explain(f"models:/churn-model/{second.model_version.version}").datasets] == ["data"]


def test_a_failing_gate_stops_the_pipeline_with_a_report(project, fluent: str) -> None:
    module, folder = project
    with pytest.raises(GateFailed) as caught:
        module.churn.run(path=str(folder / "data.csv"), cut=70.0, register="never")
    assert "step 'evaluate' did not pass its gate: metrics.positive_rate >= 0.5: 0.1" in str(caught.value)
    runs = list_pipeline_runs(shipyard.Client(fluent), pipeline="churn")
    assert runs[0].status == "FAILED"
    with pytest.raises(shipyard.errors.NotFound):
        shipyard.Client(fluent).get_registered_model("never")


def test_a_gate_that_does_not_parse_is_refused_when_the_step_is_defined() -> None:
    with pytest.raises(InvalidInput, match=r"step 'judge': gate 'metrics.f1 >>= 0.8' is not valid"):
        @step(gate="metrics.f1 >>= 0.8")
        def judge(x: int) -> dict:
            return {}


def test_a_cycle_is_refused_before_anything_runs(fluent: str) -> None:
    @step
    def a(x: int) -> int:
        return x

    @step
    def b(x: int) -> int:
        return x

    @pipeline
    def loop():
        first = a(1)
        second = b(first)
        first.after(second)

    with pytest.raises(InvalidInput, match=r"pipeline 'loop' has a cycle: (a -> b -> a|b -> a -> b)"):
        loop.run()
    assert list_pipeline_runs(shipyard.Client(fluent)) == []


def test_a_value_of_the_wrong_type_names_the_step_and_argument(fluent: str) -> None:
    @step
    def make(n: int) -> pd.DataFrame:
        return pd.DataFrame({"n": range(n)})

    @step
    def total(values: np.ndarray) -> float:
        return float(values.sum())

    @pipeline
    def literal_wrong():
        make("three")

    @pipeline
    def wired_wrong():
        total(make(3))

    with pytest.raises(InvalidInput, match=r"step 'make', argument 'n': expected int, got builtins.str \('three'\)"):
        literal_wrong.run()
    with pytest.raises(InvalidInput, match=r"step 'total', argument 'values': expected numpy.ndarray, but step "
                                           r"'make' returns pandas(.core.frame)?.DataFrame"):
        wired_wrong.run()


class Opaque:
    def __init__(self, value: int) -> None:
        self.value = value


def test_an_output_no_serializer_handles_names_its_type_and_the_ways_out(fluent: str) -> None:
    @step
    def opaque() -> Opaque:
        return Opaque(3)

    @step(pickle=True)
    def opaque_allowed() -> Opaque:
        return Opaque(4)

    @pipeline
    def refused():
        opaque()

    @pipeline
    def allowed():
        opaque_allowed()

    with pytest.raises(StepFailed, match=r"output 'output' is a tests.unit.test_pipelines.Opaque, which no serializer "
                                         r"handles .*register_serializer.*@step\(pickle=True\)"):
        refused.run()
    result = allowed.run()
    assert result.steps["opaque_allowed"].outputs["output"].pickle is True
    assert result.output("opaque_allowed").value == 4


class OpaqueSerializer:
    name = "tests.opaque"
    pickle_based = False

    def accepts(self, value: object) -> bool:
        return isinstance(value, Opaque)

    def dump(self, value: Opaque, folder: Path) -> None:
        (folder / "value.txt").write_text(str(value.value))

    def load(self, folder: Path) -> Opaque:
        return Opaque(int((folder / "value.txt").read_text()))


def test_a_registered_serializer_is_used_before_the_builtins(fluent: str) -> None:
    register_serializer(OpaqueSerializer())

    @step
    def make() -> Opaque:
        return Opaque(7)

    @step
    def read(o: Opaque) -> int:
        return o.value + 1

    @pipeline
    def custom():
        read(make())

    result = custom.run()
    assert result.steps["make"].outputs["output"].serializer == "tests.opaque"
    assert result.output("read") == 8
    client = shipyard.Client(fluent)
    from shipyard.pipelines.outputs import load_output

    assert load_output(client.artifacts, result.steps["make"].outputs["output"]).value == 7


def test_retries_then_failure_then_resume_continues_where_it_stopped(fluent: str, tmp_path: Path) -> None:
    flaky_marker = tmp_path / "flaky"
    broken_marker = tmp_path / "broken"
    ran: list[str] = []

    @step
    def first() -> int:
        ran.append("first")
        return 1

    @step(retries=2, retry_delay=0)
    def flaky(x: int) -> int:
        ran.append("flaky")
        count = int(flaky_marker.read_text()) if flaky_marker.exists() else 0
        flaky_marker.write_text(str(count + 1))
        if count < 2:
            raise ConnectionError(f"attempt {count + 1} failed")
        return x + 1

    @step(cache=False)
    def last(x: int) -> int:
        ran.append("last")
        if not broken_marker.exists():
            raise ValueError("the data is broken")
        return x * 10

    @pipeline
    def fragile():
        last(flaky(first()))

    with pytest.raises(StepFailed, match=r"step 'last' of pipeline 'fragile' failed: ValueError: the data is broken"):
        fragile.run()
    assert ran == ["first", "flaky", "flaky", "flaky", "last"]
    client = shipyard.Client(fluent)
    failed = list_pipeline_runs(client, pipeline="fragile")[0]
    assert failed.status == "FAILED"
    runs = {r.data.tags["shipyard.pipeline.step"]: r for r in step_runs(client, failed.run_id)}
    assert runs["flaky"].data.tags["shipyard.pipeline.attempts"] == "3"
    assert runs["last"].info.status.value == "FAILED"
    assert "ValueError: the data is broken" in runs["last"].data.tags["shipyard.error"]

    broken_marker.write_text("fixed")
    ran.clear()
    client.delete_tag(failed.run_id, GRAPH_TAG)  # a run from before the graph was recorded gains it on resume
    resumed = fragile.run(resume=failed.run_id)
    assert ran == ["last"]
    assert read_graph(client.get_run(failed.run_id)) == {"first": [], "flaky": ["first"], "last": ["flaky"]}
    assert resumed.run_id == failed.run_id
    assert _statuses(resumed) == {"first": "resumed", "flaky": "resumed", "last": "executed"}
    assert resumed.output("last") == 20
    assert client.get_run(failed.run_id).info.status.value == "FINISHED"
    with pytest.raises(InvalidInput, match="nothing to resume"):
        fragile.run(resume=failed.run_id)


def test_metrics_logged_inside_a_step_reach_its_run_and_its_gate(fluent: str) -> None:
    @step(gate="metrics.score > 0.5")
    def scored() -> int:
        shipyard.log_metric("score", 0.9)
        return 1

    @pipeline
    def with_metric():
        scored()

    result = with_metric.run()
    assert result.steps["scored"].gates_passed
    assert shipyard.Client(fluent).get_run(result.steps["scored"].run_id).data.metrics == {"score": 0.9}


PARALLEL = '''
import time
from shipyard.pipelines import step, pipeline


@step
def seed(n: int) -> list:
    return list(range(n))


@step
def slow_sum(values: list, pause: float) -> int:
    time.sleep(pause)
    return sum(values)


@step
def slow_max(values: list, pause: float) -> int:
    time.sleep(pause)
    return max(values)


@step
def combine(a: int, b: int) -> dict:
    return {"total": a + b}


@pipeline
def fan(n: int = 10, pause: float = 1.0):
    values = seed(n)
    combine(slow_sum(values, pause), slow_max(values, pause))
'''


@pytest.mark.slow  # spawns two worker processes, each importing the project
def test_parallel_runs_independent_steps_at_once_with_the_same_results(fluent: str, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "fanproj.py").write_text(PARALLEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("fanproj")
    try:
        together = module.fan.run(parallel=2, cache=False)
        alone = module.fan.run(cache=False)
    finally:
        sys.modules.pop("fanproj", None)
    assert together.output("combine") == alone.output("combine") == {"total": 54}
    client = shipyard.Client(fluent)
    spans = [client.get_run(together.steps[s].run_id).info for s in ("slow_sum", "slow_max")]
    # each step sleeps 1 s in its own worker: their runs overlap in time
    assert max(s.start_time for s in spans) < min(s.end_time for s in spans)


def test_objects_older_than_the_run_are_set_aside_from_the_collector_only_while_it_runs(fluent: str) -> None:
    import gc

    seen: list[int] = []

    @step
    def look(n: int) -> int:
        seen.append(gc.get_freeze_count())
        return n

    @pipeline
    def frozen(n: int = 1) -> None:
        look(n)

    gc.unfreeze()  # (a serving test earlier in this process may have frozen the heap)
    frozen.run(n=1)
    assert seen[0] > 0  # the step ran while the older objects were set aside
    assert gc.get_freeze_count() == 0  # and every one is the collector's again
    gc.freeze()  # a process that froze its own objects (a serving process) keeps them frozen
    try:
        frozen.run(n=2)
        assert gc.get_freeze_count() > 0  # (unfreezing would have made it 0)
    finally:
        gc.unfreeze()
