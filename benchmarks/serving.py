"""Serving benchmark: ``shipyard serve`` against ``mlflow models serve``, BentoML and a bare Starlette floor.

    .venv/bin/python benchmarks/serving.py [--quick] [--case frames|tensor|both] [--rounds N] [--json PATH]
                                           [--refresh-mlflow] [--refresh-bentoml]

Two cases, each its own set of servers (every server its own process on a free 127.0.0.1 port):

**frames** (what users deploy; the issue's targets): a ``LogisticRegression`` fitted on a pandas
DataFrame of 20 named float columns (5,000 seeded rows), logged with its signature, registered and
served from ``models:/bench-df@production`` by ``shipyard serve`` (one worker, and ``--workers 2``),
by ``shipyard deploy run`` with the prediction log on, by ``mlflow models serve`` (the estimator
saved with ``mlflow.sklearn.save_model`` and the same DataFrame example) and by the floor: a bare
Starlette endpoint that parses the JSON and calls ``predict`` on a numpy array. Every request is a
one-row ``dataframe_split`` body on ``/invocations``. See ``_serving_frames.py``.

**tensor** (the earlier case): the same estimator fitted on a plain array, served with a tensor
signature: Shipyard (``/invocations`` and native ``/v1/models/bench/predict``; again with
``--max-batch-size 1``), MLflow (``-w 1``), BentoML (a minimal ``@bentoml.service(workers=1)``
from ``.bench/bentoml-venv``, created with the current BentoML on first use; it adds a supervisor
process that does not handle requests) and the floor, with ``{"inputs": [[...]]}`` bodies
(``{"x": [[...]]}`` for BentoML).

Every uvicorn runs with uvloop and httptools (``uvicorn[standard]``): Shipyard's venv has them
(its ``server`` extra), the floor is started with ``--loop uvloop --http httptools``, and they are
installed into ``.bench/mlflow-venv`` when missing (uvicorn picks them up by itself). Before
anything is timed, 32 held-out rows are sent one by one to every endpoint and every answer must
equal the model's own prediction (exit 2 otherwise); the check is repeated after the load.

Per endpoint: **sequential** latency p50/p99 over 2,000 requests from one keep-alive httpx client
in this process (after 200 untimed); then **under load**, 16 concurrent connections from
``wrk -t2 -c16 --latency`` for 10 s (after a 2 s untimed run; any non-2xx answer or socket error
fails the benchmark), in ``--rounds`` rounds (5) that go through the case's endpoints in turn (a
different one first each round), so that noise from other work on the machine falls on all of
them alike; the tables show the **medians** over the rounds and the spread of req/s. All servers
of a case are up during its rounds; only the one under load is busy. Without ``wrk``
(``apt-get install wrk``) an asyncio httpx generator is used instead, with a warning: it is
Python-bound on 2 cores, so its figures understate every server. ``--quick``: 300 sequential
requests, 3 s rounds, 2 rounds.

Targets, frames case (Shipyard ``serve`` with its defaults, one worker): floor req/s / Shipyard's
at most 1.0; at least 5x MLflow's throughput; p99 under load at most 1/4 of MLflow's;
``--workers 2`` at least 1.6x one worker; the deployment's prediction log holds one row for every
request it answered (none dropped). Tensor case (on each of Shipyard's two endpoints): at least 3x
MLflow's and 1.5x BentoML's throughput; p99 under load at most half of MLflow's; the floor at most
1.3x Shipyard. Exits 0 when every target is met, 1 when one is not, 2 when the benchmark fails.
Server logs: ``.bench/logs/serving-*.log``.
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
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

import _serving_frames as f
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

FRAME_FLOOR_TARGET = 1.0  # floor req/s / Shipyard req/s, frames case
FRAME_MLFLOW_TARGET = 5.0  # Shipyard req/s / MLflow req/s, frames case
FRAME_P99_TARGET = 4.0  # MLflow p99 / Shipyard p99 under load, frames case: "at most 1/4 of MLflow's"
WORKERS_TARGET = 2 * 0.8  # --workers 2 req/s / one worker's, on 2 cores
MLFLOW_THROUGHPUT_TARGET = 3.0  # Shipyard req/s / MLflow req/s
BENTOML_THROUGHPUT_TARGET = 1.5  # Shipyard req/s / BentoML req/s
MLFLOW_P99_TARGET = 2.0  # MLflow p99 / Shipyard p99 under load: "at most half of MLflow's"
FLOOR_TARGET = 1.3  # floor req/s / Shipyard req/s: "within 1.3x of the floor"
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Sizes:
    sequential: int = 2_000
    sequential_warmup: int = 200
    load_seconds: int = 10
    load_warmup_seconds: int = 2
    connections: int = 16
    rounds: int = 5

    @classmethod
    def quick(cls) -> Sizes:
        return cls(sequential=300, sequential_warmup=50, load_seconds=3, load_warmup_seconds=1, rounds=2)


# --- the model and the servers -----------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    estimator: Any
    row: list[float]  # the timed row
    check: list[list[float]]  # held-out rows whose predictions every server must reproduce
    expected: list[int]
    pickle_path: Path
    frame_pickle: Path  # the same estimator fitted on a DataFrame with named columns
    frame_example: Path  # 5 rows of that DataFrame, as JSON columns
    frame_estimator: Any


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
    frame_estimator, frame_pickle, frame_example = f.fit(x[:TRAIN_ROWS], y[:TRAIN_ROWS], work)
    import pandas as pd

    if [int(v) for v in frame_estimator.predict(pd.DataFrame(check, columns=f.COLUMNS))] != expected:
        raise t.BenchError("the DataFrame-fitted model predicts otherwise than the array-fitted one")
    return Model(estimator, check[0].tolist(), check.tolist(), expected, path, frame_pickle, frame_example,
                 frame_estimator)


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


def floor_server(work: Path, model: Model, port: int, frames: bool = False) -> Server:
    folder = work / ("floor-frames" if frames else "floor")
    folder.mkdir()
    (folder / "floor_app.py").write_text(f.FLOOR_FRAME_APP if frames else FLOOR_APP)
    cmd = [sys.executable, "-m", "uvicorn", "floor_app:app", "--host", s.HOST, "--port", str(port),
           "--workers", "1", "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    pickled = model.frame_pickle if frames else model.pickle_path
    env = s.client_env(t.clean_env(BENCH_MODEL_PICKLE=str(pickled)))
    log = t.LOG_DIR / f"serving-floor{'-frames' if frames else ''}.log"
    spec = s.ServerSpec("floor", cmd, env, folder, log, f"http://{s.HOST}:{port}")
    body = f.split_body if frames else _inputs
    return Server("floor (Starlette)", spec, "/health",
                  (Endpoint("floor: Starlette + predict", "/invocations", body, _predictions_key),),
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


def shipyard_frames_server(work: Path, port: int, uri: str, label: str, *args: str) -> Server:
    """``shipyard <args>`` (``serve models:/bench-df@production`` or ``deploy run bench-df-api``)."""
    cmd = f.shipyard_cmd(*args, "--host", s.HOST, "--port", str(port))
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    spec = s.ServerSpec("shipyard", cmd, f.shipyard_env(uri, work), work, t.LOG_DIR / f"serving-{slug}.log",
                        f"http://{s.HOST}:{port}")
    return Server(label, spec, "/health", (Endpoint(f"{label}: /invocations", "/invocations", f.split_body,
                                                    _predictions_key),), f"shipyard {version('shipyard-mlops')}")


def mlflow_frames_server(work: Path, model: Model, port: int, python: Path, mlflow_version: str) -> Server:
    folder = f.mlflow_folder(python, model.frame_pickle, model.frame_example, work)
    bin_dir = python.parent
    cmd = [str(bin_dir / "mlflow"), "models", "serve", "-m", str(folder), "--env-manager", "local",
           "-h", s.HOST, "-p", str(port), "-w", "1"]
    env = s.client_env({**t.mlflow_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"})
    spec = s.ServerSpec("mlflow", cmd, env, work, t.LOG_DIR / "serving-mlflow-frames.log", f"http://{s.HOST}:{port}")
    return Server("MLflow", spec, "/health",
                  (Endpoint("MLflow: /invocations", "/invocations", f.split_body, _predictions_key),),
                  f"mlflow {mlflow_version}")


def ensure_uvicorn_standard(console: Console, python: Path) -> None:
    """uvloop and httptools in a peer's venv, so its uvicorn runs on the same loop and parser as ours."""
    probe = subprocess.run([str(python), "-c", "import uvloop, httptools"], capture_output=True, check=False)
    if probe.returncode == 0:
        return
    with console.status(f"Installing uvicorn[standard] into {python.parent.parent.relative_to(t.ROOT)}"):
        t.run_logged([python, "-m", "pip", "install", "uvicorn[standard]"], t.LOG_DIR / "mlflow-venv.log")


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


