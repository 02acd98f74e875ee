"""The run-search planner picks the most selective term and walks indexes for top-k, and gives
exactly what a plain evaluation of the filter and sort gives (checked against Python)."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

import pytest

from shipyard.entities import Comparison, Metric, Op, OrderBy, Param, RunFilter, RunQuery
from shipyard.store.sql import SqlStore
from shipyard.store.sql.planner import find_runs, plan_driver

MODELS = ["rf", "gbm", "lr", "svm"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def corpus(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """240 runs: acc on a coarse grid (ties), some NaN, some without acc; model among four values,
    one run with model 'rare'; start times in pairs."""
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path_factory.mktemp('planner') / 's.db'}"
    else:
        uri = request.getfixturevalue("postgres_uri")
    store = SqlStore(uri)
    exp_id = store.experiments.create(f"planner-{random.getrandbits(32):08x}").experiment_id
    rng = random.Random(7)
    runs: dict[str, dict] = {}
    for i in range(240):
        run_id = store.runs.create(exp_id, run_name=f"r{i}", start_time=1000 + i // 2).info.run_id
        model = "rare" if i == 17 else rng.choice(MODELS)
        store.runs.log_params(run_id, [Param("model", model)])
        roll = rng.random()
        acc = None if roll < 0.05 else math.nan if roll < 0.1 else round(rng.random(), 1)
        loss = None if acc is None else rng.random()
        if acc is not None and loss is not None:
            store.metrics.log(run_id, [Metric("acc", acc, 0, 1), Metric("loss", loss, 0, 1)])
        runs[run_id] = {"start": 1000 + i // 2, "model": model, "acc": acc, "loss": loss}
    yield store, exp_id, runs
    store.close()


def _holds(run: dict, cmp: Comparison) -> bool:
    present = cmp.key in run and run[cmp.key] is not None
    if cmp.op is Op.IS_NULL:
        return not present
    if cmp.op is Op.IS_NOT_NULL:
        return present
    value = run.get(cmp.key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if cmp.op is Op.IN:
        return value in cmp.value  # type: ignore[operator]
    compare = {Op.EQ: lambda: value == cmp.value, Op.NE: lambda: value != cmp.value,
               Op.GT: lambda: value > cmp.value, Op.LT: lambda: value < cmp.value,  # type: ignore[operator]
               Op.GE: lambda: value >= cmp.value}  # type: ignore[operator]
    return compare[cmp.op]()


def _expected(runs: dict, terms: tuple[Comparison, ...], order: OrderBy | None) -> list[str]:
    matched = [rid for rid, run in runs.items() if all(_holds(run, c) for c in terms)]

    def key(rid: str) -> tuple:
        run = runs[rid]
        tail = (-run["start"], rid)
        if order is None:
            return tail
        value = run.get(order.key)
        if value is None or math.isnan(value):
            return (1, 0.0, *tail)
        return (0, value if order.ascending else -value, *tail)

    return sorted(matched, key=key)


def _search(store: SqlStore, query: RunQuery) -> tuple[list[str], object]:
    with store.runs._db.read() as conn:
        rows, plan = find_runs(conn, query, 0)
    return [r[0] for r in rows[:query.max_results]], plan


def test_the_most_selective_term_drives(corpus) -> None:
    store, exp_id, _runs = corpus
    acc_high = Comparison("metric", "acc", Op.GT, 0.85)
    rf = Comparison("param", "model", Op.EQ, "rf")
    rare = Comparison("param", "model", Op.EQ, "rare")
    with store.runs._db.read() as conn:
        assert plan_driver(conn, RunQuery((exp_id,), RunFilter((rf, acc_high)))).driver == acc_high
        assert plan_driver(conn, RunQuery((exp_id,), RunFilter((acc_high, rare)))).driver == rare
        nothing = Comparison("metric", "no-such-key", Op.GT, 0.0)
        plan = plan_driver(conn, RunQuery((exp_id,), RunFilter((rf, nothing))))
        assert plan.driver == nothing
        assert dict(plan.counts)[nothing] == 0
        # Terms that are no index range (!=, IS NULL) never drive: the experiment's runs do.
        unequal = Comparison("param", "model", Op.NE, "rf")
        assert plan_driver(conn, RunQuery((exp_id,), RunFilter((unequal,)))).driver is None


def test_top_k_walks_the_metric_index_and_stops(corpus) -> None:
    store, exp_id, runs = corpus
    order = OrderBy("metric", "acc", False)
    terms = (Comparison("param", "model", Op.IN, ("rf", "gbm")),)
    found, plan = _search(store, RunQuery((exp_id,), RunFilter(terms), order_by=(order,), max_results=5))
    assert plan.walked
    assert found == _expected(runs, terms, order)[:5]


def test_plans_agree_with_a_plain_evaluation(corpus) -> None:
    store, exp_id, runs = corpus
    rng = random.Random(11)
    pool = [
        lambda: Comparison("metric", "acc", rng.choice([Op.GT, Op.LT, Op.GE, Op.EQ, Op.NE]),
                           rng.choice([0.0, 0.3, 0.5, 0.9])),
        lambda: Comparison("metric", "acc", rng.choice([Op.IS_NULL, Op.IS_NOT_NULL]), None),
        lambda: Comparison("param", "model", rng.choice([Op.EQ, Op.NE]), rng.choice([*MODELS, "rare", "none"])),
        lambda: Comparison("param", "model", Op.IN, tuple(rng.sample(MODELS, 2))),
        lambda: Comparison("metric", "loss", Op.LT, rng.random()),
    ]
    walked = driven = 0
    for _ in range(60):
        terms = tuple(rng.choice(pool)() for _ in range(rng.randrange(0, 3)))
        order = rng.choice([None, OrderBy("metric", "acc", False), OrderBy("metric", "acc", True)])
        size = rng.choice([1, 3, 10, 1000])
        query = RunQuery((exp_id,), RunFilter(terms), order_by=(order,) if order else (), max_results=size)
        found, plan = _search(store, query)
        assert found == _expected(runs, terms, order)[:size], (terms, order, size)
        walked += plan.walked
        driven += plan.driver is not None
    assert walked
    assert driven


def _count_statements(store: SqlStore) -> list[str]:
    """The SQL of every statement the store's read engine sends from now on."""
    import sqlalchemy as sa

    sent: list[str] = []
    sa.event.listen(store.runs._db.engine, "before_cursor_execute",
                    lambda _c, _cur, statement, *_a: sent.append(statement))
    return sent


