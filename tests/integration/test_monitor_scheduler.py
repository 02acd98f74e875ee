"""``shipyard server`` runs due monitors itself: each worker has a background scheduler, and the
monitors' database lease keeps every window to one evaluation whatever the number of workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.config import Settings
from shipyard.errors import InvalidInput
from shipyard.monitoring.scheduler import MonitorScheduler
from shipyard.server import create_app
from tests.support import wait_for_async


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings.resolve(env={}, tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}",
                            artifact_uri=str(tmp_path / "artifacts"), server_allowed_hosts="testserver", **values)


def _dataset_monitor(tmp_path: Path, start: int) -> None:
    """Monitor ``daily`` comparing dataset ``current`` with ``reference@1`` in windows of 1 s."""
    client = shipyard.Client(settings=_settings(tmp_path))
    try:
        rng = np.random.default_rng(3)
        run_id = client.create_run("0", "data").info.run_id
        for name in ("reference", "current"):
            client.log_dataset(run_id, pd.DataFrame({"x": rng.normal(size=200)}), name, snapshot=True)
        client.monitors.create("daily", current="current", reference="reference@1", window=1, start=start)
    finally:
        client.close()


def test_several_workers_evaluate_each_window_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    start = int(time.time() * 1000) - 6_000
    _dataset_monitor(tmp_path, start)
    settings = _settings(tmp_path, server_monitor_interval_seconds=0.05)
    workers = [create_app(settings, schedule_monitors=True) for _ in range(3)]

    async def serve_for_a_while() -> None:
        contexts = [app.router.lifespan_context(app) for app in workers]
        for context in contexts:
            await context.__aenter__()
        try:
            schedulers = [app.state.monitor_scheduler for app in workers]
            monitors = workers[0].state.client.store.monitors
            # Every window that ended before we looked, and a few passes of every worker.
            seen = time.time() * 1000
            await wait_for_async(lambda: monitors.get("daily").next_window_start >= seen - 1000
                                 and all(s.passes >= 3 for s in schedulers), timeout=30)
        finally:
            for context in reversed(contexts):
                await context.__aexit__(None, None, None)

    try:
        asyncio.run(serve_for_a_while())
        evaluations = workers[0].state.client.store.monitors.evaluations("daily", with_report=False)
    finally:
        for app in workers:
            app.state.client.close()
    starts = [e.window_start for e in evaluations]
    assert len(starts) >= 5
    assert starts == list(range(start // 1000 * 1000, starts[-1] + 1, 1000))  # each window once, none skipped
    assert {e.status for e in evaluations} == {"ok"}


def test_the_scheduler_can_be_turned_off(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path, server_run_monitors=False), schedule_monitors=True)

    async def start_and_stop() -> Any:
        async with app.router.lifespan_context(app):
            return app.state.monitor_scheduler

    try:
        assert asyncio.run(start_and_stop()) is None
    finally:
        app.state.client.close()
    settings = Settings.resolve(env={"SHIPYARD_SERVER_RUN_MONITORS": "off",
                                     "SHIPYARD_SERVER_MONITOR_INTERVAL_SECONDS": "300"})
    assert (settings.server_run_monitors, settings.server_monitor_interval_seconds) == (False, 300.0)
    with pytest.raises(InvalidInput, match="SHIPYARD_SERVER_MONITOR_INTERVAL_SECONDS='0' is not valid"):
        Settings.resolve(env={"SHIPYARD_SERVER_MONITOR_INTERVAL_SECONDS": "0"})


def test_a_failing_pass_is_logged_and_the_scheduler_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def broken() -> Any:
        calls.append(1)
        raise RuntimeError("the database went away")

    scheduler = MonitorScheduler(broken, 0.01)
    scheduler.start()
    try:
        asyncio.run(wait_for_async(lambda: len(calls) >= 3, timeout=10))
    finally:
        scheduler.stop()
    assert "scheduled monitor pass failed" in caplog.text
    with pytest.raises(InvalidInput, match="above 0"):
        MonitorScheduler(broken, 0)
