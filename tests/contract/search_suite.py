"""Search at its edges: ties, NaN and missing metrics, mixed value types, unknown keys, page
bounds. Part of the store contract (mixed into ``StoreContract``), so SQL stores, whose planner
chooses between index walks, driving terms and probes (``store/sql/planner.py``), must give
exactly the order a plain sort gives, page after page."""

from __future__ import annotations

import math
import uuid

import pytest

from shipyard.entities import Comparison, Metric, Op, OrderBy, Param, RunFilter, RunQuery, RunTag
from shipyard.errors import InvalidInput, NotFound
from shipyard.store import Store
from shipyard.store.rest import RestStore

# (name, start_time, score or None for no value, is it NaN)
_TIES = [(f"t{i:02d}", 1000 + i // 3, [0.5, 0.9, 0.1, 0.5, None, 0.9, 0.5, 0.2][i % 8], i % 11 == 4)
         for i in range(30)]


def _where(*terms: tuple) -> RunFilter:
    return RunFilter(tuple(Comparison(kind, key, Op(op), value) for kind, key, op, value in terms))


class SearchEdgesContract:
    __test__ = False

    @pytest.fixture
    def ties(self, store: Store) -> tuple[str, dict[str, str], list[tuple[str, int, float | None]]]:
        """30 runs: start times in threes, scores from a few values (many ties), some NaN and
        some without the metric; every run has params.group = 'g'."""
        exp_id = store.experiments.create(f"ties-{uuid.uuid4().hex[:10]}").experiment_id
        ids: dict[str, str] = {}
        rows = []
        for name, start, score, nan in _TIES:
            run_id = store.runs.create(exp_id, run_name=name, start_time=start).info.run_id
            ids[run_id] = name
            store.runs.log_params(run_id, [Param("group", "g")])
            value = math.nan if nan else score
            if value is not None:
                store.metrics.log(run_id, [Metric("score", value, 0, 1)])
            rows.append((run_id, start, None if value is None or math.isnan(value) else value))
        return exp_id, ids, rows

    @staticmethod
    def _expected(rows: list, ascending: bool, keep=lambda value: True) -> list[str]:
        """A plain sort: by score (no value last), then newest first, then run id."""
        valued = sorted((r for r in rows if r[2] is not None and keep(r[2])),
                        key=lambda r: (r[2] if ascending else -r[2], -r[1], r[0]))
        missing = sorted((r for r in rows if r[2] is None and keep(None)), key=lambda r: (-r[1], r[0]))
        return [r[0] for r in valued + missing]

    def _all_pages(self, store: Store, exp_id: str, flt: RunFilter, order: tuple[OrderBy, ...],
                   size: int) -> list[str]:
        seen, token = [], None
        while True:
            page = store.runs.search(RunQuery((exp_id,), flt, order_by=order, max_results=size, page_token=token))
            assert len(page.items) <= size
            seen += [r.run_id for r in page.items]
            token = page.next_page_token
            if token is None:
                return seen

    @pytest.mark.parametrize("size", [1, 2, 7, 1000])
    @pytest.mark.parametrize("ascending", [False, True], ids=["desc", "asc"])
    def test_metric_order_with_ties_nan_and_missing_pages_like_a_plain_sort(self, store: Store, ties, size: int,
                                                                            ascending: bool) -> None:
        exp_id, _ids, rows = ties
        order = (OrderBy("metric", "score", ascending),)
        assert self._all_pages(store, exp_id, RunFilter(), order, size) == self._expected(rows, ascending)

    @pytest.mark.parametrize("size", [1, 3, 1000])
    def test_metric_order_with_filters_on_the_same_and_other_keys(self, store: Store, ties, size: int) -> None:
        exp_id, _ids, rows = ties
        flt = _where(("metric", "score", ">=", 0.5), ("param", "group", "=", "g"))
        found = self._all_pages(store, exp_id, flt, (OrderBy("metric", "score", False),), size)
        assert found == self._expected(rows, False, keep=lambda v: v is not None and v >= 0.5)
        flt = _where(("metric", "score", "<", 0.9), ("param", "group", "=", "g"))
        found = self._all_pages(store, exp_id, flt, (OrderBy("metric", "score", True),), size)
        assert found == self._expected(rows, True, keep=lambda v: v is not None and v < 0.9)

    def test_nan_matches_no_comparison_but_has_a_value(self, store: Store, ties) -> None:
        exp_id, ids, _rows = ties
        nan_runs = {name for name, _start, _score, nan in _TIES if nan}

        def names(*terms: tuple) -> set[str]:
            return {ids[r.run_id] for r in store.runs.search(RunQuery((exp_id,), _where(*terms))).items}

        assert nan_runs
        assert names(("metric", "score", "IS NOT NULL", None)) >= nan_runs
        assert not names(("metric", "score", "!=", 0.5)) & nan_runs
        assert not names(("metric", "score", ">", -1e300)) & nan_runs

    @pytest.mark.parametrize("size", [1, 4, 1000])
    def test_equalities_probed_per_run_page_like_a_plain_sort(self, store: Store, ties, size: int) -> None:
        """Equality terms checked run by run (on SQLite from the (key, value, run_id) index alone)
        give the runs a plain filter gives, in the default order, ties on start time included;
        NaN equals nothing, and IN lists mixing known and unknown values match the known ones."""
        exp_id, _ids, rows = ties
        newest_first = sorted(rows, key=lambda r: (-r[1], r[0]))
        half = [r[0] for r in newest_first if r[2] == 0.5]
        assert half
        for terms in [(("param", "group", "=", "g"), ("metric", "score", "=", 0.5)),
                      (("metric", "score", "=", 0.5), ("param", "group", "IN", ("g", "nope"))),
                      (("metric", "score", ">=", 0.5), ("metric", "score", "<=", 0.5), ("param", "group", "=", "g"))]:
            assert self._all_pages(store, exp_id, _where(*terms), (), size) == half
        nan_equal = _where(("metric", "score", "=", math.nan), ("param", "group", "=", "g"))
        if isinstance(store, RestStore):  # JSON cannot carry NaN, and the client says so
            with pytest.raises(InvalidInput, match="NaN"):
                self._all_pages(store, exp_id, nan_equal, (), size)
        else:
            assert self._all_pages(store, exp_id, nan_equal, (), size) == []
        assert self._all_pages(store, exp_id, _where(("param", "group", "=", "G")), (), size) == []

    def test_start_time_order_pages_with_ties(self, store: Store, ties) -> None:
        exp_id, _ids, rows = ties
        for ascending in (False, True):
            found = self._all_pages(store, exp_id, RunFilter(), (OrderBy("attribute", "start_time", ascending),), 4)
            expected = sorted(rows, key=lambda r: (r[1] if ascending else -r[1], r[0]))
            assert found == [r[0] for r in expected]

    def test_params_mixing_numbers_and_strings(self, store: Store) -> None:
        exp_id = store.experiments.create(f"mixed-{uuid.uuid4().hex[:10]}").experiment_id
        ids = {}
        for n, value in enumerate(["10", "9", "abc", "10.0", "1e3", ""]):
            run_id = store.runs.create(exp_id, run_name=f"m{n}", start_time=n).info.run_id
            store.runs.log_params(run_id, [Param("size", value)])
            store.runs.set_tags(run_id, [RunTag("size", value)])
            ids[run_id] = value

        def values(*terms: tuple, order: tuple[OrderBy, ...] = ()) -> list[str]:
            return [ids[r.run_id] for r in store.runs.search(RunQuery((exp_id,), _where(*terms), order_by=order)).items]

        for kind in ("param", "tag"):
            assert values((kind, "size", "=", "10")) == ["10"]  # compared as text: not "10.0"
            assert sorted(values((kind, "size", "IN", ("9", "abc", "7")))) == ["9", "abc"]
            assert sorted(values((kind, "size", "LIKE", "1%"))) == ["10", "10.0", "1e3"]
            assert values((kind, "size", "=", "")) == [""]
            assert values((kind, "size", "=", "10"), ("param", "size", "!=", "9")) == ["10"]
        assert values(order=(OrderBy("param", "size", True),)) == ["", "10", "10.0", "1e3", "9", "abc"]

    def test_a_key_no_run_has(self, store: Store, ties) -> None:
        exp_id, _ids, rows = ties
        for terms in [("metric", "nope", ">", 0.0), ("param", "nope", "=", "x"), ("tag", "nope", "IN", ("a",)),
                      ("metric", "nope", "IS NOT NULL", None)]:
            assert store.runs.search(RunQuery((exp_id,), _where(terms))).items == []
            assert store.runs.search(RunQuery((exp_id,), _where(("param", "group", "=", "g"), terms))).items == []
        every = store.runs.search(RunQuery((exp_id,), _where(("metric", "nope", "IS NULL", None)))).items
        assert len(every) == len(rows)
        ordered = store.runs.search(RunQuery((exp_id,), order_by=(OrderBy("metric", "nope", False),))).items
        assert [r.run_id for r in ordered] == [r[0] for r in sorted(rows, key=lambda r: (-r[1], r[0]))]

    @pytest.mark.parametrize("size", [0, 50_001])
    def test_max_results_beyond_the_limit_names_it(self, store: Store, size: int) -> None:
        exp_id = store.experiments.create(f"limit-{uuid.uuid4().hex[:10]}").experiment_id
        with pytest.raises(InvalidInput, match="50000"):
            store.runs.search(RunQuery((exp_id,), max_results=size))
        assert store.runs.search(RunQuery((exp_id,), max_results=50_000)).items == []

    # -- metric history as columns ------------------------------------------------------------
    def test_history_columns_equal_the_history(self, store: Store) -> None:
        exp_id = store.experiments.create(f"hist-{uuid.uuid4().hex[:10]}").experiment_id
        run_id = store.runs.create(exp_id, run_name="h", start_time=1).info.run_id
        points = [Metric("loss", 1.0 / (s + 1), s, 100 + s) for s in range(500)]
        points += [Metric("loss", math.nan, 500, 1), Metric("loss", math.inf, 501, 1), Metric("loss", -0.5, 3, 50)]
        store.metrics.log(run_id, points)
        columns = store.metrics.history_columns(run_id, "loss")
        objects = store.metrics.history(run_id, "loss")
        assert len(columns) == len(objects) == 503
        assert list(columns.steps) == [m.step for m in objects]
        assert list(columns.timestamps) == [m.timestamp for m in objects]
        assert math.isnan(columns.values[-2])
        assert columns.values[-1] == math.inf
        assert [v for v in columns.values if not math.isnan(v)] == [m.value for m in objects if not math.isnan(m.value)]
        assert [(m.step, m.timestamp) for m in columns.metrics()] == [(m.step, m.timestamp) for m in objects]
        assert len(store.metrics.history_columns(run_id, "unknown")) == 0
        with pytest.raises(NotFound, match="ghost"):
            store.metrics.history_columns("ghost", "loss")
