"""How a run search is executed, so its cost follows what it returns rather than the store's size.

Two decisions, both taken from the data itself rather than from either database's estimates
(neither can tell how one metric's values are spread: every key shares one value column):

1. **Which term drives.** Each filter term that is one range of a ``(key, value, run_id)`` index
   (``metrics.acc > 0.99``, ``params.model = 'rf'``) is counted on that index, and so are the runs
   of the searched experiments, all with a cap that grows 8x per round until one of them comes in
   under it: the smallest is known exactly after reading a few times as many index entries as it
   holds, and nothing larger is ever read whole. The smallest drives (its matches reach the runs
   by primary key); every other term is probed per candidate run. When the experiments' runs are
   the smallest set, they drive through the runs index as before. Each engine remembers the
   sizes it counted, so a term seen before is counted first and from about its size: a repeated
   search (the next page, a refresh) counts in one round instead of climbing to it; the choice
   itself is always made on the counts of the moment.
2. **Top-k by walking an index.** With one ``order_by`` on a metric, the metric's values are read
   in index order from the best end: the first ``L`` of them (bounded by the L-th value, ties
   included) are joined to the runs, probed, and sorted; when at least a page of runs passes, it
   is exactly the page the full query would give (every run with a better value was read), and
   no other run is touched. Otherwise ``L`` grows once (8x), then the search falls back to 1.

Both give the same rows in the same order as a plain query would: ties on the ordered value are
broken by start time and run id in SQL, and runs without the metric (or NaN, stored as NULL) come
last, which the walk never returns (a page that needs them takes the fallback).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shipyard.entities import Comparison, Op, RunQuery
from shipyard.store.sql.search import (
    condition,
    drivable,
    matching_rows,
    ordering,
    probe,
    search_scope,
)
from shipyard.store.sql.tables import latest_metrics, runs

__all__ = ["SearchPlan", "find_runs", "plan_driver"]

_FIRST_CAP = 512
_CAP_GROWTH = 8  # fewer rounds: each statement costs ~0.4 ms before it reads an entry
_LAST_CAP = 1 << 23  # past 8M matches, the order of the biggest sets no longer matters
_WALK_FIRST = 8  # the walk first reads this many metric values per run of the page
_WALK_GROWTH = 8
_WALK_OPS = (Op.EQ, Op.LT, Op.LE, Op.GT, Op.GE, Op.IS_NOT_NULL)
# PostgreSQL's estimate of one metric's range is the selectivity of the value over every key's
# values: measured on 100,000 runs it took 965 matches for about 10,700 and hashed a scan of all the
# runs. Once the planner here has counted the driving range, index nested loops are the plan.
# The same misjudged estimates pushed the plan's cost past jit_optimize_above_cost on 1,000,000 runs,
# and compiling it took ~0.8 s (EXPLAIN ANALYZE: 1,208 ms with JIT, 371-404 ms without): no JIT.
_PG_INDEX_ONLY = {"enable_hashjoin": "off", "enable_mergejoin": "off", "enable_seqscan": "off",
                  "max_parallel_workers_per_gather": "0", "jit": "off"}
# All set in one round trip, and reset in one (no parameters: several statements in one string);
# a round trip per setting cost ~3 ms per search.
_SET_LOCAL = "; ".join(f"SET LOCAL {k} = {v}" for k, v in _PG_INDEX_ONLY.items())
_RESET_LOCAL = "; ".join(f"SET LOCAL {k} TO DEFAULT" for k in _PG_INDEX_ONLY)


@dataclass(frozen=True, slots=True)
class SearchPlan:
    """What drove a search: the term (``None``: the runs of the experiments) and the capped
    counts the choice was made from (term or ``None`` -> count; a count that reached its cap is
    a lower bound), and whether an index walk answered it."""

    driver: Comparison | None
    counts: tuple[tuple[Comparison | None, int], ...] = ()
    walked: bool = False


def _capped_count(rows: sa.Select[Any]) -> sa.Select[Any]:
    """``count(*)`` of at most ``:cap`` of ``rows``: built once per search, run once per round."""
    return sa.select(sa.func.count()).select_from(rows.limit(sa.bindparam("cap", type_=sa.Integer)).subquery())


def plan_driver(conn: sa.Connection, query: RunQuery) -> SearchPlan:
    """Pick the smallest of the drivable terms and the experiments' runs (see the module doc)."""
    dialect = conn.dialect.name
    terms = [c for c in query.filter if drivable(c, dialect)]
    if not terms:
        return SearchPlan(None)
    sources: list[tuple[Comparison | None, Hashable, sa.Select[Any]]] = [
        (c, c, _capped_count(matching_rows(c, dialect))) for c in terms]
    sources.append((None, ("runs", query.experiment_ids, query.view),
                    _capped_count(sa.select(runs.c.run_id).where(*search_scope(query)))))
    sizes = _sizes(conn.engine)
    known = [n for n in (sizes.get(key) for _source, key, _count in sources) if n is not None]
    # Counted smallest-known first, from twice that size: a repeated term is counted in one round.
    order = sorted(range(len(sources)), key=lambda i: sizes.get(sources[i][1], _LAST_CAP))
    cap = max(_FIRST_CAP, 2 * min(known)) if known else _FIRST_CAP
    while True:
        # Once a set is counted exactly, the ones after it are read no further than its size:
        # they can only win by being smaller (a count that reaches the bound is a lower bound).
        counted: dict[int, int] = {}
        exact: list[tuple[int, int]] = []
        bound = cap
        for i in order:
            counted[i] = n = int(conn.execute(sources[i][2], {"cap": bound}).scalar_one())
            if n < bound:
                exact.append((n, i))
                bound = n
        if exact or cap >= _LAST_CAP:
            _n, best = min(exact or [(n, i) for i, n in counted.items()])
            _remember(sizes, {sources[i][1]: n for n, i in exact},
                      {sources[i][1]: n for i, n in counted.items() if (n, i) not in exact})
            return SearchPlan(sources[best][0], tuple((sources[i][0], counted[i]) for i in range(len(sources))))
        cap *= _CAP_GROWTH