@dataclass(frozen=True)
class Measured:
    """One endpoint's figures; the load figures are medians over the rounds."""

    label: str
    server: str
    url: str
    body_bytes: int
    seq_p50_ms: float
    seq_p99_ms: float
    per_second: float
    p50_ms: float
    p99_ms: float
    rounds: tuple[float, ...]  # req/s of each round, in order
    server_cores: float
    other_cores: float
    requests_per_batch: float | None
    generator: str
    answered: int | None = None  # 200 answers a Shipyard server counted in its /metrics, at the end


@dataclass
class _Target:
    server: Server
    endpoint: Endpoint
    base: str
    pid: int
    body: bytes
    seq: tuple[float, float] = (0.0, 0.0)
    loads: list[Load] = field(default_factory=list)


def _load(wrk: str | None, url: str, body: bytes, seconds: int, sizes: Sizes, work: Path) -> Load:
    if wrk:
        return wrk_load(wrk, url, body, seconds, sizes.connections, work)
    return httpx_load(url, body, seconds, sizes.connections)


def measure_case(servers: Sequence[Server], model: Model, sizes: Sizes, wrk: str | None, work: Path,
                 console: Console) -> list[Measured]:
    """Start the case's servers, check and time each endpoint sequentially, then run the load
    rounds, each round going through every endpoint (starting one further each time)."""
    with ExitStack() as stack:
        http = stack.enter_context(httpx.Client(trust_env=False, timeout=10.0))
        targets: list[_Target] = []
        for server in servers:
            with console.status(f"starting {server.name} on {server.spec.url}"):
                base, pid = stack.enter_context(running(server.spec, server.health))
            for endpoint in server.endpoints:
                url = base + endpoint.path
                target = _Target(server, endpoint, base, pid, json.dumps(endpoint.body([model.row])).encode())
                with console.status(f"{endpoint.label}: checking {len(model.check)} predictions"):
                    verify(http, url, endpoint, model)
                with console.status(f"{endpoint.label}: {sizes.sequential:,} sequential requests"):
                    target.seq = sequential(http, url, target.body, sizes)
                with console.status(f"{endpoint.label}: warming up under load"):
                    _load(wrk, url, target.body, sizes.load_warmup_seconds, sizes, work)
                targets.append(target)
        for r in range(sizes.rounds):
            turn = r % len(targets)
            for target in [*targets[turn:], *targets[:turn]]:
                label, url = target.endpoint.label, target.base + target.endpoint.path
                with console.status(f"round {r + 1}/{sizes.rounds}: {label}, {sizes.connections} connections for "
                                    f"{sizes.load_seconds} s"):
                    before = batch_counts(http, target.base)
                    with CpuWindow(target.pid) as cpu:
                        load = _load(wrk, url, target.body, sizes.load_seconds, sizes, work)
                    after = batch_counts(http, target.base)
                per_batch = (after[1] - before[1]) / (after[0] - before[0]) if before and after else None
                target.loads.append(replace(load, server_cores=cpu.server_cores, other_cores=cpu.other_cores,
                                            requests_per_batch=per_batch))
            console.print(f"  round {r + 1}: " + ", ".join(
                f"{x.endpoint.label} {x.loads[-1].per_second:,.0f}" for x in targets) + " req/s", highlight=False)
        results = []
        for target in targets:
            verify(http, target.base + target.endpoint.path, target.endpoint, model)
            answered = f.answered(http, target.base) if target.server.spec.name == "shipyard" else None
            loads = target.loads
            batches = [x.requests_per_batch for x in loads if x.requests_per_batch is not None]
            results.append(Measured(
                target.endpoint.label, target.server.version, target.base + target.endpoint.path, len(target.body),
                target.seq[0], target.seq[1], statistics.median(x.per_second for x in loads),
                statistics.median(x.p50_ms for x in loads), statistics.median(x.p99_ms for x in loads),
                tuple(round(x.per_second, 1) for x in loads), statistics.median(x.server_cores for x in loads),
                statistics.median(x.other_cores for x in loads), statistics.median(batches) if batches else None,
                loads[0].generator, answered))
    return results


