"""INSERT ... ON CONFLICT for the dialects we support (same construct in both)."""

from __future__ import annotations

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
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    return insert(table)
