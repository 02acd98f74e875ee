"""``shipyard gc``: deleted runs (and the runs of deleted experiments) purged for good, their storage freed,
and what a model still needs kept — on SQLite and PostgreSQL, through the SDK function and the CLI."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app as cli_app
from shipyard.entities import LoggedModel, Node, NodeKind
from shipyard.errors import InvalidInput, NotFound
from shipyard.store.sql import tables
from shipyard.store.sql.purge import plan_purge, purge
from shipyard.tracking.gc import collect_garbage


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[shipyard.Client]:
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        uri = request.getfixturevalue("own_postgres_uri")
    c = shipyard.Client(tracking_uri=uri, artifact_uri=str(tmp_path / "artifacts"))
    yield c
    c.close()


def now_ms() -> int:
    return int(time.time() * 1000)


def blob_files(client: shipyard.Client) -> set[str]:
    root = Path(client.settings.artifact_uri)
    return {p.name for p in (root / "blobs").rglob("*") if p.is_file()}


def rows(client: shipyard.Client, table: sa.Table, **where: str) -> int:
    with client.store.db.read() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return conn.execute(query).scalar_one()


def make_run(client: shipyard.Client, experiment_id: str, shared: bytes, own: bytes) -> str:
    run_id = client.create_run(experiment_id).info.run_id
    client.log_param(run_id, "lr", "0.1")
    client.log_metric(run_id, "loss", 0.5, step=1)
    client.set_tag(run_id, "team", "a")
    client.log_text(run_id, shared.decode(), "shared.txt")
    client.log_text(run_id, own.decode(), "own.txt")
    client.set_terminated(run_id)
    return run_id


def test_a_deleted_run_goes_with_its_rows_edges_and_unshared_blobs(client: shipyard.Client, tmp_path: Path) -> None:
    experiment = client.create_experiment("gc")
    doomed = make_run(client, experiment, b"same bytes", b"only the doomed run")
    survivor = make_run(client, experiment, b"same bytes", b"only the survivor")
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    client.log_dataset(doomed, data, "train")
    assert client.store.lineage.edges([Node(NodeKind.RUN, doomed)], upstream=True)
    before = blob_files(client)
    client.delete_run(doomed)

    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)

    assert report.runs_purged == (doomed,)
    with pytest.raises(NotFound):
        client.get_run(doomed)
    for table in (tables.params, tables.run_tags, tables.metric_chunks, tables.latest_metrics):
        assert rows(client, table, run_id=doomed) == 0, table.name
    assert client.store.lineage.edges([Node(NodeKind.RUN, doomed)], upstream=True) == []
    freed = before - blob_files(client)
    assert len(freed) == 1
    assert report.sweep.blobs_deleted == 1
    assert report.sweep.bytes_freed == len(b"only the doomed run")
    # The survivor shares one blob with the purged run: it reads back whole, digest verified.
    with client.artifacts.open(survivor, "shared.txt") as stream:
        assert stream.read() == b"same bytes"
    assert client.get_run(survivor).data.params == {"lr": "0.1"}
    # Nothing left to do: a second pass changes nothing.
    again = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)
    assert again.runs_purged == ()
    assert again.sweep.blobs_deleted == 0


def test_recent_deletions_and_active_runs_stay(client: shipyard.Client) -> None:
    experiment = client.create_experiment("gc")
    recent = make_run(client, experiment, b"x", b"recent")
    active = make_run(client, experiment, b"x", b"active")
    client.delete_run(recent)
    report = collect_garbage(client, cutoff_ms=now_ms() - 3_600_000, grace_seconds=0)
    assert report.runs_purged == ()
    client.restore_run(recent)  # still restorable
    assert {client.get_run(r).info.run_id for r in (recent, active)} == {recent, active}


def test_a_run_a_registered_version_came_from_is_kept_with_the_reason(client: shipyard.Client) -> None:
    experiment = client.create_experiment("gc")
    run_id = client.create_run(experiment).info.run_id
    x = np.random.default_rng(0).normal(size=(40, 3))
    client.log_model(run_id, LogisticRegression().fit(x, x[:, 0] > 0), "model")
    client.register_model(f"runs:/{run_id}/model", "churn")
    client.set_terminated(run_id)
    client.delete_run(run_id)
    client.delete_experiment(experiment)

    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)

    assert report.runs_purged == ()
    assert "churn/1" in report.kept[run_id]
    assert report.experiments_purged == ()  # it still holds the kept run
    assert client.get_experiment(experiment).lifecycle_stage.value == "deleted"
    assert report.sweep.blobs_deleted == 0
    model = client.load_model("models:/churn/1")  # its files are all still there
    assert model.predict(x[:2]).shape == (2,)


def test_a_live_logged_model_keeps_its_run_and_a_deleted_one_goes_with_it(client: shipyard.Client) -> None:
    experiment = client.create_experiment("gc")
    holder, other = (make_run(client, experiment, b"x", name.encode()) for name in ("holder", "other"))
    live, dead = (f"m-{uuid.uuid4().hex}" for _ in range(2))
    client.store.logged_models.create(LoggedModel(live, experiment, "live", holder, "model"))
    client.store.logged_models.create(LoggedModel(dead, experiment, "dead", other, "model"))
    client.store.logged_models.delete(dead)
    client.delete_run(holder)
    client.delete_run(other)

    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)

    assert report.runs_purged == (other,)
    assert report.logged_models_purged == (dead,)
    assert live in report.kept[holder]
    assert rows(client, tables.logged_models, model_id=dead) == 0
    assert client.store.logged_models.get(live).run_id == holder


def test_a_deleted_experiment_goes_with_all_its_runs_and_its_id_is_never_reused(client: shipyard.Client) -> None:
    client.create_experiment("older")
    experiment = client.create_experiment("old-project")  # the newest: the id SQLite would hand out again
    client.set_experiment_tag(experiment, "team", "a")
    runs = [make_run(client, experiment, b"shared", f"run {i}".encode()) for i in range(3)]
    client.delete_run(runs[0])  # the others are active: they go with their experiment
    client.delete_experiment(experiment)
    client.delete_experiment("0")  # the Default experiment is never purged

    dry = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0, dry_run=True)
    assert dry.experiments_purged == (experiment,)
    assert client.get_experiment(experiment).name == "old-project"
    # Domain code: the registry service of the two stores plans the same (no Client).
    from shipyard.auth import Principal
    from shipyard.models.registry import RegistryService

    service = RegistryService(client.store, client.artifacts, Principal("ops"))
    assert collect_garbage(service, cutoff_ms=now_ms(), grace_seconds=0, dry_run=True).runs_purged == dry.runs_purged
    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)

    assert sorted(report.runs_purged) == sorted(runs)
    assert report.experiments_purged == (experiment,)
    assert rows(client, tables.runs) == 0
    assert rows(client, tables.experiment_tags) == 0
    assert report.sweep.blobs_deleted == 4  # three own files and the shared one
    # Its row is gone with its name; its id is never given to another experiment.
    with pytest.raises(NotFound):
        client.get_experiment(experiment)
    again = client.create_experiment("old-project")
    assert int(again) > int(experiment)
    assert client.get_experiment("0").name == "Default"
    client.restore_experiment("0")


def test_a_dry_run_reports_and_changes_nothing(client: shipyard.Client) -> None:
    experiment = client.create_experiment("gc")
    doomed = make_run(client, experiment, b"x", b"doomed")
    client.delete_run(doomed)
    before = blob_files(client)
    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0, dry_run=True)
    assert report.dry_run
    assert report.runs_purged == (doomed,)
    assert report.sweep.blobs_deleted == 2  # both its files: no other run shares them
    assert blob_files(client) == before
    client.restore_run(doomed)
    with client.artifacts.open(doomed, "own.txt") as stream:
        assert stream.read() == b"doomed"


def test_a_run_restored_after_planning_is_not_purged(client: shipyard.Client) -> None:
    experiment = client.create_experiment("gc")
    run_id = make_run(client, experiment, b"x", b"y")
    client.delete_run(run_id)
    plan = plan_purge(client.store.db, cutoff_ms=now_ms())
    assert plan.run_ids == (run_id,)
    client.restore_run(run_id)
    purge(client.store.db, plan)
    assert client.get_run(run_id).data.params == {"lr": "0.1"}


def test_a_run_restored_while_gc_runs_keeps_its_artifacts(client: shipyard.Client,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    experiment = client.create_experiment("gc")
    run_id = make_run(client, experiment, b"x", b"y")
    client.delete_run(run_id)
    real_plan = plan_purge

    def plan_then_restore(db: object, *, cutoff_ms: int) -> object:
        plan = real_plan(client.store.db, cutoff_ms=cutoff_ms)
        client.restore_run(run_id)  # someone restores it just after gc planned
        return plan

    monkeypatch.setattr("shipyard.store.sql.purge.plan_purge", plan_then_restore)
    report = collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=0)
    assert report.artifact_files_removed == 0
    with client.artifacts.open(run_id, "own.txt") as stream:
        assert stream.read() == b"y"


def test_bad_arguments_are_refused_before_anything_changes(client: shipyard.Client) -> None:
    with pytest.raises(InvalidInput, match="future"):
        collect_garbage(client, cutoff_ms=now_ms() + 86_400_000)
    experiment = client.create_experiment("gc")
    doomed = make_run(client, experiment, b"x", b"doomed")
    client.delete_run(doomed)
    for grace in (-1, float("nan")):
        with pytest.raises(InvalidInput, match="grace"):
            collect_garbage(client, cutoff_ms=now_ms(), grace_seconds=grace)
    assert client.get_run(doomed).info.run_id == doomed  # refused before anything was purged


# -- the command -----------------------------------------------------------------------------------------------
def invoke(tmp_path: Path, *args: str) -> object:
    return CliRunner().invoke(cli_app, ["--tracking-uri", f"sqlite:///{tmp_path / 'store.db'}",
                                        "--artifact-uri", str(tmp_path / "artifacts"), *args])


def test_cli_purges_and_reports(tmp_path: Path) -> None:
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'store.db'}",
                             artifact_uri=str(tmp_path / "artifacts"))
    doomed = make_run(client, client.create_experiment("gc"), b"x", b"doomed")
    client.delete_run(doomed)
    client.close()

    dry = invoke(tmp_path, "gc", "--older-than", "0s", "--grace", "0s", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "Would purge 1 runs" in dry.output
    assert "2 would free" in dry.output

    done = invoke(tmp_path, "gc", "--older-than", "0s", "--grace", "0s", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["runs_purged"] == [doomed]
    assert report["sweep"]["blobs_deleted"] == 2
    assert report["artifact_files_removed"] == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--older-than", "soon"], "older-than"),
    (["--grace", "a while"], "grace"),
])
def test_cli_bad_ages_get_one_clear_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(tmp_path, "gc", *args)
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output


def test_cli_refuses_a_server_uri(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_app, ["--tracking-uri", "http://127.0.0.1:9", "gc"])
    assert result.exit_code != 0
    assert "database itself" in result.stderr
