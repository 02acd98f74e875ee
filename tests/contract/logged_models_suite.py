"""The LoggedModelStore part of the store contract (mixed into the backend test classes, so it
runs against SQLite file and memory stores, PostgreSQL and the REST store)."""

from __future__ import annotations

import math
import uuid

import pytest

from shipyard.entities import (
    LOGGED_MODEL_GRAMMAR,
    Comparison,
    LifecycleStage,
    LoggedModel,
    LoggedModelDataset,
    LoggedModelMetric,
    LoggedModelQuery,
    LoggedModelStatus,
    Op,
    OrderBy,
    RunFilter,
    RunLink,
    RunLinkKind,
    ViewType,
)
from shipyard.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.filters import parse_filter
from shipyard.store import Store


def model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


def models_where(experiment_id: str, text: str = "", **kwargs) -> LoggedModelQuery:
    return LoggedModelQuery((experiment_id,), parse_filter(text, LOGGED_MODEL_GRAMMAR), **kwargs)


class LoggedModelStoreContract:
    __test__ = False

    def new_experiment(self, store: Store) -> str:
        return store.experiments.create(f"lm-{uuid.uuid4().hex[:10]}").experiment_id

    def new_logged_model(self, store: Store, experiment_id: str | None = None, **fields) -> LoggedModel:
        experiment_id = experiment_id or self.new_experiment(store)
        fields.setdefault("name", "model")
        fields.setdefault("run_id", uuid.uuid4().hex)
        fields.setdefault("artifact_path", "model")
        return store.logged_models.create(LoggedModel(model_id(), experiment_id, **fields))

    # -- create and get ------------------------------------------------------------------------
    def test_logged_model_create_and_get(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        run = self.new_run(store, exp_id)
        mid = model_id()
        made = store.logged_models.create(LoggedModel(
            mid, exp_id, "churn", run.info.run_id, "./outputs//model/", source_run_id=run.info.run_id,
            model_type="agent", tags={"team": "growth"}, params={"lr": "0.1"}))
        assert (made.model_id, made.experiment_id, made.name, made.run_id, made.source_run_id) == \
            (mid, exp_id, "churn", run.info.run_id, run.info.run_id)
        assert made.artifact_path == "outputs/model"  # stored in canonical form
        assert (made.status, made.status_message, made.model_type) == (LoggedModelStatus.PENDING, "", "agent")
        assert made.lifecycle_stage is LifecycleStage.ACTIVE
        assert made.creation_time > 0
        assert made.last_update_time == made.creation_time
        assert (made.tags, made.params) == ({"team": "growth"}, {"lr": "0.1"})
        assert store.logged_models.get(mid) == made

    def test_logged_model_create_keeps_given_times_and_status(self, store: Store) -> None:
        made = self.new_logged_model(store, creation_time=1234, last_update_time=5678, status=LoggedModelStatus.READY,
                                     status_message="uploaded")
        assert (made.creation_time, made.last_update_time) == (1234, 5678)
        assert (made.status, made.status_message) == (LoggedModelStatus.READY, "uploaded")
        assert made.source_run_id is None

    def test_logged_model_duplicate_id(self, store: Store) -> None:
        made = self.new_logged_model(store)
        with pytest.raises(AlreadyExists, match=made.model_id):
            store.logged_models.create(LoggedModel(made.model_id, made.experiment_id, "other", made.run_id, "m"))
        assert store.logged_models.get(made.model_id).name == "model"

    def test_logged_model_create_in_unknown_or_deleted_experiment(self, store: Store) -> None:
        with pytest.raises(NotFound, match="987654321"):
            store.logged_models.create(LoggedModel(model_id(), "987654321", "m", uuid.uuid4().hex, "m"))
        exp_id = self.new_experiment(store)
        store.experiments.delete(exp_id)
        with pytest.raises(Conflict, match="deleted"):
            store.logged_models.create(LoggedModel(model_id(), exp_id, "m", uuid.uuid4().hex, "m"))

    @pytest.mark.parametrize(("fields", "match"), [
        ({"model_id": "m-" + "A" * 32}, "not valid"),
        ({"model_id": "m-" + "0" * 31}, "not valid"),
        ({"model_id": "0" * 32}, "not valid"),
        ({"name": ""}, "empty"),
        ({"name": "   "}, "empty"),
        ({"run_id": ""}, "run id"),
        ({"artifact_path": "../elsewhere"}, r"\.\."),
        ({"tags": {"a..b": "x"}}, "tag key"),
        ({"tags": {"k" * 251: "x"}}, "tag key"),
        ({"tags": {"t": "x" * 8001}}, "at most 8000"),
        ({"params": {"/abs": "x"}}, "param key"),
        ({"params": {"p": "x" * 6001}}, "at most 6000"),
    ], ids=["id-upper-case", "id-short", "id-no-prefix", "empty-name", "blank-name", "empty-run-id",
            "path-escapes", "tag-key-dots", "tag-key-long", "tag-value-long", "param-key-absolute",
            "param-value-long"])
    def test_logged_model_create_refuses_bad_input(self, store: Store, fields: dict, match: str) -> None:
        exp_id = self.new_experiment(store)
        base = {"model_id": model_id(), "experiment_id": exp_id, "name": "m", "run_id": uuid.uuid4().hex,
                "artifact_path": "model"}
        with pytest.raises(InvalidInput, match=match):
            store.logged_models.create(LoggedModel(**{**base, **fields}))
        assert store.logged_models.search(LoggedModelQuery((exp_id,))).items == []

    @pytest.mark.parametrize("call", [
        lambda s, m: s.logged_models.get(m),
        lambda s, m: s.logged_models.update(m, status=LoggedModelStatus.READY),
        lambda s, m: s.logged_models.update(m),
        lambda s, m: s.logged_models.set_tags(m, {"a": "b"}),
        lambda s, m: s.logged_models.delete_tag(m, "a"),
        lambda s, m: s.logged_models.log_params(m, {"a": "b"}),
        lambda s, m: s.logged_models.delete(m),
    ], ids=["get", "update", "update-nothing", "set_tags", "delete_tag", "log_params", "delete"])
    # A fixed unknown id: every test process must collect the same parameters.
    @pytest.mark.parametrize("missing", ["m-" + "e" * 32, "m-not-an-id"], ids=["unknown", "malformed"])
    def test_logged_model_unknown_model(self, store: Store, call, missing: str) -> None:
        with pytest.raises(NotFound, match=missing):
            call(store, missing)

    # -- changes ---------------------------------------------------------------------------------
    def test_logged_model_update_status(self, store: Store) -> None:
        made = self.new_logged_model(store, creation_time=1, last_update_time=1)
        ready = store.logged_models.update(made.model_id, status=LoggedModelStatus.READY)
        assert (ready.status, ready.status_message) == (LoggedModelStatus.READY, "")
        assert ready.last_update_time > 1
        assert ready.creation_time == 1
        failed = store.logged_models.update(made.model_id, status=LoggedModelStatus.FAILED, status_message="oom")
        assert (failed.status, failed.status_message) == (LoggedModelStatus.FAILED, "oom")
        assert store.logged_models.update(made.model_id) == failed  # nothing given: nothing changes
        assert store.logged_models.get(made.model_id) == failed

    def test_logged_model_tags(self, store: Store) -> None:
        made = self.new_logged_model(store, tags={"a": "1"}, last_update_time=1)
        store.logged_models.set_tags(made.model_id, {"a": "2", "b": "3"})
        store.logged_models.set_tags(made.model_id, {"c": "4", "dir/sub": "5"})
        store.logged_models.delete_tag(made.model_id, "b")
        store.logged_models.delete_tag(made.model_id, "dir/sub")  # keys may hold '/'
        got = store.logged_models.get(made.model_id)
        assert got.tags == {"a": "2", "c": "4"}
        assert got.last_update_time > 1
        with pytest.raises(NotFound, match="no tag 'b'"):
            store.logged_models.delete_tag(made.model_id, "b")
        with pytest.raises(InvalidInput, match="tag key"):
            store.logged_models.set_tags(made.model_id, {"bad..key": "x"})

    def test_logged_model_params_are_immutable(self, store: Store) -> None:
        made = self.new_logged_model(store, params={"lr": "0.1"})
        store.logged_models.log_params(made.model_id, {"lr": "0.1", "depth": "6"})  # same value: fine
        with pytest.raises(InvalidInput, match=r"'0\.1'.*'0\.2'"):
            store.logged_models.log_params(made.model_id, {"new": "1", "lr": "0.2"})
        # Atomic: nothing of the refused call was written.
        assert store.logged_models.get(made.model_id).params == {"lr": "0.1", "depth": "6"}
        with pytest.raises(InvalidInput, match="at most 6000"):
            store.logged_models.log_params(made.model_id, {"big": "x" * 6001})

    def test_logged_model_soft_delete(self, store: Store) -> None:
        made = self.new_logged_model(store)
        kept = self.new_logged_model(store, made.experiment_id)
        store.logged_models.delete(made.model_id)
        assert store.logged_models.get(made.model_id).lifecycle_stage is LifecycleStage.DELETED

        def ids(view: ViewType) -> set[str]:
            return {m.model_id for m in store.logged_models.search(models_where(made.experiment_id, view=view)).items}

        assert ids(ViewType.ACTIVE_ONLY) == {kept.model_id}
        assert ids(ViewType.DELETED_ONLY) == {made.model_id}
        assert ids(ViewType.ALL) == {made.model_id, kept.model_id}

    # -- search ----------------------------------------------------------------------------------
    @pytest.fixture
    def logged_corpus(self, store: Store) -> tuple[str, dict[str, str], str]:
        exp_id = self.new_experiment(store)
        source = self.new_run(store, exp_id).info.run_id
        spec = [("a", "churn-a", 1000, "0.01", "prod", LoggedModelStatus.READY),
                ("b", "churn-b", 2000, "0.1", "dev", LoggedModelStatus.PENDING),
                ("c", "fraud", 3000, "0.01", "dev", LoggedModelStatus.READY),
                ("d", "fraud-2", 4000, "1", None, LoggedModelStatus.FAILED)]
        ids = {}
        for key, name, created, lr, env, status in spec:
            made = self.new_logged_model(store, exp_id, name=name, creation_time=created, last_update_time=created,
                                         status=status, params={"lr": lr}, tags={"env": env} if env else {},
                                         source_run_id=source if key in "ab" else None)
            ids[key] = made.model_id
        return exp_id, ids, source

    @pytest.mark.parametrize(("text", "expected"), [
        ("", "abcd"),
        ("tags.env = 'dev'", "bc"),
        ("tags.env != 'dev'", "a"),
        ("params.lr = '0.01'", "ac"),
        ("params.lr IN ('0.1', '1')", "bd"),
        ("name LIKE 'churn%'", "ab"),
        ("name ILIKE 'FRAUD%'", "cd"),
        ("status = 'READY'", "ac"),
        ("attributes.status != 'READY'", "bd"),
        ("creation_time > 2000", "cd"),
        ("creation_timestamp_ms <= 2000", "ab"),
        ("last_updated_timestamp_ms >= 3000", "cd"),
        ("name LIKE 'fraud%' and params.lr = '0.01' and tags.env = 'dev'", "c"),
        ("status = 'READY' and creation_time > 1000", "c"),
        ("tags.missing = 'x'", ""),
    ], ids=["all", "tag-eq", "tag-ne", "param-eq", "param-in", "name-like", "name-ilike", "status-eq",
            "status-ne", "created-gt", "mlflow-created-spelling", "mlflow-updated-spelling", "three-way",
            "status-and-time", "missing-tag"])
    def test_logged_model_search_filters(self, store: Store, logged_corpus, text: str, expected: str) -> None:
        exp_id, ids, _source = logged_corpus
        found = store.logged_models.search(models_where(exp_id, text)).items
        assert sorted(m.model_id for m in found) == sorted(ids[k] for k in expected)

    def test_logged_model_search_by_source_run_and_id(self, store: Store, logged_corpus) -> None:
        exp_id, ids, source = logged_corpus
        found = store.logged_models.search(models_where(exp_id, f"source_run_id = '{source}'")).items
        assert {m.model_id for m in found} == {ids["a"], ids["b"]}
        found = store.logged_models.search(models_where(exp_id, f"model_id = '{ids['c']}'")).items
        assert [m.model_id for m in found] == [ids["c"]]
        found = store.logged_models.search(models_where(exp_id, f"experiment_id = '{exp_id}'")).items
        assert len(found) == 4

    def test_logged_model_search_returns_full_models(self, store: Store, logged_corpus) -> None:
        exp_id, ids, _source = logged_corpus
        (found,) = store.logged_models.search(models_where(exp_id, "name = 'churn-b'")).items
        assert found == store.logged_models.get(ids["b"])
        assert (found.params, found.tags) == ({"lr": "0.1"}, {"env": "dev"})

    def test_logged_model_search_order(self, store: Store, logged_corpus) -> None:
        exp_id, ids, _source = logged_corpus
        keys = {v: k for k, v in ids.items()}

        def order(*orders: OrderBy) -> str:
            page = store.logged_models.search(models_where(exp_id, order_by=orders))
            return "".join(keys[m.model_id] for m in page.items)

        assert order() == "dcba"  # newest first
        assert order(OrderBy("attribute", "creation_time", True)) == "abcd"
        assert order(OrderBy("attribute", "creation_timestamp_ms", True)) == "abcd"
        assert order(OrderBy("attribute", "name", False)) == "dcba"
        assert order(OrderBy("attribute", "status", True), OrderBy("attribute", "creation_time", True)) == "dbac"
        with pytest.raises(InvalidInput, match="order"):
            order(OrderBy("param", "lr", True))
        with pytest.raises(InvalidInput, match="bogus"):
            order(OrderBy("attribute", "bogus", True))

    def test_logged_model_search_ties_break_by_id(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        made = [self.new_logged_model(store, exp_id, creation_time=5).model_id for _ in range(4)]
        found = store.logged_models.search(models_where(exp_id)).items
        assert [m.model_id for m in found] == sorted(made)

    def test_logged_model_search_pages(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        made = [self.new_logged_model(store, exp_id, creation_time=1000 + i).model_id for i in range(7)]
        seen, token, pages = [], None, 0
        while True:
            page = store.logged_models.search(models_where(exp_id, max_results=3, page_token=token))
            seen += [m.model_id for m in page.items]
            pages += 1
            token = page.next_page_token
            if token is None:
                break
        assert pages == 3
        assert seen == made[::-1]  # every model once, in order

    def test_logged_model_search_bad_page_token(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        with pytest.raises(InvalidInput, match="page token"):
            store.logged_models.search(models_where(exp_id, page_token="garbage!"))

    def test_logged_model_search_bad_filter(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        bogus = RunFilter((Comparison("attribute", "bogus", Op.EQ, "x"),))
        with pytest.raises(InvalidInput, match="bogus"):
            store.logged_models.search(LoggedModelQuery((exp_id,), bogus))
        metric = RunFilter((Comparison("metric", "acc", Op.GT, 0.5),))
        with pytest.raises(InvalidInput):
            store.logged_models.search(LoggedModelQuery((exp_id,), metric))

    def test_logged_model_search_several_experiments(self, store: Store) -> None:
        a = self.new_logged_model(store)
        b = self.new_logged_model(store)
        found = store.logged_models.search(LoggedModelQuery((a.experiment_id, b.experiment_id))).items
        assert {m.model_id for m in found} == {a.model_id, b.model_id}
        assert store.logged_models.search(LoggedModelQuery(())).items == []

    # -- a run's models --------------------------------------------------------------------------
    def test_logged_model_list_for_run(self, store: Store, logged_corpus) -> None:
        exp_id, ids, source = logged_corpus
        assert [m.model_id for m in store.logged_models.list_for_run(source)] == [ids["a"], ids["b"]]
        later = self.new_logged_model(store, exp_id, source_run_id=source, creation_time=9000, params={"x": "1"})
        listed = store.logged_models.list_for_run(source)
        assert [m.model_id for m in listed] == [ids["a"], ids["b"], later.model_id]  # oldest first
        assert listed[-1] == later
        store.logged_models.delete(ids["a"])
        assert [m.model_id for m in store.logged_models.list_for_run(source)] == [ids["b"], later.model_id]
        every = store.logged_models.list_for_run(source, ViewType.ALL)
        assert [m.model_id for m in every] == [ids["a"], ids["b"], later.model_id]
        assert store.logged_models.list_for_run(uuid.uuid4().hex) == []

    # -- metrics measured on a model -----------------------------------------------------------
    def test_logged_model_metrics_are_returned_with_the_model(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        run = self.new_run(store, exp_id)
        model = self.new_logged_model(store, exp_id)
        rid = run.info.run_id
        store.logged_models.log_metrics(model.model_id, [
            LoggedModelMetric("acc", 0.9, 1, 2000, rid, "eval", "d1f"),
            LoggedModelMetric("acc", 0.8, 0, 1000, rid),
            LoggedModelMetric("loss", math.nan, 0, 1000, rid)])
        store.logged_models.log_metrics(model.model_id, [LoggedModelMetric("acc", 0.8, 0, 1000, rid)])  # kept once
        got = store.logged_models.get(model.model_id).metrics
        assert [(m.key, m.value, m.step, m.timestamp) for m in got if m.key == "acc"] == [
            ("acc", 0.8, 0, 1000), ("acc", 0.9, 1, 2000)]
        assert [(m.run_id, m.dataset_name, m.dataset_digest) for m in got if m.step == 1] == [(rid, "eval", "d1f")]
        assert math.isnan(next(m.value for m in got if m.key == "loss"))
        found = store.logged_models.search(LoggedModelQuery((exp_id,))).items
        assert [len(m.metrics) for m in found] == [3]

    def test_logged_model_search_by_dataset(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        rid = self.new_run(store, exp_id).info.run_id
        on_eval, on_other, untested = (self.new_logged_model(store, exp_id) for _ in range(3))
        store.logged_models.log_metrics(on_eval.model_id, [LoggedModelMetric("acc", 0.9, 0, 1, rid, "eval", "d1")])
        store.logged_models.log_metrics(on_other.model_id, [LoggedModelMetric("acc", 0.7, 0, 1, rid, "eval", "d2"),
                                                            LoggedModelMetric("acc", 0.6, 0, 2, rid, "test", "d3")])

        def found(*datasets: LoggedModelDataset) -> set[str]:
            return {m.model_id for m in store.logged_models.search(models_where(exp_id, datasets=datasets)).items}

        assert found() == {on_eval.model_id, on_other.model_id, untested.model_id}
        assert found(LoggedModelDataset("eval", "d1")) == {on_eval.model_id}
        assert found(LoggedModelDataset("eval")) == {on_eval.model_id, on_other.model_id}  # any digest
        assert found(LoggedModelDataset("eval", "d1"), LoggedModelDataset("test")) == {on_eval.model_id,
                                                                                      on_other.model_id}
        assert found(LoggedModelDataset("eval", "nope")) == set()

    def test_logged_model_metrics_refusals(self, store: Store) -> None:
        model = self.new_logged_model(store)
        with pytest.raises(NotFound):
            store.logged_models.log_metrics(model_id(), [LoggedModelMetric("acc", 1.0, 0, 1, "r1")])
        with pytest.raises(InvalidInput, match="dataset digest"):
            store.logged_models.log_metrics(model.model_id, [LoggedModelMetric("acc", 1.0, 0, 1, "r1", "d", "x" * 65)])
        with pytest.raises(InvalidInput):
            store.logged_models.log_metrics(model.model_id, [LoggedModelMetric("../acc", 1.0, 0, 1, "r1")])
        assert store.logged_models.get(model.model_id).metrics == ()

    # -- a run's links (MLflow's model inputs and outputs, dataset-input tags) ------------------
    def test_run_links_keep_the_first_record_in_order(self, store: Store) -> None:
        exp_id = self.new_experiment(store)
        a, b = self.new_run(store, exp_id).info.run_id, self.new_run(store, exp_id).info.run_id
        m1, m2 = model_id(), model_id()
        store.logged_models.add_run_links([
            RunLink(a, RunLinkKind.MODEL_OUTPUT, m1, step=3), RunLink(a, RunLinkKind.MODEL_INPUT, m2),
            RunLink(a, RunLinkKind.DATASET_INPUT, "iris@1", tags={"mlflow.data.context": "train", "k": "v"})])
        store.logged_models.add_run_links([RunLink(a, RunLinkKind.DATASET_INPUT, "iris@1", tags={"k": "other"}),
                                           RunLink(b, RunLinkKind.MODEL_INPUT, m1)])
        got = store.logged_models.run_links([a, b, "f" * 32])
        assert [(x.kind, x.ref, x.step) for x in got[a]] == [
            (RunLinkKind.MODEL_OUTPUT, m1, 3), (RunLinkKind.MODEL_INPUT, m2, 0),
            (RunLinkKind.DATASET_INPUT, "iris@1", 0)]
        assert got[a][2].tags == {"mlflow.data.context": "train", "k": "v"}  # the first record wins
        assert [(x.kind, x.ref) for x in got[b]] == [(RunLinkKind.MODEL_INPUT, m1)]
        assert got["f" * 32] == []

    def test_run_links_of_an_absent_run(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.logged_models.add_run_links([RunLink("f" * 32, RunLinkKind.MODEL_INPUT, model_id())])
        run = self.new_run(store, self.new_experiment(store))
        with pytest.raises(InvalidInput):
            store.logged_models.add_run_links([RunLink(run.info.run_id, "sideways", "x")])  # type: ignore[arg-type]
