"""Metric history as columns: min/max thinning for charts, in the SDK and on the server."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.entities import Metric
from shipyard.entities.history import MetricHistory
from shipyard.errors import InvalidInput
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from shipyard.tracking.client import Client
from shipyard.tracking.downsample import min_max


def _history(values: list[float]) -> MetricHistory:
    n = len(values)
    return MetricHistory("m", array("q", range(n)), array("d", values), array("q", range(1000, 1000 + n)))


def test_min_max_keeps_every_spike_and_the_ends() -> None:
    values = [math.sin(i / 50) for i in range(10_000)]
    values[1234], values[8765], values[5000] = 9.0, -9.0, math.nan
    thin = min_max(_history(values), 400)
    assert len(thin) <= 400
    assert list(thin.steps) == sorted(thin.steps)
    assert {thin.steps[0], thin.steps[-1]} == {0, 9_999}
    assert {1234, 8765} <= set(thin.steps)
    assert max(thin.values) == 9.0
    assert min(thin.values) == -9.0
    # every bucket of 100 points keeps its own lowest and highest
    for b in range(100):
        bucket = values[b * 100:(b + 1) * 100]
        kept = [v for s, v in zip(thin.steps, thin.values, strict=True)
                if b * 100 <= s < (b + 1) * 100 and not math.isnan(v)]
        finite = [v for v in bucket if not math.isnan(v)]
        assert max(kept) == max(finite)
        assert min(kept) == min(finite)


def test_min_max_leaves_short_histories_alone_and_refuses_tiny_budgets() -> None:
    short = _history([1.0, 2.0, 3.0])
    assert min_max(short, 4) is short
    with pytest.raises(InvalidInput, match="at least 4"):
        min_max(short, 3)


def _log_curve(client: Client, n: int) -> str:
    run_id = client.create_run(client.create_experiment("curves"), "c").info.run_id
    client.log_batch(run_id, metrics=[Metric("loss", 1.0 / (i + 1), i, i) for i in range(n)])
    return run_id


def test_sdk_columns_and_thinning(tmp_path: Path) -> None:
    client = Client(tracking_uri=f"sqlite:///{tmp_path / 's.db'}", artifact_uri=str(tmp_path / "a"))
    try:
        run_id = _log_curve(client, 5_000)
        full = client.get_metric_history_columns(run_id, "loss")
        assert len(full) == 5_000
        steps, values, _ts = full.to_numpy()
        assert steps[-1] == 4_999
        assert values[0] == 1.0
        thin = client.get_metric_history_columns(run_id, "loss", max_points=100)
        assert len(thin) <= 100
        assert (thin.steps[0], thin.steps[-1]) == (0, 4_999)
    finally:
        client.close()


def test_server_thins_before_sending(tmp_path: Path) -> None:
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    transport, raw = ASGITransport(app), ASGITransport(app)
    remote = Client(settings=settings.replace(tracking_uri="http://testserver"),
                    store=RestStore("http://testserver", transport=transport))
    try:
        run_id = _log_curve(remote, 20_000)
        thin = remote.get_metric_history_columns(run_id, "loss", max_points=200)
        assert len(thin) <= 200
        assert (thin.steps[0], thin.steps[-1]) == (0, 19_999)
        assert len(remote.get_metric_history_columns(run_id, "loss")) == 20_000
        with httpx.Client(base_url="http://testserver", transport=raw) as http:
            path = f"/api/v1/runs/{run_id}/metric-history/columns"
            body = http.get(path, params={"key": "loss", "max_points": 200})
            assert body.status_code == 200
            assert len(body.json()["steps"]) <= 200
            bad = http.get(path, params={"key": "loss", "max_points": 2})
            assert bad.status_code == 400
            assert bad.json()["error_code"] == "INVALID_INPUT"
            missing = http.get("/api/v1/runs/ghost/metric-history/columns", params={"key": "loss"})
            assert missing.status_code == 404
    finally:
        remote.close()
        transport.close()
        app.state.client.close()
