"""The retraining loop end to end on a real SQLite store: a served model meets a changed world, the
monitor fires, a retrain command trains a challenger on the window's labelled rows, Shipyard judges
it against the champion on held-back rows, and promotes it (or says why not)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.auth import Principal
from shipyard.entities import NodeKind, Relation
from shipyard.errors import InvalidInput
from shipyard.lineage import explain
from shipyard.models.registry import RegistryService
from shipyard.monitoring.retrain import Retrainer
from shipyard.monitoring.service import MonitorService
from shipyard.serving.deployment import VERSION_HEADER
from shipyard.serving.deployment_app import create_deployment_app
from tests.support import wait_for_async
from tests.unit.monitor_helpers import log_predictions

DAY = 86_400_000
T0 = int(datetime(2024, 5, 1, tzinfo=UTC).timestamp() * 1000)

# Trains on $SHIPYARD_RETRAIN_DATA in a run of its own and registers the model under the name it is
# given; ``--worse`` learns the labels upside down, ``--fail`` exits 3, ``--nothing`` registers nothing.
SCRIPT = '''
import os, sys
import pandas as pd
from sklearn.linear_model import LogisticRegression
import shipyard

if "--fail" in sys.argv:
    print("the training data is not what I expected", file=sys.stderr)
    sys.exit(3)
data = pd.read_parquet(os.environ["SHIPYARD_RETRAIN_DATA"])
target = os.environ["SHIPYARD_RETRAIN_TARGET"]
labels = data[target] if "--worse" not in sys.argv else 1 - data[target]
client = shipyard.Client()
run_id = client.create_run("0", "train on the window").info.run_id
client.log_dataset(run_id, os.environ["SHIPYARD_RETRAIN_DATA"], "churn-window", context="training")
client.set_tag(run_id, "seen.acting_user", os.environ.get("SHIPYARD_ACTING_USER", "(unset)"))
client.log_model(run_id, LogisticRegression().fit(data.drop(columns=[target]), labels), "model")
client.set_terminated(run_id)
if "--nothing" not in sys.argv:
    client.register_model(f"runs:/{run_id}/model", os.environ["SHIPYARD_RETRAIN_MODEL"])
'''


def world_frame(n: int, seed: int, *, shifted: bool = False) -> tuple[pd.DataFrame, np.ndarray]:
    """Customers and whether they churned: at first those over 45; later the customers are older
    and only those over 58 churn (data and concept drift at once)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"age": rng.normal(52 if shifted else 40, 10, n), "tenure": rng.normal(5, 2, n)})
    return frame, (frame["age"].to_numpy() > (58 if shifted else 45)).astype(int)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[shipyard.Client]:
    """churn v1 (trained on the old world, logged dataset churn-train) holds alias ``champion`` and
    is served by deployment churn-api."""
    from sklearn.linear_model import LogisticRegression

    for name in ("PACKAGES", "GIT", "DIFF"):
        monkeypatch.setenv(f"SHIPYARD_CAPTURE_{name}", "false")
    client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                             artifact_uri=str(tmp_path / "artifacts"))
    train, labels = world_frame(2000, 1)
    run_id = client.create_run("0", "train v1").info.run_id
    client.log_dataset(run_id, train, "churn-train", context="training", snapshot=True)
    client.log_model(run_id, LogisticRegression().fit(train, labels), "model")
    client.set_terminated(run_id)
    client.register_model(f"runs:/{run_id}/model", "churn")
    client.set_alias("churn", "champion", 1)
    client.deployments.create("churn-api", "models:/churn/1")
    (tmp_path / "retrain.py").write_text(SCRIPT)
    yield client
    client.close()


def retrain_action(tmp_path: Path, *flags: str) -> str:
    return "retrain:" + shlex.join([sys.executable, str(tmp_path / "retrain.py"), *flags])


