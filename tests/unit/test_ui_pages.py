"""The web UI's monitoring, dataset-diff, compare and registry pages, through the app in-process
(no browser: tests/e2e drives the same pages in Chromium), and the views behind them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.server import create_app
from shipyard.server.ui.monitor_view import drift_series, score_of, status_class
from shipyard.testing import ASGITransport
from shipyard.tracking.client import Client
from tests.e2e.ui_data import MONITOR, MONITOR_WINDOWS, seed_monitor
from tests.support import BASE


class World:
    def __init__(self, root: Path) -> None:
        settings = Settings.resolve(env={"SHIPYARD_CAPTURE_PACKAGES": "false"},
                                    tracking_uri=f"sqlite:///{root / 'ui.db'}", artifact_uri=str(root / "artifacts"),
                                    server_allowed_hosts="testserver", server_run_monitors=False)
        self.client = Client(settings=settings)
        self.app = create_app(settings, client=self.client)
        self.transport = ASGITransport(self.app)
        self.http = httpx.Client(base_url=BASE, transport=self.transport)

    def get(self, path: str, **params: object) -> httpx.Response:
        return self.http.get(path, params=params or None)

    def close(self) -> None:
        self.http.close()
        self.transport.close()
        self.client.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("ui-pages"))
    seed_monitor(made.client, deployment="churn-api")
    _seed_datasets(made.client)
    _seed_models(made.client)
    yield made
    made.close()


def _text(html: str) -> str:
    import html as entities

    return re.sub(r"\s+", " ", entities.unescape(re.sub(r"<[^>]+>", " ", html)))


# -- monitoring ----------------------------------------------------------------------------------
def test_the_monitors_list_shows_each_alert_state_and_its_last_alert(world: World) -> None:
    page = world.get("/ui/monitors")
    assert page.status_code == 200, page.text
    row = re.search(r'<tr data-monitor="churn-drift">.*?</tr>', page.text, re.S).group(0)
    assert '<span class="badge good">OK</span>' in row  # healthy again: RESOLVED, then OK after the next window
    assert "failed RESOLVED via webhook" in _text(row)  # the last alert: the RESOLVED webhook, which failed
    assert 'href="/ui/monitors/churn-drift"' in row
    assert 'aria-current="page">Monitors<' in page.text


def test_a_monitor_page_charts_drift_per_column_and_lists_alerts_with_retrain_outcomes(world: World) -> None:
    page = world.get(f"/ui/monitors/{MONITOR}")
    assert page.status_code == 200, page.text
    assert re.search(r'id="alert-state">(OK|RESOLVED)<', page.text)
    charts = re.findall(r'data-inline="drift-data" data-key="([^"]+)"', page.text)
    assert charts == ["age", "plan", "output.prediction"]  # inputs first, then outputs
    data = re.search(r'<script type="application/json" id="drift-data">(.*?)</script>', page.text, re.S).group(1)
    import json

    payload = json.loads(data)
    age = payload["age"]["series"]
    assert payload["age"]["time"] is True
    assert len(age[0]["values"]) == MONITOR_WINDOWS
    assert age[1]["name"] == "flagged above"
    assert age[1]["values"][0] == pytest.approx(1.60206, rel=1e-4)
    assert max(age[0]["values"]) > 9  # -log10 of 1e-9 / 2
    alerts = _text(re.search(r'<table id="alerts">.*?</table>', page.text, re.S).group(0))
    for outcome in ("promoted", "delivered", "failed"):
        assert outcome in alerts
    assert "challenger v3 beat the champion" in alerts
    assert "<script>" not in page.text  # no inline script: only JSON data and files from /ui/static
    assert page.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'")


def test_an_unknown_monitor_is_an_html_404(world: World) -> None:
    page = world.get("/ui/monitors/nope")
    assert page.status_code == 404
    assert "text/html" in page.headers["content-type"]
    assert "nope" in page.text


def test_drift_scores_use_the_p_value_else_the_effect_statistic() -> None:
    assert score_of({"test": "ks", "p_value": 0.001, "threshold": 0.01, "status": "tested"}) == \
        (pytest.approx(3.0), pytest.approx(2.0), "-log10 p")
    assert score_of({"test": "psi", "statistic": 0.3, "p_value": None, "threshold": 0.2, "status": "tested"}) == \
        (0.3, 0.2, "psi statistic")
    assert score_of({"test": "ks", "p_value": 0.0, "threshold": 0.05})[0] == pytest.approx(300.0)  # floored
    assert score_of({"status": "skipped"}) == (None, None, "")
    assert drift_series([]) == []
    assert status_class("FIRING") == "bad"
    assert status_class("promoted") == "good"
    assert status_class("not_promoted") == "warn"


# -- datasets ------------------------------------------------------------------------------------
def _seed_datasets(client: Client) -> None:
    import pandas as pd

    run_id = client.create_run("0", "prepare").info.run_id
    old = pd.DataFrame({"age": [30.0, 40.0, 50.0, None], "plan": ["basic", "pro", "basic", "pro"],
                        "legacy": [1, 2, 3, 4], "zip": [1, 2, 3, 4]})
    new = pd.DataFrame({"age": [30.0, 45.0, 60.0, None, None, 35.0], "plan": ["basic", "team", "basic", "team",
                                                                                "team", "basic"],
                        "zip": ["01", "02", "03", "04", "05", "06"], "country": ["fr"] * 6})
    client.log_dataset(run_id, old, "customers")
    client.log_dataset(run_id, new, "customers")
    client.log_text(run_id, "a", "f.txt")
    client.set_terminated(run_id)


def test_the_dataset_diff_shows_schema_and_profile_changes(world: World) -> None:
    page = world.get("/ui/datasets/customers/diff", old=1, new=2)
    assert page.status_code == 200, page.text
    schema = _text(re.search(r'<table class="kv" id="schema-changes">.*?</table>', page.text, re.S).group(0))
    assert "4 → 6 (+50.0%)" in schema
    assert "+ country" in schema
    assert "\u2212 legacy" in schema
    assert "zip: int64 → large_string" in schema or re.search(r"zip: \S+ → \S*string", schema), schema
    age = _text(re.search(r'<tr data-column="age".*?</tr>', page.text, re.S).group(0))
    assert "1 → 2" in age  # nulls
    assert "mean 40 → 42.5 (+6.2%)" in age
    assert "max 50 → 60 (+20.0%)" in age
    plan = _text(re.search(r'<tr data-column="plan".*?</tr>', page.text, re.S).group(0))
    assert "+ team" in plan
    assert "\u2212 pro" in plan
    assert page.text.index('data-column="age"') < page.text.index('data-column="plan"')


def test_a_dataset_version_page_links_to_the_diff_with_the_previous_version(world: World) -> None:
    page = world.get("/ui/datasets/customers/versions/2")
    assert page.status_code == 200
    form = re.search(r'<form class="inline diff-choice".*?</form>', page.text, re.S).group(0)
    assert 'action="/ui/datasets/customers/diff"' in form
    assert 'name="new" value="2"' in form
    assert '<option value="1" selected>' in form


def test_a_diff_of_an_unknown_version_is_a_404(world: World) -> None:
    assert world.get("/ui/datasets/customers/diff", old=1, new=9).status_code == 404
    assert world.get("/ui/datasets/customers/diff", old=0, new=1).status_code == 400


# -- registry: evaluation and gates ---------------------------------------------------------------
def _seed_models(client: Client) -> None:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200)})
    frame["y"] = (frame["x"] > 0).astype(int)
    for accuracy in (0.9, 0.8):
        run_id = client.create_run("0", "train").info.run_id
        client.log_model(run_id, LogisticRegression().fit(frame[["x"]], frame["y"]), "model")
        client.log_metrics(run_id, {"accuracy": accuracy, "train_loss": 0.3})
        client.set_terminated(run_id)
        client.register_model(f"runs:/{run_id}/model", "scorer")
    client.protect_alias("scorer", "production")
    client.approve_model_version("scorer", 1)
    client.set_alias("scorer", "production", 1)
    client.evaluate_model("models:/scorer/2", frame, target="y", dataset_name="holdout")
    client.flush()


def test_a_version_page_shows_its_evaluation_and_the_gates_for_the_alias(world: World) -> None:
    page = world.get("/ui/models/scorer/versions/2")
    assert page.status_code == 200, page.text
    params = _text(re.search(r'<table class="kv" id="evaluation-params">.*?</table>', page.text, re.S).group(0))
    assert "dataset holdout" in params
    assert "model type classifier" in params
    assert "rows 200" in params
    metrics = _text(re.search(r'<table id="version-metrics">.*?</table>', page.text, re.S).group(0))
    assert "accuracy 1 evaluation" in metrics  # the evaluation's value overrides the run's 0.8
    assert "train_loss 0.3 source run" in metrics
    gates = _text(re.search(r'<table id="gates">.*?</table>', page.text, re.S).group(0))
    assert "accuracy vs production (v1)" in gates  # compared with the champion on the evaluation's metrics
    assert 'id="gate-alias" type="text" name="gate_alias" value="production"' in page.text


def test_gates_can_be_checked_against_requirements(world: World) -> None:
    page = world.get("/ui/models/scorer/versions/2", gate_alias="production", require="metrics.train_loss <= 0.1",
                     max_regression="1")
    assert page.status_code == 200, page.text
    verdict = _text(re.search(r'<p id="gate-verdict">.*?</p>', page.text, re.S).group(0))
    assert "blocked" in verdict
    gates = _text(re.search(r'<table id="gates">.*?</table>', page.text, re.S).group(0))
    assert "metrics.train_loss <= 0.1" in gates
    assert "fail below the requirement" in gates
    assert "vs production" not in gates  # the box was not ticked: no comparison
    assert "not approved: shipyard models approve scorer 2" in gates  # production is protected
    bad = world.get("/ui/models/scorer/versions/2", gate_alias="production", require="params.x = 'a'")
    assert bad.status_code == 200
    assert "gates compare metrics with a number" in bad.text  # the parser's message, in the gates panel


def test_a_version_without_evaluation_says_how_to_make_one(world: World) -> None:
    page = world.get("/ui/models/scorer/versions/1")
    assert page.status_code == 200
    assert "shipyard models evaluate models:/scorer/1" in page.text


# -- compare: parallel coordinates ----------------------------------------------------------------
def test_compare_draws_params_against_the_chosen_metric(world: World) -> None:
    ids = []
    for i, (lr, depth) in enumerate([("0.1", "4"), ("0.01", "6"), ("0.001", "8")]):
        run_id = world.client.create_run("0", f"sweep-{i}").info.run_id
        world.client.log_params(run_id, {"lr": lr, "depth": depth, "optimizer": "adam"})
        world.client.log_metrics(run_id, {"loss": 1.0 / (i + 1), "accuracy": 0.7 + i / 10})
        ids.append(run_id)
    world.client.flush()
    page = world.http.get("/ui/compare", params=[("runs", r) for r in ids] + [("pc_metric", "loss")])
    assert page.status_code == 200, page.text
    svg = re.search(r'<svg class="parallel" id="parallel-plot".*?</svg>', page.text, re.S).group(0)
    labels = re.findall(r'<text class="axis-label"[^>]*>([^<]+)<', svg)
    assert labels == ["depth", "lr", "loss"]  # the params that differ, then the metric
    assert len(re.findall(r'<path class="run-line"', svg)) == 3
    assert '<option value="loss" selected>' in page.text
    assert "style=" not in svg  # presentation attributes only: the CSP allows no inline style
    other = world.http.get("/ui/compare", params=[("runs", r) for r in ids] + [("pc_metric", "nope")])
    assert other.status_code == 400
    assert "nope" in other.text


# -- the runs table: previous and next pages -----------------------------------------------------
def test_the_runs_table_steps_back_with_previous(world: World) -> None:
    experiment_id = world.client.create_experiment("paged")
    for i in range(60):
        world.client.create_run(experiment_id, f"p-{i:02d}", start_time=1_700_000_000_000 + i)
    first = world.get(f"/ui/experiments/{experiment_id}", size="25")
    assert 'id="previous-page"' not in first.text
    second = world.get(_href(first.text, "next-page"))
    third = world.get(_href(second.text, "next-page"))
    assert "p-09" in third.text  # runs 59..35, 34..10, 9..0: newest first
    assert 'id="next-page"' not in third.text
    back = world.get(_href(third.text, "previous-page"))
    assert _names(back.text) == _names(second.text)
    assert _names(world.get(_href(back.text, "previous-page")).text) == _names(first.text)


def _href(html: str, element_id: str) -> str:
    import html as entities

    return entities.unescape(re.search(rf'id="{element_id}" href="([^"]+)"', html).group(1))


def _names(html: str) -> list[str]:
    return re.findall(r'<a href="/ui/runs/\w+" hx-boost="false">([^<]+)</a>', html)


def test_every_page_reads_through_the_request_principals_client() -> None:
    """Pages call ``client(request)`` (the scoped store of the request's principal), never the
    app's unscoped client."""
    from shipyard.server import ui

    folder = Path(ui.__file__).parent
    for module in folder.glob("*.py"):
        assert "app.state.client" not in module.read_text(encoding="utf-8"), module.name
