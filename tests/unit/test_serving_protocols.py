"""Serving codecs: native, MLflow /invocations and Open Inference Protocol bodies to model input and
back, JSON in and out, prediction ids, and the input checks of a served model."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest

from shipyard.errors import InvalidInput, NotFound, UnsupportedMediaType
from shipyard.models.signature import infer_signature
from shipyard.serving import oip, protocols
from shipyard.serving.batcher import concat_inputs
from shipyard.serving.encoding import dumps, jsonable, loads, prediction_ids
from shipyard.serving.models import ModelSet, ServedModel


class _Manifest:
    """The two manifest fields serving reads, as a package's manifest carries them."""

    def __init__(self, signature: dict | None, flavor: str = "pyfunc") -> None:
        self.signature = signature
        self.flavor = flavor


class _Doubler:
    """A real (tiny) model: twice column x, or twice the array."""

    def __init__(self, example: object | None) -> None:
        signature = None if example is None else infer_signature(example, self.predict(example)).to_dict()
        self.manifest = _Manifest(signature)

    def predict(self, data: object) -> object:
        if isinstance(data, pd.DataFrame):
            return data["x"].to_numpy() * 2
        return np.asarray(data) * 2


FRAME = pd.DataFrame({"x": [1.0, 2.0], "n": [1, 2], "tag": ["a", "b"]})


@pytest.fixture
def columns_model() -> ServedModel:
    return ServedModel("churn", "3", _Doubler(FRAME))


@pytest.fixture
def tensor_model() -> ServedModel:
    return ServedModel("digits", "1", _Doubler(np.zeros((2, 3))))


def body(payload: object) -> bytes:
    return json.dumps(payload).encode()


