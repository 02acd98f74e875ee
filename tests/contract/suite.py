"""The contract every Store implementation must pass.

Written once and subclassed per backend (see test_sqlite.py, test_postgres.py); a subclass
only provides the ``store`` fixture. Tests never assume an empty store: each makes its own
experiments with unique names, so backends may share one database per session.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import replace

import pytest

from shipyard.entities import (
    Comparison,
    LifecycleStage,
    Metric,
    Node,
    NodeKind,
    Op,
    OrderBy,
    Param,
    RunFilter,
    RunInfo,
    RunQuery,
    RunStatus,
    RunTag,
    RunWrite,
    ViewType,
)
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound, RunNotActive
from shipyard.store import Store
from tests.contract.data_suite import DataStoreContract
from tests.contract.models_suite import ModelStoreContract
from tests.contract.projects_suite import ProjectsContract
from tests.contract.search_suite import SearchEdgesContract


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# (comparisons, names of the corpus runs they match)
SEARCH_CASES = [
    ((("metric", "loss", "<", 0.6),), "bc"),
    ((("metric", "loss", ">=", 0.5),), "ab"),
    ((("metric", "loss", "=", 0.2),), "c"),
    ((("metric", "loss", "!=", 0.2),), "ab"),
    ((("metric", "acc", ">", 0.0),), ""),
    ((("param", "lr", "=", "0.01"),), "ac"),
    ((("param", "lr", "!=", "0.01"),), "bd"),
    ((("param", "lr", "IN", ("0.1", "1")),), "bd"),
    ((("param", "lr", "NOT IN", ("0.1", "1")),), "ac"),
    ((("param", "lr", "LIKE", "0.%"),), "abc"),
    ((("tag", "env", "LIKE", "prod"),), "b"),
    ((("tag", "env", "ILIKE", "PROD"),), "ab"),
    ((("attribute", "status", "=", "FAILED"),), "d"),
    ((("attribute", "run_name", "IN", ("a", "c")),), "ac"),
    ((("attribute", "user_id", "=", "user-b"),), "b"),
    ((("attribute", "start_time", ">", 2.0),), "cd"),
    ((("metric", "loss", "<", 0.6), ("param", "lr", "=", "0.01")), "c"),
    ((("metric", "loss", "<", 0.6), ("param", "depth", "=", "6"), ("tag", "env", "=", "prod")), "b"),
    ((("tag", "env", "IS NULL", None),), ""),
    ((("tag", "team", "IS NULL", None),), "abcd"),
    ((("param", "lr", "IS NOT NULL", None),), "abcd"),
    ((("metric", "acc", "IS NOT NULL", None),), ""),
    ((("attribute", "end_time", "IS NULL", None),), "abcd"),
]

SEARCH_CASE_IDS = ["metric-lt", "metric-ge", "metric-eq", "metric-ne-excludes-nan", "missing-metric",
                   "param-eq", "param-ne", "param-in", "param-not-in", "param-like", "like-is-case-sensitive",
                   "ilike", "status", "run-name-in", "user", "start-time", "metric-and-param", "three-way",
                   "tag-is-null", "missing-tag-is-null", "param-is-not-null", "missing-metric-not-null",
                   "end-time-null"]


def where(*comparisons: tuple) -> RunFilter:
    return RunFilter(tuple(Comparison(kind, key, Op(op), value) for kind, key, op, value in comparisons))


class StoreContract(ModelStoreContract, DataStoreContract, SearchEdgesContract, ProjectsContract):
    __test__ = False

    # -- helpers -------------------------------------------------------------------------
    def new_run(self, store: Store, experiment_id: str | None = None, **kwargs):
        exp = experiment_id or store.experiments.create(unique()).experiment_id
        kwargs.setdefault("run_name", "r")
        kwargs.setdefault("start_time", 1000)
        return store.runs.create(exp, **kwargs)

    def search(self, store: Store, exp_id: str, flt: RunFilter = RunFilter(), **kwargs):
        return store.runs.search(RunQuery((exp_id,), flt, **kwargs))

    # -- experiments ---------------------------------------------------------------------
    def test_default_experiment_exists(self, store: Store) -> None:
        default = store.experiments.get("0")
        assert default.name == "Default"
        assert store.experiments.get_by_name("Default").experiment_id == "0"

    def test_create_get_list_experiment(self, store: Store) -> None:
        name = unique()
        exp = store.experiments.create(name, tags={"team": "growth"})
        assert exp.name == name
        assert exp.tags == {"team": "growth"}
        assert exp.lifecycle_stage is LifecycleStage.ACTIVE
        assert exp.creation_time > 0
        assert store.experiments.get(exp.experiment_id) == exp
        assert store.experiments.get_by_name(name) == exp
        assert exp.experiment_id in {e.experiment_id for e in store.experiments.list()}
        assert store.experiments.get_by_name(unique()) is None

    def test_duplicate_experiment_name(self, store: Store) -> None:
        name = unique()
        store.experiments.create(name)
        with pytest.raises(AlreadyExists, match=name):
            store.experiments.create(name)

    @pytest.mark.parametrize("bad_id", ["987654321", "not-a-number", ""],
                             ids=["unknown", "malformed", "empty"])
    def test_unknown_experiment(self, store: Store, bad_id: str) -> None:
        with pytest.raises(NotFound, match=f"experiment '{bad_id}'"):
            store.experiments.get(bad_id)
        with pytest.raises(NotFound):
            store.experiments.delete(bad_id)
        with pytest.raises(NotFound):
            store.experiments.rename(bad_id, unique())

    def test_rename_experiment(self, store: Store) -> None:
        exp = store.experiments.create(unique())
        taken = store.experiments.create(unique())
        new_name = unique()
        assert store.experiments.rename(exp.experiment_id, new_name).name == new_name
        assert store.experiments.get_by_name(new_name).experiment_id == exp.experiment_id
        with pytest.raises(AlreadyExists):
            store.experiments.rename(exp.experiment_id, taken.name)
        assert store.experiments.get(exp.experiment_id).name == new_name

    def test_delete_and_restore_experiment(self, store: Store) -> None:
        exp = store.experiments.create(unique())
        store.experiments.delete(exp.experiment_id)
        assert store.experiments.get(exp.experiment_id).lifecycle_stage is LifecycleStage.DELETED
        assert exp.experiment_id not in {e.experiment_id for e in store.experiments.list()}
        deleted = store.experiments.list(ViewType.DELETED_ONLY)
        assert exp.experiment_id in {e.experiment_id for e in deleted}
        with pytest.raises(AlreadyExists, match="deleted"):
            store.experiments.create(exp.name)
        with pytest.raises(RunNotActive):
            store.runs.create(exp.experiment_id, run_name="r", start_time=1)
        store.experiments.restore(exp.experiment_id)
        assert exp.experiment_id in {e.experiment_id for e in store.experiments.list()}

    def test_experiment_tags(self, store: Store) -> None:
        exp = store.experiments.create(unique(), tags={"a": "1"})
        store.experiments.set_tags(exp.experiment_id, {"a": "2", "b": "3"})
        assert store.experiments.get(exp.experiment_id).tags == {"a": "2", "b": "3"}
        store.experiments.delete_tag(exp.experiment_id, "a")
        assert store.experiments.get(exp.experiment_id).tags == {"b": "3"}
        with pytest.raises(NotFound, match="'a'"):
            store.experiments.delete_tag(exp.experiment_id, "a")

    # -- runs ----------------------------------------------------------------------------
    def test_create_and_get_run(self, store: Store) -> None:
        exp = store.experiments.create(unique())
        run = store.runs.create(exp.experiment_id, run_name="baseline", start_time=123, user_id="ana",
                                source="train.py", tags={"k": "v"})
        assert len(run.info.run_id) == 32
        got = store.runs.get(run.info.run_id)
        assert got.info == run.info
        assert got.info.status is RunStatus.RUNNING
        assert got.info.experiment_id == exp.experiment_id
        assert (got.info.run_name, got.info.user_id, got.info.source) == ("baseline", "ana", "train.py")
        assert got.data.tags == {"k": "v"}

    def test_run_errors(self, store: Store) -> None:
        with pytest.raises(NotFound, match="'nope'"):
            store.runs.get("nope")
        with pytest.raises(NotFound, match="experiment '424242'"):
            store.runs.create("424242", run_name="r", start_time=1)
        orphan = self.new_run(store, parent_run_id="ghost")  # a parent elsewhere: kept, not linked
        assert store.runs.get(orphan.info.run_id).info.parent_run_id == "ghost"
        assert store.lineage.edges([Node(NodeKind.RUN, orphan.info.run_id)], upstream=True) == []
        with pytest.raises(NotFound):
            store.runs.update("nope", status=RunStatus.FINISHED)
        with pytest.raises(NotFound):
            store.runs.delete("nope")

    def test_nested_run_records_parent(self, store: Store) -> None:
        parent = self.new_run(store)
        child = self.new_run(store, parent.info.experiment_id, parent_run_id=parent.info.run_id)
        assert store.runs.get(child.info.run_id).info.parent_run_id == parent.info.run_id

    def test_update_run(self, store: Store) -> None:
        run = self.new_run(store)
        info = store.runs.update(run.info.run_id, status=RunStatus.FINISHED, end_time=2000, run_name="final")
        assert (info.status, info.end_time, info.run_name) == (RunStatus.FINISHED, 2000, "final")
        assert store.runs.get(run.info.run_id).info == info

    def test_delete_and_restore_run(self, store: Store) -> None:
        run = self.new_run(store)
        exp_id = run.info.experiment_id
        store.runs.delete(run.info.run_id)
        assert store.runs.get(run.info.run_id).info.lifecycle_stage is LifecycleStage.DELETED
        assert self.search(store, exp_id).items == []
        assert len(self.search(store, exp_id, view=ViewType.DELETED_ONLY).items) == 1
        assert len(self.search(store, exp_id, view=ViewType.ALL).items) == 1
        with pytest.raises(RunNotActive, match="deleted"):
            store.runs.set_tags(run.info.run_id, [RunTag("a", "b")])
        store.runs.restore(run.info.run_id)
        assert [r.run_id for r in self.search(store, exp_id).items] == [run.info.run_id]

    def test_write_creates_a_run_with_its_data(self, store: Store) -> None:
        exp_id = store.experiments.create(unique()).experiment_id
        parent = self.new_run(store, exp_id)
        run_id = uuid.uuid4().hex
        new = RunInfo(run_id, exp_id, "trial", RunStatus.RUNNING, 100, parent_run_id=parent.info.run_id,
                      user_id="ana", source="tune.py")
        info = store.runs.write(run_id, create=new, params=[Param("lr", "0.1")], tags=[RunTag("t", "1")],
                                metrics=[Metric("loss", 0.5, 0, 1), Metric("loss", 0.25, 1, 2)],
                                status=RunStatus.FINISHED, end_time=200)
        assert info == RunInfo(run_id, exp_id, "trial", RunStatus.FINISHED, 100, 200, LifecycleStage.ACTIVE,
                               parent.info.run_id, "ana", "tune.py")
        got = store.runs.get(run_id)
        assert got.info == info
        assert (dict(got.data.params), dict(got.data.tags), got.data.metrics) == ({"lr": "0.1"}, {"t": "1"},
                                                                                 {"loss": 0.25})
        assert [m.value for m in store.metrics.history(run_id, "loss")] == [0.5, 0.25]
        assert [e.source.id for e in store.lineage.edges([Node(NodeKind.RUN, run_id)], upstream=True)] == \
            [parent.info.run_id]
        with pytest.raises(AlreadyExists, match=run_id):
            store.runs.write(run_id, create=new)
        running = uuid.uuid4().hex
        assert store.runs.write(running, create=replace(new, run_id=running, parent_run_id=None)).status \
            is RunStatus.RUNNING

    def test_write_is_all_or_nothing(self, store: Store) -> None:
        exp = store.experiments.create(unique())
        run_id = uuid.uuid4().hex
        new = RunInfo(run_id, exp.experiment_id, "r", RunStatus.RUNNING, 1)
        with pytest.raises(InvalidInput, match="twice"):
            store.runs.write(run_id, create=new, params=[Param("a", "1"), Param("a", "2")])
        with pytest.raises(NotFound):
            store.runs.get(run_id)  # the run was not created either
        with pytest.raises(NotFound, match="experiment '424242'"):
            store.runs.write(run_id, create=replace(new, experiment_id="424242"))
        store.runs.write(run_id, create=new, params=[Param("a", "1")])
        with pytest.raises(Conflict, match="immutable"):
            store.runs.write(run_id, params=[Param("b", "2"), Param("a", "9")], tags=[RunTag("t", "x")],
                             metrics=[Metric("m", 1.0, 0, 1)], status=RunStatus.FINISHED, end_time=5)
        got = store.runs.get(run_id)
        assert (dict(got.data.params), dict(got.data.tags), got.data.metrics, got.info.status) == \
            ({"a": "1"}, {}, {}, RunStatus.RUNNING)
        with pytest.raises(NotFound, match="'ghost'"):
            store.runs.write("ghost", status=RunStatus.FINISHED)
        other = uuid.uuid4().hex
        store.experiments.delete(exp.experiment_id)
        with pytest.raises(RunNotActive, match="deleted"):
            store.runs.write(other, create=replace(new, run_id=other))

    def test_write_ends_a_run_with_its_last_metrics(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.metrics.log(run_id, [Metric("m", 1.0, 5, 10)])
        info = store.runs.write(run_id, metrics=[Metric("m", 0.5, 3, 20), Metric("n", 2.0, 0, 20)],
                                status=RunStatus.FAILED, end_time=30)
        assert (info.status, info.end_time, info.run_name) == (RunStatus.FAILED, 30, "r")
        assert store.runs.get(run_id).data.metrics == {"m": 1.0, "n": 2.0}  # step 5 stays the latest
        store.runs.delete(run_id)
        with pytest.raises(RunNotActive, match="deleted"):
            store.runs.write(run_id, metrics=[Metric("m", 2.0, 6, 40)], status=RunStatus.FINISHED)
        assert store.runs.write(run_id, status=RunStatus.KILLED).status is RunStatus.KILLED  # as update does

    def test_write_many_is_all_or_nothing_per_run(self, store: Store) -> None:
        exp_id = store.experiments.create(unique()).experiment_id
        parent, child, bad = (uuid.uuid4().hex for _ in range(3))
        running = self.new_run(store, exp_id).info.run_id
        new = RunInfo(parent, exp_id, "p", RunStatus.RUNNING, 1, user_id="ana", source="tune.py")
        outcomes = store.runs.write_many([
            RunWrite(parent, new, [Param("lr", "0.1")], [RunTag("t", "1")],
                     [Metric("m", 0.5, 0, 1), Metric("m", math.nan, 1, 2)]),
            RunWrite(child, replace(new, run_id=child, run_name="c", parent_run_id=parent),
                     status=RunStatus.FINISHED, end_time=9),
            RunWrite(bad, replace(new, run_id=bad), params=[Param("a", "1"), Param("a", "2")]),
            RunWrite(running, metrics=[Metric("m", 2.0, 3, 4)], status=RunStatus.KILLED, end_time=7),
        ])
        assert [type(o) for o in outcomes] == [RunInfo, RunInfo, InvalidInput, RunInfo]
        assert outcomes[1] == RunInfo(child, exp_id, "c", RunStatus.FINISHED, 1, 9, LifecycleStage.ACTIVE, parent,
                                      "ana", "tune.py")
        with pytest.raises(NotFound):
            store.runs.get(bad)  # that run alone is missing
        got = store.runs.get(parent)
        assert (dict(got.data.params), dict(got.data.tags)) == ({"lr": "0.1"}, {"t": "1"})
        assert math.isnan(got.data.metrics["m"])  # step 1 is the latest
        assert [e.source.id for e in store.lineage.edges([Node(NodeKind.RUN, child)], upstream=True)] == [parent]
        assert store.runs.get(child).info == outcomes[1]
        ended = store.runs.get(running)
        assert (ended.info.status, ended.info.end_time, ended.data.metrics) == (RunStatus.KILLED, 7, {"m": 2.0})
        fresh = uuid.uuid4().hex
        taken, made = store.runs.write_many([RunWrite(parent, new), RunWrite(fresh, replace(new, run_id=fresh))])
        assert isinstance(taken, AlreadyExists)
        assert isinstance(made, RunInfo)
        assert store.runs.get(fresh).info == made
        assert store.runs.write_many([]) == []
        with pytest.raises(InvalidInput, match="twice"):
            store.runs.write_many([RunWrite(fresh, status=RunStatus.FAILED), RunWrite(fresh, end_time=3)])
        assert store.runs.get(fresh).info.status is RunStatus.RUNNING

    # -- params and tags -----------------------------------------------------------------
    def test_params_are_immutable(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.runs.log_params(run_id, [Param("lr", "0.01"), Param("depth", "6")])
        store.runs.log_params(run_id, [Param("lr", "0.01")])  # same value again: fine
        with pytest.raises(Conflict, match=r"'0\.01'.*'0\.02'") as err:
            store.runs.log_params(run_id, [Param("new", "x"), Param("lr", "0.02")])
        assert err.value.details == {"key": "lr", "old_value": "0.01", "new_value": "0.02"}
        assert store.runs.get(run_id).data.params == {"lr": "0.01", "depth": "6"}  # "new" not written

    def test_duplicate_param_in_one_call(self, store: Store) -> None:
        run = self.new_run(store)
        with pytest.raises(InvalidInput, match="twice"):
            store.runs.log_params(run.info.run_id, [Param("a", "1"), Param("a", "2")])

    def test_finished_runs_take_additions_deleted_runs_nothing(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.runs.update(run_id, status=RunStatus.FINISHED, end_time=5)
        store.runs.log_params(run_id, [Param("a", "1")])  # e.g. an evaluation after the run ended
        store.metrics.log(run_id, [Metric("m", 1.0, 0, 1)])
        with pytest.raises(Conflict, match="immutable"):
            store.runs.log_params(run_id, [Param("a", "2")])
        got = store.runs.get(run_id)
        assert got.data.params == {"a": "1"}
        assert got.data.metrics == {"m": 1.0}
        assert got.info.status is RunStatus.FINISHED
        store.runs.delete(run_id)
        with pytest.raises(RunNotActive, match="deleted"):
            store.metrics.log(run_id, [Metric("m", 2.0, 1, 2)])
        with pytest.raises(RunNotActive, match="deleted"):
            store.runs.log_params(run_id, [Param("b", "1")])
        store.runs.restore(run_id)
        store.runs.set_tags(run_id, [RunTag("reviewed", "yes")])  # tags annotate finished runs
        assert store.runs.get(run_id).data.tags == {"reviewed": "yes"}

    def test_tags_overwrite_and_delete(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.runs.set_tags(run_id, [RunTag("a", "1"), RunTag("b", "2")])
        store.runs.set_tags(run_id, [RunTag("a", "3")])
        assert store.runs.get(run_id).data.tags == {"a": "3", "b": "2"}
        store.runs.delete_tag(run_id, "a")
        assert store.runs.get(run_id).data.tags == {"b": "2"}
        with pytest.raises(NotFound, match="'a'"):
            store.runs.delete_tag(run_id, "a")

    # -- metrics -------------------------------------------------------------------------
    def test_metric_history_and_latest(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.metrics.log(run_id, [Metric("loss", 0.9, 0, 10), Metric("loss", 0.5, 5, 11)])
        store.metrics.log(run_id, [Metric("loss", 0.7, 3, 12), Metric("acc", 0.1, 0, 10)])
        history = store.metrics.history(run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 0.9), (3, 0.7), (5, 0.5)]
        latest = store.runs.get(run_id).data
        assert latest.metrics == {"loss": 0.5, "acc": 0.1}  # step 5 stays latest after step 3
        assert latest.latest_metrics["loss"] == Metric("loss", 0.5, 5, 11)
        assert store.metrics.history(run_id, "unknown") == []
        with pytest.raises(NotFound, match="'ghost'"):
            store.metrics.history("ghost", "loss")

    def test_same_step_later_timestamp_wins(self, store: Store) -> None:
        run = self.new_run(store)
        store.metrics.log(run.info.run_id, [Metric("m", 1.0, 2, 100)])
        store.metrics.log(run.info.run_id, [Metric("m", 2.0, 2, 200)])
        store.metrics.log(run.info.run_id, [Metric("m", 3.0, 2, 150)])
        assert store.runs.get(run.info.run_id).data.metrics["m"] == 2.0

    def test_nan_and_infinity_round_trip(self, store: Store) -> None:
        run = self.new_run(store)
        run_id = run.info.run_id
        store.metrics.log(run_id, [Metric("nan", float("nan"), 0, 1), Metric("pinf", math.inf, 0, 1),
                                   Metric("ninf", -math.inf, 0, 1)])
        assert math.isnan(store.metrics.history(run_id, "nan")[0].value)
        assert store.metrics.history(run_id, "pinf")[0].value == math.inf
        assert store.metrics.history(run_id, "ninf")[0].value == -math.inf
        latest = store.runs.get(run_id).data.metrics
        assert math.isnan(latest["nan"])
        assert (latest["pinf"], latest["ninf"]) == (math.inf, -math.inf)

    def test_unknown_run_metrics(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.metrics.log("ghost", [Metric("m", 1.0, 0, 1)])

    # -- search --------------------------------------------------------------------------
    @pytest.fixture
    def corpus(self, store: Store) -> tuple[str, dict[str, str]]:
        """Four runs with params, metrics and tags to search."""
        exp_id = store.experiments.create(unique()).experiment_id
        ids = {}
        spec = [("a", 1, "0.01", 0.9, "Prod"), ("b", 2, "0.1", 0.5, "prod"),
                ("c", 3, "0.01", 0.2, "dev"), ("d", 4, "1", float("nan"), "dev")]
        for name, start, lr, loss, env in spec:
            run = store.runs.create(exp_id, run_name=name, start_time=start, user_id=f"user-{name}")
            ids[name] = run.info.run_id
            store.runs.log_params(run.info.run_id, [Param("lr", lr), Param("depth", "6")])
            store.runs.set_tags(run.info.run_id, [RunTag("env", env)])
            store.metrics.log(run.info.run_id, [Metric("loss", loss, 0, 1)])
        store.runs.update(ids["d"], status=RunStatus.FAILED)
        return exp_id, ids

    @pytest.mark.parametrize(("comparisons", "expected"), SEARCH_CASES, ids=SEARCH_CASE_IDS)
    def test_search_filters(self, store: Store, corpus, comparisons, expected: str) -> None:
        exp_id, ids = corpus
        found = self.search(store, exp_id, where(*comparisons)).items
        assert sorted(r.run_id for r in found) == sorted(ids[n] for n in expected)

    @pytest.mark.parametrize(("comparisons", "expected"), SEARCH_CASES, ids=SEARCH_CASE_IDS)
    def test_search_filters_behind_an_equality(self, store: Store, corpus, comparisons, expected: str) -> None:
        """The same filters after an equality every run meets: SQL stores then check metrics,
        params and tags per candidate run instead of as a set, and must agree."""
        exp_id, ids = corpus
        found = self.search(store, exp_id, where(("param", "depth", "=", "6"), *comparisons)).items
        assert sorted(r.run_id for r in found) == sorted(ids[n] for n in expected)

    def test_search_returns_full_runs(self, store: Store, corpus) -> None:
        exp_id, _ids = corpus
        (run,) = self.search(store, exp_id, where(("attribute", "run_name", "=", "c"))).items
        assert run.data.params == {"lr": "0.01", "depth": "6"}
        assert run.data.metrics == {"loss": 0.2}
        assert run.data.tags == {"env": "dev"}

    def test_search_order(self, store: Store, corpus) -> None:
        exp_id, ids = corpus
        names = {v: k for k, v in ids.items()}

        def order(*orders: OrderBy) -> str:
            return "".join(names[r.run_id] for r in self.search(store, exp_id, order_by=orders).items)

        assert order() == "dcba"  # newest first
        assert order(OrderBy("metric", "loss", True)) == "cbad"  # NaN (no value) last
        assert order(OrderBy("metric", "loss", False)) == "abcd"
        assert order(OrderBy("param", "lr", True), OrderBy("attribute", "start_time", True)) == "acbd"
        assert order(OrderBy("attribute", "run_name", False)) == "dcba"

    def test_search_pages(self, store: Store) -> None:
        exp_id = store.experiments.create(unique()).experiment_id
        made = {store.runs.create(exp_id, run_name=f"r{i}", start_time=i).info.run_id for i in range(7)}
        seen, token, pages = [], None, 0
        while True:
            page = store.runs.search(RunQuery((exp_id,), max_results=3, page_token=token))
            seen += [r.run_id for r in page.items]
            pages += 1
            token = page.next_page_token
            if token is None:
                break
        assert pages == 3
        assert len(seen) == 7
        assert set(seen) == made

    def test_search_bad_page_token(self, store: Store) -> None:
        exp_id = store.experiments.create(unique()).experiment_id
        with pytest.raises(InvalidInput, match="page token"):
            store.runs.search(RunQuery((exp_id,), page_token="garbage!"))

    def test_search_several_experiments(self, store: Store) -> None:
        a = self.new_run(store)
        b = self.new_run(store)
        found = store.runs.search(RunQuery((a.info.experiment_id, b.info.experiment_id))).items
        assert {r.run_id for r in found} == {a.info.run_id, b.info.run_id}
