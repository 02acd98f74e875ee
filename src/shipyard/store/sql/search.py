"""Compile a typed :class:`~shipyard.entities.RunQuery` into one parameterised SELECT.

Every value is a bound parameter; identifiers come from our own tables, never from text.
Filters on metrics, params and tags are ``run_id IN (SELECT run_id ... WHERE key = ? AND
value <op> ?)`` subqueries; for metrics only ``latest_metrics`` is consulted, so the cost
grows with the runs searched and not with the history of logged values.
"""

from __future__ import annotations

import base64
import json
import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from shipyard.entities import Comparison, Op, OrderBy, RunQuery
from shipyard.errors import InvalidInput
from shipyard.store.sql.experiments import experiment_pk
from shipyard.store.sql.tables import latest_metrics, params, run_tags, runs

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
_COMPARE: dict[Op, Callable[[Any, Any], Any]] = {
    Op.EQ: operator.eq, Op.NE: operator.ne, Op.LT: operator.lt,
    Op.LE: operator.le, Op.GT: operator.gt, Op.GE: operator.ge,
}


def condition(column: Any, op: Op, value: Any) -> sa.ColumnElement[bool]:
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


def keyed_match(owner: Any, sub: sa.Select[Any], value_column: Any, cmp: Comparison, *,
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


def comparison_clause(cmp: Comparison, *, probe: bool = False) -> sa.ColumnElement[bool]:
    """The WHERE term of one comparison. With ``probe``, a metric, param or tag match is a
    correlated EXISTS (one primary-key lookup per candidate run) instead of an IN-list, which
    would first collect every run matching it: the cheaper form once a selective term drives."""
    if cmp.kind == "attribute":
        column = _ATTRIBUTE_COLUMNS.get(cmp.key)
        if column is None:
            raise InvalidInput(f"unknown run attribute {cmp.key!r}; "
                               f"known: {', '.join(sorted(_ATTRIBUTE_COLUMNS))}")
        return condition(column, cmp.op, _attribute_value(cmp.key, cmp.value))
    table = _KIND_TABLES[cmp.kind]
    if probe and cmp.op is not Op.IS_NULL:
        found = sa.exists().where(table.c.run_id == runs.c.run_id, table.c.key == cmp.key)
        return found if cmp.op is Op.IS_NOT_NULL else found.where(condition(table.c.value, cmp.op, cmp.value))
    return keyed_match(runs.c.run_id, sa.select(table.c.run_id).where(table.c.key == cmp.key), table.c.value, cmp)


def _filter_terms(filters: tuple[Comparison, ...]) -> list[sa.ColumnElement[bool]]:
    """Equality filters first: they usually match far fewer runs than ranges, and SQLite drives
    the query from the first IN-list when its statistics do not tell the two apart. Once an
    equality on a metric, param or tag drives, the other keyed filters are probed per candidate
    (measured on 10,000 runs: 11 -> 7 ms) rather than collected whole."""
    terms, driven = [], False
    for cmp in sorted(filters, key=lambda c: c.op not in (Op.EQ, Op.IN)):
        keyed = cmp.kind != "attribute"
        terms.append(comparison_clause(cmp, probe=driven and keyed))
        driven = driven or (keyed and cmp.op in (Op.EQ, Op.IN))
    return terms


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


def _order_column(order: OrderBy, stmt: sa.Select[Any], n: int) -> tuple[sa.Select[Any], Any]:
    if order.kind == "attribute":
        column = _ATTRIBUTE_COLUMNS.get(order.key)
        if column is None:
            raise InvalidInput(f"cannot order by unknown run attribute {order.key!r}")
        return stmt, column
    joined = _KIND_TABLES[order.kind].alias(f"order_{n}")
    stmt = stmt.outerjoin(joined, sa.and_(joined.c.run_id == runs.c.run_id, joined.c.key == order.key))
    return stmt, joined.c.value


def compile_run_search(query: RunQuery) -> tuple[sa.Select[Any], int]:
    """The SELECT of one page of run rows (one row more than the page, to tell if another
    page follows) and the page's offset."""
    offset = decode_page_token(query.page_token)
    stages = [s.value for s in query.view.stages()]
    exp_ids = [experiment_pk(e) for e in query.experiment_ids]
    stmt = sa.select(runs).where(runs.c.experiment_id.in_(exp_ids), runs.c.lifecycle_stage.in_(stages))
    for term in _filter_terms(query.filter):
        stmt = stmt.where(term)
    ordering = []
    for n, order in enumerate(query.order_by):
        stmt, column = _order_column(order, stmt, n)
        direction = column.asc() if order.ascending else column.desc()
        ordering.append(direction.nulls_last())
    ordering += [runs.c.start_time.desc(), runs.c.run_id.asc()]
    return stmt.order_by(*ordering).limit(query.max_results + 1).offset(offset), offset
