"""pytest plugin that points MLflow's own server tests at a fresh ``shipyard server`` per test.

Loaded by ``scripts/mlflow_conformance.py`` (``-p mlflow_conformance_plugin --noconftest``) into
a pytest run over MLflow's test files; it is not part of Shipyard's suite. MLflow's test modules
define the fixture that yields a client of a tracking server (``mlflow_client`` in
``tests/tracking/test_rest_tracking.py``, ``client`` in ``tests/tracking/test_model_registry.py``)
in the module itself, where a conftest cannot override it; so once a module is imported and
before its fixtures are read, this plugin replaces that fixture with one that starts a server on
a free loopback port with its own SQLite file and artifact folder in the test's ``tmp_path`` and
yields an ``MlflowClient`` of it. The test functions themselves run as MLflow wrote them.

Environment (set by the harness):
    CONFORMANCE_SERVER   ``shipyard`` (default) or ``mlflow``: ``mlflow server`` with the same
                         store layout, to check that a failure belongs to the server and not to
                         the harness.
    CONFORMANCE_PYTHON   the interpreter that runs the server (default: this one).
    CONFORMANCE_RESULTS  a JSON file to write each test's outcome to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The fixtures through which MLflow's server tests reach their server, by module-level name.
SERVER_FIXTURES = ("mlflow_client", "client")

# Tests of features the Shipyard server does not serve (docs/mlflow.md, "What is not served"),
# or of MLflow's server internals rather than of a server under test. Matched on the test name.
OUT_OF_SCOPE: dict[str, str] = {
    r"trace|span|otel|assessment": "MLflow tracing",
    r"graphql": "MLflow's GraphQL endpoint",
    r"gateway|secret|endpoint|model_definition|provider|list_models": "the AI gateway",
    r"evaluation_dataset|dataset_to_experiments|dataset_from_experiments|experiments_at_once"
    r"|dataset_experiment_association|idempotent_(add|remove)|client_api_add_remove": "GenAI evaluation datasets",
    r"scorer": "scorers",
    r"promptlab": "the prompt-lab UI route",
    r"validation_regex|calls_optimized_impl": "MLflow's own server process or handler internals",
}

STARTUP_SECONDS = 60.0
_outcomes: dict[str, dict[str, str]] = {}


def out_of_scope(name: str) -> str | None:
    """Why the test called ``name`` is not run against Shipyard, or None when it is."""
    for pattern, reason in OUT_OF_SCOPE.items():
        if re.search(pattern, name):
            return reason
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_argv(kind: str, root: Path, port: int) -> list[str]:
    python = os.environ.get("CONFORMANCE_PYTHON") or sys.executable
    database = f"sqlite:///{root / 'store.db'}"
    if kind == "mlflow":
        # The store layout of MLflow's own fixture: artifacts under the test's folder as file:// URIs.
        return [python, "-m", "mlflow", "server", "--backend-store-uri", database, "--workers", "1",
                "--default-artifact-root", root.as_uri(), "--host", "127.0.0.1", "--port", str(port)]
    return [python, "-c", "from shipyard.cli import main; main()", "server", "--backend-store-uri", database,
            "--artifacts-destination", str(root / "artifacts"), "--port", str(port)]


def _answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/health", timeout=1) as response:
        return bool(response.status == 200)
    return False


@contextlib.contextmanager
def running_server(root: Path) -> Iterator[str]:
    """A fresh server over a store in ``root``, started in this process's working directory (where
    MLflow's tests expect a relative ``artifact_location`` to land); yields its URL."""
    kind = os.environ.get("CONFORMANCE_SERVER", "shipyard")
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SHIPYARD_", "MLFLOW_TRACKING_", "CONFORMANCE_"))}
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"  # no background job workers per test server
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(_server_argv(kind, root, port), stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=Path.cwd())
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{kind} server did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _server_client(tmp_path: Path) -> Iterator[Any]:
    import mlflow
    from mlflow import MlflowClient

    root = tmp_path / "server"
    root.mkdir()
    with running_server(root) as url:
        client = MlflowClient(url)
        client._store_type = "sqlalchemy"  # what MLflow's registry fixture records for its tests
        yield client
        # A fluent run a test left open would otherwise be ended by the next test, against a
        # server that is gone.
        with contextlib.suppress(Exception):
            while mlflow.active_run():
                mlflow.end_run()
    mlflow.set_tracking_uri(None)


def pytest_configure(config: pytest.Config) -> None:
    for marker in ("allow_infer_pip_requirements_fallback", "asyncio", "notrackingurimock"):
        config.addinivalue_line("markers", f"{marker}: a marker of MLflow's own suite")


def pytest_collectstart(collector: pytest.Collector) -> None:
    if not isinstance(collector, pytest.Module):
        return
    try:
        module = collector.obj
    except Exception:  # pytest reports the module's import error itself when it collects it
        return
    for name in SERVER_FIXTURES:
        if callable(vars(module).get(name)):
            setattr(module, name, pytest.fixture(name=name)(_server_client))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        # The function's name: a parameter's id must not put a test in or out of scope.
        (dropped if out_of_scope(getattr(item, "originalname", item.name)) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        else:
            entry["outcome"] = report.outcome
    elif report.skipped and report.when == "setup":
        entry["outcome"] = "skipped"
    elif report.failed:
        entry["outcome"] = "error"
    if report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        entry["message"] = crash.message if crash is not None else str(report.longrepr)[-500:]


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("CONFORMANCE_RESULTS")
    if target:
        Path(target).write_text(json.dumps(_outcomes, indent=1))
