"""The pipeline pages of the web UI over plain HTTP (in-process), after real pipelines ran on SQLite: the list,
one run's DAG (SVG nodes coloured by status, linking to the step runs) and its steps table, a cached re-run, a
failed step, errors, and what another project's member sees with ``--auth``."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shipyard.config import Settings
from shipyard.errors import NotFound, StepFailed
from shipyard.pipelines import pipeline, step
from shipyard.server import create_app
from shipyard.testing import ASGITransport
from shipyard.tracking.client import Client
from tests.integration.auth_world import build_world
from tests.support import html_page


@step
def make(n: int) -> int:
    return n


@step
def double(x: int) -> int:
    return 2 * x


@step(gate="metrics.total >= 0")
def report(x: int, y: int) -> dict:
    return {"total": float(x + y)}


@step
def explode(x: int) -> int:
    raise ValueError(f"cannot use {x}")


@pipeline
def tiny(n: int = 3):
    a = make(n)
    report(a, double(a))


@pipeline
def broken():
    report(explode(make(1)), 1)


@pipeline
def halted():
    # explode fails in the middle: double and report after it never start
    a = make(1)
    b = explode(a)
    report(double(b), a)


@dataclass
class Ran:
    http: httpx.Client
    first: str
    cached: str
    failed: str
    halted: str


@pytest.fixture(scope="module")
def ran() -> Iterator[Ran]:
    with tempfile.TemporaryDirectory(prefix="shipyard-ui-pipelines-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(env={"SHIPYARD_CAPTURE_PACKAGES": "false"},
                                    tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
                                    artifact_uri=str(root / "artifacts"))
        client = Client(settings=settings)
        first = tiny.run(n=3, client=client)
        cached = tiny.run(n=3, client=client)
        with pytest.raises(StepFailed):
            broken.run(client=client)
        failed = client.search_runs([client.get_experiment_by_name("broken").experiment_id],
                                    "tags.`shipyard.pipeline.role` = 'pipeline'")[0].info.run_id
        with pytest.raises(StepFailed):
            halted.run(client=client)
        halted_id = client.search_runs([client.get_experiment_by_name("halted").experiment_id],
                                       "tags.`shipyard.pipeline.role` = 'pipeline'")[0].info.run_id
        transport = ASGITransport(create_app(settings, client=client))
        with httpx.Client(transport=transport, base_url="http://127.0.0.1") as http:
            yield Ran(http, first.run_id, cached.run_id, failed, halted_id)
        transport.close()
        client.close()


def nodes(page: str) -> dict[str, tuple[str, str]]:
    """step -> (status class, link) of each node of the page's DAG."""
    svg = re.search(r'<svg class="pipeline-dag".*?</svg>', page, re.S).group(0)  # type: ignore[union-attr]
    found = re.findall(r'<g class="node status-([a-z-]+)" data-step="([^"]*)" data-status="[^"]*">\s*'
                       r'(?:<a href="([^"]+)")?', svg)
    return {step: (status, href) for status, step, href in found}


def rows(page: str) -> dict[str, str]:
    """step -> status shown in the steps table."""
    return dict(re.findall(r'<tr id="step-[0-9a-f]+" data-step="([^"]+)"><td>.*?'
                           r'<span class="badge step-[a-z-]+">([a-z]+)</span>', page, re.S))


def test_the_list_shows_every_pipeline_run_newest_first_with_step_counts(ran: Ran) -> None:
    page = html_page(ran.http.get("/ui/pipelines"))
    listed = re.findall(r'<tr data-pipeline-run="([0-9a-f]+)">', page)
    assert listed == [ran.halted, ran.failed, ran.cached, ran.first]
    row = {run_id: re.search(rf'data-pipeline-run="{run_id}">(.*?)</tr>', page, re.S).group(1)  # type: ignore
           for run_id in listed}
    assert f'<a href="/ui/pipelines/{ran.first}">tiny</a>' in row[ran.first]
    assert f'<a href="/ui/pipelines/{ran.failed}">broken</a>' in row[ran.failed]
    counts = {r: re.findall(r'<td class="num">(\d+)</td>', text) for r, text in row.items()}
    assert counts == {ran.first: ["3", "0", "0"], ran.cached: ["0", "3", "0"], ran.failed: ["1", "0", "1"],
                      ran.halted: ["1", "0", "1"]}
    assert '<span class="badge FAILED">FAILED</span>' in row[ran.failed]
    assert '<span class="badge FINISHED">FINISHED</span>' in row[ran.first]
    assert 'href="/ui/pipelines" class="active" aria-current="page">Pipelines</a>' in page