# --- figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    figure: str
    endpoint: str  # Shipyard's endpoint the ratio is taken on
    ratio: float
    target: str
    passed: bool | None  # None: for information


def tensor_ratios(by_label: dict[str, Measured]) -> list[Ratio]:
    mlf, bento, floor = (by_label["MLflow: /invocations"], by_label.get("BentoML: /predict"),
                         by_label["floor: Starlette + predict"])
    ratios = []
    for endpoint in ("/invocations", "native"):
        ship = by_label[f"Shipyard: {endpoint}"]
        rps = ship.per_second
        vs_mlflow, p99, vs_floor = rps / mlf.per_second, mlf.p99_ms / ship.p99_ms, floor.per_second / rps
        ratios += [
            Ratio("throughput vs MLflow", endpoint, vs_mlflow, f"≥ {MLFLOW_THROUGHPUT_TARGET:g}{TIMES}",
                  vs_mlflow >= MLFLOW_THROUGHPUT_TARGET),
            Ratio("p99 under load: MLflow's / Shipyard's", endpoint, p99,
                  f"≥ {MLFLOW_P99_TARGET:g}{TIMES} (≤ ½ MLflow)", p99 >= MLFLOW_P99_TARGET),
            Ratio("floor throughput / Shipyard's", endpoint, vs_floor, f"≤ {FLOOR_TARGET:g}{TIMES}",
                  vs_floor <= FLOOR_TARGET),
        ]
        if bento is not None:
            vs_bento = rps / bento.per_second
            ratios.append(Ratio("throughput vs BentoML", endpoint, vs_bento, f"≥ {BENTOML_THROUGHPUT_TARGET:g}{TIMES}",
                                vs_bento >= BENTOML_THROUGHPUT_TARGET))
        nobatch = by_label.get(f"Shipyard, batching off: {endpoint}")
        if nobatch:
            ratios.append(Ratio("floor throughput / Shipyard's, batching off", endpoint,
                                floor.per_second / nobatch.per_second, "—", None))
    return ratios