# Per engine, the last exact count of each source planned with (a term, or the runs of some
# experiments), or the largest lower bound seen: where the next search starts counting. Only a
# starting point: every plan is still decided on counts taken in its own transaction.
_SIZES: weakref.WeakKeyDictionary[sa.Engine, dict[Hashable, int]] = weakref.WeakKeyDictionary()
_SIZES_KEPT = 1024
_SIZES_LOCK = threading.Lock()


def _sizes(engine: sa.Engine) -> dict[Hashable, int]:
    with _SIZES_LOCK:
        return _SIZES.setdefault(engine, {})


def _remember(sizes: dict[Hashable, int], exact: dict[Hashable, int], at_least: dict[Hashable, int]) -> None:
    with _SIZES_LOCK:
        if len(sizes) + len(exact) + len(at_least) > _SIZES_KEPT:
            sizes.clear()
        sizes.update(exact)
        sizes.update({key: max(n, sizes.get(key, 0)) for key, n in at_least.items()})


@contextlib.contextmanager
def _nested_loops(conn: sa.Connection) -> Iterator[None]:
    """Within this block, PostgreSQL reaches runs from the driving rows by primary key (for the
    rest of the transaction only: ``SET LOCAL``, restored on the way out)."""
    if conn.dialect.name != "postgresql":
        yield
        return
    conn.exec_driver_sql(_SET_LOCAL)
    try:
        yield
    finally:
        conn.exec_driver_sql(_RESET_LOCAL)


def _page(conn: sa.Connection, stmt: sa.Select[Any], query: RunQuery, offset: int) -> Sequence[Any]:
    return conn.execute(stmt.limit(query.max_results + 1).offset(offset)).all()


def _driven(conn: sa.Connection, query: RunQuery, plan: SearchPlan, offset: int) -> Sequence[Any]:
    """The plain query, driven by ``plan.driver``'s index range when there is one."""
    dialect = conn.dialect.name
    if plan.driver is None:
        stmt = sa.select(runs).where(*search_scope(query), *(probe(c, runs.c.run_id, dialect) for c in query.filter))
        stmt, order = ordering(query, stmt)
        return _page(conn, stmt.order_by(*order), query, offset)
    # Keyed terms are probed against the driving rows' run ids, before any run row is read.
    others = [c for c in query.filter if c is not plan.driver]
    driving = matching_rows(plan.driver, dialect)
    owner = driving.selected_columns.run_id
    driving = driving.where(*(probe(c, owner, dialect) for c in others if c.kind != "attribute"))
    # MATERIALIZED: PostgreSQL computes the driving set first, as counted, whatever it estimates.
    matched = driving.cte("matched").prefix_with("MATERIALIZED", dialect="postgresql")
    stmt = sa.select(runs).where(runs.c.run_id.in_(sa.select(matched.c.run_id)),
                                 *search_scope(query, indexed=dialect == "postgresql"),
                                 *(probe(c) for c in others if c.kind == "attribute"))
    stmt, order = ordering(query, stmt)
    with _nested_loops(conn):
        return _page(conn, stmt.order_by(*order), query, offset)


def _walk(conn: sa.Connection, query: RunQuery, offset: int) -> Sequence[Any] | None:
    """The page read by walking the ordered metric's index (module doc, 2), or ``None`` when
    the walk cannot prove it has the whole page."""
    (order,) = query.order_by
    walk = latest_metrics.alias("walk")
    value = walk.c.value
    bounds = [walk.c.key == order.key, value.is_not(None)]
    probes = []
    for cmp in query.filter:
        if cmp.kind == "metric" and cmp.key == order.key and cmp.op in _WALK_OPS:
            if cmp.op is not Op.IS_NOT_NULL:
                bounds.append(condition(value, cmp.op, cmp.value))
        else:
            probes.append(probe(cmp, walk.c.run_id, conn.dialect.name))
    best_first = value.asc() if order.ascending else value.desc()
    need = offset + query.max_results + 1
    length = _WALK_FIRST * need
    for _attempt in range(2):
        edge = conn.execute(sa.select(value).where(*bounds).order_by(best_first)
                            .limit(1).offset(length - 1)).scalar()
        within = [] if edge is None else [value <= edge if order.ascending else value >= edge]
        stmt = (sa.select(runs).select_from(walk.join(runs, runs.c.run_id == walk.c.run_id))
                .where(*bounds, *within, *search_scope(query, indexed=conn.dialect.name == "postgresql"), *probes)
                .order_by(best_first, runs.c.start_time.desc(), runs.c.run_id.asc()))
        with _nested_loops(conn):
            rows = _page(conn, stmt, query, offset)
        if len(rows) > query.max_results:
            return rows
        if edge is None:  # every value was read: the rest of the page is runs without one
            return None
        length *= _WALK_GROWTH
    return None


def find_runs(conn: sa.Connection, query: RunQuery, offset: int) -> tuple[Sequence[Any], SearchPlan]:
    """One page of ``runs`` rows (plus one more when another page follows) and how it was found."""
    if len(query.order_by) == 1 and query.order_by[0].kind == "metric":
        rows = _walk(conn, query, offset)
        if rows is not None:
            return rows, SearchPlan(None, walked=True)
    plan = plan_driver(conn, query)
    return _driven(conn, query, plan, offset), plan
