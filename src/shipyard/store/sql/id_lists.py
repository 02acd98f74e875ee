"""``column IN (a list of ids)`` with the list bound as ONE parameter: a JSON array read by
``json_each`` on SQLite, an array compared with ``= ANY`` on PostgreSQL.

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

__all__ = ["among", "bound_ids"]


def among(dialect: str, column: sa.ColumnElement[str], name: str = "ids") -> sa.ColumnElement[bool]:
    """``column`` is one of the ids bound to ``name`` (see :func:`bound_ids`)."""
    if dialect == "sqlite":
        values = sa.func.json_each(sa.bindparam(name, type_=sa.String))
        listed: sa.Select[Any] = sa.select(sa.column("value")).select_from(values)
        return column.in_(listed)
    from sqlalchemy.dialects import postgresql  # loaded on PostgreSQL only

    return column == sa.func.any(sa.bindparam(name, type_=postgresql.ARRAY(sa.String)))


def bound_ids(dialect: str, ids: Sequence[str]) -> Any:
    """The value to bind for :func:`among`'s parameter."""
    return json.dumps(list(ids)) if dialect == "sqlite" else list(ids)
