"""Rows read on the database driver's own cursor, for the few hot reads where SQLAlchemy's
``Row`` objects and result processing cost more than the query (a page's 13,000 child rows, a
history's chunks). The SQL is the driver's: ``?`` placeholders on SQLite, ``%s`` on PostgreSQL,
where results come in binary (bytea as bytes, floats and bigints without a text round trip).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["driver_rows"]


def driver_rows(conn: sa.Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` with positional ``params``, in ``conn``'s transaction, as the driver's tuples."""
    driver: Any = conn.connection.driver_connection
    cursor = driver.cursor(binary=True) if conn.dialect.name == "postgresql" else driver.cursor()
    with contextlib.closing(cursor):
        cursor.execute(sql, tuple(params))
        return list(cursor.fetchall())
