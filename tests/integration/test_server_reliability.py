"""The server as a real process: the ``shipyard server`` command, fifty clients at once, and a
SIGKILL in the middle of their work.

Servers are started through the command itself (``shipyard server --workers N``), on a free
loopback port, with the SQLite store in the test's temporary folder.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import shipyard
from shipyard.cli import app as cli_app
from shipyard.cli.server import APP_FACTORY, redact, worker_environment
from shipyard.config import SETTINGS, Settings
from shipyard.entities import Metric
from shipyard.store.registry import open_store
from shipyard.store.rest import RestStore
from shipyard.tracking import fluent
from tests.support import ServerProcess, shipyard_command

BATCH = 100


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    servers: list[ServerProcess] = []

    def make(*args: str) -> ServerProcess:
        """``shipyard server ARGS`` (not started yet); its output goes to ``server-<start>.out``/``.err``."""
        server = ServerProcess(shipyard_command("server", *args), tmp_path, name="server")
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path}"


# -- the command ----------------------------------------------------------------------------------
def test_shipyard_server_serves_the_sdk(tmp_path: Path, make_server: Any) -> None:
    db, artifacts = tmp_path / "x.db", tmp_path / "artifacts-here"
    server = make_server("--backend-store-uri", sqlite_uri(db), "--artifacts-destination", str(artifacts))
    server.start()
    startup = (tmp_path / "server-1.out").read_text()
    assert f"Shipyard server on http://127.0.0.1:{server.port}" in startup
    assert str(db) in startup
    assert str(artifacts) in startup
    assert "Warning" not in startup  # loopback: nothing to warn about
    assert db.exists()

    client = shipyard.Client(tracking_uri=server.url)
    try:
        experiment_id = client.create_experiment("served")
        run_id = client.create_run(experiment_id, run_name="over-http").info.run_id
        client.log_param(run_id, "lr", 0.01)
        for step in range(20):
            client.log_metric(run_id, "loss", 1.0 / (step + 1), step=step)
        client.log_text(run_id, "hello", "notes/hello.txt")
        client.set_terminated(run_id)
        found = client.search_runs([experiment_id], "metrics.loss < 0.1 and params.lr = '0.01'")
        assert [r.info.run_id for r in found] == [run_id]
        assert found[0].info.status.value == "FINISHED"
        assert len(client.get_metric_history(run_id, "loss")) == 20
        assert [e.path for e in client.list_artifacts(run_id, "notes")] == ["notes/hello.txt"]
    finally:
        client.close()
        # Client.close does not close a RestArtifactStore (yet); its pooled socket would leak.
        client.artifacts.close()  # type: ignore[attr-defined]
    assert any(p.is_file() for p in artifacts.rglob("*")), "the artifact did not land in --artifacts-destination"

    # The fluent API, pointed at the server, works unchanged.
    fluent._reset_for_tests()
    try:
        shipyard.set_tracking_uri(server.url)
        with shipyard.start_run(experiment_id=experiment_id, capture=False) as active:
            shipyard.log_metric("acc", 0.5)
        assert shipyard.get_run(active.run_id).data.metrics == {"acc": 0.5}
    finally:
        fluent._reset_for_tests()


def test_an_old_schema_stops_the_command_before_uvicorn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    uri = sqlite_uri(tmp_path / "old.db")
    open_store(uri).close()
    engine = sa.create_engine(uri)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000'"))
    engine.dispose()
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("uvicorn started on an old schema"))

    result = CliRunner().invoke(cli_app, ["server", "--backend-store-uri", uri])
    assert result.exit_code == 6, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "shipyard db upgrade" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("host", "extra", "warns"), [
    ("0.0.0.0", (), True),
    ("10.1.2.3", (), True),
    ("shipyard.internal", (), True),
    ("0.0.0.0", ("--allowed-hosts", "shipyard.internal,localhost"), False),
    ("127.0.0.1", (), False),
    ("localhost", (), False),
    ("::1", (), False),
])
def test_command_runs_uvicorn_factory_and_warns_off_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              host: str, extra: tuple[str, ...], warns: bool) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")})
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    seen: list[dict[str, str]] = []  # the environment the workers start with

    def start(*a: Any, **k: Any) -> None:
        calls.append((a, k))
        seen.append(dict(os.environ))

    monkeypatch.setattr("uvicorn.run", start)
    monkeypatch.setattr("shipyard.cli.reuseport.run", start)  # --workers on Linux
    uri = sqlite_uri(tmp_path / "s.db")

    exposed = ("--insecure",) if host not in ("127.0.0.1", "localhost", "::1") else ()  # no --auth here
    result = CliRunner().invoke(cli_app, ["server", "--host", host, "--port", "5999", "--workers", "3",
                                          "--backend-store-uri", uri, "--cors-origins", "https://ui.example",
                                          *extra, *exposed])
    assert result.exit_code == 0, result.output
    assert ("only requests with a Host header" in result.stdout) is warns, result.stdout
    url = f"http://[{host}]:5999" if ":" in host else f"http://{host}:5999"
    assert f"Shipyard server on {url} (3 workers)" in result.stdout
    assert calls == [((APP_FACTORY,), {"factory": True, "host": host, "port": 5999, "workers": 3,
                                      "log_level": "info"})]
    # What the workers read, set for them and put back once they stop:
    (workers,) = seen
    assert workers["SHIPYARD_TRACKING_URI"] == uri
    assert workers["SHIPYARD_ARTIFACT_URI"] == str(tmp_path / "artifacts")  # beside the database
    assert workers["SHIPYARD_SERVER_CORS_ORIGINS"] == "https://ui.example"
    expected_hosts = extra[1] if extra else "localhost,127.0.0.1,::1"
    assert workers["SHIPYARD_SERVER_ALLOWED_HOSTS"] == expected_hosts
    assert not [k for k in os.environ if k.startswith("SHIPYARD_")]


def test_global_options_reach_the_server_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")})
    seen: list[dict[str, str]] = []
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: seen.append(dict(os.environ)))
    uri = sqlite_uri(tmp_path / "g.db")
    result = CliRunner().invoke(cli_app, ["--tracking-uri", uri, "--artifact-uri", str(tmp_path / "blobs"), "server"])
    assert result.exit_code == 0, result.output
    assert (seen[0]["SHIPYARD_TRACKING_URI"], seen[0]["SHIPYARD_ARTIFACT_URI"]) == (uri, str(tmp_path / "blobs"))


def test_worker_environment_round_trips_every_setting() -> None:
    settings = Settings.resolve(env={}, tracking_uri="postgresql://me:secret@db/shipyard", artifact_uri="s3://b/p",
                                capture_git=False, writer_linger_seconds=0.25, server_max_body_bytes=1234)
    environment = worker_environment(settings)
    assert set(environment) == {s.env_var for s in SETTINGS}
    assert Settings.resolve(env=environment) == settings


def test_redact_hides_passwords_only() -> None:
    assert redact("postgresql://me:secret@db:5432/shipyard") == "postgresql://me:***@db:5432/shipyard"
    assert redact("postgresql://me@db/shipyard") == "postgresql://me@db/shipyard"
    assert redact("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert redact("s3://bucket/prefix") == "s3://bucket/prefix"


# -- many clients, and a crash ---------------------------------------------------------------------
@dataclass
class Writer:
    """One client: its own RestStore, one run, batches of BATCH metrics until told to stop."""

    url: str
    retries: int = 5
    run_id: str = ""
    acknowledged: list[int] = field(default_factory=list)
    attempted: int = 0
    error: BaseException | None = None

    def work(self, created: threading.Barrier, stop: threading.Event) -> None:
        store = RestStore(self.url, retries=self.retries)
        try:
            self.run_id = store.runs.create("0", run_name="crowd", start_time=int(time.time() * 1000)).info.run_id
            created.wait(60)
            batch = 0
            while not stop.is_set():
                now = int(time.time() * 1000)
                metrics = [Metric("loss", float(batch * BATCH + i), batch * BATCH + i, now) for i in range(BATCH)]
                self.attempted = batch + 1
                store.metrics.log(self.run_id, metrics)
                self.acknowledged.append(batch)  # only once the server answered 200
                batch += 1
        except BaseException as exc:
            self.error = exc
            created.abort()
        finally:
            store.close()


def run_crowd(url: str, clients: int, seconds: float, during: Any = None, retries: int = 5) -> list[Writer]:
    """``clients`` writers for ``seconds`` (from the moment every run exists); ``during`` is
    called in between, e.g. to crash the server. Each writer's store retries ``retries`` times."""
    writers = [Writer(url, retries=retries) for _ in range(clients)]
    created = threading.Barrier(clients + 1)
    stop = threading.Event()
    threads = [threading.Thread(target=w.work, args=(created, stop), daemon=True) for w in writers]
    for thread in threads:
        thread.start()
    try:
        created.wait(60)
        if during is not None:
            during()
        time.sleep(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    errors = [repr(w.error) for w in writers if w.error is not None]
    assert errors == [], errors[:5]
    return writers


def stored_batches(db: Path, run_id: str) -> Counter[int]:
    """Rows stored per batch number, read from the database itself."""
    store = open_store(sqlite_uri(db))
    try:
        return Counter(m.step // BATCH for m in store.metrics.history(run_id, "loss"))
    finally:
        store.close()


@pytest.mark.slow
def test_fifty_clients_for_twenty_seconds_lose_nothing(tmp_path: Path, make_server: Any) -> None:
    db = tmp_path / "load.db"
    server = make_server("--backend-store-uri", sqlite_uri(db), "--workers", "2")
    server.start()
    started = time.monotonic()
    writers = run_crowd(server.url, clients=50, seconds=20)
    elapsed = time.monotonic() - started
    total = sum(len(w.acknowledged) for w in writers)
    print(f"\n{total} batches ({total * BATCH} metrics) acknowledged in {elapsed:.1f}s "
          f"= {total * BATCH / elapsed:,.0f} metrics/s")
    assert min(len(w.acknowledged) for w in writers) > 0, "a client never got a batch through"
    for writer in writers:
        stored = stored_batches(db, writer.run_id)
        assert sum(stored.values()) == len(writer.acknowledged) * BATCH
        assert stored == Counter(dict.fromkeys(writer.acknowledged, BATCH))


@pytest.mark.slow
def test_sigkill_and_restart_keeps_every_acknowledged_batch(tmp_path: Path, make_server: Any,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The clients' default retries give up after 7.7 s; a restart on a busy machine can take longer.
    # The writers are threads of this process, so patching the module reaches their stores.
    backoff = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)  # 23.7 s in all
    monkeypatch.setattr("shipyard.store.http.BACKOFF", backoff)
    db = tmp_path / "crash.db"
    server = make_server("--backend-store-uri", sqlite_uri(db), "--workers", "1")
    server.start()
    downtime: list[float] = []

    def crash_and_restart() -> None:
        time.sleep(3)  # under load
        killed = time.monotonic()
        server.kill()
        time.sleep(0.3)
        server.start()  # same port, within about a second
        downtime.append(time.monotonic() - killed)

    writers = run_crowd(server.url, clients=50, seconds=3, during=crash_and_restart, retries=len(backoff))
    print(f"\nserver down for {downtime[0]:.2f}s; "
          f"{sum(len(w.acknowledged) for w in writers)} batches acknowledged around it")
    assert "Traceback" not in server.logs(2)
    duplicated = 0
    for writer in writers:
        stored = stored_batches(db, writer.run_id)
        # No client failed, so every batch it attempted was acknowledged.
        assert writer.attempted == len(writer.acknowledged)
        missing = [b for b in writer.acknowledged if stored[b] < BATCH]
        assert missing == [], f"acknowledged batches lost: {missing}"
        assert set(stored) <= set(writer.acknowledged), "stored batches nobody sent"
        # A batch is one transaction: whole or absent. At least once: the batch in flight when
        # the server died may have been written and then sent again, so stored twice.
        assert all(count % BATCH == 0 for count in stored.values()), stored
        twice = [b for b, count in stored.items() if count > BATCH]
        assert len(twice) <= 1, stored
        assert all(stored[b] == 2 * BATCH for b in twice), stored
        duplicated += len(twice)
    print(f"{duplicated} batch(es) stored twice (their response was lost in the crash)")
