"""The MLflow compatibility benchmark at the HTTP level, and the ceilings of its client-level figures.

Used by ``mlflow_compat.py``'s client script (this venv, ``mlflow-skinny`` and httpx):

- :func:`capture` records the requests the ``mlflow`` client itself sends (``MlflowClient.log_batch``,
  ``search_runs``, ``get_run``) without sending them: its HTTP function is swapped for one that
  writes down the method, path and JSON body and answers ``{}``.
- :func:`measure_http` replays exactly those bodies with httpx (one keep-alive connection, no
  ``mlflow`` code in the timed loop) against a server: ``runs/log-batch`` into a fresh run,
  ``runs/search`` with the corpus filter, ``runs/get`` of one run. The same bytes go to both
  servers, so the ratio is the servers' own.
- :func:`measure_ceilings` runs the client-level calls against a *null server* (:func:`serve_null`,
  a separate process that answers every request instantly with a canned body: ``{}``, or the
  search and get answers captured from a real server so the client parses the same runs). The
  time left is the client's own work, which no server can remove; MLflow's client-level time
  divided by it is the most any server could be faster than MLflow through that client.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _workload as w

SCRIPT = Path(__file__).resolve()
API = "/api/2.0/mlflow"


@dataclass(frozen=True)
class Captured:
    method: str
    endpoint: str  # e.g. /api/2.0/mlflow/runs/log-batch
    body: dict[str, Any]  # the JSON body (POST) or query parameters (GET)


@dataclass(frozen=True)
class HttpResult:
    """Replayed bodies against one server."""

    log_batch: w.Throughput  # metrics per second, ``batch_metrics`` values in requests of 1,000
    search: w.SearchResult  # median of ``search_repeats``
    get_run: w.Throughput  # calls per second, ``get_calls`` sequential calls

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HttpResult:
        return cls(log_batch=w.Throughput(**raw["log_batch"]), search=w.SearchResult(**raw["search"]),
                   get_run=w.Throughput(**raw["get_run"]))


@dataclass(frozen=True)
class Ceilings:
    """The client-level calls against the null server: the client's own time (seconds)."""

    single: float  # ``single_calls`` sequential log_metric calls
    batch: float  # the batch workload in log_batch calls of 1,000
    search: float  # one search_runs call parsing the captured answer


# --- capturing the client's own requests -----------------------------------------------------------


@contextlib.contextmanager
def capture() -> Iterator[list[Captured]]:
    """Inside, ``mlflow`` client calls record their requests instead of sending them."""
    import requests
    from mlflow.utils import rest_utils

    seen: list[Captured] = []
    original = rest_utils.http_request

    def record(host_creds: Any, endpoint: str, method: str, **kwargs: Any) -> requests.Response:
        seen.append(Captured(method, endpoint, kwargs.get("json") or kwargs.get("params") or {}))
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.headers["Content-Type"] = "application/json"
        return response

    rest_utils.http_request = record
    try:
        yield seen
    finally:
        rest_utils.http_request = original


