"""The web UI over plain HTTP (in-process): each page's content, each error case, CSRF and permissions.

The browser flows are in ``tests/e2e/test_ui_browser.py``; these check what the server sends.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.auth import Permission
from shipyard.config import Settings
from shipyard.entities import Metric
from shipyard.server import create_app
from shipyard.server import permissions as perms
from shipyard.testing import ASGITransport
from shipyard.tracking.client import Client
from tests.e2e.ui_data import DATASET, DEPLOYMENT, EXPERIMENT, MODEL, Seeded, seed
from tests.support import html_page

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Site:
    http: httpx.Client
    client: Client
    seeded: Seeded


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with tempfile.TemporaryDirectory(prefix="shipyard-ui-http-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(env={"SHIPYARD_CAPTURE_PACKAGES": "false"},
                                    tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
                                    artifact_uri=str(root / "artifacts"))
        client = Client(settings=settings)
        seeded = seed(client, root)
        transport = ASGITransport(create_app(settings, client=client))
        with httpx.Client(transport=transport, base_url="http://127.0.0.1") as http:
            yield Site(http, client, seeded)
        transport.close()
        client.close()


def runs_url(site: Site, **query: str) -> str:
    return str(httpx.URL(f"/ui/experiments/{site.seeded.experiment_id}", params=query))


def row_names(page: str) -> list[str]:
    return re.findall(r'<td><a href="/ui/runs/[0-9a-f]+" hx-boost="false">([^<]+)</a></td>', page)


# -- pages ------------------------------------------------------------------------------------------
def test_root_redirects_to_the_experiments(site: Site) -> None:
    response = site.http.get("/")
    assert response.status_code == 307
    assert response.headers["location"] == "/ui/experiments"
    assert EXPERIMENT in html_page(site.http.get("/ui/experiments"))


def test_the_runs_table_has_params_metrics_and_tags_as_columns(site: Site) -> None:
    page = html_page(site.http.get(runs_url(site, cols_set="1", cols=["metrics.loss", "params.lr", "tags.stage"])))
    assert len(row_names(page)) == 13
    header = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)  # type: ignore[union-attr]
    assert [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r">([^<>]*)(?: ▲| ▼)?</a>", header)][3:] == \
        ["loss", "lr", "stage"]
    assert "sweep" in page
    assert 'value="tags.team"' in page  # offered in the column chooser


def test_filter_and_sort_use_the_sdk_grammar(site: Site) -> None:
    page = html_page(site.http.get(runs_url(site, filter="params.lr = '0.01'", order="metrics.loss ASC")))
    assert row_names(page) == ["run-02", "run-05", "run-08", "run-11"]  # loss grows with the run's index
    descending = html_page(site.http.get(runs_url(site, filter="params.lr = '0.01'", order="metrics.loss DESC")))
    assert row_names(descending) == ["run-11", "run-08", "run-05", "run-02"]
    assert 'aria-sort="descending"' in descending


def test_pages_follow_the_stores_page_tokens(site: Site) -> None:
    experiment_id = site.client.create_experiment("paged")
    for i in range(30):
        site.client.create_run(experiment_id, f"p-{i:02d}")
    url = str(httpx.URL(f"/ui/experiments/{experiment_id}", params={"size": "25", "order": "attributes.run_name ASC"}))
    first = html_page(site.http.get(url))
    assert row_names(first) == [f"p-{i:02d}" for i in range(25)]
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "page_token=" in next_url
    assert "order=attributes.run_name+ASC" in next_url  # the view is kept across pages
    second = html_page(site.http.get(next_url))
    assert row_names(second) == [f"p-{i:02d}" for i in range(25, 30)]
    assert 'rel="next"' not in second
    assert "« First page" in second


@pytest.mark.parametrize(("query", "message"), [
    ({"filter": "metrics.loss <"}, "expected a number for metric &#39;loss&#39; at column 15"),
    ({"filter": "params.lr == 1"}, "at column"),
    ({"order": "metrics.loss SIDEWAYS"}, "invalid order_by clause"),
])
def test_a_bad_filter_or_sort_is_a_400_page_with_the_parsers_message(site: Site, query: dict[str, str],
                                                                     message: str) -> None:
    page = html_page(site.http.get(runs_url(site, **query)), 400)
    assert message in page
    assert 'role="alert"' in page
    assert row_names(page) == []


@pytest.mark.parametrize(("url", "status", "message"), [
    ("/ui/runs/0123456789abcdef0123456789abcdef", 404, "does not exist"),
    ("/ui/experiments/999999", 404, "999999"),
    (f"/ui/models/{MODEL}/versions/99", 404, "99"),
    ("/ui/models/no-such-model", 404, "no-such-model"),
    ("/ui/datasets/nothing/versions/1", 404, "nothing"),
    ("/ui/deployments/nothing", 404, "nothing"),
    ("/ui/lineage?ref=model:nothing/1", 404, "nothing"),
    ("/ui/compare", 400, "choose runs to compare"),
    ("/ui/experiments/1?size=7", 400, "page size"),
    ("/ui/experiments/1?cols=loss", 400, "params.&lt;key&gt;"),
])
def test_errors_are_html_pages_with_the_status_and_message(site: Site, url: str, status: int, message: str) -> None:
    assert message in html_page(site.http.get(url), status)


def test_the_run_page_shows_code_environment_datasets_children_and_models(site: Site) -> None:
    page = html_page(site.http.get(f"/ui/runs/{site.seeded.best_run_id}"))
    assert "4f3c2a1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b" in page
    assert '<span class="add">+lr = 0.01</span>' in page
    assert "3.11.7" in page
    assert f"{DATASET}@1" in page
    assert "sha256:" in page
    assert f'href="/ui/runs/{site.seeded.child_run_id}"' in page
    assert f"{MODEL} version 2" in page
    # charts read the API's thinned history, the same call a script makes
    assert f"/api/v1/runs/{site.seeded.best_run_id}/metric-history/columns?key=loss&amp;max_points=1000" in page


def test_artifact_previews(site: Site) -> None:
    base = f"/ui/runs/{site.seeded.best_run_id}/artifacts"
    assert "kind: logistic" in html_page(site.http.get(base, params={"path": "config.yaml"}))
    assert "&#34;accuracy&#34;: 0.92" in html_page(site.http.get(base, params={"path": "eval/metrics.json"}))
    csv_page = html_page(site.http.get(base, params={"path": "data/sample.csv"}))
    assert csv_page.count("<tr>") == 41  # header and 40 rows
    assert html_page(site.http.get(base, params={"path": "data/table.parquet"})).count("<tr>") == 41
    report = html_page(site.http.get(base, params={"path": "report.html"}))
    assert '<iframe class="html-preview" sandbox srcdoc="&lt;h1&gt;Report' in report  # escaped into srcdoc
    assert "<script>document.title" not in report
    folder = html_page(site.http.get(base, params={"path": "plots"}))
    assert "confusion.png" in folder


def test_images_are_served_with_their_type_and_nothing_else_is(site: Site) -> None:
    raw = f"/ui/runs/{site.seeded.best_run_id}/raw"
    image = site.http.get(f"{raw}/plots/confusion.png")
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert "sandbox" in image.headers["content-security-policy"]
    assert "not an image" in html_page(site.http.get(f"{raw}/report.html"), 400)


@pytest.mark.parametrize("path", ["../../etc/passwd", "%2e%2e/secret", "/etc/passwd", "a\\b"])
def test_artifact_paths_go_through_the_apis_checks(site: Site, path: str) -> None:
    response = site.http.get(f"/ui/runs/{site.seeded.best_run_id}/artifacts", params={"path": path})
    assert response.status_code == 400
    assert "invalid artifact path" in response.text


def test_compare_highlights_the_differing_params(site: Site) -> None:
    ids = site.seeded.run_ids
    page = html_page(site.http.get("/ui/compare", params={"runs": [ids[5], ids[8]]}))
    assert re.search(r'<tr class="differs" data-param="depth">', page)
    assert '<tr data-param="lr">' in page
    only = html_page(site.http.get("/ui/compare", params={"runs": [ids[5], ids[8]], "only_diff": "true"}))
    assert 'data-param="lr"' not in only
    too_many = html_page(site.http.get("/ui/compare", params={"runs": [f"{i:032x}" for i in range(101)]}), 400)
    assert "at most 100 runs" in too_many


def test_compare_series_thins_long_histories_keeping_the_extremes(site: Site) -> None:
    run = site.client.create_run(site.client.create_experiment("long-histories"), "long-history")
    run_id = run.info.run_id
    values = [float(i % 1000) for i in range(100_000)]
    values[54_321] = 1e6  # one spike
    values[77_777] = -1e6  # one dip
    site.client.log_batch(run_id, metrics=[Metric("noisy", v, i, i) for i, v in enumerate(values)])
    other = site.seeded.run_ids[0]
    series = site.http.get("/ui/compare/series", params={"key": "noisy", "runs": [run_id, other]}).json()["series"]
    assert [len(s["steps"]) for s in series][1] == 0  # the other run has no such metric
    thinned = series[0]
    assert len(thinned["steps"]) <= 10_000  # 20,000 points across two runs
    assert 1e6 in thinned["values"]
    assert -1e6 in thinned["values"]
    assert thinned["steps"] == sorted(thinned["steps"])


def test_registry_pages(site: Site) -> None:
    models = html_page(site.http.get("/ui/models"))
    assert f'href="/ui/models/{MODEL}"' in models
    model = html_page(site.http.get(f"/ui/models/{MODEL}"))
    assert "version created" in model
    version = html_page(site.http.get(f"/ui/models/{MODEL}/versions/1"))
    assert "first release" in version  # the approval comment
    assert "<table>" in version  # the card's Markdown tables rendered


def test_a_model_card_is_rendered_without_its_raw_html(site: Site) -> None:
    site.client.set_model_card(MODEL, 2, "# Card\n\n<script>alert(1)</script> <img src=x onerror=alert(1)>\n\n"
                                         "[click](javascript:alert(1)) and **bold**")
    page = html_page(site.http.get(f"/ui/models/{MODEL}/versions/2"))
    assert "<script>alert(1)" not in page
    assert "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="javascript:' not in page
    assert "<strong>bold</strong>" in page
    site.client.set_model_card(MODEL, 2, "")


def test_lineage_links_a_model_version_to_its_dataset(site: Site) -> None:
    page = html_page(site.http.get("/ui/lineage", params={"ref": f"models:/{MODEL}/1"}))
    assert f'href="/ui/datasets/{DATASET}/versions/1"' in page
    assert f'href="/ui/runs/{site.seeded.best_run_id}"' in page
    dataset = html_page(site.http.get(f"/ui/datasets/{DATASET}/versions/1"))
    assert "sha256:" in dataset
    assert f'href="/ui/runs/{site.seeded.best_run_id}"' in dataset


def test_lineage_of_a_logged_prediction_reaches_the_data(site: Site) -> None:
    import time

    from shipyard.predictions.writer import PredictionLogger

    prediction_id = "9" * 32
    with PredictionLogger(site.client.artifacts, flush_seconds=60) as logger:
        logger.record([{"prediction_id": prediction_id, "time": time.time_ns() // 1_000_000,
                        "deployment": DEPLOYMENT, "model": MODEL, "version": "1", "role": "primary",
                        "inputs": {"tenure": 3.0}, "outputs": 1.0, "latency_ms": 2.0, "request_id": "r-1"}])
    page = html_page(site.http.get("/ui/lineage", params={"ref": f"prediction:{prediction_id}"}))
    nodes = re.findall(r'data-node="([^"]+)"', page)
    assert f"prediction:{prediction_id}" in nodes
    assert f"deployment:{DEPLOYMENT}" in nodes
    assert f"model:{MODEL}/1" in nodes
    assert f"run:{site.seeded.best_run_id}" in nodes
    assert f'href="/ui/datasets/{DATASET}/versions/1"' in page  # back to the data it came from
    missing = site.http.get("/ui/lineage", params={"ref": "prediction:" + "8" * 32})
    assert "is not in the prediction log" in html_page(missing, 404)


def test_deployment_pages(site: Site) -> None:
    page = html_page(site.http.get(f"/ui/deployments/{DEPLOYMENT}"))
    assert "canary" in page
    confirm = html_page(site.http.get(f"/ui/deployments/{DEPLOYMENT}/rollback"))
    assert "Roll back now" in confirm


def test_a_deployment_links_to_its_monitors_and_each_monitor_back(site: Site) -> None:
    from shipyard.entities.monitor import Monitor

    monitors = site.client.store.monitors
    assert "No monitor watches this deployment" in html_page(site.http.get(f"/ui/deployments/{DEPLOYMENT}"))
    monitors.create(Monitor("api-drift", deployment=DEPLOYMENT, window_seconds=600))
    monitors.create(Monitor("other-drift", deployment="another-api"))
    try:
        page = html_page(site.http.get(f"/ui/deployments/{DEPLOYMENT}"))
        table = re.search(r'<table id="deployment-monitors">.*?</table>', page, re.S)
        assert table is not None, page
        assert re.findall(r'<tr data-monitor="([^"]+)">', table.group(0)) == ["api-drift"]  # not another's
        assert '<a href="/ui/monitors/api-drift">api-drift</a>' in table.group(0)
        assert "600 s" in table.group(0)
        monitor = html_page(site.http.get("/ui/monitors/api-drift"))
        assert f'Watches deployment <a href="/ui/deployments/{DEPLOYMENT}">{DEPLOYMENT}</a>' in monitor
    finally:
        monitors.delete("api-drift")
        monitors.delete("other-drift")


# -- forms: CSRF, permissions, the request guard ---------------------------------------------------
def _token(site: Site, url: str) -> str:
    match = CSRF.search(html_page(site.http.get(url)))
    assert match is not None
    assert site.http.cookies.get("shipyard_csrf") == match.group(1)
    return match.group(1)


def test_a_form_without_the_csrf_token_changes_nothing(site: Site) -> None:
    url = f"/ui/models/{MODEL}/versions/2"
    _token(site, url)
    for form in ({}, {"csrf_token": "forged-" + "x" * 40}):
        response = site.http.post(f"{url}/alias", data={"alias": "forged", **form})
        assert "security token" in html_page(response, 403)
    cross_site = site.http.post(f"{url}/alias", data={"alias": "forged", "csrf_token": _token(site, url)},
                                headers={"origin": "https://evil.example"})
    assert "another site" in html_page(cross_site, 403)
    assert "forged" not in site.client.get_registered_model(MODEL).aliases


def test_a_form_with_the_token_moves_the_alias_and_redirects(site: Site) -> None:
    url = f"/ui/models/{MODEL}/versions/1"
    response = site.http.post(f"{url}/alias", data={"alias": "staging", "csrf_token": _token(site, url)})
    assert response.status_code == 303
    assert response.headers["location"] == f"{url}?done=alias+staging"
    assert site.client.get_registered_model(MODEL).aliases["staging"] == 1
    assert site.client.model_history(MODEL)[-1].user == "local"  # the request's principal


def test_a_refused_change_shows_the_page_with_the_reason(site: Site) -> None:
    site.client.register_model(f"runs:/{site.seeded.best_run_id}/model", MODEL)  # version 3, not approved
    url = f"/ui/models/{MODEL}/versions/3"
    response = site.http.post(f"{url}/alias", data={"alias": "production", "csrf_token": _token(site, url)})
    assert "approv" in html_page(response, 409)
    assert site.client.get_registered_model(MODEL).aliases["production"] != 3


@dataclass(frozen=True)
class _Writer(perms.Principal):
    def can(self, permission: Permission, project: str | None = None) -> bool:
        return permission in (Permission.PUBLIC, Permission.READ, Permission.WRITE)


def test_approving_from_the_ui_needs_the_maintainer_role(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"/ui/models/{MODEL}/versions/2"
    token = _token(site, url)
    assert re.search(r'<button type="submit" id="approve-button"[^>]*>', html_page(site.http.get(url))).group(0) \
        == '<button type="submit" id="approve-button">'
    monkeypatch.setattr(perms, "resolve_principal", lambda scope: _Writer("alice", anonymous=False))
    page = html_page(site.http.get(url))  # the page offers only what the role allows, and says why
    assert re.search(r'<button type="submit" id="approve-button"[^>]*>', page).group(0) \
        == '<button type="submit" id="approve-button" disabled aria-describedby="approve-role">'
    assert "Approving needs the maintainer role in project default" in page
    assert re.search(r'<button type="submit" id="alias-button"[^>]*>', page).group(0) \
        == '<button type="submit" id="alias-button">'
    deployment = html_page(site.http.get(f"/ui/deployments/{DEPLOYMENT}"))
    assert 'id="rollback-link"' not in deployment
    assert "Rolling back needs the maintainer role" in deployment
    response = site.http.post(f"{url}/approve", data={"comment": "lgtm", "csrf_token": token})
    assert "maintain" in html_page(response, 403)
    assert site.client.get_model_version(MODEL, 2).approval is None


def test_the_request_guard_still_refuses_form_posts_to_the_api(site: Site) -> None:
    response = site.http.post(f"/api/v1/registered-models/{MODEL}/versions/1/approve", data={"comment": "x"})
    assert response.status_code == 415


def test_a_stale_rollback_confirmation_is_refused(site: Site) -> None:
    url = f"/ui/deployments/{DEPLOYMENT}/rollback"
    token = _token(site, url)
    revision = site.client.deployments.get(DEPLOYMENT).revision
    response = site.http.post(url, data={"revision": str(revision - 1), "csrf_token": token})
    assert "changed since the confirmation" in html_page(response, 409)
    assert site.client.deployments.get(DEPLOYMENT).revision == revision


def test_static_files_are_only_the_packaged_ones(site: Site) -> None:
    assert site.http.get("/ui/static/ui.js").headers["content-type"].startswith("text/javascript")
    assert site.http.get("/ui/static/vendor/uplot/LICENSE").status_code == 200
    for path in ("/ui/static/../rendering.py", "/ui/static/%2e%2e/rendering.py", "/ui/static/templates/base.html",
                 "/ui/static/vendor/vendor.json"):
        assert site.http.get(path).status_code == 404, path