def test_the_run_page_draws_the_steps_as_an_svg_dag_linking_to_each_step_run(ran: Ran) -> None:
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.first}"))
    assert "<script" not in page.split("<main", 1)[1]
    drawn = nodes(page)
    assert set(drawn) == {"make", "double", "report"}
    assert {status for status, _ in drawn.values()} == {"executed"}
    assert all(re.fullmatch(r"/ui/runs/[0-9a-f]{32}", href) for _, href in drawn.values())
    assert page.count('<path class="edge"') == 3  # make -> double, make -> report, double -> report
    assert re.search(r'<table class="kv" id="pipeline-params"><tr><th scope="row">n</th><td class="mono">3</td>', page)
    assert rows(page) == {"make": "executed", "double": "executed", "report": "executed"}
    assert "total=9" in page  # the gated step's metric
    # and the run page of the pipeline run and of a step link back here
    run_page = html_page(ran.http.get(f"/ui/runs/{ran.first}"))
    assert f'<a id="pipeline-link" href="/ui/pipelines/{ran.first}">' in run_page
    step_page = html_page(ran.http.get(drawn["double"][1]))
    assert f'<a id="pipeline-link" href="/ui/pipelines/{ran.first}">step double of tiny</a>' in step_page


def test_a_cached_rerun_is_drawn_as_cached_and_links_where_its_outputs_came_from(ran: Ran) -> None:
    first = nodes(html_page(ran.http.get(f"/ui/pipelines/{ran.first}")))
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.cached}"))
    drawn = nodes(page)
    assert {step: status for step, (status, _) in drawn.items()} == {"make": "cached", "double": "cached",
                                                                     "report": "cached"}
    assert page.count('<path class="edge"') == 3  # drawn through the runs the hits name, as in the first run
    assert rows(page) == {"make": "cached", "double": "cached", "report": "cached"}
    for _status, href in first.values():
        origin = href.rsplit("/", 1)[1]
        assert f'<a class="mono" href="/ui/runs/{origin}">{origin[:12]}</a>' in page


def gates(page: str) -> dict[str, str]:
    """step -> what the steps table's gate column shows."""
    return dict(re.findall(r'<tr id="step-[0-9a-f]+" data-step="([^"]+)">.*?'
                           r'<td>(?:<span class="badge [A-Z]+" title="[^"]*">)?'
                           r'(gate passed|gate failed|—)(?:</span>)?</td>\s*<td class="mono">[^<]*</td></tr>', page,
                           re.S))


def test_a_failed_step_is_drawn_as_failed_with_its_error_and_the_rest_as_not_run(ran: Ran) -> None:
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.failed}"))
    drawn = nodes(page)
    assert drawn["make"][0] == "executed"
    assert drawn["explode"][0] == "failed"
    assert drawn["report"] == ("not-run", "")  # never started: named from the recorded graph, with no link
    assert page.count('<path class="edge"') == 2  # make -> explode -> report, from the recorded graph
    assert rows(page) == {"make": "executed", "explode": "failed"}
    assert "ValueError: cannot use 1" in page
    assert '<span class="badge FAILED">FAILED</span>' in page


def test_steps_after_a_failed_middle_step_are_named_as_not_run_with_the_graphs_edges(ran: Ran) -> None:
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.halted}"))
    drawn = nodes(page)
    assert {step: status for step, (status, _) in drawn.items()} == {
        "make": "executed", "explode": "failed", "double": "not-run", "report": "not-run"}
    assert drawn["double"][1] == drawn["report"][1] == ""
    assert re.search(r'data-step="double" data-status="not run">\s*<rect [^>]*/>\s*<text class="title" [^>]*>double<',
                     page)
    # make -> explode -> double -> report, and make -> report over the columns between
    assert page.count('<path class="edge"') == 4
    assert rows(page) == {"make": "executed", "explode": "failed"}  # the table lists step runs only


def test_a_passing_gate_shows_as_passed_in_the_steps_table(ran: Ran) -> None:
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.first}"))
    assert gates(page) == {"make": "—", "double": "—", "report": "gate passed"}
    assert 'title="metrics.total &gt;= 0">gate passed</span>' in page


