"""The fluent SDK, end to end on a real SQLite store."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import shipyard
from shipyard.entities import RunStatus
from shipyard.errors import Conflict, InvalidInput, NotFound, RunNotActive


def test_issue_example(fluent: str, tmp_path: Path) -> None:
    shipyard.set_experiment("churn")
    (tmp_path / "confusion.png").write_bytes(b"\x89PNG fake")
    with shipyard.start_run(run_name="baseline") as run:
        shipyard.log_params({"lr": 0.01, "depth": 6})
        for step in range(1000):
            shipyard.log_metric("loss", 1.0 / (step + 1), step=step)
        shipyard.log_artifact(str(tmp_path / "confusion.png"))
    runs = shipyard.search_runs(experiment_names=["churn"],
                                filter_string="metrics.loss < 0.3 and params.depth = '6'")
    assert [r.run_id for r in runs] == [run.run_id]
    got = runs[0]
    assert got.info.status is RunStatus.FINISHED
    assert got.info.end_time is not None
    assert got.info.run_name == "baseline"
    assert got.data.params == {"lr": "0.01", "depth": "6"}
    assert got.data.metrics == {"loss": 0.001}
    assert len(shipyard.get_metric_history(run.run_id, "loss")) == 1000
    assert "confusion.png" in {a.path for a in shipyard.list_artifacts(run.run_id)}


def test_exception_marks_run_failed_and_records_error(fluent: str) -> None:
    with pytest.raises(ZeroDivisionError), shipyard.start_run() as run:  # noqa: PT012
        shipyard.log_metric("m", 1.0)
        1 / 0  # noqa: B018
    got = shipyard.get_run(run.run_id)
    assert got.info.status is RunStatus.FAILED
    assert got.data.tags["shipyard.error"].startswith("ZeroDivisionError: division by zero")
    assert got.data.metrics == {"m": 1.0}
    trace = shipyard.download_artifacts(run.run_id, "_shipyard/error.txt")
    assert "ZeroDivisionError" in trace.read_text()
    assert shipyard.active_run() is None


def test_keyboard_interrupt_marks_run_killed(fluent: str) -> None:
    with pytest.raises(KeyboardInterrupt), shipyard.start_run() as run:
        raise KeyboardInterrupt
    assert shipyard.get_run(run.run_id).info.status is RunStatus.KILLED


def test_nested_runs(fluent: str) -> None:
    with shipyard.start_run(run_name="parent") as parent:
        with shipyard.start_run(run_name="child", nested=True) as child:
            assert shipyard.active_run().run_id == child.run_id
        assert shipyard.active_run().run_id == parent.run_id
        with pytest.raises(InvalidInput, match="already active"):
            shipyard.start_run()
    assert shipyard.get_run(child.run_id).info.parent_run_id == parent.run_id
    assert shipyard.get_run(child.run_id).info.status is RunStatus.FINISHED


def test_ending_parent_ends_open_children(fluent: str) -> None:
    parent = shipyard.start_run()
    child = shipyard.start_run(nested=True)
    shipyard.end_run()  # ends the child
    grandchild = shipyard.start_run(nested=True)
    parent.__exit__(None, None, None)
    assert shipyard.active_run() is None
    for run in (parent, child, grandchild):
        assert shipyard.get_run(run.run_id).info.status is RunStatus.FINISHED


def test_logging_without_active_run_starts_one(fluent: str) -> None:
    shipyard.log_metric("auto", 1.0)
    run = shipyard.active_run()
    assert run is not None
    shipyard.end_run()
    assert shipyard.get_run(run.run_id).data.metrics == {"auto": 1.0}


def test_resume_a_finished_run(fluent: str) -> None:
    with shipyard.start_run() as run:
        shipyard.log_metric("m", 1.0, step=0)
    with shipyard.start_run(run_id=run.run_id):
        shipyard.log_metric("m", 2.0, step=1)
    got = shipyard.get_run(run.run_id)
    assert got.info.status is RunStatus.FINISHED
    assert got.data.metrics == {"m": 2.0}


def test_params_are_immutable_and_error_names_both_values(fluent: str) -> None:
    with shipyard.start_run():
        shipyard.log_param("lr", 0.01)
        shipyard.log_param("lr", "0.01")
        with pytest.raises(Conflict, match=r"'0\.01'.*'0\.5'"):
            shipyard.log_param("lr", 0.5)


def test_a_finished_run_takes_new_values_but_keeps_its_params(fluent: str) -> None:
    with shipyard.start_run() as run:
        shipyard.log_param("lr", 0.1)
    client = shipyard.Client(tracking_uri=fluent)
    try:
        client.log_metric(run.run_id, "late", 1.0)  # an evaluation after end_run
        client.log_param(run.run_id, "eval_set", "holdout")
        client.set_tag(run.run_id, "evaluated", "yes")
        with pytest.raises(Conflict, match="immutable"):
            client.log_param(run.run_id, "lr", 0.2)
        client.delete_run(run.run_id)
        with pytest.raises(RunNotActive, match="deleted"):
            client.log_metric(run.run_id, "later", 2.0)
        client.restore_run(run.run_id)
    finally:
        client.close()
    got = shipyard.get_run(run.run_id)
    assert got.data.metrics == {"late": 1.0}
    assert got.data.params == {"lr": "0.1", "eval_set": "holdout"}
    assert got.info.status.value == "FINISHED"


def test_unknown_run_id(fluent: str) -> None:
    with pytest.raises(NotFound, match="'deadbeef'"):
        shipyard.get_run("deadbeef")
    with pytest.raises(NotFound, match="'deadbeef'"):
        shipyard.log_metric("m", 1.0, run_id="deadbeef")


def test_nan_and_inf_metrics(fluent: str) -> None:
    with shipyard.start_run() as run:
        shipyard.log_metrics({"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf})
    metrics = shipyard.get_run(run.run_id).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] == math.inf
    assert metrics["ninf"] == -math.inf


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: shipyard.log_metric("", 1.0), "1 to 250"),
        (lambda: shipyard.log_metric("a" * 251, 1.0), "1 to 250"),
        (lambda: shipyard.log_metric("bad\nkey", 1.0), "not valid"),
        (lambda: shipyard.log_metric("../x", 1.0), "not valid"),
        (lambda: shipyard.log_metric("m", "high"), "must be a number"),
        (lambda: shipyard.log_metric("m", 1.0, step=1.5), "whole number"),
        (lambda: shipyard.log_param("p", "x" * 6001), "6001 characters; at most 6000"),
        (lambda: shipyard.set_tag("t", "x" * 8001), "at most 8000"),
        (lambda: shipyard.set_experiment(""), "must not be empty"),
        (lambda: shipyard.set_experiment("x" * 257), "at most 256"),
        (lambda: shipyard.set_experiment("tab\there"), "control character"),
        (lambda: shipyard.start_run(run_name=" "), "must not be empty"),
        (lambda: shipyard.search_runs(filter_string="metrics.loss <"), "column"),
        (lambda: shipyard.search_runs(output_format="xml"), "output_format"),
        (lambda: shipyard.search_runs(max_results=0), "max_results"),
    ],
    ids=["empty-key", "long-key", "newline-key", "dotdot-key", "non-numeric", "fractional-step",
         "long-param", "long-tag", "empty-experiment", "long-experiment", "control-char",
         "blank-run-name", "bad-filter", "bad-format", "bad-max-results"],
)
def test_bad_input_is_refused_with_the_rule(fluent: str, call, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()
    shipyard.end_run()


def test_bad_input_does_not_lose_stored_data(fluent: str) -> None:
    with shipyard.start_run() as run:
        shipyard.log_params({"a": 1})
        shipyard.log_metric("m", 1.0)
        with pytest.raises(InvalidInput):
            shipyard.log_params({"b": 2, "c": "x" * 7000})
        with pytest.raises(InvalidInput):
            shipyard.log_artifact("/definitely/not/here.txt")
    got = shipyard.get_run(run.run_id)
    assert got.data.params == {"a": "1"}
    assert got.data.metrics == {"m": 1.0}


def test_text_dict_and_figure_artifacts(fluent: str, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    with shipyard.start_run() as run:
        shipyard.log_text("hello", "notes/hello.txt")
        shipyard.log_dict({"a": 1, "b": [1, 2]}, "config.json")
        shipyard.log_dict({"a": 1}, "config.yaml")
        shipyard.log_figure(fig, "plots/curve.png")
    plt.close(fig)
    out = shipyard.download_artifacts(run.run_id, "", tmp_path / "dl")
    assert (out / "notes" / "hello.txt").read_text() == "hello"
    assert '"b": [\n    1,' in (out / "config.json").read_text()
    assert (out / "config.yaml").read_text() == "a: 1\n"
    assert (out / "plots" / "curve.png").read_bytes().startswith(b"\x89PNG")


def test_log_artifacts_folder_and_path_rules(fluent: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    with shipyard.start_run() as run:
        shipyard.log_artifacts(src, "data")
        for bad in ("../escape", "/abs", "a/../../b"):
            with pytest.raises(InvalidInput):
                shipyard.log_text("x", bad)
    files = shipyard.Client(tracking_uri=fluent).artifacts.walk(run.run_id, "data")
    assert [f.path for f in files] == ["data/a.txt", "data/sub/b.txt"]


def test_search_runs_pandas_and_pages(fluent: str) -> None:
    shipyard.set_experiment("paged")
    for i in range(5):
        with shipyard.start_run(run_name=f"r{i}"):
            shipyard.log_metric("acc", i / 10)
            shipyard.log_param("i", i)
    first = shipyard.search_runs(max_results=2, order_by=["metrics.acc DESC"])
    assert [r.data.metrics["acc"] for r in first] == [0.4, 0.3]
    second = shipyard.search_runs(max_results=2, order_by=["metrics.acc DESC"], page_token=first.token)
    assert [r.data.metrics["acc"] for r in second] == [0.2, 0.1]
    frame = shipyard.search_runs(output_format="pandas", order_by=["params.i"])
    assert list(frame["run_name"]) == ["r0", "r1", "r2", "r3", "r4"]
    assert {"metrics.acc", "params.i"} <= set(frame.columns)


def test_capture_records_git_and_system(fluent: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(1)\n")
    subprocess.run([*git, "add", "."], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=repo, check=True)
    (repo / "train.py").write_text("print(2)\n")
    monkeypatch.chdir(repo)
    with shipyard.start_run() as run:
        pass
    tags = shipyard.get_run(run.run_id).data.tags
    assert len(tags["shipyard.git.commit"]) == 40
    assert tags["shipyard.git.dirty"] == "true"
    assert tags["shipyard.env.python"]
    diff = shipyard.download_artifacts(run.run_id, "_shipyard/git.diff", tmp_path / "dl").read_text()
    assert "+print(2)" in diff
    with shipyard.start_run(capture=False) as bare:
        pass
    assert not any(k.startswith("shipyard.git") for k in shipyard.get_run(bare.run_id).data.tags)


def test_seed_everything_is_recorded(fluent: str) -> None:
    import random

    with shipyard.start_run() as run:
        shipyard.seed_everything(7)
        first = random.random()
    shipyard.seed_everything(7)
    assert random.random() == first
    with shipyard.start_run() as later:
        pass
    assert shipyard.get_run(run.run_id).data.tags["shipyard.seed"] == "7"
    assert shipyard.get_run(later.run_id).data.tags["shipyard.seed"] == "7"


def test_set_experiment_by_id_and_deleted(fluent: str) -> None:
    exp = shipyard.set_experiment("e1")
    assert shipyard.set_experiment(experiment_id=exp.experiment_id).name == "e1"
    client = shipyard.Client(tracking_uri=fluent)
    client.delete_experiment(exp.experiment_id)
    client.close()
    with pytest.raises(RunNotActive, match="restore"):
        shipyard.set_experiment("e1")
    with pytest.raises(InvalidInput, match="exactly one"):
        shipyard.set_experiment()


def test_bare_folder_tracking_uri(tmp_path: Path) -> None:
    from shipyard.tracking import fluent as fluent_module

    fluent_module._reset_for_tests()
    try:
        shipyard.set_tracking_uri(tmp_path / "runs")
        assert shipyard.get_tracking_uri() == f"sqlite:///{tmp_path / 'runs' / 'shipyard.db'}"
        with shipyard.start_run(capture=False):
            shipyard.log_text("x", "x.txt")
        assert (tmp_path / "runs" / "artifacts").is_dir()
    finally:
        fluent_module._reset_for_tests()


def test_failed_background_write_surfaces_at_end_run_and_the_run_still_ends(fluent: str) -> None:
    other = shipyard.Client(tracking_uri=fluent)
    run = shipyard.start_run()
    shipyard.log_metric("m", 1.0)
    shipyard.flush()
    other.delete_run(run.run_id)  # e.g. an operator removes it from elsewhere
    other.close()
    shipyard.log_metric("m", 2.0)  # queued: this process still believes the run is running
    with pytest.raises(RunNotActive, match=r"1 metric value\(s\) for run .* were not written"):
        shipyard.end_run()
    assert shipyard.active_run() is None
    got = shipyard.get_run(run.run_id)
    assert got.info.status is RunStatus.FINISHED
    assert got.data.metrics == {"m": 1.0}


def test_user_exception_is_not_masked_by_a_tracking_error(fluent: str) -> None:
    other = shipyard.Client(tracking_uri=fluent)
    with pytest.raises(ValueError, match="original") as err, shipyard.start_run() as run:  # noqa: PT012
        other.delete_run(run.run_id)
        shipyard.log_metric("m", 2.0)
        raise ValueError("original")
    other.close()
    assert any("were not written" in note for note in err.value.__notes__)
    assert shipyard.active_run() is None


def test_set_experiment_tolerates_a_concurrent_creator(fluent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    other = shipyard.Client(tracking_uri=fluent)
    created_elsewhere = other.create_experiment("raced")
    other.close()
    client = shipyard.Client  # the fluent client of this process has not seen it yet:
    real = client.get_experiment_by_name
    calls = []

    def stale_once(self, name):
        calls.append(name)
        return None if len(calls) == 1 else real(self, name)

    monkeypatch.setattr(client, "get_experiment_by_name", stale_once)
    assert shipyard.set_experiment("raced").experiment_id == created_elsewhere


def _count_batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of runs in each RunStore.write_many call of the fluent client's store."""
    from shipyard.tracking import fluent as fluent_module

    runs = fluent_module.default_client()._open_store().runs
    sizes: list[int] = []
    real = runs.write_many

    def counted(writes):
        sizes.append(len(writes))
        return real(writes)

    monkeypatch.setattr(runs, "write_many", counted)
    return sizes


