"""The DataFrame serializer: exact round trip, and dictionary encoding only where values repeat by nature."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from shipyard.pipelines.serializers import DataFrameSerializer


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "f": rng.random(6),
            "i": np.arange(6),
            "s": list("aabbcc"),
            "o": [b"x", b"y", None, b"x", b"z", b"y"],
            "c": pd.Categorical(list("xyzxyz"), categories=list("zyx"), ordered=True),
            "b": np.array([True, False] * 3),
            "t": pd.date_range("2020", periods=6, tz="UTC"),
            "n": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
        },
        index=pd.Index(list("uvwxyz"), name="key"),
    )


def test_a_dataframe_reads_back_exactly(tmp_path: Path) -> None:
    frame = _frame()
    serializer = DataFrameSerializer()

    serializer.dump(frame, tmp_path)
    back = serializer.load(tmp_path)

    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert list(back.dtypes) == list(frame.dtypes)


def test_a_multiindex_and_a_categorical_index_read_back(tmp_path: Path) -> None:
    serializer = DataFrameSerializer()
    for number, frame in enumerate((
        pd.DataFrame({"v": [1, 2, 3]},
                     index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2), ("a", 3)], names=["k", None])),
        pd.DataFrame({"v": [1.5, 2.5]}, index=pd.CategoricalIndex(["p", "q"])),
        pd.DataFrame({0: [1.0, 2.0], 1: ["a", "b"]}),
    )):
        folder = tmp_path / str(number)
        folder.mkdir()
        serializer.dump(frame, folder)
        pd.testing.assert_frame_equal(serializer.load(folder), frame, check_exact=True)


def test_only_strings_bytes_and_categoricals_are_dictionary_encoded(tmp_path: Path) -> None:
    DataFrameSerializer().dump(_frame(), tmp_path)

    row_group = pq.ParquetFile(tmp_path / "data.parquet").metadata.row_group(0)
    encoded = {row_group.column(i).path_in_schema: row_group.column(i).encodings
               for i in range(row_group.num_columns)}
    dictionary = {name for name, encodings in encoded.items() if any("DICTIONARY" in e for e in encodings)}
    assert dictionary == {"s", "o", "c", "key"}  # not the floats, ints, booleans, times
