"""The SQL pieces of a search, compiled from typed comparisons (runs, registry, logged models).

Every value is a bound parameter; identifiers come from our own tables, never from text. For
runs, :mod:`shipyard.store.sql.planner` decides how the pieces are put together: which term's
index range drives the query, which terms are probed per candidate run, whether an order_by
walks an index. Metric terms only consult ``latest_metrics``, so their cost grows with the
runs searched and not with the history of logged values.
"""

from __future__ import annotations

import base64
import json
import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.selectable import Alias

from shipyard.entities import Comparison, Op, RunQuery
from shipyard.errors import InvalidInput
from shipyard.store.sql.experiments import experiment_pk
from shipyard.store.sql.tables import INDEXED_VALUE_CHARS, latest_metrics, params, run_tags, runs

_ATTRIBUTE_COLUMNS: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.run_id,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "user_id": runs.c.user_id,
    "source": runs.c.source,
    "experiment_id": runs.c.experiment_id,
    "parent_run_id": runs.c.parent_run_id,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
}
_KIND_TABLES = {"metric": latest_metrics, "param": params, "tag": run_tags}
_DRIVING_OPS = frozenset({Op.EQ, Op.IN, Op.LT, Op.LE, Op.GT, Op.GE, Op.IS_NOT_NULL})
_COMPARE: dict[Op, Callable[[Any, Any], sa.ColumnElement[bool]]] = {
    Op.EQ: operator.eq, Op.NE: operator.ne, Op.LT: operator.lt,
    Op.LE: operator.le, Op.GT: operator.gt, Op.GE: operator.ge,
}


def condition(column: sa.ColumnElement[Any], op: Op, value: Any) -> sa.ColumnElement[bool]:
    if op in _COMPARE:
        return _COMPARE[op](column, value)
    if op is Op.LIKE:
        return column.like(value)
    if op is Op.ILIKE:
        return sa.func.lower(column).like(sa.func.lower(value))
    if op is Op.IN:
        return column.in_(list(value))
    if op is Op.NOT_IN:
        return column.not_in(list(value))
    if op is Op.IS_NULL:
        return column.is_(None)
    if op is Op.IS_NOT_NULL:
        return column.is_not(None)
    raise InvalidInput(f"operator {op.value} is not supported here")


def keyed_match(owner: sa.ColumnElement[Any], sub: sa.Select[Any], value_column: Any, cmp: Comparison, *,
                missing_is_unequal: bool = False) -> sa.ColumnElement[bool]:
    """``owner IN (sub)``, where ``sub`` selects the owners having key ``cmp.key`` (a metric,
    param or tag row), narrowed to the rows whose value matches; IS NULL is the owners with no
    such row. An uncorrelated IN lets the database scan one key's matching values once (by
    index where there is one) instead of probing every owner. With ``missing_is_unequal``
    (the registry's rule, as in MLflow), ``!=`` also matches owners without the key."""
    if cmp.op is Op.IS_NULL:
        return owner.not_in(sub)
    if cmp.op is Op.NE and missing_is_unequal:
        return owner.not_in(sub.where(condition(value_column, Op.EQ, cmp.value)))
    if cmp.op is not Op.IS_NOT_NULL:
        sub = sub.where(condition(value_column, cmp.op, cmp.value))
    return owner.in_(sub)


def _attribute_value(key: str, value: Any) -> Any:
    if key != "experiment_id":
        return value
    try:
        return tuple(int(v) for v in value) if isinstance(value, tuple) else int(value)
    except ValueError:
        raise InvalidInput(f"attributes.experiment_id takes experiment ids (digits), got {value!r}") from None


def attribute_column(key: str) -> sa.Column[Any]:
    column = _ATTRIBUTE_COLUMNS.get(key)
    if column is None:
        raise InvalidInput(f"unknown run attribute {key!r}; known: {', '.join(sorted(_ATTRIBUTE_COLUMNS))}")
    return column


def _short_literals(cmp: Comparison) -> bool:
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    return all(isinstance(v, str) and len(v) <= INDEXED_VALUE_CHARS for v in values)


def drivable(cmp: Comparison, dialect: str) -> bool:
    """Whether the runs matching ``cmp`` are one range of its table's (key, value, run_id) index,
    so they can be counted and listed without reading other rows. On PostgreSQL the param and
    tag index holds short values only: equalities with short literals."""
    if cmp.kind == "attribute":
        return False
    if cmp.kind == "metric" or dialect == "sqlite":
        return cmp.op in _DRIVING_OPS
    return cmp.op in (Op.EQ, Op.IN) and _short_literals(cmp)


def _value_terms(table: Any, cmp: Comparison, dialect: str) -> list[sa.ColumnElement[bool]]:
    terms = [table.c.key == cmp.key]
    if cmp.op not in (Op.IS_NOT_NULL, Op.IS_NULL):
        terms.append(condition(table.c.value, cmp.op, cmp.value))
    if dialect == "postgresql" and cmp.kind != "metric" and cmp.op in (Op.EQ, Op.IN) and _short_literals(cmp):
        # Implied by the literal's length; it lets PostgreSQL use the partial index (tables.py).
        # A literal, not a parameter: a generic plan of a prepared statement must still match it.
        terms.append(sa.func.length(table.c.value) <= sa.literal_column(str(INDEXED_VALUE_CHARS)))
    return terms


