"""Serving benchmark: ``shipyard serve`` against ``mlflow models serve``, BentoML and a bare Starlette floor.

    .venv/bin/python benchmarks/serving.py [--quick] [--json PATH] [--refresh-mlflow] [--refresh-bentoml]

One scikit-learn model (``LogisticRegression`` on 5,000 seeded rows of 20 float features, fitted
once here, untimed) is served by, one server at a time (never two at once), each its own process
on a free 127.0.0.1 port with **one worker**:

* **Shipyard**: ``shipyard serve FOLDER --workers 1`` with its defaults (micro-batching: up to 64
  rows, 2 ms wait), timed on ``/invocations`` and on its native ``/v1/models/bench/predict``; then
  again with ``--max-batch-size 1`` (batching off, for information);
* **MLflow**: ``mlflow models serve -m FOLDER --env-manager local -w 1`` from ``.bench/mlflow-venv``
  (uvicorn + FastAPI; the model saved there with ``mlflow.sklearn.save_model``);
* **BentoML**: ``bentoml serve`` of a minimal ``@bentoml.service(workers=1)`` class written at run
  time, from ``.bench/bentoml-venv`` (created with the current BentoML from PyPI on first use);
  BentoML adds a supervisor process that does not handle requests;
* **floor**: a bare Starlette endpoint under uvicorn in this venv (access log off) that parses the
  JSON and calls ``model.predict`` on the event loop: what any Starlette-based server costs at least.

No venv has uvloop or httptools, so every server runs uvicorn's asyncio loop and h11 parser.
Each side gets the same single row of 20 floats in its own protocol: ``{"inputs": [[...]]}`` for
MLflow, Shipyard and the floor (a tensor signature on both tools' packages), ``{"x": [[...]]}`` for
BentoML. Before anything is timed, 32 rows of a held-out set are sent one by one and every answer
must equal the model's own prediction (exit 2 otherwise); the check is repeated after the load.

Per server and endpoint: **sequential** latency p50/p99 over 2,000 requests from one keep-alive
httpx client in this process (after 200 untimed), and **under load** throughput and p99 with 16
concurrent connections for 15 s from ``wrk -t2 -c16 --latency`` (after a 2 s untimed run; any
non-2xx answer or socket error fails the benchmark). Without ``wrk`` (``apt-get install wrk``) an
asyncio httpx generator is used instead, with a warning: it is Python-bound on 2 cores, so its
figures understate every server. ``--quick``: 300 sequential requests, 5 s of load.

Targets (Shipyard with its defaults, on each of its two endpoints): throughput at least 3x
MLflow's and 1.5x BentoML's; p99 under load at most half of MLflow's; the floor's throughput at
most 1.3x Shipyard's. Exits 0 when every target is met, 1 when one is not, 2 when the benchmark
fails. Server logs: ``.bench/logs/serving-*.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import models as m
import server as s
import tracking as t
from rich.console import Console, JustifyMethod
from rich.table import Table

BENTOML_VENV = t.BENCH_DIR / "bentoml-venv"
BENTOML_READY = BENTOML_VENV / ".bench-ready"  # holds the installed BentoML version

SEED = 20_261_124
FEATURES = 20
TRAIN_ROWS = 5_000
CHECK_ROWS = 32
MODEL_NAME = "bench"

MLFLOW_THROUGHPUT_TARGET = 3.0  # Shipyard req/s / MLflow req/s
BENTOML_THROUGHPUT_TARGET = 1.5  # Shipyard req/s / BentoML req/s
MLFLOW_P99_TARGET = 2.0  # MLflow p99 / Shipyard p99 under load: "at most half of MLflow's"
FLOOR_TARGET = 1.3  # floor req/s / Shipyard req/s: "within 1.3x of the floor"
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Sizes:
    sequential: int = 2_000
    sequential_warmup: int = 200
    load_seconds: int = 15
    load_warmup_seconds: int = 2
    connections: int = 16

    @classmethod
    def quick(cls) -> Sizes:
        return cls(sequential=300, sequential_warmup=50, load_seconds=5, load_warmup_seconds=1)


# --- the model and the servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    estimator: Any
    row: list[float]  # the timed row
    check: list[list[float]]  # held-out rows whose predictions every server must reproduce
    expected: list[int]
    pickle_path: Path


def train(work: Path) -> Model:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(SEED)
    x = rng.normal(size=(TRAIN_ROWS + CHECK_ROWS, FEATURES))
    y = (x @ rng.normal(size=FEATURES) + rng.normal(scale=0.5, size=len(x)) > 0).astype(np.int64)
    estimator = LogisticRegression(max_iter=1_000).fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS])
    check = x[TRAIN_ROWS:]
    expected = [int(v) for v in estimator.predict(check)]
    if len(set(expected)) < 2:
        raise t.BenchError("the check rows all get the same label; they would not catch a wrong model")
    path = work / "model.pkl"
    path.write_bytes(pickle.dumps(estimator))
    np.save(work / "example.npy", x[:5])
    return Model(estimator, check[0].tolist(), check.tolist(), expected, path)


@dataclass(frozen=True)
class Endpoint:
    label: str  # the table's row name
    path: str
    body: Callable[[list[list[float]]], dict[str, Any]]  # rows -> request body
    predictions: Callable[[Any], list[Any]]  # response JSON -> predictions


@dataclass(frozen=True)
class Server:
    name: str
    spec: s.ServerSpec
    health: str  # readiness route, polled before anything is sent
    endpoints: tuple[Endpoint, ...]
    version: str


def _inputs(rows: list[list[float]]) -> dict[str, Any]:
    return {"inputs": rows}


def _predictions_key(answer: Any) -> list[Any]:
    return list(answer["predictions"])


FLOOR_APP = '''
"""The framework floor: parse the JSON, call model.predict, answer; nothing else."""
import json, os, pickle

import numpy as np
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
    MODEL = pickle.load(f)


async def predict(request):
    rows = np.asarray(json.loads(await request.body())["inputs"], dtype=np.float64)
    body = json.dumps({"predictions": MODEL.predict(rows).tolist()})
    return Response(body, media_type="application/json")


async def health(request):
    return Response("ok")


app = Starlette(routes=[Route("/invocations", predict, methods=["POST"]), Route("/health", health)])
'''

BENTO_SERVICE = '''
"""A minimal BentoML 1.x service around the benchmark's model."""
import os, pickle

