"""One database handle shared by the aggregate stores: transactions and error translation.

Driver exceptions never leave this module's context managers: they become
:mod:`shipyard.errors` here, in one place.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL

from shipyard.errors import SchemaOutOfDate, ShipyardError, StoreUnavailable
from shipyard.store.sql.engine import WRITE, create_engine, is_memory_sqlite


class Database:
    def __init__(self, url: URL, *, busy_timeout_seconds: float = 60.0) -> None:
        self.url = url
        self.engine = create_engine(url, busy_timeout_seconds=busy_timeout_seconds)
        self._write_engine = self.engine.execution_options(**{WRITE: True})
        self.dialect = url.get_backend_name()
        self._wrote = False
        # An in-memory SQLite database is a single shared connection: one transaction at a time.
        self._lock: contextlib.AbstractContextManager[object] = (
            threading.RLock() if is_memory_sqlite(url) else contextlib.nullcontext()
        )

    @property
    def display_url(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self._lock, translate_errors(self.display_url), self.engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[sa.Connection]:
        """A transaction that holds the write lock from its start (SQLite: BEGIN IMMEDIATE)."""
        with self._lock, translate_errors(self.display_url), self._write_engine.begin() as conn:
            self._wrote = True
            yield conn

    @contextlib.contextmanager
    def schema_change(self) -> Iterator[sa.Connection]:
        """A write transaction for migrations. On SQLite, foreign keys are off for it: a migration
        that rebuilds a table others reference with ON DELETE CASCADE would otherwise delete their
        rows when it drops the old table. Every reference is checked before the commit instead."""
        if self.dialect != "sqlite":
            with self.write() as conn:
                yield conn
            return
        with self._lock, translate_errors(self.display_url), self._write_engine.connect() as conn:
            # The pragma is a no-op inside a transaction, so it goes to the driver before BEGIN.
            raw = conn.connection.dbapi_connection
            assert raw is not None  # a connection just checked out of the pool
            raw.execute("PRAGMA foreign_keys = OFF")
            try:
                with conn.begin():
                    self._wrote = True
                    yield conn
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        tables = sorted({row[0] for row in broken})
                        raise SchemaOutOfDate(
                            f"the migration of {self.display_url} would leave {len(broken)} row(s) of "
                            f"{', '.join(tables)} pointing at rows that do not exist; nothing was changed")
            finally:
                raw.execute("PRAGMA foreign_keys = ON")

    def dispose(self) -> None:
        if self.dialect == "sqlite" and self._wrote:
            # Planner statistics make searches pick the selective index first (measured: 11 ms ->
            # 7 ms on 10,000 runs). analysis_limit samples each index, so this stays a few ms on
            # any size of store. PostgreSQL keeps its statistics itself (autovacuum). begin(), so
            # that the statistics are committed rather than rolled back with the connection.
            with contextlib.suppress(sa_exc.SQLAlchemyError), self._lock, self.engine.begin() as conn:
                conn.exec_driver_sql("PRAGMA analysis_limit = 1000")
                conn.exec_driver_sql("ANALYZE")
        self.engine.dispose()


def inserted_key(result: sa.CursorResult[Any]) -> int:
    """The primary key of the one row an INSERT added."""
    key = result.inserted_primary_key
    assert key is not None  # None only for a statement that is not a one-row INSERT
    return int(key[0])


@contextlib.contextmanager
def translate_errors(where: str) -> Iterator[None]:
    try:
        yield
    except ShipyardError:
        raise
    except sa_exc.OperationalError as exc:
        text = str(exc.orig)
        if "locked" in text or "busy" in text:
            raise StoreUnavailable(
                f"the database {where} stayed locked by other writers past the busy timeout; "
                "retry, or raise SHIPYARD_SQLITE_BUSY_TIMEOUT_SECONDS"
            ) from exc
        raise StoreUnavailable(f"cannot use the database {where}: {text.strip()}") from exc
    except sa_exc.InterfaceError as exc:
        raise StoreUnavailable(f"cannot reach the database {where}: {exc.orig}") from exc
