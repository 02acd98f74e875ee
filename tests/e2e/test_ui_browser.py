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
from tests.e2e.ui_data import (
    DATASET,
    DEPLOYMENT,
    EXPERIMENT,
    MODEL,
    MONITOR,
    Seeded,
    seeded_site,
)
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
    with seeded_site() as (url, seeded):
        yield Site(url, seeded)


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
    # A fetch still under way when the test moves to another page (a chart's series, the icon) is
    # dropped by the browser: that abort is the navigation's doing, not a failure of the page.
    # (A navigation's own request starts before the old page's fetches are dropped.)
    navigations = [0]
    started_at: dict[Any, int] = {}
    closing = False

    def requested(req: Any) -> None:
        if req.is_navigation_request() and req.frame == page.main_frame:
            navigations[0] += 1
        started_at[req] = navigations[0]

    def failed(req: Any) -> None:
        aborted = "ERR_ABORTED" in str(req.failure)
        if aborted and (closing or started_at.pop(req, navigations[0]) != navigations[0]):
            return
        # The browser fetches the icon on its own schedule and drops it whenever it likes (a
        # redirect, a form post); an aborted icon is never the page's failure, a refused one is.
        if aborted and "/favicon" in req.url:
            return
        watched.problems.append(f"request failed: {req.url} ({req.failure})")

    page.on("request", requested)
    page.on("requestfinished", lambda req: started_at.pop(req, None))
    page.on("requestfailed", failed)
    page.on("response", response)
    yield watched
    closing = True  # closing the context drops whatever is still in flight
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

    x_axis = page.locator("[data-chart]").first.locator(".u-legend .u-series").first
    sync_api.expect(x_axis).to_contain_text("step")
    page.get_by_label("X axis").select_option("relative")  # overlaid by time instead of step
    sync_api.expect(x_axis).to_contain_text("seconds")
    wait_for_charts(page, 2)


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
    assert re.fullmatch(r"(t\d+:)?sha256:[0-9a-f]{64}", page.locator("#digest").inner_text())  # a table's digest recipe
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