def monitors(client: shipyard.Client, now: int) -> MonitorService:
    """Monitors run as ana, whose retrainer is built from services (the CLI and the server build it
    from a Client) as bob: the retrain still records ana, the service's principal."""
    registry = RegistryService(client.store, client.artifacts, Principal("bob"))
    retrainer = Retrainer(registry, tracking_uri=client.settings.tracking_uri,
                          artifact_uri=client.settings.artifact_uri)
    return MonitorService(client.store, client.artifacts, Principal("ana"), retrainer=retrainer,
                          clock=lambda: now)


def drifted_traffic(client: shipyard.Client, start: int, rows: int = 240) -> None:
    """The new world's customers answered by v1's model, with the truth sent back as feedback."""
    frame, truth = world_frame(rows, 7, shifted=True)
    v1 = client.load_model("models:/churn/1")
    log_predictions(client, start, frame, outputs=[int(v) for v in v1.predict(frame)], labels=list(truth))


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://serving") as http:
        yield http


def test_a_better_challenger_is_promoted_and_the_running_deployment_serves_it(world, tmp_path: Path) -> None:
    now = int(datetime.now(UTC).timestamp() * 1000)
    day = now // DAY * DAY
    monitors(world, now).create("churn-f1", deployment="churn-api", window="1d", start=day, metrics=["f1"],
                                minimums={"f1": 0.8}, actions=["log", retrain_action(tmp_path)],
                                retrain_alias="champion", retrain_margin=0.01)
    frame, truth = world_frame(240, 7, shifted=True)

    async def send_traffic() -> None:  # v1 answers the new world; the truth comes back as feedback
        app = create_deployment_app(world, "churn-api", poll_seconds=0.05, prime=True,
                                    prediction_log=world.artifacts)
        async with serving(app) as http:
            answer = await http.post("/v1/models/churn-api/predict", json={"inputs": frame.to_dict("records")})
            assert answer.status_code == 200, answer.text
            assert answer.headers[VERSION_HEADER] == "churn/1"
            ids = answer.json()["prediction_ids"]
            sent = await http.post("/v1/feedback", json=[{"prediction_id": i, "value": int(v)}
                                                         for i, v in zip(ids, truth, strict=True)])
            assert sent.status_code == 202, sent.text

    asyncio.run(send_traffic())

    async def retrain_while_serving() -> Any:
        app = create_deployment_app(world, "churn-api", poll_seconds=0.05, prime=True)
        async with serving(app) as http:
            row = {"inputs": frame.head(1).to_dict("records")}
            assert (await http.post("/v1/models/churn-api/predict", json=row)).headers[VERSION_HEADER] == "churn/1"
            [result] = await asyncio.to_thread(monitors(world, day + DAY + 1).run_due)

            async def answered_by_v2() -> bool:
                return (await http.post("/v1/models/churn-api/predict", json=row)).headers[VERSION_HEADER] == "churn/2"

            await wait_for_async(lambda: app.state.serving.table.deployment.revision == 3, timeout=10)
            assert await answered_by_v2()
            return result

    result = asyncio.run(retrain_while_serving())
    [evaluation] = result.evaluated
    assert evaluation.status == "breach"
    assert evaluation.state.value == "FIRING"
    assert [(a.action, a.status) for a in result.alerts] == [("log", "logged"),
                                                             (retrain_action(tmp_path), "promoted")]
    alert = result.alerts[1]
    record = alert.payload["retrain"]
    assert record["challenger"] == 2
    assert record["champion"] == 1
    assert record["challenger_score"] >= record["champion_score"] + 0.01
    assert record["train_rows"] + record["holdout_rows"] == 240
    assert "promoted: churn v2 scored f1" in alert.detail
    assert "champion moved from v1 to v2" in alert.detail
    assert "deployment churn-api now serves v2" in alert.detail
    assert world.get_model_version("churn", 2).aliases == ("champion",)
    assert world.deployments.get("churn-api").primary.version == 2
    moved = [e for e in world.model_history("churn") if e.alias == "champion"]
    assert (moved[-1].version, moved[-1].previous_version) == (2, 1)

    # The retraining run: what it read, what it started, and the evaluations it judged by.
    retrain = world.get_run(record["run_id"])
    assert retrain.info.status.value == "FINISHED"
    assert retrain.data.tags["shipyard.retrain.outcome"] == "promoted"
    assert retrain.data.metrics["challenger_f1"] == pytest.approx(record["challenger_score"])
    assert retrain.info.user_id == "ana"  # the runner's principal, as are the alias move and the revisions
    assert {world.get_run(r).info.user_id for r in record["evaluation_runs"].values()} == {"ana"}
    assert moved[-1].user == "ana"
    assert {e.user for e in world.deployments.history("churn-api")[1:]} == {"ana"}
    # The new version traced back to the alert that caused it.
    found = explain("models:/churn/2", client=world)
    nodes = {str(n) for n in found.graph.nodes}
    assert f"alert:churn-f1/{alert.alert_id}" in nodes
    assert f"run:{record['run_id']}" in nodes
    assert f"dataset:{record['dataset']}" in nodes
    triggered = [e for e in found.graph.edges if e.relation is Relation.TRIGGERED]
    assert [(e.source.kind, e.target.id) for e in triggered] == [(NodeKind.ALERT, record["run_id"])]
    assert "f1" in triggered[0].context
    assert triggered[0].context.startswith("FIRING")


