"""Signatures: inference from each input kind, the manifest round trip, and enforcement at predict time."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from shipyard.errors import InvalidInput
from shipyard.models.signature import (
    ColumnSpec,
    Schema,
    Signature,
    enforce,
    infer_schema,
    infer_signature,
)
from tests.ci import require


def cols(*specs: str | tuple[str, str] | ColumnSpec) -> Schema:
    """A columns schema from "name:dtype" strings (a trailing "?" marks optional) or specs."""
    out = []
    for spec in specs:
        if isinstance(spec, ColumnSpec):
            out.append(spec)
            continue
        name, dtype = spec.split(":")
        out.append(ColumnSpec(name, dtype.rstrip("?"), optional=dtype.endswith("?")))
    return Schema(tuple(out), "columns")


def tensor(dtype: str, *shape: int) -> Schema:
    return Schema((ColumnSpec(None, dtype, shape),), "tensor")


# -- inference ---------------------------------------------------------------------------------------

def _arrow_table():
    pa = require("pyarrow")
    return pa.table({"age": [1, None], "name": ["a", "b"], "score": pa.array([0.5, 1.5], pa.float32())})


def _arrow_batch():
    pa = require("pyarrow")
    return pa.record_batch({"age": pa.array([1, 2], pa.int32()), "raw": [b"x", b"y"]})


def _polars_frame():
    pl = require("polars")
    require("pyarrow")
    return pl.DataFrame({"age": [1, 2], "name": ["a", None], "score": [0.5, 1.5]})


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: pd.DataFrame({"age": [1, 2], "name": ["a", "b"], "score": [0.5, 1.5]}),
     cols("age:int64", "name:string", "score:float64")),
    (lambda: pd.Series([1.0, 2.0], name="x"), cols("x:float64")),
    (lambda: np.zeros((3, 28, 28), dtype="float32"), tensor("float32", -1, 28, 28)),
    (lambda: np.array([1, 2, 3]), tensor("int64", -1)),
    (lambda: np.array(["a", "b"]), tensor("string", -1)),
    (lambda: np.array([(1, 2.0)], dtype=[("x", "i4"), ("y", "f8")]), cols("x:int32", "y:float64")),
    (lambda: {"age": np.array([1, 2]), "name": ["a", "b"]}, cols("age:int64", "name:string")),
    (lambda: {"age": 3, "name": "a"}, cols("age:int64", "name:string")),
    (lambda: [{"age": 1, "name": "a"}, {"age": None, "name": "b", "score": 2.5}],
     cols("age:int64?", "name:string", "score:float64?")),
    (lambda: [[1.0, 2.0], [3.0, 4.0]], tensor("float64", -1, 2)),
    (_arrow_table, cols("age:int64?", "name:string", "score:float32")),
    (_arrow_batch, cols("age:int32", "raw:binary")),
    (_polars_frame, cols("age:int64", "name:string?", "score:float64")),
], ids=["pandas", "series", "ndarray-3d", "ndarray-1d", "ndarray-str", "structured", "dict-of-columns",
        "dict-one-row", "records", "nested-lists", "arrow-table", "arrow-batch", "polars"])
def test_infer_schema_from_each_input_kind(make, expected) -> None:
    assert infer_schema(make()) == expected


@pytest.mark.parametrize(("values", "expected"), [
    (pd.array([1, None], dtype="Int64"), ColumnSpec("c", "int64", optional=True)),
    (pd.array([1, 2], dtype="Int64"), ColumnSpec("c", "int64")),
    (pd.Categorical(["x", "y"]), ColumnSpec("c", "string")),
    (pd.Series(["x", None], dtype="str"), ColumnSpec("c", "string", optional=True)),
    (np.array([1, 2], dtype="int8"), ColumnSpec("c", "int32")),
    (np.array([1, 2], dtype="uint32"), ColumnSpec("c", "int64")),
    (np.array([1, 2], dtype="float16"), ColumnSpec("c", "float32")),
    (np.array([True, False]), ColumnSpec("c", "bool")),
    (pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("Europe/Paris"), ColumnSpec("c", "datetime")),
    (np.array(["2024-01-01"] * 2, dtype="datetime64[s]"), ColumnSpec("c", "datetime")),
    (np.array([b"a", b"b"], dtype=object), ColumnSpec("c", "binary")),
    (np.array([1, "a"], dtype=object), ColumnSpec("c", "object")),
], ids=["Int64-with-NA", "Int64", "category", "str-with-NA", "int8", "uint32", "float16", "bool", "datetime-tz",
        "datetime-s", "bytes", "mixed"])
def test_infer_maps_pandas_dtypes_to_the_portable_vocabulary(values, expected) -> None:
    assert infer_schema(pd.DataFrame({"c": values})).columns == (expected,)


@pytest.mark.parametrize("data", [42, "text", {1, 2}, object()], ids=["int", "str", "set", "object"])
def test_infer_unsupported_type_names_it_and_lists_what_is_supported(data) -> None:
    with pytest.raises(InvalidInput, match=rf"cannot infer a schema from {type(data).__name__}; supported: .*"
                                           r"pandas DataFrame.*polars"):
        infer_schema(data)


@pytest.mark.parametrize("data", [[], np.float64(1.0), pd.DataFrame({"c": np.array([1], dtype="uint64")})],
                         ids=["empty-list", "numpy-scalar", "uint64"])
def test_infer_refuses_data_without_a_portable_schema(data) -> None:
    with pytest.raises(InvalidInput):
        infer_schema(data)


def test_infer_does_not_import_polars_for_pandas_input() -> None:
    code = ("import sys, pandas as pd; from shipyard.models.signature import infer_schema, enforce;"
            "s = infer_schema(pd.DataFrame({'a': [1]})); enforce(s, [{'a': 2}]);"
            "print('polars' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_reading_a_signature_needs_neither_numpy_nor_pandas() -> None:
    code = ("import sys; from shipyard.models.signature import Signature;"
            "Signature.from_dict({'inputs': {'kind': 'columns', 'columns': [{'name': 'a', 'dtype': 'int64'}]}});"
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'polars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_infer_signature_includes_the_prediction() -> None:
    sig = infer_signature(pd.DataFrame({"x": [1.0]}), np.array([0]))
    assert sig == Signature(cols("x:float64"), tensor("int64", -1))
    assert infer_signature(pd.DataFrame({"x": [1.0]})).outputs is None


# -- the manifest round trip -------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [
    Signature(cols("age:int64", "name:string?", "when:datetime"), tensor("float64", -1)),
    Signature(tensor("float32", -1, 28, 28), cols("label:int64", "proba:float64")),
    Signature(cols("raw:binary", "x:object", "ok:bool")),
], ids=["columns-to-tensor", "tensor-to-columns", "no-outputs"])
def test_signature_round_trips_through_plain_dicts(sig) -> None:
    assert Signature.from_dict(sig.to_dict()) == sig
    assert Signature.from_dict(yaml.safe_load(yaml.safe_dump(sig.to_dict()))) == sig
    assert Signature.from_dict(json.loads(json.dumps(sig.to_dict()))) == sig


@pytest.mark.parametrize("raw", [
    {},
    {"inputs": {"kind": "columns"}},
    {"inputs": {"kind": "columns", "columns": [{"name": "a", "dtype": "int128"}]}},
    {"inputs": {"kind": "table", "columns": [{"name": "a", "dtype": "int64"}]}},
    {"inputs": {"kind": "tensor", "columns": [{"name": None, "dtype": "int64"}]}},
    {"inputs": {"kind": "columns", "columns": [{"name": "a", "dtype": "int64"}] * 2}},
], ids=["empty", "no-columns", "unknown-dtype", "unknown-kind", "tensor-without-shape", "duplicate-names"])
def test_from_dict_refuses_malformed_signatures(raw) -> None:
    with pytest.raises(InvalidInput):
        Signature.from_dict(raw)


def test_signature_str_is_readable() -> None:
    sig = Signature(cols("age:int64", "name:string?"), tensor("float32", -1, 2))
    assert str(sig) == "inputs:\n  age: int64\n  name: string (optional)\noutputs:\n  tensor float32 (-1, 2)"
    assert str(Signature(cols("a:bool"))) == "inputs:\n  a: bool\noutputs: none"


# -- enforcement: columns ----------------------------------------------------------------------------

def test_enforce_returns_a_matching_frame_itself() -> None:
    frame = pd.DataFrame({"age": [1, 2], "name": ["a", "b"]})
    assert enforce(cols("age:int64", "name:string"), frame) is frame


def test_enforce_reorders_columns_and_drops_extras() -> None:
    frame = pd.DataFrame({"extra": [0, 0], "name": ["a", "b"], "age": [1, 2]})
    out = enforce(cols("age:int64", "name:string"), frame)
    assert list(out.columns) == ["age", "name"]
    assert out["age"].tolist() == [1, 2]
    assert list(frame.columns) == ["extra", "name", "age"]  # the caller's frame is left alone


@pytest.mark.parametrize(("values", "expected", "result_dtype"), [
    (np.array([1, 2], dtype="int64"), "float64", "float64"),
    (np.array([1, 2], dtype="int32"), "int64", "int64"),
    (np.array([1, 2], dtype="float32"), "float64", "float64"),
    (np.array([1, 2], dtype="int8"), "float32", "float32"),
    (np.array([1, 2], dtype="uint16"), "int32", "int32"),
    (pd.array([1, None], dtype="Int32"), "int64", "Int64"),
    (pd.array([1, None], dtype="Int64"), "float64", "float64"),
    (np.array([1, 2], dtype=object), "float64", "float64"),
], ids=["int-to-float", "int32-to-int64", "float32-to-float64", "int8-to-float32", "uint16-to-int32",
        "nullable-int-widens", "nullable-int-to-float", "object-ints-to-float"])
def test_enforce_applies_safe_casts(values, expected, result_dtype) -> None:
    out = enforce(cols(f"x:{expected}"), pd.DataFrame({"x": values}))
    assert str(out["x"].dtype) == result_dtype
    assert out["x"].tolist()[0] == 1


@pytest.mark.parametrize(("values", "expected", "given"), [
    (np.array([1.0, 2.0]), "int64", "float64"),
    (np.array(["1", "2"]), "float64", "string"),
    (pd.Series(["1", "2"], dtype="str"), "int64", "string"),
    (np.array([True, False]), "int64", "bool"),
    (np.array([1, 0]), "bool", "int64"),
    (np.array([1, 2], dtype="int64"), "float32", "int64"),
    (np.array([1, 2], dtype="int64"), "int32", "int64"),
    (np.array([1.0, 2.0]), "float32", "float64"),
    (np.array([1, 2], dtype="uint64"), "int64", "uint64"),
    (np.array([1, 2]), "string", "int64"),
    (np.array(["2024-01-01"]), "datetime", "string"),
    (np.array([1, "a"], dtype=object), "string", "object"),
], ids=["float-to-int", "str-to-float", "pandas-str-to-int", "bool-to-int", "int-to-bool", "int64-to-float32",
        "int64-to-int32", "float64-to-float32", "uint64-to-int64", "int-to-string", "str-to-datetime", "mixed"])
def test_enforce_wrong_dtype_names_column_expected_and_given(values, expected, given) -> None:
    with pytest.raises(InvalidInput) as caught:
        enforce(cols(f"age:{expected}"), pd.DataFrame({"age": values}))
    assert str(caught.value) == f"column 'age': expected {expected}, got {given}"
    assert caught.value.details == {"column": "age", "expected": expected, "given": given}


def test_enforce_missing_column_names_it_and_its_type() -> None:
    with pytest.raises(InvalidInput) as caught:
        enforce(cols("age:int64", "name:string"), pd.DataFrame({"name": ["a"]}))
    assert str(caught.value) == "missing column 'age' (expected int64)"
    with pytest.raises(InvalidInput, match=r"missing columns 'age' \(expected int64\), 'name' \(expected string\)"):
        enforce(cols("age:int64", "name:string"), pd.DataFrame({"other": [1]}))


def test_enforce_allows_optional_columns_to_be_missing() -> None:
    schema = cols("age:int64", "nickname:string?", "score:float64?")
    out = enforce(schema, pd.DataFrame({"score": [1], "age": [3]}))
    assert list(out.columns) == ["age", "score"]
    assert str(out["score"].dtype) == "float64"


def test_enforce_accepts_records_and_types_nulls() -> None:
    schema = cols("age:int64?", "name:string", "score:float64", "tag:string?")
    out = enforce(schema, [{"name": "a", "age": 1, "score": 1, "tag": None},
                           {"name": "b", "age": None, "score": 2.5, "tag": None}])
    assert list(out.columns) == ["age", "name", "score", "tag"]
    assert [str(t) for t in out.dtypes] == ["Int64", "string", "float64", "str"]
    assert out["age"].isna().tolist() == [False, True]


@pytest.mark.parametrize("data", [
    {"age": [1, 2], "name": ["a", "b"]},
    {"age": np.array([1, 2], dtype="int32"), "name": np.array(["a", "b"])},
    [{"age": 1, "name": "a"}, {"age": 2, "name": "b"}],
    np.array([(1, "a"), (2, "b")], dtype=[("age", "i8"), ("name", "U1")]),
    pd.DataFrame({0: [1, 2]}).assign(name=["a", "b"]).rename(columns={0: "age"}),
], ids=["dict-of-lists", "dict-of-arrays", "records", "structured", "frame"])
def test_enforce_accepts_each_tabular_kind(data) -> None:
    out = enforce(cols("age:int64", "name:string"), data)
    assert isinstance(out, pd.DataFrame)
    assert out.to_dict("list") == {"age": [1, 2], "name": ["a", "b"]}
    assert str(out["age"].dtype) == "int64"


def test_enforce_accepts_arrow_and_polars() -> None:
    pa = require("pyarrow")
    pl = require("polars")
    schema = cols("age:int64", "score:float64")
    for data in (pa.table({"score": pa.array([1, 2], pa.int32()), "age": [1, 2]}),
                 pl.DataFrame({"score": [1, 2], "age": [1, 2]})):
        out = enforce(schema, data)
        assert list(out.columns) == ["age", "score"]
        assert [str(t) for t in out.dtypes] == ["int64", "float64"]


def test_enforce_keeps_non_string_column_labels() -> None:
    frame = pd.DataFrame(np.arange(6).reshape(3, 2))
    out = enforce(infer_schema(frame), frame)
    assert out is frame


def test_enforce_makes_zoned_datetimes_naive_utc() -> None:
    when = pd.to_datetime(["2024-01-01 12:00"]).tz_localize("Europe/Paris")
    out = enforce(cols("when:datetime"), pd.DataFrame({"when": when}))
    assert out["when"].dt.tz is None
    assert out["when"].iloc[0] == pd.Timestamp("2024-01-01 11:00")


def test_enforce_accepts_categorical_strings_and_python_datetimes() -> None:
    data = pd.DataFrame({"c": pd.Categorical(["x", "y"]), "d": [dt.datetime(2024, 1, 1), None]}).astype({"d": object})
    out = enforce(cols("c:string", "d:datetime?"), data)
    assert out["c"].dtype == "category"
    assert out["d"].dtype.kind == "M"


def test_enforce_refuses_non_tabular_input_for_a_columns_schema() -> None:
    with pytest.raises(InvalidInput, match=r"expected a table with columns \['a'\], got numpy.ndarray"):
        enforce(cols("a:int64"), np.zeros((2, 1)))


def test_enforce_matching_million_rows_is_vectorised() -> None:
    n = 1_000_000
    frame = pd.DataFrame({f"f{i}": np.arange(n, dtype="float64") for i in range(7)}
                         | {"i": np.arange(n), "s": pd.Series(["x"] * n, dtype="str"), "b": np.ones(n, bool)})
    schema = infer_schema(frame.head())
    start = time.perf_counter()
    out = enforce(schema, frame)
    elapsed = time.perf_counter() - start
    assert out is frame
    # Loose for slow machines: a loop over the million rows takes over 10 s.
    assert elapsed < 5, f"enforce took {elapsed:.3f}s on an already-matching frame: is it looping over rows?"


# -- enforcement: tensors ----------------------------------------------------------------------------

@pytest.mark.parametrize(("shape", "message"), [
    ((3, 5), r"input shape \(3, 5\) does not match expected \(-1, 4\)"),
    ((3,), r"input shape \(3,\) does not match expected \(-1, 4\)"),
    ((3, 4, 1), r"input shape \(3, 4, 1\) does not match expected \(-1, 4\)"),
], ids=["wrong-dimension", "rank-too-low", "rank-too-high"])
def test_enforce_tensor_shape_errors(shape, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        enforce(tensor("float64", -1, 4), np.zeros(shape))


@pytest.mark.parametrize(("data", "result_dtype"), [
    (np.zeros((7, 4), dtype="float32"), "float32"),
    (np.zeros((1, 4), dtype="int16"), "float32"),
    ([[1.5, 2, 3, 4]], "float32"),
], ids=["any-batch-size", "int16-to-float32", "nested-list"])
def test_enforce_tensor_matches_batch_size_and_casts_safely(data, result_dtype) -> None:
    if isinstance(data, list):
        with pytest.raises(InvalidInput, match=r"input array: expected float32, got float64"):
            enforce(tensor("float32", -1, 4), data)
        data = np.asarray(data, dtype="float32")
    out = enforce(tensor("float32", -1, 4), data)
    assert out.dtype == result_dtype
    assert out.shape[1] == 4


def test_enforce_tensor_returns_a_matching_array_itself() -> None:
    array = np.zeros((2, 3), dtype="int64")
    assert enforce(tensor("int64", -1, 3), array) is array
    assert enforce(tensor("float64", -1, 3), array).dtype == "float64"


def test_enforce_tensor_refuses_wrong_dtype_and_non_arrays() -> None:
    with pytest.raises(InvalidInput, match=r"input array: expected int64, got float64"):
        enforce(tensor("int64", -1), np.array([1.5]))
    with pytest.raises(InvalidInput, match=r"input array: expected string, got int64"):
        enforce(tensor("string", -1), np.array([1]))
    with pytest.raises(InvalidInput, match=r"expected a numpy array, got int"):
        enforce(tensor("int64", -1), 5)
