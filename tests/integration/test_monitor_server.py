"""Monitors through a Shipyard server: a runner over the REST store, and the results on /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from shipyard.auth import Principal
from shipyard.config import Settings
from shipyard.monitoring.alerts import Notifier
from shipyard.monitoring.service import MonitorService
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from tests.unit.monitor_helpers import HOUR, T0, features, log_predictions, make_world


def _metric(text: str, name: str, **labels: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} not in /metrics")


def test_a_runner_over_rest_and_the_prometheus_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    local = make_world(tmp_path)
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    transport = ASGITransport(app)
    remote = RestStore("http://testserver", transport=transport)
    try:
        service = MonitorService(remote, local.artifacts, Principal("ana"), notifier=Notifier(backoff=0.01),
                                 clock=lambda: T0 + 3 * HOUR)
        made = service.create("churn-drift", deployment="churn-api", start=T0, minimums={"f1": 0.5},
                              actions=["log"])
        assert made.user == "local"  # the server records its principal, not the one the client claims
        good = features(300, 40)
        log_predictions(local, T0, good, labels=(good["age"] > 45).astype(int))
        log_predictions(local, T0 + HOUR, features(300, 2, age_shift=8))
        [result] = service.run_due()
        assert [e.status for e in result.evaluated] == ["ok", "breach", "no_data"]
        assert [a.status for a in result.alerts] == ["logged"]
        assert local.store.monitors.get("churn-drift").state.value == "FIRING"
        with httpx.Client(base_url="http://testserver", transport=transport) as http:
            text = http.get("/metrics").text
    finally:
        remote.close()
        transport.close()
        app.state.client.close()
        local.close()
    assert _metric(text, "shipyard_monitor_alert_state", monitor="churn-drift", state="FIRING") == 1.0
    assert _metric(text, "shipyard_monitor_alert_state", monitor="churn-drift", state="OK") == 0.0
    assert _metric(text, "shipyard_monitor_last_evaluation_timestamp_seconds", monitor="churn-drift") == \
        pytest.approx((T0 + 3 * HOUR) / 1000)
    # The latest window had no data: no column series for it, its row count is 0.
    assert _metric(text, "shipyard_monitor_window_rows", monitor="churn-drift") == 0.0
    assert "shipyard_monitor_drift_p_value{" not in text


def test_the_latest_window_scores_are_exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    local = make_world(tmp_path)
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    try:
        service = MonitorService(local.store, local.artifacts, Principal("ana"), clock=lambda: T0 + 2 * HOUR)
        service.create("churn-f1", deployment="churn-api", start=T0, minimums={"f1": 0.5})
        good = features(300, 40)
        log_predictions(local, T0, good, labels=(good["age"] > 45).astype(int))
        log_predictions(local, T0 + HOUR, features(300, 2, age_shift=8))
        service.run_due()
        with httpx.Client(base_url="http://testserver", transport=ASGITransport(app)) as http:
            text = http.get("/metrics").text
    finally:
        app.state.client.close()
        local.close()
    assert _metric(text, "shipyard_monitor_column_drifted", monitor="churn-f1", column="age") == 1.0
    assert _metric(text, "shipyard_monitor_column_drifted", monitor="churn-f1", column="plan") == 0.0
    assert _metric(text, "shipyard_monitor_drift_p_value", monitor="churn-f1", column="age") < 1e-6
    assert _metric(text, "shipyard_monitor_drift_effect", monitor="churn-f1", column="age") > 0.5
    assert _metric(text, "shipyard_monitor_window_rows", monitor="churn-f1") == 300.0