def matching_rows(cmp: Comparison, dialect: str) -> sa.Select[Any]:
    """``SELECT run_id`` of the metric, param or tag rows a drivable comparison matches."""
    table = _KIND_TABLES[cmp.kind].alias("driver")
    return sa.select(table.c.run_id).where(*_value_terms(table, cmp, dialect))


class _KeyValueAlias(Alias):
    """An alias of ``params``, ``run_tags`` or ``latest_metrics`` that SQLite reads through its
    ``(key, value, run_id)`` index: ``INDEXED BY``, as PostgreSQL already chooses by itself."""

    inherit_cache = True


@compiles(_KeyValueAlias, "sqlite")
def _indexed_by(element: _KeyValueAlias, compiler: Any, **kw: Any) -> str:
    text = str(compiler.visit_alias(element, **kw))
    if kw.get("asfrom"):
        text += f" INDEXED BY ix_{element.element.name}_key_value_run"  # type: ignore[attr-defined]
    return text


def probe(cmp: Comparison, owner: Any = runs.c.run_id, dialect: str = "") -> sa.ColumnElement[bool]:
    """The WHERE term checking one run against ``cmp``: a run attribute, or a correlated
    (NOT) EXISTS on the metric, param or tag table for the run id ``owner`` (one index lookup
    per candidate; for an equality, on the (key, value, run_id) index alone)."""
    if cmp.kind == "attribute":
        return condition(attribute_column(cmp.key), cmp.op, _attribute_value(cmp.key, cmp.value))
    if cmp.op in (Op.EQ, Op.IN) and dialect == "sqlite":
        # SQLite's statistics rank the primary key (run_id, key) as good as the covering index
        # and then read the value from the table: a second, random page per candidate (measured:
        # the 965 probes of 100,000 runs took 6.5 ms that way, 0.9 ms from the index alone).
        table: Any = _KeyValueAlias._construct(_KIND_TABLES[cmp.kind], name=None)
    else:
        table = _KIND_TABLES[cmp.kind].alias()
    lookup: sa.Select[Any] = sa.select(sa.literal_column("1")).select_from(table).where(table.c.run_id == owner,
                                                                        *_value_terms(table, cmp, dialect))
    if dialect == "postgresql":
        # OFFSET keeps PostgreSQL from turning the probe into a join it may reorder ahead of the
        # driving term (it estimates key/value ranges poorly, see store.sql.planner).
        lookup = lookup.offset(0)
    found = lookup.exists()
    return ~found if cmp.op is Op.IS_NULL else found


def decode_page_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if isinstance(offset, int) and offset >= 0:
            return offset
    except (ValueError, KeyError, TypeError):
        pass
    raise InvalidInput(f"page token {token!r} is not valid; pass the next_page_token of a previous "
                       "page of the same search, or none for the first page")


def encode_page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def search_scope(query: RunQuery, *, indexed: bool = True) -> list[sa.ColumnElement[bool]]:
    """The experiments and lifecycle stages searched. With ``indexed=False`` the terms are
    written so that SQLite cannot answer them from the runs index (``+ 0``, ``|| ''``): when a
    selective filter term drives, the runs are reached by primary key from its matches, and a
    planner misled by its estimates must not scan an experiment's runs instead. (PostgreSQL
    would take such terms for very selective ones; the planner forces its join method instead.)"""
    exp_ids = [experiment_pk(e) for e in query.experiment_ids]
    stages = [s.value for s in query.view.stages()]
    if indexed:
        return [runs.c.experiment_id.in_(exp_ids), runs.c.lifecycle_stage.in_(stages)]
    return [(runs.c.experiment_id + 0).in_(exp_ids), (runs.c.lifecycle_stage + "").in_(stages)]


def ordering(query: RunQuery, stmt: sa.Select[Any]) -> tuple[sa.Select[Any], list[Any]]:
    """``stmt`` joined to what the order_by clauses need, and the ORDER BY terms: the clauses,
    then newest first and the run id to break ties. NULLS LAST only where a NULL can occur (a
    missing metric, param or tag; end_time, parent_run_id): PostgreSQL cannot serve an explicit
    NULL placement from an index of a NOT NULL column, which made ``start_time DESC`` a sort of
    every run."""
    terms: list[Any] = []
    seen: set[Any] = set()
    for n, order in enumerate(query.order_by):
        if order.kind == "attribute":
            column = _ATTRIBUTE_COLUMNS.get(order.key)
            if column is None:
                raise InvalidInput(f"cannot order by unknown run attribute {order.key!r}")
            nullable = bool(column.nullable)
        else:
            joined = _KIND_TABLES[order.kind].alias(f"order_{n}")
            stmt = stmt.outerjoin(joined, sa.and_(joined.c.run_id == runs.c.run_id, joined.c.key == order.key))
            column, nullable = joined.c.value, True
        if id(column) in seen:  # an earlier clause on the same column already decides
            continue
        seen.add(id(column))
        direction = column.asc() if order.ascending else column.desc()
        terms.append(direction.nulls_last() if nullable else direction)
    terms += [t for c, t in ((runs.c.start_time, runs.c.start_time.desc()), (runs.c.run_id, runs.c.run_id.asc()))
              if id(c) not in seen]
    return stmt, terms