# -- JSON and ids ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "fragment"), [
    (b"", "empty"),
    (b"{bad", "malformed JSON"),
    (b'{"x": NaN}', "NaN is not valid JSON"),
    (b"\xff\xfe", "malformed JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
], ids=["empty", "syntax", "nan-literal", "not-utf8", "too-deep"])
def test_loads_refuses_what_is_not_json(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        loads(raw)


def test_jsonable_writes_non_finite_as_null_and_frames_as_records() -> None:
    assert jsonable(np.array([1.5, np.nan, np.inf])) == [1.5, None, None]
    assert jsonable(pd.Series([1, None], dtype="Int64")) == [1, None]
    assert jsonable(pd.Series(["a", None])) == ["a", None]
    assert jsonable(pd.DataFrame({"p": [0.1, np.nan], "label": ["x", "y"]})) == [
        {"p": 0.1, "label": "x"}, {"p": None, "label": "y"}]
    assert jsonable(np.float32(2.5)) == 2.5
    assert json.loads(dumps({"v": [np.int64(3)], "f": 1.0})) == {"v": [3], "f": 1.0}


def test_prediction_ids_are_distinct_uuid4_hex() -> None:
    ids = prediction_ids(500)
    assert len(set(ids)) == 500
    for value in ids[:50]:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert value == parsed.hex


# -- native ----------------------------------------------------------------------------------------------
def test_native_records_and_columns_give_the_same_frame(columns_model: ServedModel) -> None:
    records = concat_inputs([columns_model.prepare(protocols.decode_native(body({"inputs": [
        {"x": 1, "n": 5, "tag": "a"}, {"x": 2.5, "n": 6, "tag": "b"}]})))])
    columns = concat_inputs([columns_model.prepare(protocols.decode_native(body({"inputs": {
        "x": [1, 2.5], "n": [5, 6], "tag": ["a", "b"]}})))])
    pd.testing.assert_frame_equal(records, columns)
    assert records["x"].dtype == np.float64  # the int 1 safely cast by the signature check
    assert protocols.encode_native("churn", "3", columns_model.predict(records), ["a", "b"]) == {
        "model": "churn", "version": "3", "predictions": [2.0, 5.0], "prediction_ids": ["a", "b"]}


def test_native_rows_for_a_tensor_model(tensor_model: ServedModel) -> None:
    data = tensor_model.prepare(protocols.decode_native(body({"inputs": [[1, 2, 3], [4, 5, 6]]})))
    assert data.shape == (2, 3)
    assert data.dtype == np.float64


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"rows": []}, '"inputs"'),
    ({"inputs": 3}, "list of rows or an object of columns"),
    ({"inputs": [{"x": 1.0, "n": 1}]}, "missing column 'tag'"),
    ({"inputs": [{"x": "high", "n": 1, "tag": "a"}]}, "column 'x': expected float64, got string"),
    ({"inputs": [{"x": 1.0, "n": 1.5, "tag": "a"}]}, "column 'n': expected int64, got float64"),
    ({"inputs": [{"x": None, "n": 1, "tag": "a"}]}, "missing values .* column 'x'"),
    ({"inputs": [[1.0, 2, "a"]]}, "expected a table with columns"),
    ({"inputs": []}, "empty|no rows"),
], ids=["no-inputs", "scalar", "missing-column", "string-for-float", "float-for-int", "null", "rows", "empty"])
def test_native_bad_input_names_the_problem(columns_model: ServedModel, payload: object, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        columns_model.prepare(protocols.decode_native(body(payload)))


def test_unsigned_model_takes_records_columns_and_rows() -> None:
    served = ServedModel("plain", "1", _Doubler(None))
    assert list(served.prepare([{"x": 1}, {"x": 2}])["x"]) == [1, 2]
    assert list(served.prepare({"x": [1, 2]})["x"]) == [1, 2]
    assert served.prepare([[1, 2], [3, 4]]).shape == (2, 2)
    with pytest.raises(InvalidInput, match="do not form"):
        served.prepare([[1, 2], [3]])
    with pytest.raises(InvalidInput, match="cannot use a float64"):
        served.prepare(np.float64(3.0))
    with pytest.raises(InvalidInput, match="single scalar"):
        served.prepare(np.array(3.0))


# -- MLflow ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [
    {"dataframe_split": {"columns": ["x", "n", "tag"], "data": [[1.0, 1, "a"], [2.0, 2, "b"]]}},
    {"dataframe_split": {"columns": ["x", "n", "tag"], "data": [[1.0, 1, "a"], [2.0, 2, "b"]], "index": [7, 8]}},
    {"dataframe_records": [{"x": 1.0, "n": 1, "tag": "a"}, {"x": 2.0, "n": 2, "tag": "b"}]},
    {"instances": [{"x": 1.0, "n": 1, "tag": "a"}, {"x": 2.0, "n": 2, "tag": "b"}]},
    {"inputs": {"x": [1.0, 2.0], "n": [1, 2], "tag": ["a", "b"]}},
], ids=["split", "split-index", "records", "instances", "inputs"])
def test_mlflow_json_formats(columns_model: ServedModel, payload: object) -> None:
    data = columns_model.prepare(protocols.decode_mlflow(body(payload), "application/json; charset=utf-8"))
    assert protocols.encode_mlflow(columns_model.predict(data)) == {"predictions": [2.0, 4.0]}


def test_mlflow_csv(columns_model: ServedModel) -> None:
    data = columns_model.prepare(protocols.decode_mlflow(b"x,n,tag\n1.5,1,a\n2,2,b\n", "text/csv"))
    assert protocols.encode_mlflow(columns_model.predict(data)) == {"predictions": [3.0, 4.0]}


def test_mlflow_tensor_inputs(tensor_model: ServedModel) -> None:
    for payload in ({"inputs": [[1, 2, 3]]}, {"instances": [[1, 2, 3]]}):
        data = tensor_model.prepare(protocols.decode_mlflow(body(payload), "application/json"))
        assert protocols.encode_mlflow(tensor_model.predict(data)) == {"predictions": [[2.0, 4.0, 6.0]]}


@pytest.mark.parametrize(("raw", "content_type", "error", "fragment"), [
    (b"[1, 2]", "application/json", InvalidInput, "expected a JSON object"),
    (body({"columns": ["x"]}), "application/json", InvalidInput, "exactly one of dataframe_split"),
    (body({"inputs": {}, "instances": []}), "application/json", InvalidInput, "got instances, inputs"),
    (body({"inputs": [[1]], "extra": 1}), "application/json", InvalidInput, "unknown key extra"),
    (body({"inputs": [[1]], "params": {"k": 1}}), "application/json", InvalidInput, "params are not supported"),
    (body({"dataframe_split": {"data": [1, 2]}}), "application/json", InvalidInput, "list of rows"),
    (body({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}), "application/json", InvalidInput,
     "does not form a table"),
    (body({"dataframe_records": [1, 2]}), "application/json", InvalidInput, "list of objects"),
    (b"", "text/csv", InvalidInput, "CSV body is empty"),
    (b'a,b\n"1,2\n', "text/csv", InvalidInput, "malformed CSV"),
    (b"x=1", "application/x-www-form-urlencoded", UnsupportedMediaType, "application/json or text/csv"),
], ids=["list", "no-key", "two-keys", "unknown-key", "params", "split-rows", "split-width", "records", "csv-empty",
        "csv-broken", "form"])
