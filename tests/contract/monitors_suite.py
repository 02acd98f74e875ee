"""The MonitorStore part of the store contract (mixed into the backend test classes, so it runs
against SQLite file and memory stores, PostgreSQL and the REST store)."""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import replace

import pytest

from shipyard.entities.monitor import Alert, AlertState, Monitor, MonitorEvaluation
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.store import Store

HOUR = 3_600_000


def _name(prefix: str = "mon") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _evaluation(name: str, start: int, state: AlertState = AlertState.OK, **fields) -> MonitorEvaluation:
    fields.setdefault("status", "ok")
    return MonitorEvaluation(name, start, start + HOUR, state=state, **fields)


class MonitorStoreContract:
    __test__ = False

    def new_monitor(self, store: Store, **fields) -> Monitor:
        fields.setdefault("deployment", "churn-api")
        fields.setdefault("next_window_start", 10 * HOUR)
        return store.monitors.create(Monitor(fields.pop("name", _name()), **fields), user="ana")

    def test_monitor_create_get_list(self, store: Store) -> None:
        deployment = _name("dep")
        made = self.new_monitor(store, deployment=deployment, reference="train@3", window_seconds=600,
                                columns=("age", "plan"), tests={"plan": "psi:0.25"}, alpha=0.01, metrics=("f1",),
                                minimums={"f1": 0.8}, maximums={"rmse": 3.5},
                                actions=("webhook:http://127.0.0.1:9/x", "log"), cooldown_seconds=120,
                                delay_seconds=300)
        assert (made.revision, made.state, made.next_window_start, made.last_evaluation_time) == \
            (1, AlertState.OK, 10 * HOUR, None)
        assert made.creation_time > 0
        assert made.state_since > 0
        assert made.user == self.user("ana")
        got = store.monitors.get(made.name)
        assert got == made
        assert (got.tests, got.minimums, got.maximums, got.actions, got.delay_seconds) == \
            ({"plan": "psi:0.25"}, {"f1": 0.8}, {"rmse": 3.5}, ("webhook:http://127.0.0.1:9/x", "log"), 300)
        other = self.new_monitor(store, deployment=None, current="daily", reference="daily@1")
        assert [m.name for m in store.monitors.list(deployment)] == [made.name]
        names = [m.name for m in store.monitors.list()]
        assert {made.name, other.name} <= set(names)
        assert names == sorted(names)

    def test_monitor_duplicate_and_unknown(self, store: Store) -> None:
        made = self.new_monitor(store)
        with pytest.raises(AlreadyExists, match=made.name):
            self.new_monitor(store, name=made.name)
        missing = _name()
        with pytest.raises(NotFound, match=missing):
            store.monitors.get(missing)
        with pytest.raises(NotFound):
            store.monitors.delete(missing)
        with pytest.raises(NotFound):
            store.monitors.evaluations(missing)
        with pytest.raises(NotFound):
            store.monitors.alerts(missing)
        with pytest.raises(NotFound):
            store.monitors.acquire_lease(missing, "runner", 30)

    def test_monitor_save_checks_the_revision(self, store: Store) -> None:
        made = self.new_monitor(store)
        saved = store.monitors.save(replace(made, reference_dataset="train@2", reference_key="references/abc"))
        assert (saved.revision, saved.reference_dataset, saved.reference_key) == (2, "train@2", "references/abc")
        assert saved.last_update_time >= made.last_update_time
        with pytest.raises(Conflict, match="revision 2"):
            store.monitors.save(replace(made, alpha=0.2))  # made from revision 1
        assert store.monitors.get(made.name).alpha == made.alpha
        with pytest.raises(NotFound):
            store.monitors.save(replace(made, name=_name()))

    def test_monitor_lease_is_exclusive_until_it_expires(self, store: Store) -> None:
        made = self.new_monitor(store)
        assert store.monitors.acquire_lease(made.name, "a", 30)
        assert not store.monitors.acquire_lease(made.name, "b", 30)
        assert store.monitors.acquire_lease(made.name, "a", 30)  # the holder extends it
        store.monitors.release_lease(made.name, "b")  # not b's: nothing happens
        assert not store.monitors.acquire_lease(made.name, "b", 30)
        store.monitors.release_lease(made.name, "a")
        assert store.monitors.acquire_lease(made.name, "b", 0.2)
        assert not store.monitors.acquire_lease(made.name, "a", 30)
        time.sleep(0.3)  # b's lease ran out
        assert store.monitors.acquire_lease(made.name, "a", 30)

    def test_monitor_lease_goes_to_one_of_concurrent_runners(self, store: Store) -> None:
        made = self.new_monitor(store)
        outcomes: dict[str, bool] = {}
        barrier = threading.Barrier(4)

        def take(owner: str) -> None:
            barrier.wait()
            outcomes[owner] = store.monitors.acquire_lease(made.name, owner, 30)

        threads = [threading.Thread(target=take, args=(f"runner-{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes.values()) == [False, False, False, True]

    def test_monitor_record_evaluation_moves_the_window_and_state(self, store: Store) -> None:
        made = self.new_monitor(store)
        start = made.next_window_start
        with pytest.raises(Conflict, match="lease"):
            store.monitors.record_evaluation(_evaluation(made.name, start), owner="a")
        assert store.monitors.acquire_lease(made.name, "a", 30)
        with pytest.raises(Conflict, match=r"not due|evaluated already"):
            store.monitors.record_evaluation(_evaluation(made.name, start + HOUR), owner="a")
        report = {"columns": [{"column": "age", "distribution": {"labels": ["0 to 1"], "reference": [1.0]}}]}
        first = _evaluation(made.name, start, AlertState.FIRING, status="breach", rows=120, labelled=40,
                            dataset_drift=True, drifted_columns=("age",),
                            scores={"age": {"test": "ks", "p_value": 1e-12, "statistic": 0.4, "drifted": True}},
                            metrics={"f1": 0.61}, breaches=("f1 0.61 < 0.8",), message="drift in age",
                            report=report, evaluation_time=start + HOUR + 5)
        after = store.monitors.record_evaluation(first, owner="a")
        assert (after.state, after.state_since, after.next_window_start, after.last_evaluation_time) == \
            (AlertState.FIRING, start + HOUR + 5, start + HOUR, start + HOUR + 5)
        assert after.revision == made.revision  # the definition did not change
        with pytest.raises(Conflict):
            store.monitors.record_evaluation(first, owner="a")
        second = _evaluation(made.name, start + HOUR, AlertState.FIRING, status="no_data",
                             evaluation_time=start + 2 * HOUR + 9)
        after = store.monitors.record_evaluation(second, owner="a")
        assert (after.state_since, after.next_window_start) == (start + HOUR + 5, start + 2 * HOUR)
        stored = store.monitors.evaluations(made.name)
        assert [e.window_start for e in stored] == [start, start + HOUR]
        got = stored[0]
        assert (got.status, got.state, got.rows, got.labelled, got.dataset_drift, got.drifted_columns) == \
            ("breach", AlertState.FIRING, 120, 40, True, ("age",))
        assert got.scores["age"]["p_value"] == pytest.approx(1e-12)
        assert (got.metrics, got.breaches, got.message, got.report) == \
            ({"f1": 0.61}, ("f1 0.61 < 0.8",), "drift in age", report)
        assert got.evaluation_id > 0
        assert [e.window_start for e in store.monitors.evaluations(made.name, limit=1)] == [start + HOUR]
        assert [e.window_start for e in store.monitors.evaluations(made.name, since=start + 1)] == [start + HOUR]
        assert store.monitors.evaluations(made.name, with_report=False)[0].report == {}
        assert store.monitors.acquire_lease(made.name, "b", 30) is False
        store.monitors.release_lease(made.name, "a")
        with pytest.raises(Conflict, match="lease"):
            store.monitors.record_evaluation(_evaluation(made.name, start + 2 * HOUR), owner="a")

    def test_monitor_alerts_are_recorded_in_order(self, store: Store) -> None:
        made = self.new_monitor(store)
        sent = store.monitors.record_alert(Alert(made.name, 1000, AlertState.FIRING, 0, "webhook:http://h/x",
                                                 "failed", attempts=3, detail="HTTP 500",
                                                 payload={"monitor": made.name, "state": "FIRING"}))
        assert sent.alert_id > 0
        store.monitors.record_alert(Alert(made.name, 2000, AlertState.RESOLVED, HOUR, "log", "logged"))
        found = store.monitors.alerts(made.name)
        assert [(a.state, a.status, a.attempts) for a in found] == \
            [(AlertState.FIRING, "failed", 3), (AlertState.RESOLVED, "logged", 0)]
        assert found[0] == sent
        assert found[0].payload == {"monitor": made.name, "state": "FIRING"}
        assert [a.state for a in store.monitors.alerts(made.name, limit=1)] == [AlertState.RESOLVED]
        with pytest.raises(NotFound):
            store.monitors.record_alert(replace(sent, monitor=_name()))

    def test_monitor_delete_takes_its_evaluations_and_alerts(self, store: Store) -> None:
        made = self.new_monitor(store)
        assert store.monitors.acquire_lease(made.name, "a", 30)
        store.monitors.record_evaluation(_evaluation(made.name, made.next_window_start), owner="a")
        store.monitors.record_alert(Alert(made.name, 1, AlertState.FIRING, 0, "log", "logged"))
        store.monitors.delete(made.name)
        with pytest.raises(NotFound):
            store.monitors.get(made.name)
        again = self.new_monitor(store, name=made.name)
        assert store.monitors.evaluations(again.name) == []
        assert store.monitors.alerts(again.name) == []

    def test_monitor_records_are_checked(self, store: Store) -> None:
        made = self.new_monitor(store)
        assert store.monitors.acquire_lease(made.name, "a", 30)
        start = made.next_window_start
        with pytest.raises(InvalidInput, match="status: expected one of ok, breach, no_data, error"):
            store.monitors.record_evaluation(_evaluation(made.name, start, status="fine"), owner="a")
        with pytest.raises(InvalidInput, match="must come after the start"):
            store.monitors.record_evaluation(replace(_evaluation(made.name, start), window_end=start), owner="a")
        with pytest.raises(InvalidInput, match="NaN or an infinite number"):
            store.monitors.record_evaluation(_evaluation(made.name, start, metrics={"f1": math.nan}), owner="a")
        with pytest.raises(InvalidInput, match="status: expected one of delivered"):
            store.monitors.record_alert(Alert(made.name, 1, AlertState.FIRING, 0, "log", "sent"))
        assert store.monitors.evaluations(made.name) == []
        assert store.monitors.get(made.name).next_window_start == start