def test_a_worse_challenger_is_not_promoted_and_the_alert_says_so(world, tmp_path: Path) -> None:
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path, "--worse")], retrain_alias="champion")
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    assert alert.status == "not_promoted"
    assert "not promoted: churn v2 scored f1" in alert.detail
    assert "champion stays on v1" in alert.detail
    record = alert.payload["retrain"]
    assert record["challenger_score"] < record["champion_score"]
    assert world.get_model_version("churn", 1).aliases == ("champion",)
    assert world.deployments.get("churn-api").primary.version == 1
    assert world.get_run(record["run_id"]).data.tags["shipyard.retrain.outcome"] == "not_promoted"


def test_a_retrain_command_is_told_to_act_as_the_runners_principal(world, tmp_path: Path) -> None:
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path)], retrain_alias="champion")
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    assert alert.status == "promoted", alert.detail
    challenger = world.get_model_version("churn", alert.payload["retrain"]["challenger"])
    assert challenger.run_id is not None
    assert world.get_run(challenger.run_id).data.tags["seen.acting_user"] == "ana"  # the service's principal


def test_the_version_a_retrain_command_registers_records_the_runners_principal(
        world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through a database URI the command's SDK records the runner's principal (``SHIPYARD_ACTING_USER``),
    not the OS login of its process."""
    monkeypatch.setenv("LOGNAME", "retrain-process-login")  # what the command's version used to record
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path)], retrain_alias="champion")
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    version = alert.payload["retrain"]["challenger"]
    [registered] = [e for e in world.model_history("churn") if e.kind == "version_created" and e.version == version]
    assert registered.user == "ana"


def test_a_protected_alias_needs_an_approval_first(world, tmp_path: Path) -> None:
    world.approve_model_version("churn", 1)
    world.set_alias("churn", "production", 1)  # protected by default: v2 needs an approval too
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path)])
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    assert alert.status == "not_promoted"
    assert "the registry refused to move production" in alert.detail
    assert "shipyard models approve churn 2" in alert.detail
    assert world.deployments.get("churn-api").primary.version == 1


@pytest.mark.parametrize(("flag", "detail"), [
    ("--fail", "the command exited with status 3: the training data is not what I expected"),
    ("--nothing", "the command registered no new version of 'churn'"),
], ids=["command-fails", "registers-nothing"])
def test_a_retrain_that_fails_promotes_nothing_and_the_alert_says_why(world, tmp_path: Path, flag: str,
                                                                      detail: str) -> None:
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path, flag)], retrain_alias="champion")
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    assert alert.status == "failed"
    assert detail in alert.detail
    assert alert.detail.endswith("nothing was promoted")
    assert world.get_model_version("churn", 1).aliases == ("champion",)
    assert world.deployments.get("churn-api").primary.version == 1
    run = world.get_run(alert.payload["retrain"]["run_id"])
    assert run.info.status.value == "FAILED"


def test_too_few_labels_and_a_missing_retrainer_fail_cleanly(world, tmp_path: Path) -> None:
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[retrain_action(tmp_path)], retrain_alias="champion")
    frame, truth = world_frame(200, 7, shifted=True)  # drifted: it fires, but only 10 rows have feedback
    log_predictions(world, T0, frame.head(190), outputs=truth[:190])
    log_predictions(world, T0 + 1000, frame.tail(10), outputs=truth[190:], labels=list(truth[190:]))
    [result] = monitors(world, T0 + 3_600_000).run_due()
    assert "10 predictions with feedback, fewer than the 20 needed" in result.alerts[0].detail
    assert len(world.search_model_versions("name = 'churn'")) == 1

    bare = MonitorService(world.store, world.artifacts, Principal("ana"), clock=lambda: T0)
    bare.create("no-retrainer", deployment="churn-api", start=T0 - 3_600_000, metrics=["f1"],
                minimums={"f1": 0.8}, actions=[retrain_action(tmp_path)])
    bare.clock = lambda: T0 + 3_600_000
    [result] = bare.run_due(names=["no-retrainer"])
    assert result.alerts[0].status == "failed"
    assert "built without a retrainer" in result.alerts[0].detail
    with pytest.raises(InvalidInput, match="needs tracking_uri and artifact_uri"):
        Retrainer(RegistryService(world.store, world.artifacts, Principal("ana")))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"actions": ["retrain:"]}, "give the command to run"),
    ({"actions": ["retrain:python 'unclosed"]}, "cannot be split into arguments"),
    ({"actions": ["retrain:pipeline:not a target"]}, "a pipeline is named MODULE:FUNCTION"),
    ({"actions": ["retrain:python x.py"], "metrics": []}, "give one (--metric f1"),
    ({"actions": ["retrain:python x.py"], "retrain_margin": -1}, "retrain margin must be a number of 0 or more"),
    ({"actions": ["retrain:python x.py"], "retrain_holdout": 1.0}, "from 0.05 to 0.9"),
    ({"actions": ["retrain:python x.py"], "retrain_alias": "latest"}, "retrain alias: alias 'latest' is reserved"),
], ids=["empty", "unsplittable", "pipeline-target", "no-metric", "margin", "holdout", "alias"])
def test_bad_retrain_definitions_say_what_to_do(world, kwargs: dict[str, Any], message: str) -> None:
    options = {"metrics": ["f1"], **kwargs}
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        monitors(world, T0).create("bad", deployment="churn-api", **options)


def test_the_cli_defines_a_retraining_monitor_and_runs_it(world, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from shipyard.cli import app

    def invoke(*args: str) -> str:
        result = CliRunner().invoke(app, ["--tracking-uri", world.settings.tracking_uri, "--artifact-uri",
                                          world.settings.artifact_uri, *args], env={"COLUMNS": "250"})
        assert result.exit_code == 0, result.output
        return result.stdout

    hour = int(datetime.now(UTC).timestamp() * 1000) // 3_600_000 * 3_600_000
    invoke("monitor", "create", "churn-f1", "--deployment", "churn-api", "--since", "3h", "--metric", "f1",
           "--min", "f1=0.8", "--on-alert", retrain_action(tmp_path), "--retrain-alias", "champion",
           "--retrain-margin", "0.05", "--retrain-holdout", "0.25")
    stored = world.store.monitors.get("churn-f1").retrain
    assert (stored.alias, stored.margin, stored.holdout, stored.timeout_seconds) == ("champion", 0.05, 0.25, 3600)
    assert "the challenger takes champion when better by 0.05 on 25% of the window held back" in \
        invoke("monitor", "status", "churn-f1")
    drifted_traffic(world, hour - 2 * 3_600_000)
    invoke("monitor", "run", "--once")
    [alert] = world.store.monitors.alerts("churn-f1")
    assert alert.status == "promoted", alert.detail
    assert world.deployments.get("churn-api").primary.version == 2
    assert "promoted" in invoke("monitor", "status", "churn-f1")


FLOW = '''
import os
import pandas as pd
from sklearn.linear_model import LogisticRegression
from shipyard import pipeline, step


@step
def train() -> LogisticRegression:
    data = pd.read_parquet(os.environ["SHIPYARD_RETRAIN_DATA"])
    target = os.environ["SHIPYARD_RETRAIN_TARGET"]
    return LogisticRegression().fit(data.drop(columns=[target]), data[target])


@pipeline
def retrain():
    train()
'''


def test_a_pipeline_can_be_the_retrain_command(world, tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOW)
    action = f"retrain:pipeline:{tmp_path / 'flows.py'}:retrain"
    monitors(world, T0).create("churn-f1", deployment="churn-api", start=T0, metrics=["f1"], minimums={"f1": 0.8},
                               actions=[action], retrain_alias="champion")
    drifted_traffic(world, T0)
    [result] = monitors(world, T0 + 3_600_000).run_due()
    [alert] = result.alerts
    assert alert.status == "promoted", alert.detail
    assert world.get_model_version("churn", 2).aliases == ("champion",)
    assert f"alert:churn-f1/{alert.alert_id}" in {str(n) for n in explain("models:/churn/2", client=world).graph.nodes}


def test_the_servers_scheduler_records_its_own_principal_not_the_os_login(world, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Background work acts as ``shipyard:monitor``: the retraining and evaluation runs, the alias
    move and the deployment's revisions. The retrain command is the user's own program, run by the
    server's OS account and told to act as ``shipyard:monitor`` (``SHIPYARD_ACTING_USER``)."""
    from shipyard.config import Settings
    from shipyard.monitoring.scheduler import MONITOR_PRINCIPAL
    from shipyard.server import create_app

    monkeypatch.setenv("LOGNAME", "server-process-login")  # what background work used to record
    hour = int(datetime.now(UTC).timestamp() * 1000) // 3_600_000 * 3_600_000
    monitors(world, hour).create("churn-f1", deployment="churn-api", window="1h", start=hour - 3 * 3_600_000,
                                 metrics=["f1"], minimums={"f1": 0.8}, actions=[retrain_action(tmp_path)],
                                 retrain_alias="champion")
    drifted_traffic(world, hour - 2 * 3_600_000)
    settings = Settings.resolve(env={}, tracking_uri=world.settings.tracking_uri,
                                artifact_uri=world.settings.artifact_uri, server_allowed_hosts="testserver",
                                server_monitor_interval_seconds=3600, capture_packages=False, capture_git=False)
    app = create_app(settings, schedule_monitors=True)

    async def one_pass() -> None:
        async with app.router.lifespan_context(app):
            await wait_for_async(lambda: app.state.monitor_scheduler.passes >= 1, timeout=120)

    try:
        asyncio.run(one_pass())
    finally:
        app.state.client.close()
    [alert] = world.store.monitors.alerts("churn-f1")
    assert alert.status == "promoted", alert.detail
    assert MONITOR_PRINCIPAL.name == "shipyard:monitor"
    record = alert.payload["retrain"]
    runs = [record["run_id"], *record["evaluation_runs"].values()]
    assert {world.get_run(r).info.user_id for r in runs} == {"shipyard:monitor"}
    [moved] = [e for e in world.model_history("churn") if e.alias == "champion" and e.version == 2]
    assert moved.user == "shipyard:monitor"
    assert [(e.revision, e.user) for e in world.deployments.history("churn-api")][1:] == \
        [(2, "shipyard:monitor"), (3, "shipyard:monitor")]
    challenger = world.get_model_version("churn", 2)
    assert challenger.run_id is not None
    assert world.get_run(challenger.run_id).data.tags["seen.acting_user"] == "shipyard:monitor"
    from shipyard.auth.service import AuthService

    admin = Principal("operator", anonymous=False, admin=True)
    with pytest.raises(InvalidInput, match="is not valid"):  # no account can pass for the scheduler
        AuthService(world.store.auth, admin).create_user(MONITOR_PRINCIPAL.name, service=True)
