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


def test_describe_table_refuses_what_digest_table_refuses() -> None:
    with pytest.raises(InvalidInput, match="unsupported data"):
        describe_table({"x": [1]})
    with pytest.raises(InvalidInput, match="workers"):
        describe_table(frame(3), workers=0)


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