SERVE_1 = "Shipyard serve"
SERVE_2 = "Shipyard serve --workers 2"
DEPLOY = "Shipyard deploy run (prediction log on)"


def frame_ratios(by_label: dict[str, Measured], logged: tuple[int, int] | None) -> list[Ratio]:
    ship, floor = by_label[f"{SERVE_1}: /invocations"], by_label["floor: Starlette + predict"]
    mlf = by_label.get("MLflow: /invocations")
    vs_floor = floor.per_second / ship.per_second
    ratios = [Ratio("floor throughput / Shipyard's", "/invocations", vs_floor, f"≤ {FRAME_FLOOR_TARGET:g}{TIMES}",
                    vs_floor <= FRAME_FLOOR_TARGET)]
    if mlf is not None:
        vs_mlflow, p99 = ship.per_second / mlf.per_second, mlf.p99_ms / ship.p99_ms
        ratios += [Ratio("throughput vs MLflow", "/invocations", vs_mlflow, f"≥ {FRAME_MLFLOW_TARGET:g}{TIMES}",
                         vs_mlflow >= FRAME_MLFLOW_TARGET),
                   Ratio("p99 under load: MLflow's / Shipyard's", "/invocations", p99,
                         f"≥ {FRAME_P99_TARGET:g}{TIMES} (≤ ¼ MLflow)", p99 >= FRAME_P99_TARGET)]
    two = by_label.get(f"{SERVE_2}: /invocations")
    if two is not None:
        scale = two.per_second / ship.per_second
        ratios.append(Ratio("--workers 2 throughput / one worker's", "/invocations", scale,
                            f"≥ {WORKERS_TARGET:g}{TIMES}", scale >= WORKERS_TARGET))
    deployed = by_label.get(f"{DEPLOY}: /invocations")
    if deployed is not None:
        ratios.append(Ratio("floor throughput / deploy run's (prediction log on)", "/invocations",
                            floor.per_second / deployed.per_second, "—", None))
        if logged is not None and deployed.answered is not None:
            rows, distinct = logged
            whole = rows == distinct == deployed.answered
            ratios.append(Ratio(f"prediction log rows / requests answered ({rows:,} / {deployed.answered:,})",
                                "/invocations", rows / max(deployed.answered, 1), "= 1 (every request)", whole))
    return ratios


