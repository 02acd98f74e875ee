"""The ``shipyard`` command line, end to end on a temporary SQLite store per test."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import shipyard
from shipyard.cli import app, render
from shipyard.entities import Metric
from shipyard.store.sql.schema import HEAD_REVISION

BASE_TIME = int(time.time() * 1000) - 3_600_000


@dataclass
class Store:
    tmp: Path
    tracking_uri: str
    artifact_uri: str
    experiment_id: str
    run_a: str
    run_b: str

    def invoke(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """Run the CLI against this store (wide enough that tables keep their metric columns)."""
        full_env = {"COLUMNS": "160", **(env or {})}
        return CliRunner().invoke(
            app, ["--tracking-uri", self.tracking_uri, "--artifact-uri", self.artifact_uri, *args],
            env=full_env)

    def json(self, *args: str) -> object:
        result = self.invoke(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


def _log_run(client: shipyard.Client, experiment_id: str, name: str, lr: str, offset: float) -> str:
    run = client.create_run(experiment_id, name, start_time=BASE_TIME, tags={
        "team": "vision", "shipyard.git.commit": "a1b2c3d4e5f6a7b8c9d0e1f2", "shipyard.git.dirty": "true",
        "shipyard.source.entry_point": "train.py"})
    run_id = run.info.run_id
    client.log_params(run_id, {"lr": lr, "depth": "6"})
    client.log_batch(run_id, metrics=[
        *(Metric("loss", 1.0 / (step + 1) + offset, step, BASE_TIME + step) for step in range(10)),
        Metric("score", float("nan"), 0, BASE_TIME),
    ])
    client.log_text(run_id, f"notes of {name}", "notes.txt")
    client.log_text(run_id, "weights " * 100, "model/weights.bin")
    client.set_terminated(run_id, end_time=BASE_TIME + 754_000)
    return run_id


@pytest.fixture
def store(tmp_path: Path) -> Store:
    tracking_uri = f"sqlite:///{tmp_path / 's.db'}"
    artifact_uri = str(tmp_path / "a")
    client = shipyard.Client(tracking_uri=tracking_uri, artifact_uri=artifact_uri)
    try:
        experiment_id = client.create_experiment("mnist", tags={"owner": "ana"})
        run_a = _log_run(client, experiment_id, "fast", "0.1", 0.0)
        run_b = _log_run(client, experiment_id, "slow", "0.01", 0.5)
    finally:
        client.close()
    return Store(tmp_path, tracking_uri, artifact_uri, experiment_id, run_a, run_b)


def _assert_one_line_error(result: Result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for fragment in fragments:
        assert fragment in lines[0]


# -- help and version ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["experiments"], ["runs"], ["artifacts"], ["db"], ["config"],
                                     ["runs", "list"], ["runs", "show"], ["runs", "compare"],
                                     ["artifacts", "download"], ["db", "upgrade"], ["version"]],
                         ids=lambda c: " ".join(c) or "root")
def test_help_reads(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "Usage: shipyard" in result.stdout
    if len(command) < 2 and command != ["version"]:
        assert "Examples:" in result.stdout


def test_no_arguments_shows_help() -> None:
    result = CliRunner().invoke(app, [])
    assert "Usage: shipyard" in result.output
    for group in ("experiments", "runs", "artifacts", "db", "config", "version"):
        assert group in result.output


def test_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert f"shipyard {shipyard.__version__}" in result.stdout
    assert "Python 3." in result.stdout
    data = json.loads(CliRunner().invoke(app, ["version", "--json"]).stdout)
    assert data["shipyard"] == shipyard.__version__


def test_version_and_help_do_not_import_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from shipyard.cli import app\n"
        "assert CliRunner().invoke(app, ['version']).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "assert CliRunner().invoke(app, ['runs', 'list', '--help']).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_real_process_error_is_one_line_with_exit_code(store: Store) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "from shipyard.cli import main; main()", "--tracking-uri", store.tracking_uri,
         "runs", "show", "no-such-run"], capture_output=True, text=True)
    assert out.returncode == 3
    assert out.stderr.strip() == "Error: run 'no-such-run' does not exist"
    assert out.stdout == ""


# -- experiments -----------------------------------------------------------------------------------
def test_experiments_list_table_and_json(store: Store) -> None:
    result = store.invoke("experiments", "list")
    assert result.exit_code == 0, result.output
    assert "mnist" in result.stdout
    assert "Default" in result.stdout
    assert "owner=ana" in result.stdout
    data = store.json("experiments", "list")
    assert [e["name"] for e in data] == ["Default", "mnist"]
    assert data[1] | {"experiment_id": store.experiment_id, "lifecycle_stage": "active",
                      "tags": {"owner": "ana"}} == data[1]


def test_experiments_round_trip(store: Store) -> None:
    created = store.invoke("experiments", "create", "cifar", "--tag", "team=vision", "--tag", "gpu=a100")
    assert created.exit_code == 0, created.output
    assert "cifar" in created.stdout
    new = next(e for e in store.json("experiments", "list") if e["name"] == "cifar")
    assert new["tags"] == {"team": "vision", "gpu": "a100"}
    assert f"with id {new['experiment_id']}" in created.stdout

    renamed = store.invoke("experiments", "rename", "cifar", "cifar-10")
    assert renamed.exit_code == 0
    assert "cifar-10" in renamed.stdout
    assert store.invoke("experiments", "delete", new["experiment_id"]).exit_code == 0  # by id
    assert "cifar-10" not in {e["name"] for e in store.json("experiments", "list")}
    deleted = store.json("experiments", "list", "--view", "deleted")
    assert [(e["name"], e["lifecycle_stage"]) for e in deleted] == [("cifar-10", "deleted")]
    table = store.invoke("experiments", "list", "--view", "all")
    assert "deleted" in table.stdout

    restored = store.invoke("experiments", "restore", "cifar-10")  # by name, while deleted
    assert restored.exit_code == 0, restored.output
    assert "cifar-10" in {e["name"] for e in store.json("experiments", "list")}


def test_duplicate_experiment_exits_4(store: Store) -> None:
    _assert_one_line_error(store.invoke("experiments", "create", "mnist"), 4, "mnist", "already exists")


def test_unknown_experiment_exits_3(store: Store) -> None:
    _assert_one_line_error(store.invoke("experiments", "delete", "nope"), 3, "'nope'")


def test_malformed_tag_is_a_usage_error(store: Store) -> None:
    result = store.invoke("experiments", "create", "x", "--tag", "no-equals-sign")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


# -- runs ------------------------------------------------------------------------------------------
def test_runs_list_table_and_json(store: Store) -> None:
    result = store.invoke("runs", "list", "--experiment", "mnist")
    assert result.exit_code == 0, result.output
    for expected in (store.run_a, store.run_b, "fast", "slow", "FINISHED", "12m 34s", "loss"):
        assert expected in result.stdout
    data = store.json("runs", "list", "-e", store.experiment_id)
    assert {r["info"]["run_id"] for r in data} == {store.run_a, store.run_b}
    run_a = next(r for r in data if r["info"]["run_id"] == store.run_a)
    assert run_a["info"]["status"] == "FINISHED"
    assert run_a["data"]["params"] == {"lr": "0.1", "depth": "6"}
    assert run_a["data"]["metrics"]["score"] == "NaN"  # valid JSON, no NaN literal
    assert run_a["data"]["metrics"]["loss"] == pytest.approx(0.1)


def test_runs_list_filter_order_and_limit(store: Store) -> None:
    data = store.json("runs", "list", "-e", "mnist", "--filter", "params.lr = '0.1'")
    assert [r["info"]["run_id"] for r in data] == [store.run_a]
    data = store.json("runs", "list", "-e", "mnist", "--filter", "metrics.loss > 0.3")
    assert [r["info"]["run_id"] for r in data] == [store.run_b]
    ordered = store.json("runs", "list", "-e", "mnist", "--order-by", "metrics.loss DESC")
    assert [r["info"]["run_id"] for r in ordered] == [store.run_b, store.run_a]
    limited = store.invoke("runs", "list", "-e", "mnist", "--order-by", "metrics.loss", "-n", "1")
    assert store.run_a in limited.stdout
    assert store.run_b not in limited.stdout
    assert "--max-results" in limited.stdout


def test_runs_list_defaults_to_the_default_experiment(store: Store) -> None:
    result = store.invoke("runs", "list")
    assert result.exit_code == 0, result.output
    assert store.run_a not in result.stdout
    assert "No runs" in result.stdout
    assert store.json("runs", "list") == []


def test_runs_list_several_experiments(store: Store) -> None:
    result = store.invoke("runs", "list", "-e", "mnist", "-e", "Default")
    assert result.exit_code == 0, result.output
    assert "Experiment" in result.stdout
    assert store.run_a in result.stdout


def test_malformed_filter_exits_2_with_caret(store: Store) -> None:
    result = store.invoke("runs", "list", "-e", "mnist", "--filter", "metrics.loss <")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ")
    assert "column" in result.stderr
    assert "^" in result.stderr


def test_runs_show_table(store: Store) -> None:
    result = store.invoke("runs", "show", store.run_a)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (store.run_a, "fast", "mnist", "FINISHED", "a1b2c3d4e5f6", "dirty", "train.py",
                     "lr", "0.1", "loss", "score", "NaN", "team", "notes.txt", "model/", "12m 34s"):
        assert expected in out, expected
    assert any(block in out for block in render.SPARK_BLOCKS)  # loss has 10 values
    assert "shipyard.git.commit" not in out  # system tags hidden...
    assert "--all-tags" in out  # ...and the way to see them named
    all_tags = store.invoke("runs", "show", store.run_a, "--all-tags")
    assert "shipyard.git.commit" in all_tags.stdout


def test_runs_show_json(store: Store) -> None:
    data = store.json("runs", "show", store.run_a)
    assert data["run"]["info"]["run_id"] == store.run_a
    assert data["experiment"]["name"] == "mnist"
    assert data["run"]["data"]["tags"]["shipyard.git.dirty"] == "true"
    assert [m["step"] for m in data["metric_history"]["loss"]] == list(range(10))
    assert data["metric_history"]["score"][0]["value"] == "NaN"
    assert [(a["path"], a["is_dir"]) for a in data["artifacts"]] == [("model", True), ("notes.txt", False)]


def test_unknown_run_exits_3_with_one_line(store: Store) -> None:
    _assert_one_line_error(store.invoke("runs", "show", "deadbeef"), 3, "deadbeef")


def test_runs_compare(store: Store) -> None:
    result = store.invoke("runs", "compare", store.run_a, store.run_b)
    assert result.exit_code == 0, result.output
    for expected in ("fast", "slow", store.run_a[:8], "lr", "0.1", "0.01", "depth", "loss", "differ"):
        assert expected in result.stdout
    diff_only = store.invoke("runs", "compare", store.run_a, store.run_b, "--diff-only")
    assert "depth" not in diff_only.stdout
    assert "lr" in diff_only.stdout

    data = store.json("runs", "compare", store.run_a, store.run_b)
    assert [r["run_id"] for r in data["runs"]] == [store.run_a, store.run_b]
    params = {p["key"]: p for p in data["params"]}
    assert params["lr"] == {"key": "lr", "values": ["0.1", "0.01"], "differs": True}
    assert params["depth"]["differs"] is False
    metrics = {m["key"]: m for m in data["metrics"]}
    assert metrics["loss"]["differs"] is True
    assert metrics["score"] == {"key": "score", "values": ["NaN", "NaN"], "differs": False}


def test_runs_compare_needs_two_runs(store: Store) -> None:
    assert store.invoke("runs", "compare", store.run_a).exit_code == 2


def test_runs_delete_and_restore(store: Store) -> None:
    deleted = store.invoke("runs", "delete", store.run_a)
    assert deleted.exit_code == 0
    assert store.run_a in deleted.stdout
    assert [r["info"]["run_id"] for r in store.json("runs", "list", "-e", "mnist")] == [store.run_b]
    gone = store.json("runs", "list", "-e", "mnist", "--view", "deleted")
    assert [r["info"]["run_id"] for r in gone] == [store.run_a]
    assert store.invoke("runs", "restore", store.run_a).exit_code == 0
    assert len(store.json("runs", "list", "-e", "mnist")) == 2


# -- artifacts -------------------------------------------------------------------------------------
def test_artifacts_list(store: Store) -> None:
    result = store.invoke("artifacts", "list", store.run_a)
    assert result.exit_code == 0, result.output
    assert "model/" in result.stdout
    assert "notes.txt" in result.stdout
    assert "13 B" in result.stdout
    nested = store.json("artifacts", "list", store.run_a, "model")
    assert [(a["path"], a["size"]) for a in nested] == [("model/weights.bin", 800)]
    assert nested[0]["digest"].startswith("sha256:")
    table = store.invoke("artifacts", "list", store.run_a, "model")
    assert render.short_digest(nested[0]["digest"]) in table.stdout
    assert "800 B" in table.stdout


def test_artifacts_download(store: Store, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    result = store.invoke("artifacts", "download", store.run_a, "notes.txt", "--dest", str(dest))
    assert result.exit_code == 0, result.output
    assert (dest / "notes.txt").read_text() == "notes of fast"
    assert str(dest.resolve()) in result.stdout
    everything = store.invoke("artifacts", "download", store.run_b, "--dest", str(tmp_path / "all"))
    assert everything.exit_code == 0, everything.output
    assert (tmp_path / "all" / "model" / "weights.bin").read_text() == "weights " * 100


def test_artifacts_of_unknown_path_exit_3(store: Store, tmp_path: Path) -> None:
    result = store.invoke("artifacts", "download", store.run_a, "nope.txt", "--dest", str(tmp_path / "x"))
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: ")


# -- db, config ------------------------------------------------------------------------------------
def test_db_upgrade_fresh_and_current(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    runner = CliRunner()
    before = runner.invoke(app, ["--tracking-uri", uri, "db", "current"])
    assert before.exit_code == 0
    assert "no database yet" in before.stdout
    assert not (tmp_path / "fresh.db").exists()

    upgraded = runner.invoke(app, ["db", "upgrade", "--tracking-uri", uri])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"new database → {HEAD_REVISION}" in upgraded.stdout
    again = runner.invoke(app, ["--tracking-uri", uri, "db", "upgrade"])
    assert again.exit_code == 0
    assert "nothing to do" in again.stdout

    current = runner.invoke(app, ["--tracking-uri", uri, "db", "current"])
    assert current.exit_code == 0, current.output
    assert HEAD_REVISION in current.stdout
    assert "newest" in current.stdout


def test_config_show_reflects_env(store: Store) -> None:
    env = {"SHIPYARD_WRITER_BATCH_SIZE": "7"}
    result = store.invoke("config", "show", env=env)
    assert result.exit_code == 0, result.output
    assert "SHIPYARD_WRITER_BATCH_SIZE" in result.stdout
    assert "env" in result.stdout
    rows = {r["name"]: r for r in json.loads(store.invoke("config", "show", "--json", env=env).stdout)}
    assert rows["writer_batch_size"] | {"value": 7, "source": "env",
                                        "env_var": "SHIPYARD_WRITER_BATCH_SIZE"} == rows["writer_batch_size"]
    assert rows["tracking_uri"]["value"] == store.tracking_uri
    assert rows["tracking_uri"]["source"] == "argument"
    assert rows["writer_queue_size"]["source"] == "default"


def test_bad_env_value_is_one_line_error(store: Store) -> None:
    result = store.invoke("config", "show", env={"SHIPYARD_WRITER_BATCH_SIZE": "many"})
    _assert_one_line_error(result, 2, "SHIPYARD_WRITER_BATCH_SIZE")


# -- the error boundary ----------------------------------------------------------------------------
def test_keyboard_interrupt_exits_130(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shipyard.Client, "search_experiments", interrupted)
    result = store.invoke("experiments", "list")
    assert result.exit_code == 130
    assert result.stderr.strip() == "Error: interrupted"


def test_unknown_option_keeps_click_exit_code(store: Store) -> None:
    assert store.invoke("runs", "list", "--bogus").exit_code == 2
    assert store.invoke("runs", "list", "--view", "sideways").exit_code == 2


# -- render ----------------------------------------------------------------------------------------
def test_sparkline() -> None:
    assert render.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert render.sparkline([2.0, 2.0, 2.0]) == "▄▄▄"
    assert render.sparkline([0.0, math.nan, 1.0]) == "▁ █"
    assert render.sparkline([math.nan, math.inf]) == ""
    assert len(render.sparkline([float(i) for i in range(1000)], width=20)) == 20


def test_to_jsonable_keeps_json_valid() -> None:
    data = render.to_jsonable({"m": Metric("x", math.nan), "v": [math.inf, -math.inf, 1.5]})
    assert data == {"m": {"key": "x", "value": "NaN", "step": 0, "timestamp": 0},
                    "v": ["Infinity", "-Infinity", 1.5]}
    json.dumps(data, allow_nan=False)


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                            (5 * 1024**3, "5.0 GiB")])
def test_format_size(size: int, text: str) -> None:
    assert render.format_size(size) == text


@pytest.mark.parametrize(("ms", "text"), [(850, "850ms"), (12_340, "12.3s"), (245_000, "4m 05s"),
                                          (7_380_000, "2h 03m"), (273_600_000, "3d 04h")])
def test_format_duration(ms: int, text: str) -> None:
    assert render.format_duration(1, 1 + ms) == text
