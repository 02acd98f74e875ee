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
from shipyard.errors import InvalidInput, NotFound
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.store.sql.engine import normalize_url
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


def test_min_max_with_numpy_keeps_exactly_the_points_the_point_by_point_rule_keeps() -> None:
    """The whole-array thinning (what a server with NumPy runs) against the rule written point by point:
    ties, NaN runs, all-NaN buckets, infinities, signed zeros and uneven buckets included."""
    import random

    from shipyard.tracking import downsample

    rng = random.Random(7)
    choices = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1.0, 2.5, -3.0]
    for n in (5, 17, 101, 1_000, 4_099):
        for budget in (4, 8, 40, 400):
            values = [rng.choice(choices) if rng.random() < 0.5 else rng.uniform(-5, 5) for _ in range(n)]
            if n > 50:
                values[10:40] = [math.nan] * 30  # whole buckets of NaN at some budgets
            history = _history(values)
            if n <= budget:
                continue
            buckets = budget // downsample.MIN_POINTS
            assert downsample._kept_numpy(history, buckets) == downsample._kept(history.values, buckets), (n, budget)


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


# -- the columns as the store reads them: each backend and path against the object path -------------
_AWKWARD = [
    # steps out of order in the log, ties on a step with timestamps and ids out of order, the
    # extremes of int64, NaN and both infinities
    Metric("m", 1.0, 5, 100), Metric("m", 2.0, -3, 50), Metric("m", math.nan, 5, 90), Metric("m", math.inf, 5, 90),
    Metric("m", -math.inf, 2**63 - 1, 0), Metric("m", 0.1 + 0.2, -(2**63), 2**62), Metric("m", 3.0, 5, 100),
    Metric("m", 5e-324, 7, -1), Metric("other", 9.0, 0, 0),
]


def _same(history: MetricHistory, objects: list[Metric]) -> None:
    assert (history.steps.typecode, history.values.typecode, history.timestamps.typecode) == ("q", "d", "q")
    assert list(history.steps) == [m.step for m in objects]
    assert list(history.timestamps) == [m.timestamp for m in objects]
    assert [repr(v) for v in history.values] == [repr(m.value) for m in objects]  # NaN too, bit for bit


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql", "without-numpy"])
def history_client(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    uri = {"sqlite-file": f"sqlite:///{tmp_path / 'h.db'}", "sqlite-memory": "sqlite://",
           "without-numpy": f"sqlite:///{tmp_path / 'h.db'}"}.get(request.param)
    if uri is None:
        uri = request.getfixturevalue("postgres_uri")
    from shipyard.store.sql import history_columns

    if request.param == "without-numpy":
        monkeypatch.setattr(history_columns, "importable", lambda module: module != "numpy")
    assert history_columns.available(normalize_url(uri).get_backend_name()) is (request.param != "without-numpy")
    client = Client(tracking_uri=uri, artifact_uri=str(tmp_path / "a"))
    yield client
    client.close()


def test_columns_equal_the_objects_whatever_the_order_values_and_path(history_client: Client) -> None:
    client = history_client
    run_id = client.create_run(client.create_experiment("awkward"), "r").info.run_id
    client.log_batch(run_id, metrics=_AWKWARD[:4])
    client.log_batch(run_id, metrics=_AWKWARD[4:])  # later ids: the tie on step 5 at 100 is id-ordered
    objects = client.get_metric_history(run_id, "m")
    assert [(m.step, m.timestamp) for m in objects][:2] == [(-(2**63), 2**62), (-3, 50)]
    _same(client.get_metric_history_columns(run_id, "m"), objects)
    assert [m.value for m in objects if m.step == 5][-2:] == [1.0, 3.0]  # same step and time: logged order


def test_columns_of_a_long_history_starting_with_nan(history_client: Client) -> None:
    # More NaN (stored NULL) than one batch of a driver that would infer a column's type per batch.
    client = history_client
    run_id = client.create_run(client.create_experiment("nan-first"), "r").info.run_id
    points = [Metric("loss", math.nan if i < 3000 else 1.0 / i, i, 10 * i) for i in range(5000)]
    client.log_batch(run_id, metrics=points[::-1])  # logged backwards: ids against the step order
    history = client.get_metric_history_columns(run_id, "loss")
    _same(history, client.get_metric_history(run_id, "loss"))
    steps, values, timestamps = history.to_numpy()
    assert (steps.dtype.kind, values.dtype.kind, timestamps.dtype.kind) == ("i", "f", "i")
    assert list(steps) == list(range(5000))


def test_columns_of_a_missing_key_are_empty_and_of_a_missing_run_not_found(history_client: Client) -> None:
    client = history_client
    run_id = client.create_run(client.create_experiment("empty"), "r").info.run_id
    empty = client.get_metric_history_columns(run_id, "never-logged")
    assert (len(empty), empty.key, empty.to_numpy()[0].dtype.name) == (0, "never-logged", "int64")
    assert client.get_metric_history_columns(run_id, "never-logged", max_points=4).metrics() == []
    with pytest.raises(NotFound, match="ghost"):
        client.get_metric_history_columns("ghost", "m")