def render(console: Console, title: str, measured: Sequence[Measured], ratios: Sequence[Ratio], sizes: Sizes) -> None:
    table = Table(title=f"{title}: 127.0.0.1, {os.cpu_count()} cores, Python {platform.python_version()}; "
                        f"load figures are medians of {sizes.rounds} rounds")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("server: endpoint", "left"), ("version", "left"), ("seq p50 ms", "right"), ("seq p99 ms", "right"),
        ("req/s (load)", "right"), ("req/s min-max", "right"), ("p50 ms (load)", "right"),
        ("p99 ms (load)", "right"), ("server CPU", "right"), ("other CPU", "right"))
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in measured:
        table.add_row(row.label, row.server, f"{row.seq_p50_ms:.2f}", f"{row.seq_p99_ms:.2f}",
                      f"{row.per_second:,.0f}", f"{min(row.rounds):,.0f}-{max(row.rounds):,.0f}", f"{row.p50_ms:.1f}",
                      f"{row.p99_ms:.1f}", f"{row.server_cores:.2f}", f"{row.other_cores:.2f}")
    console.print(table)
    targets = Table(title=f"{title}: Shipyard (defaults: batches of up to 64 rows, 2 ms wait) against its peers")
    target_columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("figure", "left"), ("Shipyard endpoint", "left"), ("ratio", "right"), ("target", "left"),
        ("result", "center"))
    for name, justify in target_columns:
        targets.add_column(name, justify=justify)
    verdict = {True: "[bold green]PASS[/]", False: "[bold red]FAIL[/]", None: "[dim]info[/]"}
    for r in ratios:
        targets.add_row(r.figure, r.endpoint, f"[bold]{r.ratio:,.2f}{TIMES}[/]", r.target, verdict[r.passed])
    console.print(targets)
    console.print(
        f"[dim]sequential: {sizes.sequential:,} requests after {sizes.sequential_warmup} untimed, one keep-alive "
        f"httpx client in the benchmark's process (its own overhead included, the same for all); load: "
        f"{measured[0].generator} for {sizes.load_seconds} s per round after {sizes.load_warmup_seconds} s untimed; "
        f"the client shares the {os.cpu_count()} cores with the server. Request bodies: "
        + ", ".join(f"{r.label} {r.body_bytes} B" for r in measured) + ". CPU columns: cores busy during the "
        "load, in the server's processes and in anything else on the machine (not the server, not the load "
        "generator); above ~0.1 other work was sharing the cores. Requests per predict call under load: "
        + ", ".join(f"{r.label} {r.requests_per_batch:.1f}" for r in measured
                    if r.requests_per_batch is not None) + ".[/]",
        highlight=False)


