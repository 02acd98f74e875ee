"""Fixtures shared by every test folder."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ADMIN_URI = os.environ.get("SHIPYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """The URI of a new, empty PostgreSQL database, dropped afterwards.

    Skips when no server answers, except under CI (``CI=true``), where it fails: the
    PostgreSQL tests must run there.
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
        if os.environ.get("CI", "").lower() == "true":
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