def test_mlflow_bad_bodies(columns_model: ServedModel, raw: bytes, content_type: str, error: type[Exception],
                           fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        columns_model.prepare(protocols.decode_mlflow(raw, content_type))


# -- Open Inference Protocol ---------------------------------------------------------------------------
def tensor(name: str, shape: list[int], datatype: str, data: list) -> dict:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_oip_one_tensor_flat_or_nested(tensor_model: ServedModel) -> None:
    flat = body({"id": "r-1", "inputs": [tensor("input-0", [2, 3], "FP32", [1, 2, 3, 4, 5, 6])]})
    nested = body({"inputs": [tensor("input-0", [2, 3], "INT64", [[1, 2, 3], [4, 5, 6]])]})
    (a, request_id), (b, no_id) = oip.decode_infer(flat, tensor_model), oip.decode_infer(nested, tensor_model)
    assert (request_id, no_id) == ("r-1", None)
    np.testing.assert_array_equal(tensor_model.prepare(a), tensor_model.prepare(b))
    predictions = tensor_model.predict(tensor_model.prepare(a))
    response = oip.encode_infer(tensor_model, predictions, ["p1", "p2"], "r-1")
    assert response == {"model_name": "digits", "model_version": "1", "id": "r-1",
                        "parameters": {"prediction_ids": ["p1", "p2"]},
                        "outputs": [{"name": "predict", "shape": [2, 3], "datatype": "FP64",
                                     "data": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]}]}


def test_oip_one_tensor_per_column(columns_model: ServedModel) -> None:
    raw = body({"inputs": [tensor("x", [2], "FP64", [1.5, 2.5]), tensor("n", [2, 1], "INT32", [[1], [2]]),
                           tensor("tag", [2], "BYTES", ["a", "b"])]})
    data = concat_inputs([columns_model.prepare(oip.decode_infer(raw, columns_model)[0])])
    assert list(data.columns) == ["x", "n", "tag"]
    assert data["n"].dtype == np.int64
    assert oip.encode_infer(columns_model, columns_model.predict(data), ["1", "2"], "i")["outputs"][0]["data"] == [
        3.0, 5.0]


def test_oip_two_dimensional_tensor_maps_to_signature_columns_in_order() -> None:
    served = ServedModel("m", "1", _Doubler(pd.DataFrame({"x": [1.0], "z": [2.0]})))
    raw = body({"inputs": [tensor("features", [2, 2], "FP64", [1, 10, 2, 20])]})
    data = concat_inputs([served.prepare(oip.decode_infer(raw, served)[0])])
    assert data["x"].tolist() == [1.0, 2.0]
    assert data["z"].tolist() == [10.0, 20.0]


def test_oip_outputs_of_a_table_are_one_tensor_per_column(columns_model: ServedModel) -> None:
    table = pd.DataFrame({"label": ["yes", "no"], "score": np.array([0.5, 0.25], dtype=np.float32)})
    outputs = oip.encode_infer(columns_model, table, ["1", "2"], "i")["outputs"]
    assert outputs == [{"name": "label", "shape": [2], "datatype": "BYTES", "data": ["yes", "no"]},
                       {"name": "score", "shape": [2], "datatype": "FP32", "data": [0.5, 0.25]}]