import bentoml
import numpy as np


@bentoml.service(workers=1)
class Classifier:
    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL_PICKLE"], "rb") as f:
            self.model = pickle.load(f)

    @bentoml.api
    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)
'''

SAVE_MLFLOW = textwrap.dedent('''
    import pickle, sys
    import mlflow.sklearn, numpy as np
    with open(sys.argv[1], "rb") as f:
        model = pickle.load(f)
    mlflow.sklearn.save_model(model, sys.argv[2], input_example=np.load(sys.argv[3]))
''')


def floor_server(work: Path, model: Model, port: int) -> Server:
    folder = work / "floor"
    folder.mkdir()
    (folder / "floor_app.py").write_text(FLOOR_APP)
    cmd = [sys.executable, "-m", "uvicorn", "floor_app:app", "--host", s.HOST, "--port", str(port),
           "--workers", "1", "--no-access-log"]
    env = s.client_env(t.clean_env(BENCH_MODEL_PICKLE=str(model.pickle_path)))
    spec = s.ServerSpec("floor", cmd, env, folder, t.LOG_DIR / "serving-floor.log", f"http://{s.HOST}:{port}")
    return Server("floor (Starlette)", spec, "/health",
                  (Endpoint("floor: Starlette + predict", "/invocations", _inputs, _predictions_key),),
                  f"starlette {version('starlette')}")


def shipyard_server(work: Path, model: Model, port: int, batching: bool) -> Server:
    folder = work / MODEL_NAME
    if not folder.exists():
        import numpy as np

        from shipyard.models.package import save_model

        save_model(model.estimator, folder, input_example=np.load(work / "example.npy"))
    cmd = [str(Path(sys.executable).parent / "shipyard"), "serve", str(folder), "--name", MODEL_NAME,
           "--host", s.HOST, "--port", str(port), "--workers", "1", *([] if batching else ["--max-batch-size", "1"])]
    env = s.client_env(t.clean_env(SHIPYARD_TRACKING_URI=f"sqlite:///{work / 'shipyard-tracking.db'}"))
    label = "Shipyard" if batching else "Shipyard, batching off"
    log = t.LOG_DIR / f"serving-shipyard{'' if batching else '-nobatch'}.log"
    spec = s.ServerSpec("shipyard", cmd, env, work, log, f"http://{s.HOST}:{port}")
    return Server(label, spec, "/health", (
        Endpoint(f"{label}: /invocations", "/invocations", _inputs, _predictions_key),
        Endpoint(f"{label}: native", f"/v1/models/{MODEL_NAME}/predict", _inputs, _predictions_key),
    ), f"shipyard {version('shipyard-mlops')}")


def mlflow_server(work: Path, model: Model, port: int, python: Path, mlflow_version: str) -> Server:
    folder = work / "mlflow-model"
    if not folder.exists():
        t.run_logged([python, "-c", SAVE_MLFLOW, model.pickle_path, folder, work / "example.npy"],
                     t.LOG_DIR / "serving-mlflow-save.log")
    bin_dir = python.parent
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager", "local",
           "-h", s.HOST, "-p", str(port), "-w", "1"]
    # The command starts `uvicorn` found on PATH: it must be the MLflow venv's.
    env = s.client_env({**t.mlflow_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
    spec = s.ServerSpec("mlflow", cmd, env, work, t.LOG_DIR / "serving-mlflow.log", f"http://{s.HOST}:{port}")
    return Server("MLflow", spec, "/health",
                  (Endpoint("MLflow: /invocations", "/invocations", _inputs, _predictions_key),),
                  f"mlflow {mlflow_version}")


def bentoml_server(work: Path, model: Model, port: int, python: Path, bentoml_version: str) -> Server:
    folder = work / "bento"
    folder.mkdir(exist_ok=True)
    (folder / "service.py").write_text(BENTO_SERVICE)
    cmd = [str(python.parent / "bentoml"), "serve", "service:Classifier", "--host", s.HOST, "--port", str(port)]
    env = s.client_env(t.clean_env(BENCH_MODEL_PICKLE=str(model.pickle_path), BENTOML_HOME=str(work / "bentoml-home"),
                                   BENTOML_DO_NOT_TRACK="true"))
    spec = s.ServerSpec("bentoml", cmd, env, folder, t.LOG_DIR / "serving-bentoml.log", f"http://{s.HOST}:{port}")
    return Server("BentoML", spec, "/readyz",
                  (Endpoint("BentoML: /predict", "/predict", lambda rows: {"x": rows}, list),),
                  f"bentoml {bentoml_version}")


def ensure_bentoml_venv(console: Console, refresh: bool) -> tuple[Path, str]:
    """The python of ``.bench/bentoml-venv`` and its BentoML version, installing it when needed
    (with this venv's scikit-learn version, so the pickled model loads unchanged)."""
    python = BENTOML_VENV / "bin" / "python"
    if refresh or not BENTOML_READY.exists():
        t.LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = t.LOG_DIR / "bentoml-venv.log"
        log.write_text("")
        with console.status(f"Installing BentoML from PyPI into {BENTOML_VENV.relative_to(t.ROOT)} "
                            f"(first run only; a few minutes; log: {log.relative_to(t.ROOT)})"):
            if not python.exists():
                t.run_logged([sys.executable, "-m", "venv", BENTOML_VENV], log)
            t.run_logged([python, "-m", "pip", "install", "--upgrade", "pip"], log)
            t.run_logged([python, "-m", "pip", "install", *(["--upgrade"] if refresh else []), "bentoml",
                          f"scikit-learn=={version('scikit-learn')}"], log)
            probe = subprocess.run([python, "-c", "import bentoml, sklearn; print(bentoml.__version__)"],
                                   capture_output=True, text=True, check=False)
            if probe.returncode:
                raise t.BenchError(f"BentoML does not import in {BENTOML_VENV}:\n{probe.stderr}")
            BENTOML_READY.write_text(probe.stdout.strip())
        console.print(f"[green]✓[/] BentoML {BENTOML_READY.read_text()} installed in {BENTOML_VENV}")
    return python, BENTOML_READY.read_text().strip()


@contextmanager
def running(spec: s.ServerSpec, health: str) -> Iterator[tuple[str, int]]:
    """``server.running`` with a readiness route other than ``/health`` (BentoML has ``/readyz``);
    yields the URL and the server's process id."""
    t.LOG_DIR.mkdir(parents=True, exist_ok=True)
    with spec.log.open("w") as log:
        proc = subprocess.Popen(spec.cmd, cwd=spec.cwd, env=spec.env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + s.STARTUP_TIMEOUT_S
            with httpx.Client(trust_env=False, timeout=2.0) as http:
                while True:
                    if proc.poll() is not None:
                        raise t.BenchError(f"the {spec.name} server exited ({proc.returncode}) before answering; "
                                           f"log: {spec.log}\n{s.log_tail(spec.log)}")
                    try:
                        if http.get(spec.url + health).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise t.BenchError(f"the {spec.name} server did not answer {health} within "
                                           f"{s.STARTUP_TIMEOUT_S:.0f} s; log: {spec.log}\n{s.log_tail(spec.log)}")
                    time.sleep(0.2)
            yield spec.url, proc.pid
        finally:
            s.stop(proc)


# --- CPU accounting: how busy the machine was with anything but the server and the load generator ---


def _busy_seconds() -> float:
    """CPU time all cores spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _tree_seconds(root: int) -> float:
    """CPU time used so far by the live process ``root`` and its descendants (a server and its workers)."""
    parent, ticks = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # exited meanwhile
            continue
        pid = int(stat.parent.name)
        parent[pid], ticks[pid] = int(fields[1]), int(fields[11]) + int(fields[12])
    tree, grew = {root}, True
    while grew:
        below = {pid for pid, ppid in parent.items() if ppid in tree} - tree
        tree |= below
        grew = bool(below)
    return sum(ticks.get(pid, 0) for pid in tree) / os.sysconf("SC_CLK_TCK")


class CpuWindow:
    """Cores kept busy, on average over the window, by everything but the server's process tree,
    this process and the children it waited for (the load generator): other work sharing the machine."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def __enter__(self) -> CpuWindow:
        self.started = (time.perf_counter(), _busy_seconds(), _tree_seconds(self.pid), self._own())
        return self

    def __exit__(self, *exc: object) -> None:
        wall, busy, group, own = (a - b for a, b in zip(
            (time.perf_counter(), _busy_seconds(), _tree_seconds(self.pid), self._own()), self.started, strict=True))
        self.server_cores = group / wall
        self.other_cores = max(0.0, busy - group - own) / wall

    @staticmethod
    def _own() -> float:
        me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


# --- load generation -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    generator: str
    server_cores: float = 0.0  # CPU the server's processes used, in cores
    other_cores: float = 0.0  # CPU anything else on the machine used (not the server, not the load generator)
    requests_per_batch: float | None = None  # Shipyard only, from its /metrics

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Measured:
    label: str
    server: str
    url: str
    body_bytes: int
    seq_p50_ms: float
    seq_p99_ms: float
    load: Load


def batch_counts(http: httpx.Client, base: str) -> tuple[float, float] | None:
    """(batches, requests batched) so far, from Shipyard's ``/metrics``; None for other servers."""
    response = http.get(base + "/metrics")
    if response.status_code != 200:
        return None
    found = dict(re.findall(r"^shipyard_serving_batch_size_requests_(sum|count)\{[^}]*\} (\S+)$", response.text,
                            re.MULTILINE))
    return (float(found["count"]), float(found["sum"])) if len(found) == 2 else None


def verify(http: httpx.Client, url: str, endpoint: Endpoint, model: Model) -> None:
    got = []
    for row in model.check:
        response = http.post(url, json=endpoint.body([row]))
        if response.status_code != 200:
            raise t.BenchError(f"{endpoint.label}: {response.status_code} {response.text[:300]}")
        got.extend(endpoint.predictions(response.json()))
    if [int(v) for v in got] != model.expected:
        raise t.BenchError(f"{endpoint.label} predicts {got}, the model {model.expected}")


def percentile(samples: Sequence[float], q: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[q - 1] if q < 100 else max(samples)


def sequential(http: httpx.Client, url: str, body: bytes, sizes: Sizes) -> tuple[float, float]:
    headers = {"content-type": "application/json"}
    samples = []
    for i in range(sizes.sequential_warmup + sizes.sequential):
        started = time.perf_counter()
        response = http.post(url, content=body, headers=headers)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise t.BenchError(f"{url}: {response.status_code} {response.text[:300]}")
        if i >= sizes.sequential_warmup:
            samples.append(elapsed * 1000)
    return percentile(samples, 50), percentile(samples, 99)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = {body}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH_JSON {{\\"requests\\": %d, \\"duration_us\\": %d, \\"p50_us\\": %d, "
    .. "\\"p99_us\\": %d, \\"errors\\": %d}}\\n", summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_load(wrk: str, url: str, body: bytes, seconds: int, connections: int, work: Path) -> Load:
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT.format(body=json.dumps(body.decode())))
    cmd = [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH_JSON ")]
    if done.returncode or not lines:
        raise t.BenchError(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    out = json.loads(lines[-1].removeprefix("BENCH_JSON "))
    if out["errors"]:
        raise t.BenchError(f"{url}: {out['errors']} failed requests under load (non-2xx or socket errors):\n"
                           f"{done.stdout}")
    return Load(out["requests"], out["duration_us"] / 1e6, out["p50_us"] / 1000, out["p99_us"] / 1000,
                f"wrk -t2 -c{connections}")


def httpx_load(url: str, body: bytes, seconds: int, connections: int) -> Load:
    """The fallback without wrk: Python-bound, so it understates every server on 2 cores."""
    async def main() -> tuple[list[float], float]:
        samples: list[float] = []
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(trust_env=False, limits=limits, timeout=10.0) as http:
            start = time.perf_counter()
            deadline = start + seconds

            async def client() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    response = await http.post(url, content=body, headers={"content-type": "application/json"})
                    if response.status_code != 200:
                        raise t.BenchError(f"{url}: {response.status_code} under load")
                    samples.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(client() for _ in range(connections)))
            return samples, time.perf_counter() - start

    samples, elapsed = asyncio.run(main())
    return Load(len(samples), elapsed, percentile(samples, 50), percentile(samples, 99), f"httpx x{connections}")


def measure(server: Server, model: Model, sizes: Sizes, wrk: str | None, work: Path,
            console: Console) -> list[Measured]:
    results = []
    with ExitStack() as stack:
        with console.status(f"starting {server.name} on {server.spec.url}"):
            base, pid = stack.enter_context(running(server.spec, server.health))
        http = stack.enter_context(httpx.Client(trust_env=False, timeout=10.0))
        for endpoint in server.endpoints:
            url = base + endpoint.path
            body = json.dumps(endpoint.body([model.row])).encode()
            with console.status(f"{endpoint.label}: checking {len(model.check)} predictions"):
                verify(http, url, endpoint, model)
            with console.status(f"{endpoint.label}: {sizes.sequential:,} sequential requests"):
                p50, p99 = sequential(http, url, body, sizes)
            with console.status(f"{endpoint.label}: {sizes.connections} connections for {sizes.load_seconds} s"):
                if wrk:
                    wrk_load(wrk, url, body, sizes.load_warmup_seconds, sizes.connections, work)
                else:
                    httpx_load(url, body, sizes.load_warmup_seconds, sizes.connections)
                before = batch_counts(http, base)
                with CpuWindow(pid) as cpu:
                    if wrk:
                        load = wrk_load(wrk, url, body, sizes.load_seconds, sizes.connections, work)
                    else:
                        load = httpx_load(url, body, sizes.load_seconds, sizes.connections)
                after = batch_counts(http, base)
                per_batch = (after[1] - before[1]) / (after[0] - before[0]) if before and after else None
                load = replace(load, server_cores=cpu.server_cores, other_cores=cpu.other_cores,
                               requests_per_batch=per_batch)
            verify(http, url, endpoint, model)
            console.print(f"  [green]✓[/] {endpoint.label}: sequential p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                          f"{load.per_second:,.0f} req/s, p99 {load.p99_ms:.1f} ms under load", highlight=False)
            results.append(Measured(endpoint.label, server.version, url, len(body), p50, p99, load))
    return results


# --- figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    figure: str
    endpoint: str  # Shipyard's endpoint the ratio is taken on
    ratio: float
    target: str
    passed: bool | None  # None: for information


def build_ratios(by_label: dict[str, Measured]) -> list[Ratio]:
    mlf, bento, floor = (by_label["MLflow: /invocations"], by_label["BentoML: /predict"],
                         by_label["floor: Starlette + predict"])
    ratios = []
    for endpoint in ("/invocations", "native"):
        ship = by_label[f"Shipyard: {endpoint}"]
        rps = ship.load.per_second
        vs_mlflow, vs_bento = rps / mlf.load.per_second, rps / bento.load.per_second
        p99 = mlf.load.p99_ms / ship.load.p99_ms
        vs_floor = floor.load.per_second / rps
        ratios += [
            Ratio("throughput vs MLflow", endpoint, vs_mlflow, f"≥ {MLFLOW_THROUGHPUT_TARGET:g}{TIMES}",
                  vs_mlflow >= MLFLOW_THROUGHPUT_TARGET),
            Ratio("throughput vs BentoML", endpoint, vs_bento, f"≥ {BENTOML_THROUGHPUT_TARGET:g}{TIMES}",
                  vs_bento >= BENTOML_THROUGHPUT_TARGET),
            Ratio("p99 under load: MLflow's / Shipyard's", endpoint, p99,
                  f"≥ {MLFLOW_P99_TARGET:g}{TIMES} (≤ ½ MLflow)", p99 >= MLFLOW_P99_TARGET),
            Ratio("floor throughput / Shipyard's", endpoint, vs_floor, f"≤ {FLOOR_TARGET:g}{TIMES}",
                  vs_floor <= FLOOR_TARGET),
        ]
        nobatch = by_label.get(f"Shipyard, batching off: {endpoint}")
        if nobatch:
            ratios.append(Ratio("floor throughput / Shipyard's, batching off", endpoint,
                                floor.load.per_second / nobatch.load.per_second, "—", None))
    return ratios


def render(console: Console, measured: Sequence[Measured], ratios: Sequence[Ratio], sizes: Sizes) -> None:
    table = Table(title=f"Serving one LogisticRegression ({FEATURES} float features), one row per request: "
                        f"127.0.0.1, 1 worker each, {os.cpu_count()} cores, Python {platform.python_version()}")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("server: endpoint", "left"), ("version", "left"), ("seq p50 ms", "right"), ("seq p99 ms", "right"),
        ("req/s (load)", "right"), ("p50 ms (load)", "right"), ("p99 ms (load)", "right"),
        ("server CPU", "right"), ("other CPU", "right"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in measured:
        table.add_row(row.label, row.server, f"{row.seq_p50_ms:.2f}", f"{row.seq_p99_ms:.2f}",
                      f"{row.load.per_second:,.0f}", f"{row.load.p50_ms:.1f}", f"{row.load.p99_ms:.1f}",
                      f"{row.load.server_cores:.2f}", f"{row.load.other_cores:.2f}")
    console.print(table)
    targets = Table(title="Shipyard (defaults: batches of up to 64 rows, 2 ms wait) against its peers")
    target_columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("Shipyard endpoint", "left"), ("ratio", "right"), ("target", "left"),
        ("result", "center"))
    for name, justify in target_columns:
        targets.add_column(name, justify=justify)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "[dim]info[/]"}
    for r in ratios:
        targets.add_row(r.figure, r.endpoint, f"[bold]{r.ratio:,.2f}{TIMES}[/]", r.target, verdict[r.passed])
    console.print(targets)
    generator = measured[0].load.generator
    console.print(
        f"[dim]sequential: {sizes.sequential:,} requests after {sizes.sequential_warmup} untimed, one keep-alive "
        f"httpx client in the benchmark's process (its own overhead included, the same for all); load: "
        f"{generator} for {sizes.load_seconds} s after {sizes.load_warmup_seconds} s untimed; the client shares "
        f"the {os.cpu_count()} cores with the server. Request bodies: "
        + ", ".join(f"{r.label} {r.body_bytes} B" for r in measured) + ". CPU columns: cores busy during the "
        "load, in the server's processes and in anything else on the machine (not the server, not the load "
        "generator); above ~0.1 other work was sharing the cores. Requests per predict call under load: "
        + ", ".join(f"{r.label} {r.load.requests_per_batch:.1f}" for r in measured
                    if r.load.requests_per_batch is not None) + ".[/]",
        highlight=False)


def write_json(path: Path, sizes: Sizes, quick: bool, measured: Sequence[Measured], ratios: Sequence[Ratio]) -> None:
    t.write_figures(path, quick=quick, sizes=asdict(sizes),
                    measured=[{**asdict(r), "load": {**asdict(r.load), "per_second": r.load.per_second}}
                              for r in measured],
                    ratios=[asdict(r) for r in ratios], passed=all(r.passed is not False for r in ratios))


# --- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 sequential requests and 5 s of load, for a smoke run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every figure to PATH")
    parser.add_argument("--refresh-mlflow", action="store_true",
                        help="upgrade MLflow in .bench/mlflow-venv to the current release first")
    parser.add_argument("--refresh-bentoml", action="store_true",
                        help="upgrade BentoML in .bench/bentoml-venv to the current release first")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    sizes = Sizes.quick() if args.quick else Sizes()
    wrk = shutil.which("wrk")
    if wrk is None:
        console.print("[bold yellow]warning:[/] wrk is not installed (apt-get install wrk): the load comes from an "
                      "asyncio httpx generator in this process, which is Python-bound on 2 cores and understates "
                      "every server's throughput")
    measured: list[Measured] = []
    try:
        mlflow_python, mlflow_version = t.ensure_mlflow_venv(console, args.refresh_mlflow)
        m.ensure_scikit_learn(console, mlflow_python)
        bentoml_python, bentoml_version = ensure_bentoml_venv(console, args.refresh_bentoml)
        with tempfile.TemporaryDirectory(prefix="shipyard-serving-bench-") as tmp:
            work = Path(tmp)
            model = train(work)
            servers: list[Callable[[int], Server]] = [
                lambda port: floor_server(work, model, port),
                lambda port: shipyard_server(work, model, port, batching=True),
                lambda port: shipyard_server(work, model, port, batching=False),
                lambda port: mlflow_server(work, model, port, mlflow_python, mlflow_version),
                lambda port: bentoml_server(work, model, port, bentoml_python, bentoml_version),
            ]
            for make in servers:
                measured += measure(make(s.free_port()), model, sizes, wrk, work, console)
    except t.BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2
    ratios = build_ratios({r.label: r for r in measured})
    render(console, measured, ratios, sizes)
    if args.json:
        write_json(args.json, sizes, args.quick, measured, ratios)
        console.print(f"figures written to {args.json}")
    return 0 if all(r.passed is not False for r in ratios) else 1


if __name__ == "__main__":
    sys.exit(main())
