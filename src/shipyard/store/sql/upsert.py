"""INSERT ... ON CONFLICT for the dialects we support (same construct in both), and plain
INSERTs of many rows given as tuples."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa


def upsert(
    conn: sa.Connection,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    keys: Sequence[str],
    where: Any = None,
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, overwrite its other columns
    (only where ``where`` holds, if given; ``where`` may refer to ``excluded``)."""
    if not rows:
        return
    stmt = _insert(conn, table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
    where_clause = where(table, stmt.excluded) if callable(where) else None
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates, where=where_clause),
                 list(rows))


def insert_new(conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]], *,
               keys: Sequence[str]) -> None:
    """Insert ``rows``, keeping as it is any row that already has the same ``keys``."""
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(index_elements=list(keys)), list(rows))


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert(table)


def insert_rows(conn: sa.Connection, table: sa.Table, columns: tuple[str, ...],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``) in one statement. SQLAlchemy's per-row
    parameter processing cost more than the database's inserts (the columns written this way
    need no conversion), so the driver gets the rows itself: on SQLite the compiled INSERT with
    the tuples (one executemany); on PostgreSQL one ``INSERT ... SELECT FROM unnest(...)`` with
    one array per column (one round trip, where an executemany is a statement per row)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(_compiled_insert(conn.dialect, table, columns), list(rows))
    else:
        conn.exec_driver_sql(_unnest_insert(conn.dialect, table, columns),
                             tuple(list(column) for column in zip(*rows, strict=True)))


@functools.cache
def _compiled_insert(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    return str(table.insert().compile(dialect=dialect, column_keys=list(columns)))


@functools.cache
def _unnest_insert(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...]) -> str:
    arrays = ", ".join(f"%s::{table.c[name].type.compile(dialect=dialect)}[]" for name in columns)
    names = ", ".join(dialect.identifier_preparer.quote(name) for name in columns)
    return f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({names}) SELECT * FROM unnest({arrays})"
