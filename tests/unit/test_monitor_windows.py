"""The pieces of a monitor's window: JSON columns of the prediction log parsed into tables, live
performance equal to scikit-learn's, and the alert state machine with its cooldown."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn import metrics as skm

from shipyard.entities.monitor import Alert, AlertState
from shipyard.errors import InvalidInput
from shipyard.monitoring import drift
from shipyard.monitoring.alerts import check_action, display_action, next_state, notification_status
from shipyard.monitoring.performance import check_metrics, live_performance
from shipyard.monitoring.windows import parse_json_column


def _column(values: list[str | None]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


def test_inputs_become_one_column_per_field_nested_ones_dotted() -> None:
    table, invalid = parse_json_column(_column(['{"age": 40, "plan": "pro", "geo": {"country": "fr"}}',
                                                None, '{"age": 41.5}', "[1, 2]"]), "inputs")
    assert invalid == {}
    assert table.column_names == ["age", "plan", "geo.country"]
    assert table.column("age").to_pylist() == [40.0, None, 41.5, None]
    assert table.column("geo.country").to_pylist() == ["fr", None, None, None]


def test_outputs_are_wrapped_objects_flattened() -> None:
    scalar, _ = parse_json_column(_column(["0.8", "0.1", None]), "output", wrap=True)
    assert scalar.column_names == ["output"]
    assert scalar.column("output").to_pylist() == [0.8, 0.1, None]
    objects, _ = parse_json_column(_column(['{"label": 1, "proba": [0.2, 0.8]}', '{"label": 0, "proba": [0.9, 0.1]}']),
                                   "output", wrap=True)
    assert objects.column_names == ["output.label", "output.proba"]


def test_a_column_mixing_types_is_reported_by_the_comparison() -> None:
    rows = ['{"a": 1, "b": "x"}', '{"a": "x", "b": "y"}'] * 50
    table, _ = parse_json_column(_column(rows), "inputs")
    report = drift({"a": [1.0, 2.0] * 50, "b": ["x", "y"] * 50}, table)
    assert report["a"].status == "invalid"
    assert "mixed types in one column" in report["a"].message
    assert report["b"].status == "tested"


def _outputs(**columns) -> pa.Table:
    return pa.table({f"output.{k}" if k != "output" else k: v for k, v in columns.items()})


def test_binary_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, 500)
    proba = np.clip(truth * 0.3 + rng.random(500) * 0.7, 0, 1)
    labels = pa.array([int(t) if i % 7 else None for i, t in enumerate(truth)])  # some rows without feedback
    got, notes = live_performance(_outputs(output=proba), labels,
                                  ("accuracy", "precision", "recall", "f1", "roc_auc"))
    kept = np.arange(500) % 7 != 0
    t, p = truth[kept], proba[kept]
    assert notes == []
    assert got == pytest.approx({"accuracy": skm.accuracy_score(t, p >= 0.5),
                                 "precision": skm.precision_score(t, p >= 0.5), "recall": skm.recall_score(t, p >= 0.5),
                                 "f1": skm.f1_score(t, p >= 0.5), "roc_auc": skm.roc_auc_score(t, p)}, abs=1e-12)


def test_label_and_probability_fields_and_text_labels() -> None:
    truth = ["yes", "no", "yes", "yes", "no", "no"]
    answers = ["yes", "yes", "yes", "no", "no", "no"]
    got, _ = live_performance(_outputs(label=answers, proba=[[0.1, 0.9], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4],
                                                             [0.9, 0.1], [0.8, 0.2]]),
                              pa.array(truth), ("accuracy", "f1", "roc_auc"))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, answers))
    assert got["f1"] == pytest.approx(skm.f1_score(truth, answers, pos_label="yes"))
    scores = [0.9, 0.7, 0.8, 0.4, 0.1, 0.2]
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score([t == "yes" for t in truth], scores))


def test_multiclass_macro_averages_and_regression() -> None:
    rng = np.random.default_rng(1)
    truth, pred = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    got, notes = live_performance(_outputs(output=pred), pa.array(truth), ("precision", "recall", "f1", "roc_auc"))
    assert got == pytest.approx({"precision": skm.precision_score(truth, pred, average="macro"),
                                 "recall": skm.recall_score(truth, pred, average="macro"),
                                 "f1": skm.f1_score(truth, pred, average="macro")})
    assert "roc_auc is computed for two classes" in notes[0]
    y, yhat = rng.normal(size=200), rng.normal(size=200)
    got, _ = live_performance(_outputs(output=yhat), pa.array(y), ("mae", "rmse"))
    assert got == pytest.approx({"mae": skm.mean_absolute_error(y, yhat),
                                 "rmse": np.sqrt(skm.mean_squared_error(y, yhat))})


def test_no_feedback_means_no_metrics() -> None:
    assert live_performance(_outputs(output=[1, 0]), pa.array([None, None], pa.int64()), ("f1",)) == ({}, [])
    with pytest.raises(InvalidInput, match="unknown metric 'auc'"):
        check_metrics(["auc"])


def test_state_machine_and_cooldown() -> None:
    ok, firing, resolved = AlertState.OK, AlertState.FIRING, AlertState.RESOLVED
    assert [next_state(ok, True), next_state(firing, True), next_state(firing, False), next_state(resolved, False),
            next_state(resolved, True), next_state(firing, None), next_state(ok, None)] == \
        [firing, firing, resolved, ok, firing, firing, ok]

    def alert(state: AlertState, time: int, status: str = "delivered") -> Alert:
        return Alert("m", time, state, 0, "log", status)

    assert notification_status(firing, 1000, 500, []) == "send"
    assert notification_status(firing, 1000, 500, [alert(firing, 600), alert(resolved, 700)]) == "suppressed"
    assert notification_status(firing, 1200, 500, [alert(firing, 600), alert(resolved, 700)]) == "send"
    assert notification_status(resolved, 1000, 500, [alert(firing, 900, "suppressed")]) == "suppressed"
    assert notification_status(resolved, 1000, 500, [alert(firing, 900)]) == "send"
    assert notification_status(ok, 1000, 500, []) is None


def test_actions_are_checked_and_webhook_secrets_are_not_shown() -> None:
    assert check_action(" log ") == "log"
    assert check_action("webhook:https://hooks.example.com/T0/B0/secret") == "webhook:https://hooks.example.com/T0/B0/secret"
    for bad in ("webhook:ftp://x", "webhook:", "mail:me@x"):
        with pytest.raises(InvalidInput, match="is not valid"):
            check_action(bad)
    assert display_action("webhook:https://hooks.example.com/T0/B0/secret") == "webhook:https://hooks.example.com/…"
    assert display_action("webhook:http://127.0.0.1:8080") == "webhook:http://127.0.0.1:8080"
