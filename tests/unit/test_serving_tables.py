"""The table fast path: per-request checks without a DataFrame, one DataFrame per batch, and the same
answers (frames, dtypes, errors) as the general path through ``enforce``."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput
from shipyard.models.signature import Schema, enforce, infer_schema
from shipyard.serving import oip, protocols
from shipyard.serving.batcher import Batcher, concat_inputs
from shipyard.serving.models import ServedModel
from shipyard.serving.tables import Split, TableLayout, TableRows

FLOATS = pd.DataFrame({f"f{i}": [0.5, 1.5] for i in range(4)})
MIXED = pd.DataFrame({"x": [1.0, 2.0], "n": [1, 2], "flag": [True, False], "tag": ["a", "b"]})


class _Manifest:
    def __init__(self, schema: Schema) -> None:
        self.signature = {"inputs": schema.to_dict(), "outputs": None}
        self.flavor = "pyfunc"


class _Recorder:
    """A model that records what it was called with and sums the numeric columns of each row."""

    def __init__(self, example: pd.DataFrame) -> None:
        self.manifest = _Manifest(infer_schema(example))
        self.calls: list[pd.DataFrame] = []

    def predict(self, data: Any) -> Any:
        self.calls.append(data)
        return data.select_dtypes("number").sum(axis=1).to_numpy()


def served(example: pd.DataFrame) -> ServedModel:
    return ServedModel("m", "1", _Recorder(example))


def general(model: ServedModel, data: Any) -> pd.DataFrame:
    """What the general path makes of ``data``: a DataFrame per request through ``enforce``."""
    frame = data.frame() if isinstance(data, Split) else data
    assert model.input_schema is not None
    return enforce(model.input_schema, frame)


@pytest.mark.parametrize(("example", "data"), [
    (FLOATS, Split(list(FLOATS.columns), [[0.1, 2, 3.5, -4]])),
    (FLOATS, Split([*reversed(FLOATS.columns), "extra"], [[0.1, 2, 3.5, -4, "ignored"]])),
    (FLOATS, [{"f0": 1, "f1": 2.5, "f2": 3.0, "f3": 4.0, "other": "x"}, {"f3": 1.0, "f2": 2, "f1": 3, "f0": 4}]),
    (FLOATS, {"f0": [1.0, 2], "f1": [3, 4], "f2": [5.0, 6.0], "f3": [7, 8.5]}),
    (MIXED, Split(["tag", "flag", "n", "x"], [["c", True, 7, 2.5], ["d", False, -1, 3]])),
    (MIXED, [{"x": 1, "n": 2, "flag": True, "tag": "z"}]),
    (MIXED, {"x": [1.5], "n": [3], "flag": [False], "tag": ["q"]}),
], ids=["split", "split-reordered-extra", "records", "columns", "mixed-split", "mixed-records", "mixed-columns"])
def test_fast_path_builds_the_frame_the_general_path_builds(example: pd.DataFrame, data: Any) -> None:
    model = served(example)
    block = model.prepare(data)
    assert isinstance(block, TableRows)  # no DataFrame was built for the request
    fast, slow = concat_inputs([block]), general(model, data)
    # Strings get pandas' default string dtype whatever the form (the general path's records give
    # the NA-backed variant, its dataframe_split the default one); every other dtype is identical.
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    for name in fast.columns:
        if name == "tag":
            assert pd.api.types.is_string_dtype(fast[name])
            assert pd.api.types.is_string_dtype(slow[name])
        else:
            assert fast[name].dtype == slow[name].dtype, name


@pytest.mark.parametrize(("data", "fragment"), [
    (Split(["x", "n", "flag", "tag"], [["high", 1, True, "a"]]), "column 'x': expected float64, got string"),
    (Split(["x", "n", "flag", "tag"], [[1.0, 1.5, True, "a"]]), "column 'n': expected int64, got float64"),
    (Split(["x", "n", "flag", "tag"], [[True, 1, True, "a"]]), "column 'x': expected float64, got bool"),
    (Split(["x", "n", "flag", "tag"], [[1.0, 1, 1, "a"]]), "column 'flag': expected bool, got int64"),
    (Split(["x", "n", "flag", "tag"], [[None, 1, True, "a"]]), "missing values .* column 'x'"),
    (Split(["x", "n", "flag"], [[1.0, 1, True]]), "missing column 'tag'"),
    (Split(["x", "n", "flag", "tag"], [[1.0, 1, True]]), "does not form a table"),
    ([{"x": 1.0, "n": 2**63, "flag": True, "tag": "a"}], "column 'n': expected int64"),
    ({"x": [1.0], "n": [1, 2], "flag": [True], "tag": ["a"]}, "differ in length"),
], ids=["string-for-float", "float-for-int", "bool-for-float", "int-for-bool", "null", "missing", "ragged",
        "int-overflow", "lengths"])
def test_what_the_fast_path_does_not_take_gets_the_general_paths_error(data: Any, fragment: str) -> None:
    model = served(MIXED)
    assert model.table_layout is not None
    assert model.table_layout.rows_of(data) is None
    with pytest.raises(InvalidInput, match=fragment):
        model.prepare(data)


def test_layout_covers_only_the_types_it_checks() -> None:
    assert TableLayout.of(infer_schema(MIXED)) is not None
    assert TableLayout.of(infer_schema(FLOATS)).dtype == np.float64  # type: ignore[union-attr]
    assert TableLayout.of(infer_schema(pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])}))) is None
    assert TableLayout.of(infer_schema(pd.DataFrame({"x": np.array([1.0], dtype=np.float32)}))) is None
    assert TableLayout.of(infer_schema(np.zeros((2, 3)))) is None  # a tensor signature


def test_oip_tensor_of_the_columns_takes_the_fast_path_with_enforces_casts() -> None:
    model = served(FLOATS)
    body = (b'{"inputs": [{"name": "t", "shape": [2, 4], "datatype": "INT64", "data": [1, 2, 3, 4, 5, 6, 7, 8]}]}')
    block = model.prepare(oip.decode_infer(body, model)[0])
    assert isinstance(block, TableRows)
    frame = concat_inputs([block])
    assert frame.dtypes.tolist() == [np.float64] * 4
    assert frame.to_numpy().tolist() == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
    booleans = b'{"inputs": [{"name": "t", "shape": [1, 4], "datatype": "BOOL", "data": [true, true, false, true]}]}'
    with pytest.raises(InvalidInput, match="expected float64, got bool"):
        model.prepare(oip.decode_infer(booleans, model)[0])


def test_concurrent_requests_make_one_dataframe_and_one_predict() -> None:
    model = served(FLOATS)
    recorder = model.model

    async def scenario() -> list[Any]:
        batcher = Batcher(model.predict, max_batch_size=64, max_wait_ms=50)
        bodies = [{"dataframe_split": {"columns": list(FLOATS.columns), "data": [[float(i), 1.0, 2.0, 3.0]]}}
                  for i in range(6)]
        prepared = [model.prepare(protocols.decode_mlflow(protocols_body(b), "application/json")) for b in bodies]
        first = asyncio.ensure_future(batcher.submit(prepared[0], 1))
        await asyncio.sleep(0.01)  # one batch ran alone: the next one waits for the burst
        results = await asyncio.gather(*(batcher.submit(p, 1) for p in prepared[1:]))
        answers = [await first, *results]
        await batcher.close()
        return answers

    answers = asyncio.run(scenario())
    assert [float(a[0]) for a in answers] == [float(i) + 6.0 for i in range(6)]
    assert [len(call) for call in recorder.calls] == [1, 5]
    assert all(isinstance(call, pd.DataFrame) and list(call.columns) == list(FLOATS.columns)
               for call in recorder.calls)


def protocols_body(payload: dict[str, Any]) -> bytes:
    import json

    return json.dumps(payload).encode()


def test_records_for_the_log_have_the_types_the_model_saw() -> None:
    model = served(MIXED)
    block = model.prepare([{"x": 1, "n": 2, "flag": True, "tag": "z"}])
    assert block.records() == [{"x": 1.0, "n": 2, "flag": True, "tag": "z"}]
    assert type(block.records()[0]["x"]) is float
    floats = served(FLOATS).prepare(Split(list(FLOATS.columns), [[1, 2, 3, 4]]))
    assert floats.records() == [{"f0": 1.0, "f1": 2.0, "f2": 3.0, "f3": 4.0}]
