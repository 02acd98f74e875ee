"""Table digest recipes: recipe 1 digests recorded earlier still verify, recipe 2 (the default)
hashes categoricals by their categories and codes, and both tell every change of the data apart."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.data import describe_table, digest_table, recipe_of, verify_table
from shipyard.errors import InvalidInput

# -- recipe 1: digests recorded before recipe 2 -----------------------------------------------------


def golden_tables() -> dict[str, pa.Table | pd.DataFrame]:
    """Tables covering every part of the recipe: missing values and NaN, slices at odd offsets,
    chunks, categoricals, nested and other types."""
    rng = np.random.default_rng(42)
    n = 3001
    cities = np.array(["paris", "lyon", "nice", "lille", "", "z\u00fcrich"])
    x = rng.standard_normal(n)
    x[::7] = np.nan
    frame = pd.DataFrame({
        "x": x,
        "n": rng.integers(-50, 50, n),
        "maybe": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 9, n)), dtype="Int64"),
        "flag": rng.random(n) < 0.3,
        "bmaybe": pd.array(np.where(rng.random(n) < 0.1, None, rng.random(n) < 0.5), dtype="boolean"),
        "city": pd.array(np.where(rng.random(n) < 0.05, None, cities[rng.integers(0, 6, n)]), dtype="str"),
        "kind": pd.Categorical(cities[rng.integers(0, 6, n)]),
        "when": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
        "f32": rng.standard_normal(n).astype(np.float32),
    })
    frame.loc[::11, "kind"] = None
    big = pa.table({"v": pa.array(np.arange(1000, dtype=np.int64)), "f": pa.array(np.linspace(0, 1, 1000)),
                    "s": pa.array([str(i) if i % 13 else None for i in range(1000)]),
                    "b": pa.array([None if i % 17 == 0 else i % 3 == 0 for i in range(1000)])})
    nested = pa.table({
        "l": pa.array([[1, 2], None, [], [3]]),
        "st": pa.array([{"a": 1, "b": "x"}, None, {"a": None, "b": "y"}, {"a": 4, "b": None}]),
        "m": pa.array([[("k", 1)], None, [("a", 2)], []], pa.map_(pa.string(), pa.int64())),
        "d": pa.array([1, 2, None, 4], pa.decimal128(10, 2)),
        "bin": pa.array([b"\x00", None, b"\xff\xfe", b""]),
        "null": pa.nulls(4),
        "day": pa.array([0, None, 19000, 1], pa.date32()),
        "fx": pa.array([float("nan"), 1.0, None, -0.0]),
    })
    return {
        "frame": frame,
        "frame-slice": pa.Table.from_pandas(frame, preserve_index=False).slice(13, 2000),
        "big-slice": big.slice(5, 990),
        "big-chunked": pa.concat_tables([big.slice(0, 333), big.slice(333, 300), big.slice(633)]),
        "nested": nested,
        "nested-slice": nested.slice(1, 3),
        "empty": pa.table({"s": pa.array([], pa.large_string()), "x": pa.array([], pa.float64())}),
    }


# Computed by the recipe 1 implementation as it was before recipe 2 (Shipyard at 2026-12-06): the
# faster code that now computes recipe 1 must give the very same digests, or recorded ones stop verifying.
RECORDED_V1 = {
    "frame": "sha256:f091a2c370f4d6137e2dff5715625bce187ff1b91999fd0e06774df798fb7272",
    "frame-slice": "sha256:ea6e9f633a9912390b576e07a94cddcd73c54706be708f27ee2d97399962e1d5",
    "big-slice": "sha256:0dfde96f3ff5bea1b8ab397bdbaa7ab411718a1c06a6d960a9298daebcbc6f59",
    "big-chunked": "sha256:6eb0e1e2d4aba5a41056e5f34755b0f1cdebae20d2efab7153ccb0a81ff842da",
    "nested": "sha256:2a8e558360f3693eae7929ffcc73700094d0e5473000963d4545011b4a6afa24",
    "nested-slice": "sha256:efad42b1d43995b212f3fd1fb198bc86c852454390c292ee27110e11f90060ae",
    "empty": "sha256:3849ce0aed9dcadc00b2d0d53a43ea5ca68be871069e9e813f22ec2afa20a4f6",
}


@pytest.mark.parametrize("name", sorted(RECORDED_V1))
def test_recorded_recipe_1_digests_still_verify(name: str) -> None:
    table = golden_tables()[name]
    recorded = RECORDED_V1[name]
    assert recipe_of(recorded) == 1
    assert digest_table(table, recipe=1) == recorded
    assert digest_table(table, recipe=1, workers=1) == recorded
    assert verify_table(table, recorded)
    current = digest_table(table)
    assert current.startswith("t2:sha256:")
    assert current != recorded
    assert recipe_of(current) == 2
    assert verify_table(table, current)
    assert describe_table(table)[0] == current


def test_verify_table_tells_other_data_apart() -> None:
    table = golden_tables()["big-slice"]
    other = table.slice(1)
    assert not verify_table(other, RECORDED_V1["big-slice"])
    assert not verify_table(other, digest_table(table))


@pytest.mark.parametrize("bad", [
    "", "sha256:abc", "md5:" + "a" * 32, "sha256:" + "A" * 64, "t2:sha256:" + "g" * 64, "t2:" + "a" * 64,
    "t1:sha256:" + "a" * 64,  # recipe 1 never had a tag
])
def test_recipe_of_refuses_what_is_not_a_table_digest(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"not a table digest|does not know"):
        recipe_of(bad)


def test_a_digest_of_an_unknown_recipe_asks_for_an_upgrade() -> None:
    with pytest.raises(InvalidInput, match="recipe 3, which this version of Shipyard does not know"):
        verify_table(pa.table({"a": [1]}), "t3:sha256:" + "0" * 64)
    for bad in (0, 3, True, "2"):
        with pytest.raises(InvalidInput, match="recipe must be one of 1, 2"):
            digest_table(pa.table({"a": [1]}), recipe=bad)  # type: ignore[arg-type]


# -- recipe 2: categoricals ------------------------------------------------------------------------


def frame_(data: bytes) -> bytes:
    return len(data).to_bytes(8, "little") + data


def test_recipe_2_follows_the_documented_recipe_for_a_categorical() -> None:
    table = pa.table({"c": pa.DictionaryArray.from_arrays(pa.array([1, None, 0, 1], pa.int32()),
                                                          pa.array(["z", "a"]))})
    # categories sorted: ["a", "z"], so the codes become [0, -, 1, 0] (missing = 0), one byte each
    categories = frame_(b"") + frame_(np.array([0, 1, 2], "<i8").tobytes()) + frame_(b"az")
    column = hashlib.sha256(frame_(bytes([0b1101])) + categories + frame_(bytes([0, 0, 1, 0]))).digest()
    header = json.dumps({"columns": [["c", "dictionary<large_string>"]], "rows": 4}, sort_keys=True,
                        separators=(",", ":"))
    expected = hashlib.sha256(f"shipyard-table-v2\n{header}\n".encode() + column).hexdigest()
    assert digest_table(table) == f"t2:sha256:{expected}"


def test_recipe_2_a_categorical_is_its_categories_and_codes() -> None:
    values = ["x", None, "z", "x"]
    plain = pd.DataFrame({"b": values})
    categorical = plain.astype({"b": "category"})
    base = digest_table(categorical)
    # the same categorical from polars, Arrow, with other index widths, in chunks, from a Parquet file
    assert digest_table(pl.from_pandas(plain).with_columns(pl.col("b").cast(pl.Categorical))) == base
    encoded = pa.array(values).dictionary_encode()
    assert digest_table(pa.table({"b": encoded})) == base
    wide = pa.DictionaryArray.from_arrays(encoded.indices.cast(pa.int64()), encoded.dictionary.cast(pa.large_string()))
    assert digest_table(pa.table({"b": wide})) == base
    chunks = pa.chunked_array([pa.array(["x", None]).dictionary_encode(), pa.array(["z", "x"]).dictionary_encode()])
    assert digest_table(pa.table({"b": chunks})) == base
    # category order does not count unless ordered
    assert digest_table(plain.astype({"b": pd.CategoricalDtype(["z", "x"])})) == base
    ordered = digest_table(plain.astype({"b": pd.CategoricalDtype(["x", "z"], ordered=True)}))
    assert ordered != base
    assert digest_table(plain.astype({"b": pd.CategoricalDtype(["z", "x"], ordered=True)})) != ordered
    # the categories are part of the type, as in pandas: an unused one counts, plain strings differ
    assert digest_table(plain.astype({"b": pd.CategoricalDtype(["x", "y", "z"])})) != base
    assert digest_table(plain) != base
    # recipe 1 hashes the decoded values: a categorical equals its strings there
    assert digest_table(categorical, recipe=1) == digest_table(plain, recipe=1)


def test_recipe_2_rebuilds_a_dictionary_with_duplicates_or_missing_categories() -> None:
    clean = digest_table(pa.table({"b": pa.array(["x", None, "z", "x"]).dictionary_encode()}))
    duplicated = pa.DictionaryArray.from_arrays(pa.array([0, None, 2, 1]), pa.array(["x", "x", "z"]))
    assert digest_table(pa.table({"b": duplicated})) == clean
    missing = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2, 0]), pa.array(["x", None, "z"]))
    assert digest_table(pa.table({"b": missing})) == clean
    floats = pa.DictionaryArray.from_arrays(pa.array([0, 1, 2]), pa.array([1.5, float("nan"), -2.0]))
    assert digest_table(pa.table({"f": floats})) == digest_table(
        pa.table({"f": pa.array([1.5, None, -2.0]).dictionary_encode()}))


def test_recipe_2_categoricals_survive_parquet(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    data = pd.DataFrame({
        "kind": pd.Categorical(rng.choice(["b", "a", "c"], 5000), categories=["c", "b", "a", "unused"]),
        "grade": pd.Categorical(rng.choice(["lo", "hi"], 5000), categories=["lo", "hi"], ordered=True),
        "x": rng.standard_normal(5000),
    })
    data.loc[::9, "kind"] = None
    base = digest_table(data)
    data.to_parquet(tmp_path / "d.parquet", row_group_size=700)  # several chunks, one dictionary each
    assert digest_table(pd.read_parquet(tmp_path / "d.parquet")) == base
    assert digest_table(pq.read_table(tmp_path / "d.parquet")) == base
    assert verify_table(pq.read_table(tmp_path / "d.parquet"), base)


# -- both recipes: equal data, equal digests; any change, another digest ---------------------------

CITIES = ["paris", "lyon", "", "z\u00fcrich", "nice"]


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(1, 40))
    ints = st.lists(st.integers(-(2**40), 2**40), min_size=rows, max_size=rows)
    floats = st.lists(st.one_of(st.none(), st.floats(allow_nan=False, width=64)), min_size=rows, max_size=rows)
    texts = st.lists(st.one_of(st.none(), st.sampled_from(CITIES)), min_size=rows, max_size=rows)
    flags = st.lists(st.booleans(), min_size=rows, max_size=rows)
    return pd.DataFrame({
        "i": pd.array(draw(ints), dtype="int64"),
        "f": pd.array(draw(floats), dtype="float64"),
        "s": pd.array(draw(texts), dtype="str"),
        "c": pd.Categorical(draw(texts), categories=CITIES),
        "b": pd.array(draw(flags), dtype="bool"),
    })


def _changed_cell(data: pd.DataFrame, column: str, row: int) -> pd.DataFrame:
    changed = data.copy()
    old = changed.loc[row, column]
    if column == "i":
        changed.loc[row, column] = old + 1
    elif column == "f":
        changed.loc[row, column] = 0.5 if pd.isna(old) or old != 0.5 else 0.25
    elif column in ("s", "c"):
        changed.loc[row, column] = "lyon" if old != "lyon" else "paris"
    else:
        changed.loc[row, column] = not old
    return changed


@pytest.mark.parametrize("recipe", [1, 2])
@settings(max_examples=60, deadline=None)
@given(data=frames(), pick=st.data())
def test_equal_frames_equal_digests_and_any_change_another(recipe: int, data: pd.DataFrame,
                                                          pick: st.DataObject) -> None:
    base = digest_table(data, recipe=recipe)
    # the same data, held another way
    arrow = pa.Table.from_pandas(data, preserve_index=False)
    assert digest_table(data.copy(), recipe=recipe) == base
    assert digest_table(arrow, recipe=recipe) == base
    assert digest_table(pa.Table.from_batches(arrow.to_batches(max_chunksize=7)), recipe=recipe) == base
    assert digest_table(data.set_axis(data.index + 10), recipe=recipe) == base
    # a value
    column = pick.draw(st.sampled_from(list(data.columns)))
    row = pick.draw(st.integers(0, len(data) - 1))
    assert digest_table(_changed_cell(data, column, row), recipe=recipe) != base
    # a column name
    assert digest_table(data.rename(columns={column: column + "_"}), recipe=recipe) != base
    # a dtype
    assert digest_table(data.astype({"i": "int32"}), recipe=recipe) != base
    assert digest_table(data.astype({"b": "int8"}), recipe=recipe) != base
    assert digest_table(data.astype({"i": "float64"}), recipe=recipe) != base
    if recipe == 2:  # recipe 1 hashes a categorical as its values
        assert digest_table(data.astype({"s": pd.CategoricalDtype(CITIES)}), recipe=recipe) != base
        assert digest_table(data.astype({"c": "str"}), recipe=recipe) != base
    # the row order (unless reordering gives the same rows)
    order = pick.draw(st.permutations(range(len(data))))
    shuffled = data.iloc[list(order)].reset_index(drop=True)
    if not shuffled.equals(data):
        assert digest_table(shuffled, recipe=recipe) != base