def test_a_repeated_term_is_counted_in_one_round_and_still_decided_on_current_counts(
        corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    from shipyard.store.sql import planner

    store, exp_id, _runs = corpus
    monkeypatch.setattr(planner, "_FIRST_CAP", 2)  # rounds of 2, 16, 128 ... on this small corpus
    # Terms of their own (a bound no other test uses), so the sizes below are this test's.
    wide = Comparison("metric", "loss", Op.GE, 0.0001234)
    narrow = Comparison("metric", "loss", Op.GT, 0.9871)
    query = RunQuery((exp_id,), RunFilter((wide, narrow)))
    with store.runs._db.read() as conn:
        first = plan_driver(conn, query)
    assert first.driver == narrow
    sent = _count_statements(store)
    with store.runs._db.read() as conn:
        again = plan_driver(conn, query)
    counts = [s for s in sent if "count(" in s.lower()]
    assert again.driver == first.driver
    assert len(counts) == 3  # one round: each of the two terms and the experiment's runs once
    # The remembered smallest is counted first, and bounds the others: the wide term is read
    # no further than the narrow one's size.
    assert dict(again.counts)[wide] == dict(again.counts)[narrow] < dict(first.counts)[wide]
    # What was remembered is only where counting starts: a query whose remembered smallest term
    # is now the biggest is still driven by the term that is smallest now.
    swapped = RunQuery((exp_id,), RunFilter((narrow, Comparison("param", "model", Op.EQ, "rare"))))
    with store.runs._db.read() as conn:
        assert plan_driver(conn, swapped).driver == Comparison("param", "model", Op.EQ, "rare")


@pytest.mark.postgres
def test_postgresql_settings_return_to_their_defaults_after_a_driven_search(postgres_uri: str) -> None:
    store = SqlStore(postgres_uri)
    try:
        exp_id = store.experiments.create(f"settings-{random.getrandbits(32):08x}").experiment_id
        run_id = store.runs.create(exp_id, run_name="r", start_time=1).info.run_id
        value = f"only-{random.getrandbits(32):08x}"
        store.runs.log_params(run_id, [Param("model", value)])
        store.runs.create(exp_id, run_name="other", start_time=2)  # so that the term is the smallest
        query = RunQuery((exp_id,), RunFilter((Comparison("param", "model", Op.EQ, value),)))
        with store.runs._db.read() as conn:
            names = ("enable_hashjoin", "jit", "enable_seqscan")
            before = {k: conn.exec_driver_sql(f"SHOW {k}").scalar() for k in names}
            rows, plan = find_runs(conn, query, 0)
            after = {k: conn.exec_driver_sql(f"SHOW {k}").scalar() for k in before}
        assert [r[0] for r in rows] == [run_id]
        assert plan.driver is not None
        assert after == before
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_id_lists_bind_any_text_as_one_parameter(dialect: str, request: pytest.FixtureRequest, tmp_path) -> None:
    import sqlalchemy as sa

    from shipyard.store.sql.engine import normalize_url
    from shipyard.store.sql.id_lists import among, bound_ids

    uri = f"sqlite:///{tmp_path / 'ids.db'}" if dialect == "sqlite" else request.getfixturevalue("postgres_uri")
    engine = sa.create_engine(normalize_url(uri))
    odd = ['plain', 'a,b', '{braces}', 'say "hi"', 'back\\slash', 'NULL', ' spaced ', "it's", 'ünï', '']
    table = sa.table("ids_probe", sa.column("v", sa.String))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE ids_probe (v VARCHAR(32))" if dialect == "sqlite"
                                 else "CREATE TEMP TABLE ids_probe (v VARCHAR(32)) ON COMMIT DROP")
            conn.execute(sa.insert(table), [{"v": v} for v in [*odd, "other", "null"]])
            stmt = sa.select(table.c.v).where(among(conn.dialect.name, table.c.v))
            found = conn.execute(stmt, {"ids": bound_ids(conn.dialect.name, odd)}).scalars().all()
        assert sorted(found) == sorted(odd)
    finally:
        engine.dispose()


def test_a_page_loads_each_runs_children_across_chunks(corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page's params, tags and metrics are read a chunk of ids at a time and matched to their runs
    by place in the page: every run gets its own, whatever the chunk size."""
    from shipyard.store.sql import runs as run_rows

    store, exp_id, runs = corpus
    monkeypatch.setattr(run_rows, "_CHUNK", 7)
    page = store.runs.search(RunQuery((exp_id,), max_results=100))
    assert len(page.items) == 100
    for run in page.items:
        expected = runs[run.info.run_id]
        assert run.data.params == {"model": expected["model"]}
        logged = {} if expected["acc"] is None else {"acc": expected["acc"], "loss": expected["loss"]}
        got = {k: m.value for k, m in run.data.latest_metrics.items()}
        assert got.keys() == logged.keys()
        assert all(math.isnan(v) if math.isnan(logged[k]) else v == logged[k] for k, v in got.items())