def test_short_runs_are_written_together_by_the_next_batch(fluent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_WRITER_LINGER_SECONDS", "30")  # one batch, closed by flush()
    shipyard.set_experiment("trials")
    sizes = _count_batches(monkeypatch)
    for i in range(40):
        with shipyard.start_run(run_name=f"t{i}", capture=False):
            shipyard.log_params({"i": i})
            shipyard.log_metrics({"loss": 1.0 / (i + 1), "acc": math.nan}, step=0)
        assert sizes == []  # end_run returned before anything was written
    shipyard.flush()
    assert sizes == [40]  # one transaction for the forty runs
    runs = shipyard.search_runs(order_by=["params.i ASC"], max_results=100)
    assert len(runs) == 40
    assert {r.info.status for r in runs} == {RunStatus.FINISHED}
    last = next(r for r in runs if r.info.run_name == "t39")
    assert last.data.params == {"i": "39"}
    assert last.data.metrics["loss"] == 1.0 / 40
    assert math.isnan(last.data.metrics["acc"])


def test_a_deferred_run_that_cannot_be_written_fails_at_the_next_call(fluent: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_WRITER_LINGER_SECONDS", "30")
    experiment = shipyard.set_experiment("doomed")
    kept = shipyard.set_experiment("kept")
    with shipyard.start_run(run_name="fine", capture=False):
        shipyard.log_metric("m", 1.0)
    shipyard.set_experiment(experiment_id=experiment.experiment_id)
    with shipyard.start_run(run_name="lost", capture=False):
        shipyard.log_metric("m", 2.0)
    other = shipyard.Client(tracking_uri=fluent)
    other.delete_experiment(experiment.experiment_id)  # before the batch is written
    other.close()
    with pytest.raises(RunNotActive, match=r"was not ended as FINISHED \(with 1 metric value\(s\)\).*deleted"):
        shipyard.flush()
    shipyard.flush()  # raised once
    assert [r.info.run_name for r in shipyard.search_runs([kept.experiment_id])] == ["fine"]


def test_runs_ended_just_before_a_normal_exit_are_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    uri = f"sqlite:///{tmp_path / 'exit.db'}"
    script = ("import sys, shipyard\nshipyard.set_tracking_uri(sys.argv[1])\nshipyard.set_experiment('exit')\n"
              "for i in range(200):\n    with shipyard.start_run(run_name=f'r{i}', capture=False):\n"
              "        shipyard.log_metric('m', float(i))\n")
    done = subprocess.run([sys.executable, "-c", script, uri], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    client = shipyard.Client(tracking_uri=uri)
    try:
        experiment = client.get_experiment_by_name("exit")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], max_results=1000)
        assert len(runs) == 200
        assert {r.info.status for r in runs} == {RunStatus.FINISHED}
        assert sorted(r.data.metrics["m"] for r in runs) == [float(i) for i in range(200)]
    finally:
        client.close()
