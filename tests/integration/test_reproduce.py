"""``shipyard reproduce`` end to end: a real git repository, a real (seeded, scikit-learn)
training script run as a subprocess, then reproduced from its record.

The module fixture builds one repository and makes every original run once (the runs of the
first commit in parallel): commit 1 -> runs ``a`` (data/train.csv), ``drift`` (data/drift.csv,
no snapshot) and ``snap`` (data/snap.csv, snapshot); commit 2 changes the features (the metric
changes) -> run ``c2``; then a dirty tree with other features -> run ``dirty``; the tree is
then changed again. A script outside any repository gives run ``nogit``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app
from shipyard.data.digest import digest_file
from shipyard.entities import Node, NodeKind, Relation
from shipyard.errors import Conflict, InvalidInput, NotFound
from shipyard.reproduce import QuietProgress, reproduce
from shipyard.tracking.capture import DIFF_ARTIFACT

pytestmark = pytest.mark.slow

SCRIPT = '''\
"""Train a random forest on data/<name>.csv; the forest's randomness comes from the seed."""
import argparse

import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import shipyard

FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]

parser = argparse.ArgumentParser()
parser.add_argument("--max-depth", type=int, default=4)
parser.add_argument("--data", default="train")
parser.add_argument("--snapshot", action="store_true")
args = parser.parse_args()

shipyard.seed_everything(7)
with shipyard.start_run():
    path = f"data/{args.data}.csv"
    shipyard.log_dataset(path, name=args.data, context="training", snapshot=args.snapshot)
    frame = pd.read_csv(path)
    X_train, X_test, y_train, y_test = train_test_split(frame[FEATURES], frame["y"], test_size=0.3,
                                                        random_state=0)
    model = RandomForestClassifier(n_estimators=15, max_depth=args.max_depth).fit(X_train, y_train)
    shipyard.log_params({"max_depth": args.max_depth, "data": args.data, "features": ",".join(FEATURES)})
    shipyard.log_metric("accuracy", model.score(X_test, y_test))
'''
ALL_FEATURES = 'FEATURES = ["f0", "f1", "f2", "f3", "f4", "f5"]'
COMMIT2_FEATURES = 'FEATURES = ["f0", "f1"]'
DIRTY_FEATURES = 'FEATURES = ["f3", "f4", "f5"]'
NOGIT_SCRIPT = '''\
import shipyard

with shipyard.start_run():
    shipyard.log_param("x", 1)
    shipyard.log_metric("score", 0.5)
