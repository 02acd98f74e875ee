"""Fixtures shared by every test folder."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.ci import in_ci

POSTGRES_ADMIN_URI = os.environ.get("SHIPYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URI of a new, empty PostgreSQL database, dropped afterwards.

    Skips when no server answers, except under CI (any truthy ``CI``, see ``tests/ci.py``), where
    it fails: the PostgreSQL tests must run there.
    """
    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URI.replace("postgresql://", "postgresql+psycopg://", 1),
                             isolation_level="AUTOCOMMIT")
    name = f"shipyard_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"no PostgreSQL server answers at {POSTGRES_ADMIN_URI}: {exc.orig}"
        if in_ci():
            pytest.fail(f"{reason} (under CI the PostgreSQL tests must run)")
        pytest.skip(reason)
    try:
        yield POSTGRES_ADMIN_URI.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (see ``fresh_postgres_database``)."""
    with fresh_postgres_database() as uri:
        yield uri


@pytest.fixture
def own_postgres_uri() -> Iterator[str]:
    """A PostgreSQL database of the test's own, for tests that act on every row of a store (gc)."""
    with fresh_postgres_database() as uri:
        yield uri


@pytest.fixture(autouse=True)
def _private_digest_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dataset digests are cached under $XDG_CACHE_HOME: keep tests out of the real one."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "xdg-cache"))


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store' / 'shipyard.db'}"


@pytest.fixture
def fluent(tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The fluent SDK pointed at a fresh SQLite store; state is reset afterwards."""
    import shipyard
    from shipyard.tracking import fluent as fluent_module

    monkeypatch.setenv("SHIPYARD_CAPTURE_PACKAGES", "false")
    fluent_module._reset_for_tests()
    shipyard.set_tracking_uri(tracking_uri)
    yield tracking_uri
    fluent_module._reset_for_tests()


@pytest.fixture
def client(tracking_uri: str) -> Iterator[shipyard.Client]:  # noqa: F821
    import shipyard

    c = shipyard.Client(tracking_uri=tracking_uri)
    yield c
    c.close()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's standalone S3 server in a thread of this process, on a free loopback port; clients
    reach it over real HTTP, as they would MinIO or AWS (nothing is mocked inside boto3 or s3fs)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Google Cloud Storage emulator (in memory, bucket ``GCS_BUCKET``) in a subprocess on a free
    loopback port; gcsfs reaches it through ``STORAGE_EMULATOR_HOST``, as Google's own clients do."""
    import sys

    from tests.ci import require
    from tests.support import GCS_BUCKET, ServerProcess

    require("gcsfs")
    require("gcp_storage_emulator")
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--in-memory",
            "--default-bucket", GCS_BUCKET]
    with ServerProcess(argv, tmp_path_factory.mktemp("gcs-emulator"), health=f"/storage/v1/b/{GCS_BUCKET}",
                       name="gcs-emulator") as emulator:
        yield emulator.url