def captured_calls(batch_chunks: Sequence[Sequence[tuple[str, float, int, int]]], search_experiment_id: str,
                   get_run_id: str) -> tuple[list[Captured], Captured, Captured]:
    """The bodies MlflowClient sends for the batch chunks, the corpus search and one get_run."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(tracking_uri="http://127.0.0.1:9")  # never contacted while capturing
    with capture() as seen:
        for chunk in batch_chunks:
            client.log_batch("0" * 32, metrics=[Metric(k, v, ts, s) for k, v, s, ts in chunk])
    batches = [c for c in seen if c.endpoint.endswith("runs/log-batch")]
    with capture() as seen:
        client.search_runs([search_experiment_id], filter_string=w.SEARCH_FILTER, max_results=w.SEARCH_MAX_RESULTS)
    search = next(c for c in seen if c.endpoint.endswith("runs/search"))
    # The canned {} is not a run, so get_run raises after sending; the request is what matters.
    with capture() as seen, contextlib.suppress(Exception):
        client.get_run(get_run_id)
    get = next(c for c in seen if c.endpoint.endswith("runs/get"))
    assert len(batches) == len(batch_chunks), f"captured {len(batches)} log-batch requests of {len(batch_chunks)}"
    return batches, search, get


# --- replaying them with httpx ------------------------------------------------------------------


def measure_http(url: str, batches: list[Captured], search: Captured, get: Captured, *, batch_experiment_id: str,
                 batch_repeats: int, search_repeats: int, get_calls: int, label: str) -> HttpResult:
    import httpx

    total = sum(len(b.body["metrics"]) for b in batches)
    with httpx.Client(base_url=url, timeout=120) as http:
        def call(c: Captured, **changes: Any) -> Any:
            body = {**c.body, **changes}
            response = http.post(c.endpoint, json=body) if c.method == "POST" else http.get(c.endpoint, params=body)
            if response.status_code != 200:
                raise RuntimeError(f"{label}: {c.endpoint} answered {response.status_code}: {response.text[:300]}")
            return response.json()

        w.start(f"{label}: runs/log-batch replayed, {total:,} metrics in {len(batches)} requests, "
                f"{batch_repeats} runs", total=batch_repeats)
        samples = []
        for repeat in range(batch_repeats):
            created = http.post(f"{API}/runs/create", json={"experiment_id": batch_experiment_id,
                                                            "run_name": f"http-batch-{repeat}"}).json()
            run_id = created["run"]["info"]["run_id"]
            start = time.perf_counter()
            for b in batches:
                call(b, run_id=run_id, run_uuid=run_id)
            samples.append(time.perf_counter() - start)
            history = http.get(f"{API}/metrics/get-history", params={"run_id": run_id, "metric_key": "b0"}).json()
            expected = total // w.BATCH_KEYS
            if len(history.get("metrics", [])) != expected:
                raise RuntimeError(f"{label}: the server stored {len(history.get('metrics', []))} values of b0, "
                                   f"expected {expected}")
            w.advance(repeat + 1, batch_repeats)
        log_batch = w.Throughput.of(total, samples, calls=len(batches), note=f"{len(batches)} requests")
        w.done(f"{log_batch.per_second:,.0f} metrics/s (median)")

        w.start(f"{label}: runs/search replayed, median of {search_repeats}")
        median, search_samples, answer = w.timed_median(lambda: call(search), repeats=search_repeats)
        runs = answer.get("runs", [])
        names = [next(t["value"] for t in r["data"]["tags"] if t["key"] == "mlflow.runName") for r in runs]
        result = w.SearchResult(runs=0, matched=len(runs), matched_digest=w.names_digest(names), seconds=median,
                                samples=search_samples)
        w.done(f"{median * 1000:,.1f} ms, {len(runs)} runs matched")

        w.start(f"{label}: runs/get replayed x {get_calls} sequential calls")
        for _ in range(10):
            call(get)
        start = time.perf_counter()
        for _ in range(get_calls):
            call(get)
        get_run = w.Throughput.of(get_calls, [time.perf_counter() - start], calls=get_calls)
        w.done(f"{get_run.per_second:,.0f} calls/s")
    return HttpResult(log_batch=log_batch, search=dataclasses.replace(result), get_run=get_run)


def search_answer(url: str, search: Captured) -> bytes:
    import httpx

    return httpx.post(url + search.endpoint, json=search.body, timeout=120).content


# --- the null server and the ceilings ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def null_server(canned: dict[str, bytes], workdir: Path) -> Iterator[str]:
    """A process answering every request at once: the canned body of the first path suffix it
    ends with, else ``{}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    bodies = workdir / "canned.json"
    bodies.write_text(json.dumps({k: v.decode() for k, v in canned.items()}))
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SCRIPT), "--serve", str(port), str(bodies)])
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the null server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def serve_null(port: int, bodies_path: Path) -> None:
    """The null server: HTTP/1.1 with keep-alive, reading each request whole, doing nothing."""
    import asyncio

    bodies = {k: v.encode() for k, v in json.loads(bodies_path.read_text()).items()}
    default = b"{}"

    def reply(body: bytes) -> bytes:
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1].split("?")[0]
                length = next((int(x.split(":", 1)[1]) for x in lines[1:] if x.lower().startswith("content-length:")),
                              0)
                if length:
                    await reader.readexactly(length)
                body = next((b for suffix, b in bodies.items() if path.endswith(suffix)), default)
                writer.write(reply(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def measure_ceilings(canned: dict[str, bytes], workdir: Path, *, single: Callable[[Any], None],
                     batch: Callable[[Any], None], search: Callable[[Any], None], repeats: int) -> Ceilings:
    """The client-level calls against the null server, each the median of ``repeats``."""
    from mlflow import MlflowClient

    w.start(f"mlflow client → null server: the client's own time, median of {repeats}")
    with null_server(canned, workdir) as url:
        client = MlflowClient(tracking_uri=url)
        times = {}
        for name, fn in (("single", single), ("batch", batch), ("search", search)):
            fn(client)  # warm-up
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                fn(client)
                samples.append(time.perf_counter() - start)
            times[name] = statistics.median(samples)
    w.done(f"log_metric calls {times['single']:.2f} s, log_batch {times['batch']:.2f} s, "
           f"search {times['search'] * 1000:.0f} ms")
    return Ceilings(**times)


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "--serve":
    serve_null(int(sys.argv[2]), Path(sys.argv[3]))