'''


@dataclass
class Project:
    repo: Path
    nogit: Path
    tracking_uri: str
    commit1: str
    commit2: str
    runs: dict[str, str]  # name -> run id

    def client(self) -> shipyard.Client:
        return shipyard.Client(tracking_uri=self.tracking_uri)


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True,
                            check=True)
    return result.stdout.strip()


def _data(path: Path, seed: int) -> None:
    import pandas as pd
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=300, n_features=6, n_informative=3, random_state=seed)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["y"] = y
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def _start(folder: Path, tracking_uri: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "SHIPYARD_TRACKING_URI": tracking_uri}
    for name in ("SHIPYARD_ARTIFACT_URI", "SHIPYARD_REPRODUCES"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, *args], cwd=folder, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen[str]) -> None:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out


def _new_runs(client: shipyard.Client, before: set[str]) -> list[str]:
    return [r.info.run_id for r in client.search_runs(["0"], "") if r.info.run_id not in before]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    base = tmp_path_factory.mktemp("reproduce")
    repo, nogit = base / "repo", base / "nogit"
    tracking_uri = f"sqlite:///{base / 'store' / 'shipyard.db'}"
    repo.mkdir()
    nogit.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "user.name", "Test")
    (repo / ".gitignore").write_text("data/\n")
    (repo / "train.py").write_text(SCRIPT)
    for name, seed in (("train", 1), ("drift", 2), ("snap", 3)):
        _data(repo / "data" / f"{name}.csv", seed)
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "all features")
    commit1 = _git(repo, "rev-parse", "HEAD")
    (nogit / "job.py").write_text(NOGIT_SCRIPT)

    client = shipyard.Client(tracking_uri=tracking_uri)
    client.store.runs  # noqa: B018 - create the database before processes race to
    runs: dict[str, str] = {}
    started = {
        "a": _start(repo, tracking_uri, "train.py", "--max-depth", "3"),
        "drift": _start(repo, tracking_uri, "train.py", "--data", "drift"),
        "snap": _start(repo, tracking_uri, "train.py", "--data", "snap", "--snapshot"),
        "nogit": _start(nogit, tracking_uri, "job.py"),
    }
    for process in started.values():
        _finish(process)
    for name, dataset in (("a", "train"), ("drift", "drift"), ("snap", "snap")):
        (run,) = client.search_runs(["0"], f"params.data = '{dataset}'")
        runs[name] = run.info.run_id
    (run,) = client.search_runs(["0"], "params.x = '1'")
    runs["nogit"] = run.info.run_id

    (repo / "train.py").write_text(SCRIPT.replace(ALL_FEATURES, COMMIT2_FEATURES))
    _git(repo, "commit", "-q", "-am", "two features")
    commit2 = _git(repo, "rev-parse", "HEAD")
    known = {r.info.run_id for r in client.search_runs(["0"], "")}
    _finish(_start(repo, tracking_uri, "train.py", "--max-depth", "3"))
    (runs["c2"],) = _new_runs(client, known)
    (repo / "train.py").write_text(SCRIPT.replace(ALL_FEATURES, DIRTY_FEATURES))
    known.add(runs["c2"])
    _finish(_start(repo, tracking_uri, "train.py", "--max-depth", "3"))
    (runs["dirty"],) = _new_runs(client, known)
    # The tree moves on: reproduce must not use what is there now.
    (repo / "train.py").write_text(SCRIPT.replace(ALL_FEATURES, 'FEATURES = ["f5"]'))
    client.close()
    return Project(repo, nogit, tracking_uri, commit1, commit2, runs)


@pytest.fixture
def client(project: Project) -> Iterator[shipyard.Client]:
    c = project.client()
    yield c
    c.close()


def _reproduce(project: Project, client: shipyard.Client, run: str, **options):
    options.setdefault("repo", project.repo)
    return reproduce(project.runs[run], client=client, progress=QuietProgress(), **options)


def _worktrees(repo: Path) -> int:
    return _git(repo, "worktree", "list", "--porcelain").count("worktree ")


def _accuracy(client: shipyard.Client, run_id: str) -> float:
    return client.get_run(run_id).data.metrics["accuracy"]


# -- it reproduces -------------------------------------------------------------------------------
def test_the_old_commit_is_rerun_with_the_old_data_and_matches(project: Project, client: shipyard.Client) -> None:
    original, committed_now = _accuracy(client, project.runs["a"]), _accuracy(client, project.runs["c2"])
    assert abs(original - committed_now) > 0.02  # the code at HEAD would give another metric

    result = CliRunner().invoke(app, ["--tracking-uri", project.tracking_uri, "reproduce", project.runs["a"],
                                      "--repo", str(project.repo)])

    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "accuracy" in result.output
    new = client.search_runs(["0"], f"tags.`shipyard.reproduces` = '{project.runs['a']}'")
    assert len(new) == 1
    reproduction = new[0]
    assert reproduction.data.metrics["accuracy"] == pytest.approx(original, rel=0.02)
    assert reproduction.data.params == client.get_run(project.runs["a"]).data.params
    assert reproduction.data.tags["shipyard.git.commit"] == project.commit1
    assert reproduction.data.tags["shipyard.seed"] == "7"
    edges = client.store.lineage.edges([Node(NodeKind.RUN, project.runs["a"])], upstream=False)
    assert any(e.relation is Relation.REPRODUCED and e.target.id == reproduction.info.run_id for e in edges)
    inputs = client.store.lineage.edges([Node(NodeKind.RUN, reproduction.info.run_id)], upstream=True)
    assert {e.source.id for e in inputs if e.relation is Relation.INPUT} == {"train@1"}  # the same data
    assert _worktrees(project.repo) == 1  # the temporary worktree is gone


def test_a_clone_at_another_path_gets_the_data_where_the_code_reads_it(project: Project, client: shipyard.Client,
                                                                      tmp_path: Path) -> None:
    """The run read data/train.csv inside its own checkout (git-ignored, so not in any clone):
    reproducing from a clone elsewhere copies it to the same place in the clone's worktree."""
    clone = tmp_path / "elsewhere"
    _git(tmp_path, "clone", "-q", str(project.repo), str(clone))
    assert client.get_run(project.runs["a"]).data.tags["shipyard.git.root"] == str(project.repo)

    result = _reproduce(project, client, "a", repo=clone)

    assert result.passed, result
    [step] = result.plan.datasets
    assert (step.action, step.target, step.inside) == ("copy", "data/train.csv", True)
    assert not (clone / "data").exists()  # the clone itself is left as it was
    assert _worktrees(clone) == 1


def test_a_dirty_run_is_reproduced_with_its_diff(project: Project, client: shipyard.Client) -> None:
    dirty, committed = _accuracy(client, project.runs["dirty"]), _accuracy(client, project.runs["c2"])
    assert abs(dirty - committed) > 0.02

    result = _reproduce(project, client, "dirty")

    assert result.passed, result
    assert result.plan.commit == project.commit2
    assert result.plan.diff_files == ["train.py"]
    (row,) = result.metrics
    assert row.key == "accuracy"
    assert row.reproduced == pytest.approx(dirty, rel=0.02)
    assert abs(row.reproduced - committed) > 0.02
    assert result.params == []
    assert client.get_run(result.reproduction_run_id).data.params["features"] == "f3,f4,f5"


# -- the data ------------------------------------------------------------------------------------
def test_changed_data_without_a_snapshot_stops_before_running(project: Project, client: shipyard.Client) -> None:
    path = project.repo / "data" / "drift.csv"
    expected = client.get_dataset("drift@1").digest
    original = path.read_bytes()
    path.write_bytes(original.replace(b"\n", b"\r\n", 5))
    try:
        found = digest_file(path)
        with pytest.raises(Conflict) as caught:
            _reproduce(project, client, "drift")
    finally:
        path.write_bytes(original)
    message = str(caught.value)
    assert "drift@1" in message
    assert expected in message
    assert found in message
    assert "snapshot" in message
    assert client.search_runs(["0"], f"tags.`shipyard.reproduces` = '{project.runs['drift']}'") == []
    assert _worktrees(project.repo) == 1


def test_changed_data_with_a_snapshot_is_restored(project: Project, client: shipyard.Client) -> None:
    path = project.repo / "data" / "snap.csv"
    original = path.read_bytes()
    changed = original.replace(b"\n", b"\r\n", 5)
    path.write_bytes(changed)
    try:
        result = _reproduce(project, client, "snap")
    finally:
        assert path.read_bytes() == changed  # the user's file is left alone: the worktree got the copy
        path.write_bytes(original)
    assert result.passed, result
    (step,) = result.plan.datasets
    assert (step.ref, step.action, step.target) == ("snap@1", "restore", "data/snap.csv")


# -- bad input -----------------------------------------------------------------------------------
def test_unknown_run(project: Project, client: shipyard.Client) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        reproduce("0" * 32, client=client, repo=project.repo, progress=QuietProgress())
    result = CliRunner().invoke(app, ["--tracking-uri", project.tracking_uri, "reproduce", "0" * 32])
    assert result.exit_code == NotFound.exit_code
    assert "does not exist" in result.output


def test_run_without_a_commit_explains_and_no_checkout_reruns_it(project: Project, client: shipyard.Client,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput, match="no git commit was recorded") as caught:
        _reproduce(project, client, "nogit")
    assert "--no-checkout" in str(caught.value)

    monkeypatch.chdir(project.nogit)
    result = reproduce(project.runs["nogit"], client=client, checkout=False, progress=QuietProgress())
    assert result.passed, result
    assert any("--no-checkout" in w for w in result.warnings)


def test_commit_missing_from_the_repository(project: Project, client: shipyard.Client) -> None:
    run = client.create_run("0", tags={"shipyard.git.commit": "f" * 40, "shipyard.git.dirty": "false",
                                       "shipyard.source.entry_point": "train.py",
                                       "shipyard.git.remote": "https://example.com/team/project.git"})
    client.set_terminated(run.info.run_id)
    with pytest.raises(NotFound, match="is not in the repository") as caught:
        reproduce(run.info.run_id, client=client, repo=project.repo, progress=QuietProgress())
    assert "git fetch https://example.com/team/project.git" in str(caught.value)


def test_a_diff_that_no_longer_applies_names_the_file(project: Project, client: shipyard.Client) -> None:
    with client.artifacts.open(project.runs["dirty"], DIFF_ARTIFACT) as stream:
        diff = stream.read()  # taken against commit 2: its context lines are not in commit 1
    run = client.create_run("0", tags={"shipyard.git.commit": project.commit1, "shipyard.git.dirty": "true",
                                       "shipyard.source.entry_point": "train.py"})
    client.artifacts.log_bytes(run.info.run_id, diff, DIFF_ARTIFACT)
    client.set_terminated(run.info.run_id)

    with pytest.raises(Conflict, match="no longer apply") as caught:
        reproduce(run.info.run_id, client=client, repo=project.repo, dry_run=True, progress=QuietProgress())
    assert "train.py" in str(caught.value)
    assert caught.value.details["files"] == ["train.py"]


def test_dry_run_prints_the_plan_and_runs_nothing(project: Project, client: shipyard.Client) -> None:
    before = len(client.search_runs(["0"], ""))
    result = CliRunner().invoke(app, ["--tracking-uri", project.tracking_uri, "reproduce", project.runs["dirty"],
                                      "--repo", str(project.repo), "--dry-run"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in ("Plan: reproduce run", project.commit2, "uncommitted changes to train.py",
                 "train.py --max-depth 3", "SHIPYARD_REPRODUCES=" + project.runs["dirty"], "SHIPYARD_SEED=7",
                 "train@1", "copy", "Dry run: nothing was checked out or run."):
        assert text in result.output
    assert len(client.search_runs(["0"], "")) == before
    assert _worktrees(project.repo) == 1


def test_dry_run_of_a_venv_shows_the_pip_install(project: Project, client: shipyard.Client) -> None:
    """--env venv is only planned here: installing every recorded package takes minutes."""
    import sklearn

    result = _reproduce(project, client, "a", env="venv", dry_run=True)

    assert result.status == "planned"
    assert result.reproduction_run_id is None
    environment = result.plan.environment
    assert environment.kind == "venv"
    assert environment.commands[0][1:] == ["-m", "venv", "<workspace>/venv"]
    assert environment.commands[1][1:5] == ["-m", "pip", "install", "--disable-pip-version-check"]
    assert environment.commands[1][-2:] == ["-r", "<workspace>/requirements.txt"]
    assert f"scikit-learn=={sklearn.__version__}" in environment.requirements
    assert not any(line.startswith("shipyard-mlops==") for line in environment.requirements[:-1])
    assert result.plan.command[0] == environment.python == "<workspace>/venv/bin/python"


def test_json_plan(project: Project) -> None:
    result = CliRunner().invoke(app, ["--tracking-uri", project.tracking_uri, "reproduce", project.runs["a"],
                                      "--repo", str(project.repo), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "planned"
    assert body["plan"]["datasets"][0]["action"] == "copy"
    assert body["plan"]["env"]["SHIPYARD_REPRODUCES"] == project.runs["a"]


def test_a_metric_out_of_tolerance_fails_with_exit_1(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-checkout runs today's tree, whose features differ from the run's commit: FAIL."""
    monkeypatch.chdir(project.repo)
    result = CliRunner().invoke(app, ["--tracking-uri", project.tracking_uri, "reproduce", project.runs["c2"],
                                      "--no-checkout", "--json"])
    assert result.exit_code == 1, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "fail"
    (row,) = body["metrics"]
    assert row["key"] == "accuracy"
    assert row["passed"] is False
    assert row["rel_delta"] > 0.02
    assert [p["key"] for p in body["params"]] == ["features"]  # reported, as a warning


def test_bad_tolerance_and_env(project: Project, client: shipyard.Client) -> None:
    with pytest.raises(InvalidInput, match="tolerance"):
        _reproduce(project, client, "a", tolerance=-1, dry_run=True)
    with pytest.raises(InvalidInput, match="env must be one of"):
        _reproduce(project, client, "a", env="conda", dry_run=True)


def test_metric_comparison_rules() -> None:
    from shipyard.reproduce.compare import compare_metrics, compare_params

    rows = {r.key: r for r in compare_metrics({"acc": 0.9, "loss": 0.0, "gone": 1.0, "nan": float("nan")},
                                              {"acc": 0.891, "loss": 0.01, "nan": float("nan")}, 0.02)}
    assert rows["acc"].passed
    assert rows["acc"].abs_delta == pytest.approx(0.009)
    assert rows["acc"].rel_delta == pytest.approx(0.01)
    assert rows["loss"].rel_delta == pytest.approx(0.01)  # original 0: the absolute delta
    assert rows["loss"].passed
    assert not rows["gone"].passed
    assert rows["gone"].reproduced is None
    assert rows["nan"].passed
    assert not compare_metrics({"acc": 0.9}, {"acc": 0.8}, 0.02)[0].passed
    assert [d.key for d in compare_params({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"})] == ["b", "c"]



def test_start_run_links_the_first_top_level_run_only(fluent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook `shipyard reproduce` relies on, in process: SHIPYARD_REPRODUCES is consumed by
    the first top-level run; nested and later runs are not reproductions."""
    original = "a" * 32
    monkeypatch.setenv("SHIPYARD_REPRODUCES", original)
    with shipyard.start_run() as first, shipyard.start_run(nested=True) as child:
        pass
    with shipyard.start_run() as second:
        pass
    assert "SHIPYARD_REPRODUCES" not in os.environ
    tags = {run.run_id: shipyard.get_run(run.run_id).data.tags for run in (first, child, second)}
    assert tags[first.run_id]["shipyard.reproduces"] == original
    assert "shipyard.reproduces" not in tags[child.run_id]
    assert "shipyard.reproduces" not in tags[second.run_id]
    from shipyard.tracking.fluent import default_client

    (edge,) = default_client().store.lineage.edges([Node(NodeKind.RUN, original)], upstream=False)
    assert (edge.target.id, edge.relation) == (first.run_id, Relation.REPRODUCED)
