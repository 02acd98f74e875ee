"""``describe_table`` / ``describe_file``: the same digest and profile as the separate calls, computed together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shipyard.data import describe_file, describe_table, digest_file, digest_table, profile_file, profile_table
from shipyard.data.numeric import summarize
from shipyard.errors import InvalidInput, NotFound


def frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    out = pd.DataFrame({"x": rng.standard_normal(rows), "n": rng.integers(0, 50, rows),
                        "flag": rng.random(rows) < 0.2,
                        "city": pd.array(np.array(["a", "b", "c"])[rng.integers(0, 3, rows)], dtype="str"),
                        "seg": pd.Categorical.from_codes(rng.integers(0, 4, rows), ["p", "q", "r", "s"])})
    out.loc[::5, "x"] = np.nan
    return out


@pytest.mark.parametrize("rows", [0, 10, 60_000], ids=["empty", "small", "threaded"])
@pytest.mark.parametrize("workers", [1, 2, None])
def test_describe_table_equals_the_separate_calls(rows: int, workers: int | None) -> None:
    data = frame(rows)
    digest, profile = describe_table(data, workers=workers)
    assert digest == digest_table(data)
    assert profile == profile_table(data)


@pytest.mark.parametrize("shape", ["nan-inf-float32", "floats-only", "every-other-row", "all-nan", "nullable-float",
                                   "int-names", "named-index"])
def test_describe_table_equals_the_separate_calls_for_float_columns(shape: str) -> None:
    # describe_table reads a frame's float columns without to_arrow's NaN mask and makes NaN missing
    # itself: every shape of float column must still give what digest_table and profile_table give
    rng = np.random.default_rng(8)
    data = pd.DataFrame({"a": rng.standard_normal(60_000), "b": rng.standard_normal(60_000).astype(np.float32),
                         "s": rng.choice(["x", "y"], 60_000), "i": rng.integers(0, 9, 60_000)})
    data.loc[rng.random(60_000) < 0.1, "a"] = np.nan
    data.loc[rng.random(60_000) < 0.1, "b"] = np.nan
    data.loc[::1000, "a"] = np.inf
    data = {"nan-inf-float32": data, "floats-only": data[["a", "b"]], "every-other-row": data.iloc[::2],
            "all-nan": data.assign(a=np.nan), "nullable-float": data.assign(a=data["a"].astype("Float64")),
            "int-names": data.set_axis(range(4), axis=1), "named-index": data.set_index("i")}[shape]
    for workers in (1, None):
        assert describe_table(data, workers=workers) == (digest_table(data), profile_table(data))


def test_describe_table_refuses_what_digest_table_refuses() -> None:
    with pytest.raises(InvalidInput, match="unsupported data"):
        describe_table({"x": [1]})
    with pytest.raises(InvalidInput, match="workers"):
        describe_table(frame(3), workers=0)
    duplicated = frame(3).set_axis(["x", "x", "flag", "city", "seg"], axis=1)
    with pytest.raises(InvalidInput, match="Duplicate column names"):
        digest_table(duplicated)
    with pytest.raises(InvalidInput, match="Duplicate column names"):
        describe_table(duplicated)


def test_describe_file_equals_the_separate_calls(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    frame(5_000).to_parquet(path)
    assert describe_file(path) == (digest_file(path), profile_file(path))
    text = tmp_path / "notes.txt"
    text.write_text("not a table")
    assert describe_file(text) == (digest_file(text), None)
    with pytest.raises(NotFound):
        describe_file(tmp_path / "missing.parquet")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InvalidInput, match="cannot read"):
        describe_file(broken)


def test_summary_statistics_do_not_use_blas(monkeypatch: pytest.MonkeyPatch) -> None:
    # BLAS (np.dot) spins worker threads on every call, which took the cores from the digest's hashing
    # threads and cost several times the summary's own CPU time.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("summarize called np.dot")

    monkeypatch.setattr(np, "dot", refuse)
    values = np.random.default_rng(3).standard_normal(200_000)
    summary = summarize(values, (0.5,))
    assert summary.std == pytest.approx(values.std(ddof=1), rel=1e-12)