# --- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 sequential requests, 2 rounds of 3 s")
    parser.add_argument("--case", choices=("frames", "tensor", "both"), default="both",
                        help="which case to run (default: both; frames carries the issue's targets)")
    parser.add_argument("--rounds", type=int, metavar="N", help="load rounds per endpoint (default 5, quick 2)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out (its ratios are then not shown)")
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
    if args.rounds:
        sizes = replace(sizes, rounds=max(1, args.rounds))
    wrk = shutil.which("wrk")
    if wrk is None:
        console.print("[bold yellow]warning:[/] wrk is not installed (apt-get install wrk): the load comes from an "
                      "asyncio httpx generator in this process, which is Python-bound on 2 cores and understates "
                      "every server's throughput")
    results: dict[str, tuple[list[Measured], list[Ratio]]] = {}
    try:
        mlflow_python, mlflow_version = (None, "") if args.no_mlflow else t.ensure_mlflow_venv(
            console, args.refresh_mlflow)
        if mlflow_python is not None:
            m.ensure_scikit_learn(console, mlflow_python)
            ensure_uvicorn_standard(console, mlflow_python)
        with tempfile.TemporaryDirectory(prefix="shipyard-serving-bench-") as tmp:
            work = Path(tmp)
            model = train(work)
            if args.case in ("frames", "both"):
                uri = f.register(model.frame_estimator, model.frame_example, work)
                ports = iter(s.free_port() for _ in range(5))
                servers = [
                    floor_server(work, model, next(ports), frames=True),
                    shipyard_frames_server(work, next(ports), uri, SERVE_1, "serve", f"models:/{f.MODEL}@production",
                                           "--workers", "1"),
                    shipyard_frames_server(work, next(ports), uri, SERVE_2, "serve", f"models:/{f.MODEL}@production",
                                           "--workers", "2"),
                    shipyard_frames_server(work, next(ports), uri, DEPLOY, "deploy", "run", f.DEPLOYMENT),
                ]
                if mlflow_python is not None:
                    servers.append(mlflow_frames_server(work, model, next(ports), mlflow_python, mlflow_version))
                measured = measure_case(servers, model, sizes, wrk, work, console)
                logged = f.logged_rows(uri, work)  # every server has stopped: the log is flushed
                results["frames"] = (measured, frame_ratios({r.label: r for r in measured}, logged))
            if args.case in ("tensor", "both"):
                servers = [floor_server(work, model, s.free_port()),
                           shipyard_server(work, model, s.free_port(), batching=True),
                           shipyard_server(work, model, s.free_port(), batching=False)]
                if mlflow_python is not None:
                    servers.append(mlflow_server(work, model, s.free_port(), mlflow_python, mlflow_version))
                    bentoml_python, bentoml_version = ensure_bentoml_venv(console, args.refresh_bentoml)
                    servers.append(bentoml_server(work, model, s.free_port(), bentoml_python, bentoml_version))
                measured = measure_case(servers, model, sizes, wrk, work, console)
                ratios = tensor_ratios({r.label: r for r in measured}) if mlflow_python is not None else []
                results["tensor"] = (measured, ratios)
    except t.BenchError as exc:
        console.print(f"[bold red]benchmark failed:[/] {exc}")
        return 2
    titles = {"frames": f"DataFrame-fitted LogisticRegression ({FEATURES} named float columns), one-row "
                        "dataframe_split on /invocations",
              "tensor": f"LogisticRegression on a {FEATURES}-float tensor, one row per request"}
    for case, (measured, ratios) in results.items():
        render(console, titles[case], measured, ratios, sizes)
    every = [r for _, ratios in results.values() for r in ratios]
    if args.json:
        t.write_figures(args.json, quick=args.quick, sizes=asdict(sizes),
                        **{case: {"measured": [asdict(r) for r in measured], "ratios": [asdict(r) for r in ratios]}
                           for case, (measured, ratios) in results.items()},
                        passed=all(r.passed is not False for r in every))
        console.print(f"figures written to {args.json}")
    return 0 if all(r.passed is not False for r in every) else 1


if __name__ == "__main__":
    sys.exit(main())
