"""Tuning on a real SQLite store and real Optuna studies: trials as child runs, the best on the parent run,
pruning, workers sharing the study through its database, and bad search spaces."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app
from shipyard.errors import InvalidInput, StepFailed
from shipyard.pipelines.tune import study_storage, tune
from tests.ci import require

optuna = require("optuna")

OBJECTIVES = '''
import os

import shipyard
from shipyard.pipelines.trials import TrialPruned


def quadratic(x: float, y: int, kind: str = "a"):
    return {"score": -(x - 2.0) ** 2 - (y - 3) ** 2 + (0.5 if kind == "b" else 0.0), "pid": os.getpid()}


def curve(rate: float, trial):
    value = 0.0
    for epoch in range(8):
        value += rate
        trial.report(value, epoch)
        if trial.should_prune():
            raise TrialPruned()
    return value


def logs_its_metric(x: float):
    shipyard.log_metric("loss", (x - 1.0) ** 2)


def sometimes_fails(x: float):
    if x > 0.5:
        raise RuntimeError(f"diverged at x={x:.2f}")
    return x


def always_fails(x: float):
    raise RuntimeError("out of memory")


def returns_text(x: float):
    return "good"
'''


@pytest.fixture
def objectives(tmp_path: Path, fluent: str, monkeypatch: pytest.MonkeyPatch):
    name = f"tuneobj_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(OBJECTIVES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    yield importlib.import_module(name)
    sys.modules.pop(name, None)


SPACE = {"x": {"type": "float", "low": -5, "high": 5}, "y": {"type": "int", "low": 0, "high": 6},
         "kind": ["a", "b"]}


def test_each_trial_is_a_child_run_and_the_best_is_recorded_on_the_parent(objectives, fluent: str) -> None:
    result = tune(objectives.quadratic, SPACE, n_trials=12, metric="score", seed=3)
    client = shipyard.Client(fluent)
    children = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                  f"attributes.parent_run_id = '{result.run_id}'", max_results=100)
    assert len(children) == 12
    assert all(r.data.tags["shipyard.tune.role"] == "trial" for r in children)
    assert all(set(r.data.params) == {"x", "y", "kind"} and "score" in r.data.metrics for r in children)
    # the best, found independently from the stored child runs
    best = max(children, key=lambda r: r.data.metrics["score"])
    parent = client.get_run(result.run_id)
    assert parent.info.status.value == "FINISHED"
    assert parent.data.tags["shipyard.tune.best_run"] == best.info.run_id == result.best.run_id
    assert parent.data.metrics["best_score"] == best.data.metrics["score"] == result.best_value
    assert {k: parent.data.params[f"best.{k}"] for k in SPACE} == best.data.params
    assert parent.data.params["space.x"] == "float [-5, 5]"
    assert [m.step for m in client.get_metric_history(result.run_id, "trial_value")] == list(range(12))
    # the same seed samples the same parameters
    again = tune(objectives.quadratic, SPACE, n_trials=12, metric="score", seed=3)
    assert [t.params for t in again.trials] == [t.params for t in result.trials]
    client.close()


def test_tpe_finds_a_better_value_than_its_random_start(objectives, fluent: str) -> None:
    result = tune(objectives.quadratic, {"x": {"type": "float", "low": -10, "high": 10}, "y": [3]}, n_trials=30,
                  metric="score", seed=0)
    first_random = max(t.value for t in result.trials[:10])  # TPE starts with 10 random trials
    assert result.best_value > first_random
    assert result.best_value > -0.5


def test_pruning_stops_trials_that_report_worse_curves(objectives, fluent: str) -> None:
    result = tune(objectives.curve, {"rate": {"type": "float", "low": 0.0, "high": 1.0}}, n_trials=16,
                  sampler="random", seed=1)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned, "the median pruner stopped no trial"
    client = shipyard.Client(fluent)
    run = client.get_run(pruned[0].run_id)
    assert run.info.status.value == "KILLED"
    assert run.data.tags["shipyard.tune.state"] == "pruned"
    history = client.get_metric_history(pruned[0].run_id, "objective")
    assert 1 <= len(history) < 8  # reported until it was stopped
    assert result.counts == {"complete": 16 - len(pruned), "pruned": len(pruned), "failed": 0}
    client.close()


def test_a_metric_logged_inside_the_objective_is_optimized(objectives, fluent: str) -> None:
    result = tune(objectives.logs_its_metric, {"x": {"type": "float", "low": -3, "high": 3}}, n_trials=6,
                  direction="minimize", metric="loss", seed=0)
    assert result.best_value == min(t.value for t in result.trials if t.value is not None)


def test_failed_trials_are_recorded_and_the_study_goes_on(objectives, fluent: str) -> None:
    result = tune(objectives.sometimes_fails, {"x": {"type": "float", "low": 0, "high": 1}}, n_trials=8, seed=2,
                  sampler="random")
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed
    assert result.best_value <= 0.5
    client = shipyard.Client(fluent)
    run = client.get_run(failed[0].run_id)
    assert run.info.status.value == "FAILED"
    assert run.data.tags["shipyard.error"].startswith("RuntimeError: diverged at x=")
    client.close()


def test_no_completed_trial_fails_the_study_with_the_first_traceback(objectives, fluent: str) -> None:
    with pytest.raises(StepFailed, match=r"no trial of study .* completed \(3 failed, 0 pruned\)") as caught:
        tune(objectives.always_fails, {"x": {"type": "float", "low": 0, "high": 1}}, n_trials=3)
    assert 'raise RuntimeError("out of memory")' in caught.value.details["traceback"]
    run = shipyard.Client(fluent).get_run(caught.value.details["run_id"])
    assert run.info.status.value == "FAILED"


def test_an_objective_returning_something_unreadable_stops_at_the_first_trial(objectives) -> None:
    with pytest.raises(InvalidInput, match="the objective returned a str; return a number"):
        tune(objectives.returns_text, {"x": {"type": "float", "low": 0, "high": 1}}, n_trials=5)


@pytest.mark.slow  # spawns two worker processes
def test_parallel_workers_share_the_study_through_its_database(objectives, fluent: str) -> None:
    result = tune(objectives.quadratic, SPACE, n_trials=6, parallel=2, metric="score", seed=5)
    assert sorted(t.number for t in result.trials) == list(range(6))
    assert len({t.metrics["pid"] for t in result.trials}) == 2  # two processes ran them
    assert result.storage == study_storage(fluent, None)[0]
    stored = optuna.load_study(study_name=result.study_name, storage=result.storage)
    assert len(stored.trials) == 6
    assert stored.best_value == result.best_value


@pytest.mark.parametrize(("space", "message"), [
    ({"x": {"type": "float", "low": 1, "high": 1}}, "search space: x has low=1 >= high=1"),
    ({"x": {"type": "float", "low": 0, "high": 1, "log": True}}, "x is log-scaled, so low must be > 0"),
    ({"x": {"type": "normal", "low": 0, "high": 1}}, "x has type 'normal'; expected float, int or categorical"),
    ({"x": {"type": "float", "low": 0}}, "search space: x needs 'high'"),
    ({"x": {"type": "float", "low": 0, "high": 2, "steps": 1}}, "x (float) has unknown key 'steps'"),
    ({"y": {"type": "int", "low": 0.5, "high": 3}}, "y.low must be a whole number for type int"),
    ({"kind": []}, "kind choices must be a non-empty list"),
    ({"kind": [[1, 2]]}, "choices must be strings, numbers, booleans or null"),
    ({"x": {"type": "float", "low": 0, "high": 1}, "depth": [1, 2]}, "objective 'quadratic' has no parameter 'depth'"),
    ({"y": [1, 2]}, "the objective needs 'x', which the search space does not give"),
    ({}, "a search space is a non-empty mapping"),
], ids=["empty-range", "log-at-zero", "unknown-type", "no-high", "unknown-key", "int-fraction", "no-choices",
        "list-choice", "not-a-parameter", "missing-parameter", "empty"])
def test_an_invalid_search_space_is_refused_before_anything_is_recorded(objectives, fluent: str, space: dict,
                                                                        message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        tune(objectives.quadratic, space, n_trials=3)
    assert message in str(caught.value)
    assert shipyard.Client(fluent).get_experiment_by_name("tune-quadratic") is None


def test_other_bad_options_are_refused_before_anything_is_recorded(objectives, fluent: str) -> None:
    for kwargs, message in [({"direction": "up"}, "direction 'up' is not known; choose one of: maximize, minimize"),
                            ({"n_trials": 0}, "n_trials must be a whole number >= 1"),
                            ({"sampler": "grid"}, "sampler 'grid' is not known"),
                            ({"executor": "spark"}, "executor 'spark' is not known"),
                            ({"ray_address": "10.0.0.1:6379"}, "a Ray address only applies with executor='ray'")]:
        with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
            tune(objectives.quadratic, SPACE, **kwargs)
    assert shipyard.Client(fluent).get_experiment_by_name("tune-quadratic") is None


def test_python_objects_stand_for_the_mappings_and_a_named_study_continues(objectives, fluent: str,
                                                                           tmp_path: Path) -> None:
    from shipyard.pipelines.search_space import Categorical, Float, Int, parse_space

    space = {"x": Float(-5, 5), "y": Int(0, 6, step=2), "kind": Categorical(("a", "b"))}
    assert parse_space(space) == parse_space({"x": {"type": "float", "low": -5, "high": 5},
                                              "y": {"type": "int", "low": 0, "high": 6, "step": 2},
                                              "kind": ["a", "b"]})
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    first = tune(objectives.quadratic, space, n_trials=3, metric="score", storage=storage, study_name="churn")
    second = tune(objectives.quadratic, space, n_trials=3, metric="score", storage=storage, study_name="churn")
    assert [t.number for t in second.trials] == [3, 4, 5]
    assert all(t.params["y"] in (0, 2, 4, 6) for t in first.trials + second.trials)
    assert second.best_value == max(t.value for t in first.trials + second.trials)
    assert len(optuna.load_study(study_name="churn", storage=storage).trials) == 6


def test_study_storage_sits_beside_the_tracking_database() -> None:
    assert study_storage("sqlite:////data/runs/shipyard.db", None) == (
        "sqlite:////data/runs/shipyard.optuna.db", {"connect_args": {"timeout": 60}})
    uri, options = study_storage("postgresql://ci@db.internal/shipyard", None)
    assert uri == "postgresql+psycopg://ci@db.internal/shipyard"
    assert options["connect_args"] == {"options": "-csearch_path=optuna"}
    with pytest.raises(InvalidInput, match=r"pass storage='postgresql://\.\.\.'"):
        study_storage("https://shipyard.example.com", None)


def test_the_cli_tunes_from_a_yaml_space(objectives, fluent: str, tmp_path: Path) -> None:
    (tmp_path / "space.yaml").write_text("x: {type: float, low: -5, high: 5}\ny: {type: int, low: 0, high: 6}\n"
                                         "kind: [a, b]\n")
    module = f"{objectives.__name__}.py:quadratic"
    runner = CliRunner()
    base = ["--tracking-uri", fluent, "tune", module, "--space", "space.yaml"]
    done = runner.invoke(app, [*base, "--trials", "5", "--metric", "score", "--seed", "1"], env={"COLUMNS": "160"})
    assert done.exit_code == 0, done.output
    assert "trial 4" in done.output
    assert "score (maximize)" in done.output
    as_json = runner.invoke(app, [*base, "-n", "3", "-m", "score", "--json"])
    body = json.loads(as_json.stdout)
    assert body["counts"] == {"complete": 3, "pruned": 0, "failed": 0}
    assert body["best"]["value"] == max(t["value"] for t in body["trials"])
    (tmp_path / "bad.yaml").write_text("x: {type: float, low: 5, high: -5}\n")
    bad = runner.invoke(app, ["--tracking-uri", fluent, "tune", module, "--space", "bad.yaml"])
    assert bad.exit_code == 2
    assert "bad.yaml: search space: x has low=5 >= high=-5" in bad.output
    assert "Traceback" not in bad.output
    (tmp_path / "notyaml.yaml").write_text("x: [unclosed\n")
    not_yaml = runner.invoke(app, ["--tracking-uri", fluent, "tune", module, "--space", "notyaml.yaml"])
    assert not_yaml.exit_code == 2
    assert "search space 'notyaml.yaml' is not valid YAML" in not_yaml.output
    broken = runner.invoke(app, ["--tracking-uri", fluent, "tune", module, "--space", "missing.yaml"])
    assert broken.exit_code == 2
    assert "cannot read search space 'missing.yaml'" in broken.output


@pytest.mark.postgres
@pytest.mark.slow  # two worker processes on a fresh PostgreSQL database
def test_on_postgresql_the_study_lives_in_its_own_schema_of_the_tracking_database(
        objectives, own_postgres_uri: str, tmp_path: Path) -> None:
    import sqlalchemy as sa

    client = shipyard.Client(tracking_uri=own_postgres_uri, artifact_uri=str(tmp_path / "artifacts"))
    try:
        result = tune("tuneobj_" + tmp_path.name.replace("-", "_") + ":quadratic", SPACE, n_trials=4, parallel=2,
                      metric="score", seed=0, client=client)
        assert sorted(t.number for t in result.trials) == [0, 1, 2, 3]
        assert len({t.metrics["pid"] for t in result.trials}) == 2
        assert client.get_run(result.run_id).data.tags["shipyard.tune.best_run"] == result.best.run_id
    finally:
        client.close()
    engine = sa.create_engine(own_postgres_uri.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        tables = set(conn.execute(sa.text("select table_schema || '.' || table_name from information_schema.tables "
                                          "where table_name in ('trials', 'alembic_version')")).scalars())
    engine.dispose()
    # Optuna's tables (and its alembic_version) sit in the optuna schema; Shipyard's stay in public
    assert {"optuna.trials", "optuna.alembic_version", "public.alembic_version"} <= tables
    assert "public.trials" not in tables
