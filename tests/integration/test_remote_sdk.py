"""The fluent SDK against a server: metrics travel in batches, not one request per value."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx

import shipyard
from shipyard.config import Settings
from shipyard.server import create_app
from shipyard.store.rest import RestStore
from shipyard.testing import ASGITransport
from shipyard.tracking import fluent


class CountingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.seen: Counter[tuple[str, str]] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.seen[(request.method, path.rsplit("/", 1)[-1] if "/runs/" in path else path)] += 1
        return self.inner.handle_request(request)


def test_logged_metrics_reach_the_server_in_batches(tmp_path: Path) -> None:
    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver",
                                capture_packages=False, capture_git=False)
    app = create_app(settings)
    inner = ASGITransport(app)
    counting = CountingTransport(inner)
    fluent._reset_for_tests()
    client = shipyard.Client(settings=settings.replace(tracking_uri="http://testserver"),
                             store=RestStore("http://testserver", transport=counting))
    fluent._state.client = client  # the fluent SDK, pointed at the server through the counter
    try:
        with shipyard.start_run(capture=False) as run:
            for step in range(2000):
                shipyard.log_metric("loss", 1.0 / (step + 1), step=step)
        # a deferred run's first batch goes with the run itself (runs/{id}/write), the rest as metrics
        posts = counting.seen[("POST", "metrics")] + counting.seen[("POST", "write")]
        assert 1 <= posts <= 20, f"{posts} requests for 2,000 values: the writer should batch"
        history = client.get_metric_history(run.run_id, "loss")
        assert [m.step for m in history] == list(range(2000))
    finally:
        fluent._reset_for_tests()
        inner.close()
        app.state.client.close()


def test_a_body_json_cannot_carry_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    """NaN and infinity have no JSON spelling: every REST store call says so (InvalidInput), instead
    of httpx's bare ValueError, and nothing reaches the server."""
    import math

    import pytest

    from shipyard.entities import Comparison, Op, RunFilter, RunQuery
    from shipyard.errors import InvalidInput

    settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'server.db'}",
                                artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver")
    app = create_app(settings)
    sent: list[httpx.Request] = []

    class Recording(httpx.BaseTransport):
        def __init__(self) -> None:
            self.inner = ASGITransport(app)

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return self.inner.handle_request(request)

    store = RestStore("http://testserver", transport=Recording())
    try:
        experiment = store.experiments.create("nan-check").experiment_id
        before = len(sent)
        query = RunQuery((experiment,), RunFilter((Comparison("metric", "m", Op.GT, math.inf),)))
        with pytest.raises(InvalidInput, match="NaN or an infinite number"):
            store.runs.search(query)
        assert len(sent) == before
    finally:
        store.close()
        app.state.client.close()
