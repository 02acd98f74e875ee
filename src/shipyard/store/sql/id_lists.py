"""``column IN (a list of ids)`` with the list bound as ONE parameter: a JSON array read by
``json_each`` on SQLite, an array literal cast to ``text[]`` and compared with ``= ANY`` on
PostgreSQL (bound as text: psycopg's dumper of a Python list builds the array element by element
in Python, 3-4 ms for a page of a thousand ids; PostgreSQL parses the literal in C).

For the driver's own SQL, :func:`listed` reads the same bound value as rows of (place, id).

A page of a thousand runs would otherwise be a thousand bind parameters to render on every
query, and an expanding ``IN`` re-renders its statement on every execution, which cost more
than SQLite took to answer it for one run. A statement built with :func:`among` is therefore
built once (per dialect) and executed with ``{name: bound_ids(dialect, ids)}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["among", "bound_ids", "listed"]


def among(dialect: str, column: sa.ColumnElement[str], name: str = "ids") -> sa.ColumnElement[bool]:
    """``column`` is one of the ids bound to ``name`` (see :func:`bound_ids`)."""
    if dialect == "sqlite":
        values = sa.func.json_each(sa.bindparam(name, type_=sa.String))
        listed: sa.Select[Any] = sa.select(sa.column("value")).select_from(values)
        return column.in_(listed)
    from sqlalchemy.dialects import postgresql  # loaded on PostgreSQL only

    return column == sa.func.any(sa.cast(sa.bindparam(name, type_=sa.Text), postgresql.ARRAY(sa.Text)))


def bound_ids(dialect: str, ids: Sequence[str]) -> str:
    """The value to bind for :func:`among`'s parameter (or for a statement that reads the list
    itself: ``json_each(?)`` on SQLite, ``unnest(CAST(... AS TEXT[]))`` on PostgreSQL)."""
    if dialect == "sqlite":
        return json.dumps(list(ids))
    # Every element quoted, so commas, braces, spaces or the word NULL in an id stay text.
    return "{" + ",".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in ids) + "}"


def listed(dialect: str) -> tuple[str, str, str]:
    """The ids bound as the driver's one positional parameter, as rows, for the driver's own SQL:
    (a FROM item named ``listed``, its column of each id's place in the list from 0, its id column)."""
    if dialect == "sqlite":
        return "json_each(?) AS listed", "listed.key", "listed.value"
    return "unnest(CAST(%s AS TEXT[])) WITH ORDINALITY AS listed(id, n)", "listed.n - 1", "listed.id"