@pytest.mark.parametrize(("inputs", "fragment"), [
    ([tensor("x", [2], "FP64", [1.0])], "shape \\[2\\] holds 2 values but data has 1"),
    ([tensor("x", [2], "INT64", [1.5, 2])], "whole numbers"),
    ([tensor("x", [2], "UINT8", [1, 300])], "out of the range of UINT8"),
    ([tensor("x", [2], "FP32", ["a", "b"])], "must be numbers, got strings"),
    ([tensor("x", [2], "FP32", [1.0, None])], "null values"),
    ([tensor("x", [2], "BOOL", [1, 0])], "true/false"),
    ([tensor("x", [2], "FP64", [True, False])], "got booleans"),
    ([tensor("x", [2], "BYTES", [1, 2])], "strings"),
    ([tensor("x", [2], "FP128", [1, 2])], "unknown datatype 'FP128'"),
    ([tensor("x", [-1], "FP64", [1])], "shape must be a list of sizes"),
    ([tensor("x", [2, 2], "FP64", [[1, 2], [3]])], "ragged"),
    ([{"name": "x", "shape": [1]}], "missing datatype, data"),
    ([], "non-empty list of tensors"),
    ([tensor("x", [2], "FP64", [1, 2]), tensor("n", [3], "INT64", [1, 2, 3]),
      tensor("tag", [2], "BYTES", ["a", "b"])], "differ in length"),
    ([tensor("x", [2], "FP64", [1, 2]), tensor("n", [2], "INT64", [1, 2])], "missing column 'tag'"),
    ([tensor("x", [2], "FP64", [1, 2]), tensor("x", [2], "FP64", [1, 2])], "unique"),
    ([tensor("features", [2, 2], "FP64", [1, 2, 3, 4])], "send one \\[n, 3\\] tensor"),
], ids=["size", "fraction", "range", "strings", "null", "bool-numbers", "bool-for-float", "bytes", "datatype",
        "negative", "ragged", "fields", "empty", "lengths", "missing-column", "duplicate", "width"])
def test_oip_bad_tensors(columns_model: ServedModel, inputs: list, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        columns_model.prepare(oip.decode_infer(body({"inputs": inputs}), columns_model)[0])


def test_oip_tensor_model_refuses_several_tensors_and_wrong_width(tensor_model: ServedModel) -> None:
    two = body({"inputs": [tensor("a", [1], "FP64", [1]), tensor("b", [1], "FP64", [1])]})
    with pytest.raises(InvalidInput, match="takes one tensor, got 2"):
        oip.decode_infer(two, tensor_model)
    wide = body({"inputs": [tensor("a", [1, 4], "FP64", [1, 2, 3, 4])]})
    with pytest.raises(InvalidInput, match=r"input shape \(1, 4\) does not match expected \(-1, 3\)"):
        tensor_model.prepare(oip.decode_infer(wide, tensor_model)[0])


def test_oip_metadata_from_the_signature(columns_model: ServedModel, tensor_model: ServedModel) -> None:
    meta = oip.model_metadata(columns_model, ["3"])
    assert meta["name"] == "churn"
    assert meta["versions"] == ["3"]
    assert meta["platform"] == "shipyard-pyfunc"
    assert [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]] == [
        ("x", "FP64", [-1]), ("n", "INT64", [-1]), ("tag", "BYTES", [-1])]
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert oip.model_metadata(tensor_model, ["1"])["inputs"] == [
        {"name": "input-0", "datatype": "FP64", "shape": [-1, 3]}]
    assert oip.model_metadata(ServedModel("p", "1", _Doubler(None)), ["1"])["inputs"] == []


# -- the model set -----------------------------------------------------------------------------------
def test_model_set_lookup_lists_what_is_served(columns_model: ServedModel, tensor_model: ServedModel) -> None:
    newer = ServedModel("churn", "4", columns_model.model)
    models = ModelSet([columns_model, newer, tensor_model])
    assert models.get("churn") is columns_model  # the first version given is the default
    assert models.get("churn", "4") is newer
    assert models.default is columns_model
    with pytest.raises(NotFound, match=r"no model named 'nope'.*churn \(version 3\), churn \(version 4\), "
                                       r"digits \(version 1\)"):
        models.get("nope")
    with pytest.raises(NotFound, match="has no version '9'") as info:
        models.get("churn", "9")
    assert info.value.details["served"][0] == {"name": "churn", "version": "3"}
    with pytest.raises(InvalidInput, match="given twice"):
        ModelSet([columns_model, columns_model])
    with pytest.raises(InvalidInput, match="nothing to serve"):
        ModelSet([])
