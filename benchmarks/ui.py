"""Server time of the web UI's heaviest views, on the scale benchmark's corpora.

    .venv/bin/python benchmarks/ui.py [--sizes 10000,100000] [--repeats 15]

The corpora are the scale benchmark's (``_scale_corpus``: one experiment of N runs, each with 5
params, 5 metrics and 3 tags, plus one run with a metric of 100,000 steps), built by bulk SQL and
cached under ``.bench/scale/``. The server is the real app (``create_app``) called in-process;
"server time" is measured inside it, from the request reaching the app to the last byte of the
response leaving it (no network, no browser). Each view is the median of ``--repeats`` after one
warm-up. Targets from issue #18: the runs table's first page in under 300 ms at 10,000 runs and
under 1 s at 100,000 runs.

Views:
  runs page               /ui/experiments/<id>: first page (50 runs), newest first, every column
  runs page, filtered     the same with metrics.acc > 0.99 and params.model = 'rf', sorted by metrics.acc
  runs page, 500 rows     the first page at the largest page size
  chart of 100k points    /api/v1/runs/<id>/metric-history/columns?max_points=1000 (what the run page loads)
  run page                /ui/runs/<id> of the run with the 100,000-step metric

Not measured here yet: the same views in ``mlflow server``'s UI (its API calls) for a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import _scale_corpus as corpus
import _scale_data as data
import httpx
from rich.console import Console
from rich.table import Table

from shipyard.config import Settings
from shipyard.entities import RunQuery
from shipyard.filters import parse_filter
from shipyard.server import create_app
from shipyard.testing import ASGITransport

SCALE_DIR = Path(__file__).resolve().parents[1] / ".bench" / "scale"
HISTORY_RUN = "f" * 32
TARGETS_MS = {10_000: 300.0, 100_000: 1000.0}


class ServerClock:
    """ASGI wrapper timing each request inside the server: from the call to the last body chunk."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: Any) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.last_ms = (time.perf_counter() - start) * 1000

        await self.app(scope, receive, timed_send)


def _measure(http: httpx.Client, clock: ServerClock, url: str, repeats: int,
             check: Callable[[httpx.Response], None]) -> tuple[float, float]:
    check(http.get(url))  # warm-up, and the answer is what it should be
    times = []
    for _ in range(repeats):
        response = http.get(url)
        assert response.status_code == 200, (url, response.status_code)
        times.append(clock.last_ms)
    times.sort()
    return statistics.median(times), times[int(0.9 * (len(times) - 1))]


def _rows(expected: int) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        assert response.status_code == 200, response.text[:500]
        found = response.text.count('hx-boost="false">')
        assert found == expected, f"expected {expected} rows, got {found}"
    return check


def _points(response: httpx.Response) -> None:
    assert response.status_code == 200
    body = response.json()
    assert 4 <= len(body["steps"]) <= 1000, len(body["steps"])


def _ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text[:500]


def bench(n: int, repeats: int, console: Console) -> list[tuple[str, float, float]]:
    path = corpus.build_sqlite(SCALE_DIR, n, lambda done, total: None)
    with tempfile.TemporaryDirectory(prefix="shipyard-ui-bench-") as artifacts:
        settings = Settings.resolve(env={}, tracking_uri=f"sqlite:///{path}", artifact_uri=artifacts)
        app = create_app(settings)
        clock = ServerClock(app)
        transport = ASGITransport(clock)
        store = app.state.client.store
        experiment = store.experiments.get_by_name(corpus.EXPERIMENT)
        assert experiment is not None
        runs_url = f"/ui/experiments/{experiment.experiment_id}"
        filtered = runs_url + "?" + urlencode({"filter": data.FILTER, "order": "metrics.acc DESC"})
        matches = len(store.runs.search(RunQuery((experiment.experiment_id,), parse_filter(data.FILTER),
                                                 max_results=50)).items)
        views = [
            ("runs page (50 rows)", runs_url, _rows(50)),
            (f"runs page, filtered and sorted ({matches} rows)", filtered, _rows(matches)),
            ("runs page (500 rows)", runs_url + "?size=500", _rows(500)),
            (f"chart of {data.HISTORY_STEPS:,} points",
             f"/api/v1/runs/{HISTORY_RUN}/metric-history/columns?key={data.HISTORY_KEY}&max_points=1000", _points),
            ("run page (100k-step metric)", f"/ui/runs/{HISTORY_RUN}", _ok),
        ]
        results = []
        with httpx.Client(transport=transport, base_url="http://127.0.0.1") as http:
            for label, url, check in views:
                median, p90 = _measure(http, clock, url, repeats, check)
                results.append((label, median, p90))
                console.log(f"{n:,} runs · {label}: median {median:.1f} ms, p90 {p90:.1f} ms")
        transport.close()
        app.state.client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="corpus sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    console = Console()
    table = Table(title="Web UI server time (median of repeats; p90)")
    for column in ("runs", "view", "median ms", "p90 ms", "target"):
        table.add_column(column, justify="right" if column != "view" else "left")
    for n in (int(s) for s in args.sizes.split(",")):
        for label, median, p90 in bench(n, args.repeats, console):
            target = TARGETS_MS.get(n) if label == "runs page (50 rows)" else None
            verdict = "" if target is None else (f"< {target:.0f} ms ✓" if median < target else f"< {target:.0f} ✗")
            table.add_row(f"{n:,}", label, f"{median:.1f}", f"{p90:.1f}", verdict)
    console.print(table)


if __name__ == "__main__":
    main()
