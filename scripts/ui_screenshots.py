"""Take the docs' screenshots of the web UI from the real pages, in Debian's headless Chromium.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/img] [--only runs,compare]

The store is the browser tests' (``tests/e2e/ui_data.py``: an experiment of runs, a registered
model with a canary deployment, a monitor with a day of windows, two dataset versions), served
by a real server on a free loopback port, and the browser is the one those tests drive
(``/usr/bin/chromium`` through Playwright; nothing is downloaded). Each picture is the page at a
1360-pixel-wide window, cut at ``height`` pixels (or one element of it), written as
``OUT/ui-NAME.png``. A page that logs a console error or answers an error status stops the script:
a screenshot of a broken page is not documentation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
WIDTH = 1360
MARGIN = 16  # pixels kept around an element


@dataclass(frozen=True)
class Shot:
    name: str
    path: Callable[[Any], str]  # the seeded store's ids -> the page's address
    height: int = 900  # the picture's height: the page's top, at most this tall
    until: str | None = None  # or down to the bottom of this element
    element: str | None = None  # or only this element (the page's width, from its top to its bottom)
    ready: str | None = None  # a selector to wait for (charts draw after the page loads)


SHOTS = (
    Shot("runs", lambda s: f"/ui/experiments/{s.experiment_id}?filter=params.lr+%3D+%270.01%27+and+metrics.loss+%3C+10"
                           "&order=metrics.loss+DESC", height=560),
    Shot("compare", lambda s: f"/ui/compare?runs={s.run_ids[5]}&runs={s.run_ids[8]}", ready="[data-chart] canvas",
         until="section[aria-labelledby=h-metrics]"),
    Shot("compare-parallel", lambda s: "/ui/compare?" + "&".join(f"runs={r}" for r in s.run_ids[:6])
         + "&pc_metric=loss", element="section[aria-labelledby=h-parallel]"),
    Shot("run", lambda s: f"/ui/runs/{s.best_run_id}", height=1100, ready="[data-chart] canvas"),
    Shot("version", lambda s: "/ui/models/churn/versions/2", height=1100),
    Shot("lineage", lambda s: "/ui/lineage?ref=deployment:churn-api", ready="svg.lineage", until="svg.lineage"),
    Shot("dataset-diff", lambda s: "/ui/datasets/churn-train/diff?old=1&new=2", height=820),
    Shot("deployment", lambda s: "/ui/deployments/churn-api", height=900),
    Shot("monitor", lambda s: "/ui/monitors/churn-drift", ready="[data-chart] canvas",
         until="section[aria-labelledby=h-alerts]"),
)


def draw_every_chart(page: Any) -> None:
    """Charts are drawn when they scroll into view: bring each one there, wait for its canvas."""
    from playwright.sync_api import expect

    figures = page.locator("[data-chart]")
    for i in range(figures.count()):
        figures.nth(i).scroll_into_view_if_needed()
        expect(figures.nth(i).locator("canvas")).to_have_count(1)
    page.evaluate("() => window.scrollTo(0, 0)")


def take(shots: tuple[Shot, ...], out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright
    from tests.e2e.ui_data import seeded_site

    problems: list[str] = []
    written = []
    with seeded_site() as (url, seeded), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = browser.new_context(viewport={"width": WIDTH, "height": 700})
        page = context.new_page()
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda err: problems.append(f"uncaught exception: {err}"))
        page.on("response", lambda r: problems.append(f"{r.status} from {r.url}") if r.status >= 400 else None)
        for shot in shots:
            page.goto(url + shot.path(seeded))
            page.wait_for_load_state("networkidle")
            if shot.ready:
                page.locator(shot.ready).first.wait_for()
            draw_every_chart(page)
            if problems:
                raise SystemExit(f"{shot.name}: the page reported problems:\n" + "\n".join(problems))
            target = out / f"ui-{shot.name}.png"
            clip = {"x": 0, "y": 0, "width": WIDTH,
                    "height": min(shot.height, page.evaluate("() => document.documentElement.scrollHeight"))}
            if shot.element or shot.until:
                box = page.locator(shot.element or shot.until).first.bounding_box()
                assert box is not None, f"{shot.name}: {shot.element or shot.until} is not shown"
                top = max(0, box["y"] - MARGIN) if shot.element else 0
                clip.update(y=top, height=box["y"] + box["height"] + MARGIN - top)
            page.screenshot(path=str(target), full_page=True, clip=clip)
            written.append(target)
        browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--only", default="", help="names, comma-separated: " + ", ".join(s.name for s in SHOTS))
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    wanted = {name for name in args.only.split(",") if name}
    unknown = wanted - {s.name for s in SHOTS}
    if unknown:
        parser.error(f"no such screenshot: {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in take(tuple(s for s in SHOTS if not wanted or s.name in wanted), args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # for tests.e2e.ui_data, the browser tests' store
    sys.exit(main())
