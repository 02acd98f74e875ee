"""Profiles and schemas of tables, checked against numpy and pandas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pytest

from shipyard.data import describe_table, numeric, profile_file, profile_table, schema_of
from shipyard.data.numeric import quantiles, summarize
from shipyard.data.profile import QUANTILES
from shipyard.errors import InvalidInput, NotFound

ROWS = 5000


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    # city frequencies are all different, so the top values have no ties
    cities = np.repeat([f"c{i:02d}" for i in range(15)], [ROWS // 120 * (15 - i) for i in range(15)])
    cities = np.concatenate([cities, np.full(ROWS - len(cities), "c00")])
    rng.shuffle(cities)
    frame = pd.DataFrame({
        "price": rng.lognormal(3, 1, ROWS),
        "count": rng.integers(-1000, 1000, ROWS),
        "maybe": pd.array(np.where(rng.random(ROWS) < 0.2, None, rng.integers(0, 50, ROWS)), dtype="Int64"),
        "active": pd.array(np.where(rng.random(ROWS) < 0.05, None, rng.random(ROWS) < 0.7), dtype="boolean"),
        "city": cities,
        "segment": pd.Categorical(rng.choice(["a", "b", "c"], ROWS, p=[0.5, 0.3, 0.2])),
        "seen": pd.Timestamp("2024-03-01") + pd.to_timedelta(rng.integers(0, 10**7, ROWS), unit="s"),
    })
    frame.loc[::9, "price"] = np.nan
    frame.loc[::50, "city"] = None
    return frame


def column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def test_numbers_match_numpy_and_pandas(data: pd.DataFrame) -> None:
    profile = profile_table(data)
    assert profile["rows"] == ROWS
    assert profile["format"] == "shipyard-profile-v1"
    for name in ("price", "count", "maybe"):
        got, series = column(profile, name), data[name].dropna()
        values = series.to_numpy(dtype=float)
        assert got["kind"] == "number"
        assert got["nulls"] == data[name].isna().sum()
        assert got["count"] == len(values)
        assert got["null_rate"] == pytest.approx(data[name].isna().mean())
        assert got["min"] == series.min()
        assert got["max"] == series.max()
        assert got["mean"] == pytest.approx(series.mean(), rel=1e-12)
        assert got["std"] == pytest.approx(series.std(), rel=1e-12)  # sample std, as pandas
        expected = np.quantile(values, QUANTILES)
        assert list(got["quantiles"]) == ["p1", "p5", "p25", "p50", "p75", "p95", "p99"]
        assert list(got["quantiles"].values()) == pytest.approx(expected, rel=1e-12)
    assert column(profile, "price")["type"] == "double"
    assert column(profile, "count")["type"] == "int64"
    assert isinstance(column(profile, "count")["min"], int)


def test_strings_categories_booleans_and_times(data: pd.DataFrame) -> None:
    profile = profile_table(data)
    city = column(profile, "city")
    counts = data["city"].value_counts()
    assert city["kind"] == "string"
    assert "categorical" not in city
    assert city["distinct"] == data["city"].nunique()
    assert city["nulls"] == data["city"].isna().sum()
    assert city["top"] == [[value, int(n)] for value, n in counts.head(10).items()]
    segment = column(profile, "segment")
    assert segment["categorical"] is True
    assert segment["type"] == "large_string"
    assert segment["kind"] == "string"
    assert segment["top"] == [[v, int(n)] for v, n in data["segment"].value_counts().items()]
    active = column(profile, "active")
    assert active["kind"] == "boolean"
    assert (active["true"], active["false"], active["nulls"]) == (
        int((data["active"] == True).sum()), int((data["active"] == False).sum()),  # noqa: E712
        int(data["active"].isna().sum()))
    seen = column(profile, "seen")
    assert seen["kind"] == "datetime"
    assert seen["type"] == "timestamp[us]"
    assert pd.Timestamp(seen["min"]) == data["seen"].min()
    assert pd.Timestamp(seen["max"]) == data["seen"].max()


def test_profile_is_json_and_survives_a_parquet_round_trip(data: pd.DataFrame, tmp_path: Path) -> None:
    profile = profile_table(data)
    assert json.loads(json.dumps(profile, allow_nan=False)) == profile
    data.to_parquet(tmp_path / "d.parquet")
    assert profile_table(pd.read_parquet(tmp_path / "d.parquet")) == profile
    assert profile_file(tmp_path / "d.parquet") == profile
    assert profile_table(pl.from_pandas(data)) == profile
    bigger = pd.concat([data] * 8, ignore_index=True)  # enough cells for the threaded path
    assert profile_table(bigger, workers=2) == profile_table(bigger, workers=1)


def test_ties_nan_infinity_and_empty_columns() -> None:
    profile = profile_table(pa.table({
        "x": [1.0, float("nan"), float("inf"), None, 3.0, float("-inf")],
        "empty": pa.array([None] * 6, pa.float64()),
        "s": ["b", "a", "b", "a", "c", None],
        "one": [5, None, None, None, None, None],
        "l": [[1], [], None, [2, 3], [4], [5]],
    }))
    x = column(profile, "x")
    assert (x["nulls"], x["count"], x["infinite"], x["min"], x["max"], x["mean"]) == (2, 2, 2, 1.0, 3.0, 2.0)
    empty = column(profile, "empty")
    assert empty["count"] == 0
    assert empty["mean"] is None
    assert set(empty["quantiles"].values()) == {None}
    assert column(profile, "one")["std"] is None
    assert column(profile, "one")["mean"] == 5
    assert column(profile, "s")["top"] == [["b", 2], ["a", 2], ["c", 1]]  # ties: first seen first
    assert column(profile, "l")["kind"] == "other"
    assert column(profile, "l")["nulls"] == 1
    assert profile_table(pa.table({"x": pa.array([], pa.int64())}))["columns"][0]["null_rate"] == 0.0
    json.dumps(profile, allow_nan=False)
    huge = profile_table(pa.table({"x": [1e308, 1.5e308, 1.7e308, -1.7e308] * 2000}))  # sums overflow float64
    json.dumps(huge, allow_nan=False)
    assert column(huge, "x")["mean"] is None
    assert column(huge, "x")["max"] == 1.7e308


def test_schema_of(data: pd.DataFrame) -> None:
    assert schema_of(data) == [
        {"name": "price", "type": "double", "nullable": True},
        {"name": "count", "type": "int64", "nullable": True},
        {"name": "maybe", "type": "int64", "nullable": True},
        {"name": "active", "type": "bool", "nullable": True},
        {"name": "city", "type": "large_string", "nullable": True},
        {"name": "segment", "type": "large_string", "nullable": True},
        {"name": "seen", "type": "timestamp[us]", "nullable": True},
    ]
    strict = pa.schema([pa.field("id", pa.string(), nullable=False)])
    assert schema_of(pa.table({"id": ["a"]}, schema=strict)) == [
        {"name": "id", "type": "large_string", "nullable": False}]


def test_profile_file_formats(data: pd.DataFrame, tmp_path: Path) -> None:
    small = data[["price", "count", "city"]].head(500)
    expected = profile_table(small)
    small.to_csv(tmp_path / "d.csv", index=False)
    feather.write_feather(pa.Table.from_pandas(small, preserve_index=False), tmp_path / "d.feather")
    table = pa.Table.from_pandas(small, preserve_index=False)
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    with pa.OSFile(str(tmp_path / "stream.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    for name in ("d.feather", "file.arrow", "stream.arrow"):
        assert profile_file(tmp_path / name) == expected, name
    from_csv = profile_file(tmp_path / "d.csv")
    assert from_csv is not None
    assert from_csv["rows"] == 500
    assert column(from_csv, "city") == column(expected, "city")
    assert column(from_csv, "price")["mean"] == pytest.approx(column(expected, "price")["mean"])


def test_profile_file_of_other_things(tmp_path: Path) -> None:
    assert profile_file(tmp_path) is None  # a folder
    (tmp_path / "notes.txt").write_text("hello")
    assert profile_file(tmp_path / "notes.txt") is None
    with pytest.raises(NotFound, match=r"no such file: .*absent\.parquet"):
        profile_file(tmp_path / "absent.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(InvalidInput, match=r"cannot read .*broken\.parquet.* as parquet"):
        profile_file(tmp_path / "broken.parquet")


@pytest.mark.parametrize("bad", [{"a": [1]}, [1, 2, 3], "data.parquet", None], ids=["dict", "list", "str", "none"])
def test_unsupported_objects(bad: object) -> None:
    with pytest.raises(InvalidInput, match="unsupported data"):
        profile_table(bad)
    with pytest.raises(InvalidInput, match="unsupported data"):
        schema_of(bad)


@pytest.mark.parametrize("values", [
    pytest.param(np.random.default_rng(1).standard_normal(50_000), id="normal"),
    pytest.param(np.random.default_rng(2).lognormal(3, 2, 50_000), id="skewed"),
    pytest.param(np.random.default_rng(3).integers(0, 500, 50_000), id="small-int-range"),
    pytest.param(np.random.default_rng(4).integers(-(2**62), 2**62, 50_000), id="wide-ints"),
    pytest.param(np.random.default_rng(5).integers(0, 2**64 - 1, 50_000, dtype=np.uint64), id="uint64"),
    pytest.param(np.random.default_rng(6).standard_normal(50_000).astype(np.float32), id="float32"),
    pytest.param(np.full(50_000, 2.5), id="constant"),
    pytest.param(np.where(np.random.default_rng(7).random(50_000) < 0.5, -1.0, 1e300), id="two-values"),
    pytest.param(np.concatenate([np.full(25_000, -0.0), np.full(25_000, 0.0), [1e-310, -5e-324]]), id="zeros"),
    pytest.param(np.array([3.0, 1.0, 2.0]), id="small"),
])
def test_quantiles_equal_numpy_exactly(values: np.ndarray) -> None:
    assert np.array_equal(quantiles(values, QUANTILES), np.quantile(values, QUANTILES))


def test_empty_tables() -> None:
    profile = profile_table(pa.table({"s": pa.chunked_array([], pa.string()), "x": pa.array([], pa.float64()),
                                      "c": pa.chunked_array([], pa.dictionary(pa.int32(), pa.string()))}))
    assert profile["rows"] == 0
    assert [(c["name"], c["nulls"], c.get("distinct")) for c in profile["columns"]] == [
        ("s", 0, 0), ("x", 0, None), ("c", 0, 0)]
    assert profile_table(pa.table({}))["columns"] == []


def test_summary_of_a_large_array_matches_numpy() -> None:
    values = np.random.default_rng(8).normal(50, 7, 300_001)
    summary = summarize(values, QUANTILES)
    assert (summary.count, summary.min, summary.max) == (values.size, values.min(), values.max())
    assert summary.mean == pytest.approx(values.mean(), rel=1e-13)
    assert summary.std == pytest.approx(values.std(ddof=1), rel=1e-12)
    assert summary.quantiles == tuple(np.quantile(values, QUANTILES))
    ints = np.random.default_rng(9).integers(-(10**12), 10**12, 200_000)
    assert summarize(ints, QUANTILES).std == pytest.approx(ints.std(ddof=1), rel=1e-12)


@pytest.mark.parametrize("late", [False, True], ids=["all-early", "one-late"])
def test_large_categorical_top_values_in_first_appearance_order(late: bool) -> None:
    # past the row count where categories are counted by np.bincount; with "one-late" a category
    # first appears after the rows read for the order of first appearance
    rng = np.random.default_rng(12)
    codes = np.repeat(np.arange(-1, 40), 2_439)  # missing (-1) and 40 categories, all tied: first appearance decides
    rng.shuffle(codes)
    if late:
        codes[codes == 37] = 3
        codes[90_000] = 37
    values = pd.Categorical.from_codes(codes, [f"k{i:02d}" for i in range(45)])  # 5 unused categories
    got = column(profile_table(pd.DataFrame({"c": values})), "c")
    present = [f"k{c:02d}" for c in codes if c >= 0]
    counted: dict[str, int] = {}
    for value in present:  # a dict keeps first-appearance order: the tie-break the profile promises
        counted[value] = counted.get(value, 0) + 1
    expected = sorted(counted.items(), key=lambda item: -item[1])[:10]
    assert got["distinct"] == len(counted) == 40
    assert got["nulls"] == int((codes < 0).sum())
    assert got["top"] == [[value, n] for value, n in expected]


# -- pinned profiles: the values profile_table gave before its 2026-12-07 speed-ups -----------------

PINNED = Path(__file__).with_name("profile_pinned.json")


def pinned_tables() -> dict[str, Any]:
    """A mixed frame crossing every path of the profile: more than one 65,536-value chunk, floats
    with NaN, infinities and nulls (signed, positive, two-valued, float32), narrow and wide integers,
    unsigned, nullable, strings with ties and nulls, categoricals (counted on their codes, one first
    seen late, more than 65,536 categories, a dictionary with a repeated value), booleans, datetimes,
    decimals, binaries, lists and an all-null column; and a slice and a re-chunked copy of it."""
    rng = np.random.default_rng(20261207)
    n = 70_001
    normal = rng.standard_normal(n)
    normal[::7] = np.nan
    spiky = rng.standard_normal(n) * 1e3
    spiky[::97], spiky[5::89], spiky[3::13] = np.inf, -np.inf, np.nan
    words = np.array([f"w{k:03d}" for k in range(300)])
    late = rng.integers(0, 30, n)
    late[late == 29] = 0
    late[40_000] = 29  # first appears after the rows read for the order of first appearance
    frame = pd.DataFrame({
        "normal": normal,
        "lognormal": rng.lognormal(2, 1.5, n),
        "spiky": spiky,
        "two": np.where(rng.random(n) < 0.4, -2.5, 7.0),
        "f32": (rng.standard_normal(n) * 10).astype(np.float32),
        "small_int": rng.integers(-20, 980, n),
        "wide_int": rng.integers(-(2**50), 2**52, n),
        "i32": rng.integers(-30_000, 30_000, n).astype(np.int32),
        "u64": rng.integers(0, 2**64 - 1, n, dtype=np.uint64),
        "nullable": pd.array(np.where(rng.random(n) < 0.15, None, rng.integers(0, 70_000, n)), dtype="Int64"),
        "flag": rng.random(n) < 0.3,
        "maybe_flag": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.6), dtype="boolean"),
        "word": pd.array(np.where(rng.random(n) < 0.05, None, words[rng.integers(0, 300, n)]), dtype="str"),
        "few": pd.array(np.array(["x", "y", "z", "", "\u00e9t\u00e9"])[rng.integers(0, 5, n)], dtype="str"),
        "segment": pd.Categorical.from_codes(np.where(rng.random(n) < 0.08, -1, rng.integers(0, 50, n)),
                                             [f"s{k:02d}" for k in range(52)]),
        "late": pd.Categorical.from_codes(late, [f"l{k:02d}" for k in range(30)]),
        "many": pd.Categorical.from_codes(rng.permutation(n) % 69_000, [f"m{k}" for k in range(69_000)]),
        "when": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**8, n), unit="s"),
        "naive": (pd.Timestamp("2020-06-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="ms")).where(
            rng.random(n) > 0.02),
        "constant": np.full(n, 0.125),
    })
    table = pa.Table.from_pandas(frame, preserve_index=False)
    extra = {
        "both_missing": pa.array(np.where(np.arange(n) % 11 == 0, np.nan, rng.standard_normal(n)),
                                 mask=np.arange(n) % 5 == 0),
        "decimal": pa.array([None if i % 9 == 0 else (i * 37) % 1000 for i in range(n)]).cast(pa.decimal128(22, 2)),
        "day": pa.array(rng.integers(0, 30_000, n).astype(np.int32), pa.date32()),
        "binary": pa.array([None if i % 13 == 0 else bytes([i % 7, i % 3]) for i in range(n)]),
        "list": pa.array([None if i % 17 == 0 else [i % 4] for i in range(n)]),
        "nothing": pa.nulls(n, pa.float64()),
        "dup_dict": pa.DictionaryArray.from_arrays(pa.array(rng.integers(0, 4, n).astype(np.int8)),
                                                   pa.array(["a", "b", "a", "c"])),
    }
    for name, array in extra.items():
        table = table.append_column(name, array)
    batches = table.to_batches()
    rechunked = pa.Table.from_batches([b for batch in batches for b in (batch.slice(0, 30_000), batch.slice(30_000))])
    return {"frame": frame, "table": table, "slice": table.slice(13, 3_000), "rechunked": rechunked}


def test_profiles_equal_the_pinned_values() -> None:
    # profile_table's results may not change with its implementation (logged profiles are compared
    # across versions): these were written by the code before the 2026-12-07 changes
    expected = json.loads(PINNED.read_text())
    tables = pinned_tables()
    assert set(expected) == {"frame", "table", "slice"}
    for name in ("frame", "table", "slice"):
        assert profile_table(tables[name]) == expected[name], name
    assert profile_table(tables["rechunked"], workers=2) == expected["table"]
    assert describe_table(tables["table"], workers=2)[1] == expected["table"]
    assert describe_table(tables["frame"], workers=2)[1] == expected["frame"]


def test_equal_width_buckets_give_the_quantiles_the_keys_give(monkeypatch: pytest.MonkeyPatch) -> None:
    # floats not crowded near the quantiles are counted in equal-width buckets; any order-keeping
    # map picks the same values, except which zero a partition returns among -0.0 and 0.0: then the
    # quantiles are picked again through the keys, so the bits are what they were before
    rng = np.random.default_rng(17)
    normal = rng.standard_normal(60_001)
    assert numeric._Linear.fit(normal, QUANTILES, normal.min(), normal.max()) is not None
    skewed = rng.lognormal(2, 1.5, 60_001)
    assert numeric._Linear.fit(skewed, QUANTILES, skewed.min(), skewed.max()) is None
    cases = [normal, rng.standard_normal(200_000).astype(np.float32), rng.random(100_000) * 1e300]
    for _ in range(6):  # ten zeros of either sign at the middle, quantiles between two of them
        zeros = np.where(rng.random(10) < 0.5, -0.0, 0.0)
        values = np.concatenate([-np.abs(rng.standard_normal(29_995)) - 1e-3, zeros,
                                 np.abs(rng.standard_normal(29_996)) + 1e-3])
        rng.shuffle(values)
        cases.append(values)
    qs = (*QUANTILES, *((29_995 + np.arange(10) + 0.75) / 60_000))
    got = [np.array(summarize(values, qs).quantiles) for values in cases]
    monkeypatch.setattr(numeric._Linear, "fit", classmethod(lambda cls, *args: None))
    for values, linear in zip(cases, got, strict=True):
        keys = np.array(summarize(values, qs).quantiles)
        assert np.array_equal(linear.view(np.uint64), keys.view(np.uint64))
        assert np.array_equal(linear, np.quantile(values, qs))


def test_extremes_read_in_chunks_equal_numpy() -> None:
    rng = np.random.default_rng(18)
    nan = rng.standard_normal(150_000)
    nan[100_000] = np.nan
    zeros = np.concatenate([np.full(70_000, -0.0), np.full(70_000, 0.0), rng.random(10)])
    for values in (rng.standard_normal(150_000), rng.integers(-9, 9, 150_000), nan, zeros, -zeros,
                   rng.standard_normal(150_000).astype(np.float32), np.arange(10.0)):
        low, high = numeric.extremes(values)
        assert (low.dtype, high.dtype) == (values.dtype, values.dtype)
        assert np.array([low, high]).tobytes() == np.array([values.min(), values.max()]).tobytes()
