"""The web UI in a real browser: Debian's Chromium driven by Playwright, against a real server.

One server and one browser for the module; each test gets a fresh page whose console errors,
uncaught exceptions, failed requests and error responses are collected and must be none (a test
names the one error response it provokes on purpose). Screenshots of every page go to
``tests/artifacts/ui/`` for people to look at. No browser is downloaded: without
``/usr/bin/chromium`` (``apt-get install chromium``) or the ``playwright`` package the module
skips locally and fails under CI (``tests/ci.py``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.ci import require, unavailable
from tests.e2e.ui_data import DATASET, DEPLOYMENT, EXPERIMENT, MODEL, Seeded, seed
from tests.support import uvicorn_thread

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parents[1] / "artifacts" / "ui"
sync_api = require("playwright.sync_api")
if not CHROMIUM.exists():
    unavailable(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")


@dataclass
class Site:
    url: str
    seeded: Seeded


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    from shipyard.config import Settings
    from shipyard.server import create_app
    from shipyard.tracking.client import Client

    with tempfile.TemporaryDirectory(prefix="shipyard-ui-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(env={"SHIPYARD_CAPTURE_PACKAGES": "false"},
                                    tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
                                    artifact_uri=str(root / "artifacts"))
        client = Client(settings=settings)
        seeded = seed(client, root)
        app = create_app(settings, client=client)
        try:
            with uvicorn_thread(app, name="ui-test-server") as url:
                yield Site(url, seeded)
        finally:
            client.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page and every problem it reported; ``expect_status`` allows one error response on purpose."""

    page: Any
    problems: list[str] = field(default_factory=list)
    allowed: set[tuple[str, int]] = field(default_factory=set)
    allowed_console: list[str] = field(default_factory=list)

    def expect_console(self, start: str) -> None:
        self.allowed_console.append(start)

    def expect_status(self, url_part: str, status: int) -> None:
        self.allowed.add((url_part, status))

    def is_allowed(self, url: str, status: int | None = None) -> bool:
        return any(part in url and (status is None or status == code) for part, code in self.allowed)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def web(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    watched = Watched(page)

    def console(message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        if message.text.startswith("Failed to load resource") and watched.is_allowed(where):
            return
        if message.text.startswith(tuple(watched.allowed_console)):
            return
        watched.problems.append(f"console error at {where}: {message.text}")

    def response(resp: Any) -> None:
        if resp.status >= 400 and not watched.is_allowed(resp.url, resp.status):
            watched.problems.append(f"{resp.status} from {resp.url}")

    page.on("console", console)
    page.on("pageerror", lambda err: watched.problems.append(f"uncaught exception: {err}"))
    page.on("requestfailed", lambda req: watched.problems.append(f"request failed: {req.url} ({req.failure})"))
    page.on("response", response)
    yield watched
    context.close()
    assert watched.problems == [], "the page reported problems:\n" + "\n".join(watched.problems)


def run_names(page: Any) -> list[str]:
    return page.locator("#runs-table tbody tr td:nth-child(2)").all_inner_texts()


def wait_for_charts(page: Any, count: int) -> None:
    """``count`` chart figures drew a canvas (uPlot) with a non-empty size. (Playwright's
    ``wait_for_function`` evaluates a string, which the pages' CSP refuses: poll with locators.)"""
    canvases = page.locator("[data-chart] canvas")
    sync_api.expect(canvases).to_have_count(count)
    for i in range(count):
        box = canvases.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 100, box
        assert box["height"] > 100, box


def test_runs_table_filter_sort_select_and_compare(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(site.url + "/")
    page.get_by_role("link", name=EXPERIMENT).click()
    page.wait_for_selector("#runs-table")
    assert len(run_names(page)) == 13  # 12 sweep runs and the child run
    web.shot("runs")

    page.get_by_label("Filter runs").fill("params.lr = '0.01' and metrics.loss < 10")
    page.get_by_label("Filter runs").press("Enter")
    sync_api.expect(page.locator("#runs-table tbody tr")).to_have_count(4)
    assert "filter=params.lr" in page.url  # the view is in the address
    assert sorted(run_names(page)) == ["run-02", "run-05", "run-08", "run-11"]

    page.locator("#runs-table thead a.sort", has_text="loss").click()
    page.wait_for_selector("#runs-table th[aria-sort=descending] >> text=loss")
    losses = [float(v) for v in page.locator("#runs-table tbody tr td.num").all_inner_texts()[::2]]
    assert losses == sorted(losses, reverse=True)
    assert "order=metrics.loss+DESC" in page.url
    web.shot("runs-filtered-sorted")

    assert page.locator("#compare-button").is_disabled()
    page.get_by_label("Select run run-05").check()
    page.get_by_label("Select run run-08").check()
    assert page.locator("#compare-button").inner_text() == "Compare 2 selected"
    page.locator("#compare-button").click()
    page.wait_for_url(re.compile(r"/ui/compare\?"))
    wait_for_charts(page, 2)  # loss and accuracy, one line per run
    depth = page.locator("#param-diff tr[data-param=depth]")
    assert "differs" in (depth.get_attribute("class") or "")
    runs = page.locator("#param-diff thead th").all_inner_texts()[1:]
    assert dict(zip(runs, depth.locator("td").all_inner_texts(), strict=True)) == {"run-05": "8", "run-08": "6"}
    assert "differs" not in (page.locator("#param-diff tr[data-param=lr]").get_attribute("class") or "")
    web.shot("compare")


def test_a_bad_filter_shows_the_parsers_error(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/experiments/{site.seeded.experiment_id}")
    web.expect_status(f"/ui/experiments/{site.seeded.experiment_id}", 400)
    page.get_by_label("Filter runs").fill("metrics.loss <")
    page.get_by_label("Filter runs").press("Enter")
    error = page.locator("#filter-error")
    error.wait_for()
    assert "expected a number for metric 'loss' at column 15" in error.inner_text()
    assert page.get_by_label("Filter runs").input_value() == "metrics.loss <"  # kept for fixing
    assert page.get_by_label("Filter runs").get_attribute("aria-invalid") == "true"
    web.shot("runs-bad-filter")


def test_run_page_charts_and_artifact_previews(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/runs/{site.seeded.best_run_id}")
    wait_for_charts(page, 2)
    assert "4f3c2a1b9e8d" in page.locator("#h-code + table").inner_text()
    assert page.locator("pre.diff .add").text_content() == "+lr = 0.01"
    assert page.get_by_role("link", name=f"{DATASET}@1").is_visible()
    assert page.get_by_role("link", name="child-eval").is_visible()
    web.shot("run")

    page.get_by_role("link", name="Artifacts", exact=True).click()
    page.get_by_role("link", name="config.yaml").click()
    assert "kind: logistic" in page.locator("pre[data-preview=yaml]").inner_text()
    web.shot("artifact-yaml")

    page.get_by_role("link", name="📁 plots/").click()
    page.get_by_role("link", name="confusion.png").click()
    image = page.locator("img.artifact")
    image.wait_for()
    for _ in range(100):
        if image.evaluate("img => img.complete"):
            break
        page.wait_for_timeout(50)
    assert image.evaluate("img => img.naturalWidth") == 320
    web.shot("artifact-image")

    page.goto(f"{site.url}/ui/runs/{site.seeded.best_run_id}/artifacts?path=data/sample.csv")
    assert page.locator("table[data-preview=table] thead th").all_inner_texts() == ["tenure", "spend", "plan"]
    assert page.locator("table[data-preview=table] tbody tr").count() == 40
    page.goto(f"{site.url}/ui/runs/{site.seeded.best_run_id}/artifacts?path=data/table.parquet")
    assert page.locator("table[data-preview=table] tbody tr").count() == 40

    # The report's script is blocked by the sandbox, and Chromium says so on the console: that one is expected.
    web.expect_console("Blocked script execution in 'about:srcdoc' because the document's frame is sandboxed")
    page.goto(f"{site.url}/ui/runs/{site.seeded.best_run_id}/artifacts?path=report.html")
    frame = page.frame_locator("iframe.html-preview")
    assert frame.locator("h1").inner_text() == "Report"
    assert page.locator("iframe.html-preview").get_attribute("sandbox") == ""  # no scripts, no same origin
    assert frame.locator("body").evaluate("b => b.ownerDocument.title") != "pwned"  # its script did not run
    web.shot("artifact-html")


def test_approve_a_version_and_move_the_alias(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/models")
    page.get_by_role("link", name=MODEL, exact=True).click()
    assert page.locator("#aliases tr[data-alias=production] td").inner_text() == "version 1"
    page.get_by_role("link", name="2", exact=True).click()
    page.wait_for_selector("#h-card")

    # production is protected: moving it to an unapproved version is refused, and says why
    web.expect_status(f"/ui/models/{MODEL}/versions/2/alias", 409)
    page.get_by_label("Point an alias here").fill("production")
    page.locator("#alias-button").click()
    assert "approv" in page.locator(".error-box").inner_text()

    page.get_by_label("Approve this version").fill("eval report reviewed")
    page.locator("#approve-button").click()
    page.wait_for_url(re.compile(r"done=approved"))
    assert "approved" in page.locator("#approval").inner_text()
    page.get_by_label("Point an alias here").fill("production")
    page.locator("#alias-button").click()
    page.wait_for_url(re.compile(r"done=alias"))
    assert "@production" in page.locator("main > h1").inner_text()
    web.shot("version-approved")

    page.get_by_role("link", name=MODEL, exact=True).first.click()
    assert page.locator("#aliases tr[data-alias=production] td").inner_text() == "version 2"
    assert "alias set" in page.locator("table.history").inner_text()
    web.shot("model")


def test_follow_lineage_from_a_model_to_its_dataset(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/models/{MODEL}/versions/1")
    page.get_by_role("link", name="Lineage", exact=True).click()
    page.wait_for_selector("svg.lineage")
    assert page.locator("svg.lineage g.node").count() == 3  # model <- run <- dataset
    web.shot("lineage")
    page.locator("svg.lineage g.node-dataset a").click()
    page.wait_for_url(re.compile(r"/ui/datasets/"))
    assert page.locator("#digest").inner_text().startswith("sha256:")
    assert page.locator("main > h1").inner_text() == f"{DATASET} · version 1"
    web.shot("dataset")


def test_roll_back_a_deployment_after_confirming(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/deployments")
    page.get_by_role("link", name=DEPLOYMENT).click()
    assert page.locator("#routes tbody tr").count() == 2  # primary and a 20% canary
    web.shot("deployment")
    page.locator("#rollback-link").click()
    page.wait_for_selector("#confirm-rollback")
    web.shot("rollback-confirm")
    page.locator("#confirm-rollback").click()
    page.wait_for_url(re.compile(r"done=rollback"))
    assert page.locator("#routes tbody tr").all_inner_texts() == ["primary\tchurn v1\t100%"]
    assert page.locator("#history tbody tr").first.locator("td").nth(2).inner_text() == "rollback"