def test_the_list_is_paged_with_the_stores_tokens(ran: Ran, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.server.ui import pipeline_pages

    monkeypatch.setattr(pipeline_pages, "PAGE_SIZE", 2)
    first = html_page(ran.http.get("/ui/pipelines"))
    assert re.findall(r'<tr data-pipeline-run="([0-9a-f]+)">', first) == [ran.halted, ran.failed]
    next_url = re.search(r'id="next-page" href="([^"]+)"', first).group(1).replace("&amp;", "&")  # type: ignore
    second = html_page(ran.http.get(next_url))
    assert re.findall(r'<tr data-pipeline-run="([0-9a-f]+)">', second) == [ran.cached, ran.first]
    assert 'id="next-page"' not in second
    assert '<a class="button secondary" href="/ui/pipelines">« First page</a>' in second


def test_the_list_reads_every_rows_steps_in_one_search_or_in_pages(ran: Ran,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.pipelines import records
    from shipyard.tracking.service import TrackingService

    searches: list[object] = []
    search = TrackingService.search
    monkeypatch.setattr(TrackingService, "search", lambda self, query: searches.append(query) or search(self, query))
    page = html_page(ran.http.get("/ui/pipelines"))
    assert len(re.findall(r'<tr data-pipeline-run="', page)) == 4
    assert len(searches) == 2  # the pipeline runs, then the steps of all four
    # A page of steps smaller than their number: the same counts, read in several searches.
    monkeypatch.setattr(records, "STEP_PAGE", 2)
    searches.clear()
    assert html_page(ran.http.get("/ui/pipelines")) == page
    assert len(searches) > 2


@pytest.mark.parametrize(("url", "status", "message"), [
    ("/ui/pipelines/0123456789abcdef0123456789abcdef", 404, "does not exist"),
    ("/ui/pipelines?page_token=garbage", 400, "token"),
])
def test_errors_are_html_pages_like_the_other_pages(ran: Ran, url: str, status: int, message: str) -> None:
    assert message in html_page(ran.http.get(url), status)


def test_a_step_run_leads_to_its_pipeline_and_another_run_is_not_a_pipeline_run(ran: Ran) -> None:
    page = html_page(ran.http.get(f"/ui/pipelines/{ran.first}"))
    step_run = nodes(page)["make"][1].rsplit("/", 1)[1]
    assert f'id="step-{step_run}"' in page
    moved = ran.http.get(f"/ui/pipelines/{step_run}", follow_redirects=False)
    assert moved.status_code == 303
    assert moved.headers["location"] == f"/ui/pipelines/{ran.first}#step-{step_run}"
    plain = ran.http.post("/api/v1/runs", json={"experiment_id": "0"}).json()["info"]["run_id"]
    assert "is not a pipeline run" in html_page(ran.http.get(f"/ui/pipelines/{plain}"), 400)


def test_an_unknown_run_is_json_from_the_api_and_html_from_the_page(ran: Ran) -> None:
    missing = "0123456789abcdef0123456789abcdef"
    response = ran.http.get(f"/api/v1/runs/{missing}")
    assert response.status_code == 404
    assert response.json()["error_code"] == NotFound.code
    page = html_page(ran.http.get(f"/ui/pipelines/{missing}"), 404)
    assert NotFound.code in page


def test_with_auth_a_pipeline_is_seen_by_its_projects_members_only(tmp_path: Path) -> None:
    world = build_world(tmp_path)
    try:
        run_id = tiny.run(n=5, client=world.server.app.state.client, experiment="alpha-exp").run_id
        listing = world.request("viewer", "GET", "/ui/pipelines")
        assert listing.status_code == 200
        assert f'data-pipeline-run="{run_id}"' in listing.text
        assert world.request("viewer", "GET", f"/ui/pipelines/{run_id}").status_code == 200
        other = world.request("other", "GET", "/ui/pipelines")
        assert other.status_code == 200
        assert run_id not in other.text
        hidden = world.request("other", "GET", f"/ui/pipelines/{run_id}")
        missing = world.request("other", "GET", "/ui/pipelines/" + "0" * 32)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text.replace(run_id, "X") == missing.text.replace("0" * 32, "X")
        anonymous = world.request("anonymous", "GET", f"/ui/pipelines/{run_id}")
        assert anonymous.status_code == 303
        assert "/ui/login" in anonymous.headers["location"]
    finally:
        world.server.close()