def test_monitoring_pages_show_alert_state_drift_charts_and_alert_history(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(site.url + "/ui/experiments")
    page.get_by_role("link", name="Monitors", exact=True).click()
    row = page.locator(f"#monitors tr[data-monitor={MONITOR}]")
    sync_api.expect(row.locator("td").nth(2)).to_have_text("OK")
    assert "failed" in row.locator("td").nth(6).inner_text()
    web.shot("monitors")
    row.get_by_role("link", name=MONITOR).click()
    page.wait_for_url(re.compile(f"/ui/monitors/{MONITOR}$"))
    wait_for_charts(page, 3)  # age, plan, output.prediction
    assert page.locator("#drift-summary tbody tr").count() == 3
    outcomes = page.locator("#alerts tbody tr td:nth-child(5)").all_inner_texts()
    assert outcomes == ["failed", "promoted", "delivered"]  # newest first: resolved, retrain, firing
    assert page.locator("#windows tbody tr").count() == 24
    web.shot("monitor")


def test_a_deployment_and_its_monitors_link_to_each_other(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/deployments/{DEPLOYMENT}")
    row = page.locator(f"#deployment-monitors tr[data-monitor={MONITOR}]")
    sync_api.expect(row.locator("td").nth(1)).to_have_text("OK")
    row.get_by_role("link", name=MONITOR).click()
    page.wait_for_url(re.compile(f"/ui/monitors/{MONITOR}$"))
    page.get_by_role("link", name=DEPLOYMENT, exact=True).click()
    page.wait_for_url(re.compile(f"/ui/deployments/{DEPLOYMENT}$"))
    sync_api.expect(page.locator("main > h1")).to_contain_text(DEPLOYMENT)


def test_the_diff_between_two_dataset_versions(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/datasets")
    page.get_by_role("link", name=DATASET).click()
    page.locator("#diff-button").click()
    page.wait_for_url(re.compile(r"/ui/datasets/.+/diff\?new=2&old=1"))
    schema = page.locator("#schema-changes").inner_text()
    assert "40 → 50" in schema
    assert "+ region" in schema
    assert "tenure" in schema
    spend = page.locator("#column-changes tr[data-column=spend]").inner_text()
    assert "0 → 5" in spend  # nulls
    assert "+ team" in page.locator("#column-changes tr[data-column=plan]").inner_text()
    web.shot("dataset-diff")


def test_compare_plots_params_against_a_chosen_metric(site: Site, web: Watched) -> None:
    page = web.page
    runs = "&".join(f"runs={r}" for r in site.seeded.run_ids[:6])
    page.goto(f"{site.url}/ui/compare?{runs}")
    plot = page.locator("#parallel-plot")
    plot.wait_for()
    assert plot.locator("path.run-line").count() == 6
    assert plot.locator("text.axis-label").all_text_contents() == ["depth", "lr", "accuracy"]
    page.get_by_label("Metric", exact=True).select_option("loss")
    page.wait_for_url(re.compile(r"pc_metric=loss"))
    assert plot.locator("text.axis-label").all_text_contents()[-1] == "loss"
    web.shot("compare-parallel")


def test_a_pipeline_run_is_drawn_as_a_dag_whose_nodes_open_the_step_runs(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(site.url + "/ui/experiments")
    page.get_by_role("link", name="Pipelines", exact=True).click()
    page.locator(f"#pipelines tr[data-pipeline-run='{site.seeded.pipeline_run_id}']").get_by_role(
        "link", name="ui_pipeline").click()
    dag = page.locator("#pipeline-dag")
    dag.wait_for()
    assert dag.locator("g.node.status-executed").count() == 3
    assert dag.locator("path.edge").count() == 3
    web.shot("pipeline")
    dag.get_by_label("step square: executed").click()
    page.wait_for_url(re.compile(r"/ui/runs/[0-9a-f]{32}$"))
    page.locator("#pipeline-link").click()
    page.wait_for_url(re.compile(rf"/ui/pipelines/{site.seeded.pipeline_run_id}$"))


def test_a_version_page_shows_its_quality_gates(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/models/{MODEL}/versions/2")
    assert page.locator("#gate-alias").input_value() == "production"
    gates = page.locator("#gates tbody tr")
    assert gates.count() >= 1
    page.get_by_label("Requirements").fill("metrics.accuracy >= 0.99")
    page.locator("#gate-button").click()
    page.wait_for_url(re.compile(r"require=metrics.accuracy"))
    sync_api.expect(page.locator("#gate-verdict")).to_contain_text("blocked")
    web.shot("version-gates")


# -- accessibility: axe-core in the same browser ---------------------------------------------------
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
# WCAG 2 A/AA rules plus best practices; what is reported is what a person meets: serious and critical
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}


def _axe_pages(site: Site) -> list[tuple[str, str]]:
    seeded = site.seeded
    return [("experiments", "/ui/experiments"), ("runs", f"/ui/experiments/{seeded.experiment_id}"),
            ("run", f"/ui/runs/{seeded.best_run_id}"),
            ("compare", "/ui/compare?" + "&".join(f"runs={r}" for r in seeded.run_ids[:3])),
            ("artifacts", f"/ui/runs/{seeded.best_run_id}/artifacts?path=data/sample.csv"),
            ("models", "/ui/models"), ("model", f"/ui/models/{MODEL}"), ("version", f"/ui/models/{MODEL}/versions/1"),
            ("lineage", f"/ui/lineage?ref=models:/{MODEL}/1"), ("datasets", "/ui/datasets"),
            ("dataset", f"/ui/datasets/{DATASET}/versions/1"),
            ("dataset-diff", f"/ui/datasets/{DATASET}/diff?old=1&new=2"),
            ("deployments", "/ui/deployments"), ("deployment", f"/ui/deployments/{DEPLOYMENT}"),
            ("monitors", "/ui/monitors"), ("monitor", f"/ui/monitors/{MONITOR}"), ("pipelines", "/ui/pipelines"),
            ("pipeline", f"/ui/pipelines/{seeded.pipeline_run_id}"), ("sign-in", "/ui/login")]


@pytest.fixture
def axe_page(browser: Any) -> Iterator[Any]:
    """A page that may inject axe-core: the pages' CSP allows scripts from the server only, so this
    one context bypasses it (every other test runs under it and fails on any CSP report)."""
    context = browser.new_context(viewport={"width": 1360, "height": 900}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def test_main_pages_have_no_serious_accessibility_violations(site: Site, axe_page: Any) -> None:
    assert AXE.is_file(), "run .venv/bin/python scripts/vendor_js.py (vendors axe-core for this test)"
    found = []
    for name, path in _axe_pages(site):
        axe_page.goto(site.url + path)
        axe_page.wait_for_load_state("networkidle")
        axe_page.add_script_tag(path=str(AXE))
        result = axe_page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
        for violation in result["violations"]:
            if violation["impact"] in ("serious", "critical"):
                targets = [" ".join(map(str, n["target"])) for n in violation["nodes"][:3]]
                found.append(f"{name} ({path}): {violation['id']} [{violation['impact']}] {violation['help']}: "
                             f"{targets}")
    assert found == [], "axe-core found:\n" + "\n".join(found)


def test_tables_can_be_scrolled_and_sorted_from_the_keyboard(site: Site, web: Watched) -> None:
    page = web.page
    page.goto(f"{site.url}/ui/experiments/{site.seeded.experiment_id}")
    wrap = page.locator(".table-wrap").first
    assert wrap.get_attribute("tabindex") == "0"  # a scrolling region takes focus, so arrow keys scroll it
    for _ in range(60):  # Tab from the top reaches the sort links in the table's header
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.matches('#runs-table thead a.sort')"):
            break
    else:
        raise AssertionError("no sort link of the runs table is reachable with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"order=attributes.run_name"))


# -- signing in (a server with --auth) -------------------------------------------------------------
SETUP_CODE = "E2E-SETUP-CODE"
ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def auth_site() -> Iterator[str]:
    from shipyard.config import Settings
    from shipyard.server import create_app
    from shipyard.server.authentication import bootstrap_code_hash

    with tempfile.TemporaryDirectory(prefix="shipyard-ui-auth-") as tmp:
        root = Path(tmp)
        settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{root / 'shipyard.db'}",
                                    artifact_uri=str(root / "artifacts"), server_auth=True,
                                    server_run_monitors=False)
        app = create_app(settings, bootstrap_hash=bootstrap_code_hash(SETUP_CODE))
        try:
            with uvicorn_thread(app, name="ui-auth-test-server") as url:
                yield url
        finally:
            app.state.client.close()


def test_set_up_sign_in_and_sign_out(auth_site: str, web: Watched) -> None:
    page = web.page
    page.goto(auth_site + "/ui/models")
    page.wait_for_url(re.compile(r"/ui/login\?next=/ui/models$"))

    page.goto(auth_site + "/ui/setup")
    page.get_by_label("One-time code").fill(SETUP_CODE)
    page.get_by_label("Admin user name").fill("admin")
    page.get_by_label("Password (at least 12 characters)").fill(ADMIN_PASSWORD)
    page.get_by_label("The password again").fill(ADMIN_PASSWORD)
    web.shot("setup")
    page.get_by_role("button", name="Create the admin").click()
    page.wait_for_url(re.compile(r"/ui/login\?done=setup$"))

    web.expect_status("/ui/login", 401)
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password", exact=True).fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    sync_api.expect(page.locator("#sign-in-error")).to_contain_text("wrong user name or password")
    assert page.get_by_label("User name").input_value() == "admin"  # kept; the password is not
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    web.shot("sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/ui/experiments$"))
    sync_api.expect(page.locator("#signed-in-user")).to_have_text("admin")
    [session] = [c for c in page.context.cookies() if c["name"] == "shipyard_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Lax"
    assert session["path"] == "/"
    assert session["secure"] is False  # plain http on loopback; over https it is Secure
    web.shot("signed-in")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/ui/login$"))
    assert not [c for c in page.context.cookies() if c["name"] == "shipyard_session"]
    page.goto(auth_site + "/ui/deployments")
    page.wait_for_url(re.compile(r"/ui/login\?next=/ui/deployments$"))
