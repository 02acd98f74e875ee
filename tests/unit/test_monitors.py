"""MonitorService over a real SQLite store and local artifact store: definitions, stored reference
profiles, windows over the prediction log, alert states, notifications and the lease."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import shipyard
from shipyard.auth import Principal
from shipyard.deploy.rollout import DeploymentService
from shipyard.entities.monitor import AlertState
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.monitoring import drift
from shipyard.monitoring.profiles import NAMESPACE, load_profile, read_dataset
from shipyard.monitoring.service import due_windows
from tests.unit.monitor_helpers import (
    HOUR,
    T0,
    churned,
    features,
    log_predictions,
    make_world,
    service,
    webhook_receiver,
)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[shipyard.Client]:
    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    client = make_world(tmp_path)
    yield client
    client.close()


# -- definitions and the stored reference -------------------------------------------------------------
def test_create_finds_the_training_set_through_lineage_and_stores_its_profile_once(world) -> None:
    monitors = service(world, T0)
    made = monitors.create("churn-drift", deployment="churn-api", window="1h", start=T0 + 1234)
    assert (made.reference, made.reference_dataset, made.next_window_start, made.window_seconds) == \
        ("training", "churn-train@1", T0, 3600)
    assert made.user == "ana"
    stored = {e.path for e in world.artifacts.walk(NAMESPACE, made.reference_key)}
    assert f"{made.reference_key}/profile.json" in stored
    profile = load_profile(world.artifacts, made.reference_key)
    training = read_dataset(world.artifacts, world.get_dataset("churn-train@1"))
    assert profile.rows == training.num_rows == 3000
    assert set(profile.columns) == {"age", "income", "plan"}
    # The stored profile gives the same statistics as the raw training set.
    window = features(500, 7, age_shift=2.0)
    from_profile, from_data = drift(profile, window), drift(training, window)
    assert [(c.column, c.statistic, c.p_value) for c in from_profile.columns] == \
        [(c.column, c.statistic, c.p_value) for c in from_data.columns]
    # A second monitor of the same training set reuses the stored profile.
    other = monitors.create("churn-drift-2", deployment="churn-api", window="15m")
    assert other.reference_key == made.reference_key


def test_a_dataset_version_can_be_the_reference(world, tmp_path: Path) -> None:
    run_id = world.create_run("0", "data").info.run_id
    world.log_dataset(run_id, features(800, 3), "golden", snapshot=True)
    made = service(world, T0).create("golden-drift", deployment="churn-api", reference="golden@1")
    assert made.reference_dataset == "golden@1"
    assert load_profile(world.artifacts, made.reference_key).rows == 800


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"deployment": "nope"}, "deployment 'nope' does not exist"),
    ({"deployment": "churn-api", "reference": "missing@1"}, "missing"),
    ({"deployment": "churn-api", "window": "soon"}, "window: expected a duration"),
    ({"deployment": "churn-api", "metrics": ["f2"]}, "unknown metric 'f2'"),
    ({"deployment": "churn-api", "minimums": {"rmse": 3}}, "bound it with a maximum"),
    ({"deployment": "churn-api", "metrics": ["f1", "mae"]}, "mix classification"),
    ({"deployment": "churn-api", "actions": ["email:me"]}, "alert action 'email:me' is not valid"),
    ({"deployment": "churn-api", "tests": {"age": "ks:0.1"}}, "decided by its p-value"),
    ({"deployment": "churn-api", "alpha": 2}, "alpha must be between 0 and 1"),
    ({}, "a monitor watches one thing"),
    ({"current": "churn-train"}, "give the reference as --reference DATASET@VERSION"),
])
def test_bad_definitions_name_what_is_wrong(world, kwargs, message) -> None:
    with pytest.raises((InvalidInput, NotFound), match=message):
        service(world, T0).create("bad", **kwargs)
    assert world.store.monitors.list() == []


def test_a_model_without_a_training_set_in_lineage_asks_for_a_reference(world) -> None:
    run_id = world.create_run("0", "no-data").info.run_id
    world.store.models.create_version("churn", source=f"runs:/{run_id}/model", run_id=run_id)
    DeploymentService(world.store, Principal("ana")).create("bare-api", "models:/churn/2")
    with pytest.raises(NotFound, match=r"no training dataset in lineage.*--reference DATASET@VERSION"):
        service(world, T0).create("bare", deployment="bare-api")


def test_names_are_unique(world) -> None:
    monitors = service(world, T0)
    monitors.create("m", deployment="churn-api")
    with pytest.raises(AlreadyExists):
        monitors.create("m", deployment="churn-api")


# -- windows, verdicts and alert states ----------------------------------------------------------------
def test_windows_drift_alerts_once_per_state_change(world) -> None:
    with webhook_receiver() as hook:
        setup = service(world, T0)
        setup.create("churn-drift", deployment="churn-api", window="1h", start=T0,
                     actions=[f"webhook:{hook.url}", "log"], cooldown=0)
        clean, drifted = features(400, 3), features(400, 2, age_shift=8.0)
        log_predictions(world, T0, clean)  # window 1: like the training data
        log_predictions(world, T0 + HOUR, drifted)  # window 2: ages moved by 0.8 std
        log_predictions(world, T0 + 2 * HOUR, features(400, 3, age_shift=8.0))  # window 3: still drifted
        # window 4 (T0 + 3h): no predictions at all
        results = service(world, T0 + 4 * HOUR + 1).run_due()
        [result] = results
        statuses = [(e.status, e.state) for e in result.evaluated]
        assert statuses == [("ok", AlertState.OK), ("breach", AlertState.FIRING), ("breach", AlertState.FIRING),
                            ("no_data", AlertState.FIRING)]
        second = result.evaluated[1]
        assert "age" in second.drifted_columns
        assert "input drift in age" in second.breaches[0]
        assert second.scores["age"]["p_value"] < 1e-6
        assert second.scores["plan"]["drifted"] is False
        # Prediction drift: window 1's answers are the baseline; the churn answers moved with age.
        assert "output" in second.drifted_columns
        assert result.evaluated[0].message.startswith("the answers of this window are the baseline")
        # One notification per action for the change to FIRING, none for the window that stayed FIRING.
        assert [(a.state, a.action.split(":")[0], a.status) for a in result.alerts] == \
            [(AlertState.FIRING, "webhook", "delivered"), (AlertState.FIRING, "log", "logged")]
        assert len(hook.received) == 1
        sent = hook.received[0]
        assert (sent["monitor"], sent["state"], sent["previous_state"], sent["deployment"]) == \
            ("churn-drift", "FIRING", "OK", "churn-api")
        assert sent["window"]["start"] == "2024-05-01T01:00:00Z"
        assert "age" in sent["drifted_columns"]
        assert sent["text"].startswith("[FIRING] monitor churn-drift (deployment churn-api): input drift in age")
        # A healthy window resolves it (notified), the next one is OK (not notified).
        log_predictions(world, T0 + 4 * HOUR, features(400, 4))
        log_predictions(world, T0 + 5 * HOUR, features(400, 5))
        [later] = service(world, T0 + 6 * HOUR).run_due()
    assert [e.state for e in later.evaluated] == [AlertState.RESOLVED, AlertState.OK]
    assert [(a.state, a.status) for a in later.alerts] == [(AlertState.RESOLVED, "delivered"),
                                                           (AlertState.RESOLVED, "logged")]
    assert [b["state"] for b in hook.received] == ["FIRING", "RESOLVED"]
    monitor = world.store.monitors.get("churn-drift")
    assert (monitor.state, monitor.next_window_start) == (AlertState.OK, T0 + 6 * HOUR)
    history = world.store.monitors.evaluations("churn-drift")
    assert [e.window_start for e in history] == [T0 + i * HOUR for i in range(6)]
    assert [a.status for a in world.store.monitors.alerts("churn-drift")] == \
        ["delivered", "logged", "delivered", "logged"]


def test_a_clean_window_stays_quiet_at_large_size(world) -> None:
    service(world, T0).create("quiet", deployment="churn-api", start=T0, actions=["log"])
    log_predictions(world, T0, features(3000, 11))
    log_predictions(world, T0 + HOUR, features(3000, 12))
    [result] = service(world, T0 + 2 * HOUR).run_due()
    assert [(e.status, e.state, e.drifted_columns) for e in result.evaluated] == \
        [("ok", AlertState.OK, ()), ("ok", AlertState.OK, ())]
    assert result.alerts == []


def test_live_performance_joins_feedback_and_checks_the_minimum(world) -> None:
    service(world, T0).create("churn-f1", deployment="churn-api", start=T0, minimums={"f1": 0.8},
                              metrics=["accuracy", "roc_auc"])
    good = features(200, 40)
    log_predictions(world, T0, good, labels=churned(good))  # answers equal the truth: f1 = 1
    bad = features(200, 22)
    truth = churned(bad)
    flipped = np.where(np.arange(200) % 2 == 0, 1 - truth, truth)  # half of the answers wrong
    log_predictions(world, T0 + HOUR, bad, outputs=flipped, labels=truth)
    few = features(10, 23)
    log_predictions(world, T0 + 2 * HOUR, few, outputs=1 - churned(few), labels=churned(few))
    [result] = service(world, T0 + 3 * HOUR).run_due()
    first, second, third = result.evaluated
    assert first.metrics["f1"] == pytest.approx(1.0)
    assert first.labelled == 200
    assert first.status == "ok"
    from sklearn.metrics import accuracy_score, f1_score

    assert second.metrics["f1"] == pytest.approx(f1_score(truth, flipped))
    assert second.metrics["accuracy"] == pytest.approx(accuracy_score(truth, flipped))
    assert second.status == "breach"
    assert any(b.startswith(f"f1 {second.metrics['f1']:.4g} is below its minimum 0.8") for b in second.breaches)
    # Ten labels: scored, but too few to decide on.
    assert third.labelled == 10
    assert third.metrics["f1"] == 0.0
    assert "only 10 predictions have feedback" in third.message
    assert not any("f1" in b for b in third.breaches)


def test_schemas_that_differ_and_all_null_columns_are_reported_not_crashed(world) -> None:
    service(world, T0).create("schema", deployment="churn-api", start=T0)
    frame = features(300, 31)
    answers = churned(frame)
    log_predictions(world, T0, frame.assign(income=None), outputs=answers)  # income: every value null
    log_predictions(world, T0 + HOUR, frame.rename(columns={"age": "years", "income": "salary", "plan": "tier"}),
                    outputs=answers)
    [result] = service(world, T0 + 2 * HOUR).run_due()
    nulls, renamed = result.evaluated
    assert nulls.scores["income"]["status"] == "all_null"
    assert nulls.status == "ok"
    assert "income: no value in the current data" in nulls.message
    assert renamed.status == "breach"
    [reason] = [b for b in renamed.breaches if b.startswith("no input column")]
    assert "missing from the window: age, income, plan" in reason
    assert "not in the reference: years, salary, tier" in reason


def test_mixed_types_in_one_window_column_are_reported(world) -> None:
    service(world, T0).create("mixed", deployment="churn-api", start=T0)
    frame = features(100, 41).astype({"age": object})
    frame.loc[::2, "age"] = "unknown"
    log_predictions(world, T0, frame, outputs=[0] * 100)
    [result] = service(world, T0 + HOUR).run_due()
    [evaluation] = result.evaluated
    assert evaluation.scores["age"]["status"] == "invalid"
    assert "age: current: mixed types in one column" in evaluation.message
    assert "cast the column to one type first" in evaluation.message
    assert evaluation.scores["plan"]["status"] == "tested"


def test_a_deleted_deployment_is_an_error_in_each_window_not_a_crash(world) -> None:
    service(world, T0).create("orphan", deployment="churn-api", start=T0, actions=["log"])
    DeploymentService(world.store, Principal("ana")).delete("churn-api")
    [result] = service(world, T0 + 2 * HOUR).run_due()
    assert [(e.status, e.state) for e in result.evaluated] == [("error", AlertState.OK)] * 2
    assert "deployment 'churn-api' does not exist" in result.evaluated[0].message
    assert "shipyard monitor delete orphan" in result.evaluated[0].message
    assert result.alerts == []
    with pytest.raises(NotFound, match="deployment 'churn-api' does not exist"):
        service(world, T0).create("late", deployment="churn-api")


def test_the_delay_waits_for_feedback(world) -> None:
    made = service(world, T0).create("late", deployment="churn-api", start=T0, delay="30m")
    assert due_windows(made, T0 + HOUR + 29 * 60_000) == []
    assert due_windows(made, T0 + HOUR + 30 * 60_000) == [(T0, T0 + HOUR)]


def test_shadow_answers_are_left_out(world) -> None:
    service(world, T0).create("roles", deployment="churn-api", start=T0)
    log_predictions(world, T0, features(100, 51))
    log_predictions(world, T0 + 500, features(100, 52, age_shift=30), role="shadow")
    [result] = service(world, T0 + HOUR).run_due()
    assert result.evaluated[0].rows == 100


# -- notifications -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("mode", "detail"), [("error", "HTTP 500"), ("slow", "ReadTimeout")])
def test_a_failing_webhook_is_retried_recorded_and_the_monitor_keeps_running(world, mode, detail, caplog) -> None:
    with webhook_receiver(mode, delay=1.0) as hook:
        service(world, T0).create("hooked", deployment="churn-api", start=T0, actions=[f"webhook:{hook.url}"])
        log_predictions(world, T0, features(300, 61, age_shift=10))
        log_predictions(world, T0 + HOUR, features(300, 62, age_shift=10))
        with caplog.at_level(logging.WARNING, logger="shipyard.monitoring"):
            [result] = service(world, T0 + 2 * HOUR, timeout=0.3, retries=2).run_due()
        assert len(hook.received) == 3  # the first attempt and two retries
    assert [e.state for e in result.evaluated] == [AlertState.FIRING, AlertState.FIRING]
    [alert] = result.alerts
    assert (alert.status, alert.attempts) == ("failed", 3)
    assert detail in alert.detail
    assert world.store.monitors.get("hooked").next_window_start == T0 + 2 * HOUR
    assert "failed after 3 attempt(s)" in caplog.text


def test_cooldown_suppresses_a_flapping_monitor(world) -> None:
    with webhook_receiver() as hook:
        service(world, T0).create("flappy", deployment="churn-api", start=T0, actions=[f"webhook:{hook.url}"],
                                  cooldown="6h")
        # OK, FIRING, RESOLVED, FIRING (inside the cooldown), RESOLVED
        for i, shift in enumerate([0, 10, 0, 10, 0]):
            log_predictions(world, T0 + i * HOUR, features(300, 70 + i, age_shift=shift))
        service(world, T0 + 5 * HOUR).run_due()
    alerts = world.store.monitors.alerts("flappy")
    assert [(a.state.value, a.status) for a in alerts] == [
        ("FIRING", "delivered"), ("RESOLVED", "delivered"), ("FIRING", "suppressed"), ("RESOLVED", "suppressed")]
    assert [b["state"] for b in hook.received] == ["FIRING", "RESOLVED"]


# -- one evaluation per window, with several runners ----------------------------------------------------
def test_two_concurrent_runners_evaluate_each_window_once(world, tmp_path: Path) -> None:
    service(world, T0).create("busy", deployment="churn-api", start=T0, window="10m")
    for i in range(6):
        log_predictions(world, T0 + i * 600_000, features(50, 80 + i))
    results: dict[str, list] = {}
    barrier = threading.Barrier(2)

    def runner(owner: str) -> None:
        client = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                 artifact_uri=str(tmp_path / "artifacts"))
        try:
            barrier.wait()
            results[owner] = service(client, T0 + HOUR).run_due(owner=owner)
        finally:
            client.close()

    threads = [threading.Thread(target=runner, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    evaluated = [e.window_start for r in results.values() for e in r[0].evaluated]
    assert sorted(evaluated) == [T0 + i * 600_000 for i in range(6)]
    skipped = [r[0].skipped for r in results.values() if not r[0].evaluated]
    assert skipped in ([], ["another runner is evaluating it"], ["no window due"])
    assert [e.window_start for e in world.store.monitors.evaluations("busy")] == sorted(evaluated)


def test_a_runner_that_lost_its_lease_records_nothing(world) -> None:
    made = service(world, T0).create("lease", deployment="churn-api", start=T0)
    assert world.store.monitors.acquire_lease(made.name, "someone-else", 60)
    [result] = service(world, T0 + 3 * HOUR).run_due(owner="me")
    assert (result.evaluated, result.skipped) == ([], "another runner is evaluating it")
    assert world.store.monitors.evaluations(made.name) == []


def test_the_training_reference_follows_a_promotion(world) -> None:
    made = service(world, T0).create("follow", deployment="churn-api", start=T0)
    run_id = world.create_run("0", "retrain").info.run_id
    world.log_dataset(run_id, features(1000, 99, age_shift=8), "churn-train", context="training", snapshot=True)
    world.store.models.create_version("churn", source=f"runs:/{run_id}/model", run_id=run_id)
    from shipyard.entities import Edge, Node, NodeKind, Relation

    world.store.lineage.add_edges([Edge(Node(NodeKind.RUN, run_id), Node(NodeKind.MODEL, "churn/2"),
                                        Relation.MODEL)])
    deployments = DeploymentService(world.store, Principal("ana"))
    deployments.canary("churn-api", "models:/churn/2", 10)
    deployments.promote("churn-api")
    log_predictions(world, T0, features(300, 98, age_shift=8))
    [result] = service(world, T0 + HOUR).run_due()
    after = world.store.monitors.get("follow")
    assert after.reference_dataset == "churn-train@2"
    assert after.reference_key != made.reference_key
    assert result.evaluated[0].status == "ok"  # the new model's training data looks like the traffic


def test_run_due_skips_monitors_without_due_windows(world) -> None:
    service(world, T0).create("fresh", deployment="churn-api", start=T0)
    [result] = service(world, T0 + 10).run_due()
    assert (result.evaluated, result.skipped) == ([], "no window due")
    assert replace(world.store.monitors.get("fresh"), last_update_time=0).last_evaluation_time is None
