"""``shipyard.monitoring.drift``: inputs, test choice, bad input, the report and the ``shipyard drift`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shipyard.cli import app
from shipyard.errors import InvalidInput, NotFound
from shipyard.monitoring import DriftReport, drift, reference_profile
from shipyard.monitoring.report import TABLE_COLUMNS

ROWS = 3_000


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)

    def make(shift: float, plan: list[float]) -> pd.DataFrame:
        return pd.DataFrame({
            "age": rng.normal(40 + shift, 10, ROWS),
            "income": rng.lognormal(10, 0.5, ROWS),
            "plan": rng.choice(["free", "pro", "team"], ROWS, p=plan),
            "children": rng.integers(0, 4, ROWS),
            "active": rng.random(ROWS) < 0.7,
        })

    return make(0, [0.6, 0.3, 0.1]), make(5, [0.3, 0.3, 0.4])


def test_drifted_columns_and_automatic_tests(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = drift(*frames)
    assert report.drifted_columns == ["age", "plan"]
    assert report.dataset_drift
    tests = {c.column: (c.kind, c.test) for c in report.columns}
    assert tests == {"age": ("numerical", "ks"), "income": ("numerical", "ks"), "plan": ("categorical", "chisquare"),
                     "children": ("numerical", "chisquare"), "active": ("categorical", "chisquare")}
    assert all(c.threshold == pytest.approx(0.05 / 5) for c in report.columns)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "dict", "structured", "parquet", "csv"])
def test_every_input_gives_the_same_statistics(kind: str, frames: tuple[pd.DataFrame, pd.DataFrame],
                                               tmp_path: Path) -> None:
    frames = tuple(f[["age", "income", "plan", "children"]] for f in frames)  # type: ignore[assignment]
    expected = drift(*frames).to_pandas()[["column", "test", "statistic", "p_value", "psi"]]

    def convert(frame: pd.DataFrame, side: str) -> object:
        if kind == "pandas":
            return frame
        if kind == "polars":
            return pl.from_pandas(frame)
        if kind == "arrow":
            return pa.Table.from_pandas(frame)
        if kind == "dict":
            return {c: frame[c].to_numpy() for c in frame.columns}
        if kind == "structured":
            return frame.to_records(index=False)
        path = tmp_path / f"{side}.{kind}"
        frame.to_parquet(path) if kind == "parquet" else frame.to_csv(path, index=False)
        return str(path)

    got = drift(convert(frames[0], "ref"), convert(frames[1], "cur")).to_pandas()[expected.columns]
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_columns_and_per_column_tests(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = drift(*frames, columns=["age", "plan"], tests={"age": ("wasserstein", 0.9), "plan": "psi"})
    assert [c.column for c in report.columns] == ["age", "plan"]
    age, plan = report["age"], report["plan"]
    assert age.test == "wasserstein"
    assert age.threshold == 0.9
    assert age.p_value is None
    assert age.statistic == age.wasserstein
    assert not age.drifted
    assert plan.test == "psi"
    assert plan.threshold == 0.2
    assert plan.drifted
    assert plan.statistic == plan.psi


def test_holm_and_no_correction() -> None:
    rng = np.random.default_rng(11)
    ref = {f"x{i}": rng.normal(size=2_000) for i in range(4)}
    cur = {f"x{i}": rng.normal(0.08 * i, 1, size=2_000) for i in range(4)}
    bonferroni, holm, none = (drift(ref, cur, correction=c) for c in ("bonferroni", "holm", "none"))
    assert set(bonferroni.drifted_columns) <= set(holm.drifted_columns) <= set(none.drifted_columns)
    assert sorted(c.threshold for c in holm.columns) == pytest.approx([0.05 / 4, 0.05 / 3, 0.05 / 2, 0.05])
    assert {c.threshold for c in none.columns} == {0.05}


def test_drift_share_rule(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    assert drift(*frames, drift_share=0.4).dataset_drift  # 2 of 5
    report = drift(*frames, drift_share=0.5)
    assert not report.dataset_drift
    assert "2 of 5" in report.rule


# -- bad input -------------------------------------------------------------------------------------------------


def test_schemas_that_differ_are_reported(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    report = drift(ref.drop(columns=["income"]), cur.assign(extra=1.0).drop(columns=["active"]))
    assert report.missing_columns == ("active",)
    assert report.extra_columns == ("income", "extra")
    assert report["active"].status == "missing_in_current"
    assert report["extra"].status == "new_in_current"
    assert not report["active"].drifted
    assert report.drifted_columns == ["age", "plan"]


def test_empty_current_data_is_no_data_and_no_drift(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    report = drift(frames[0], frames[1].iloc[:0])
    assert report.status == "no_data"
    assert not report.dataset_drift
    assert report.drifted_columns == []
    assert {c.status for c in report.columns} == {"no_data"}


def test_all_null_column(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    report = drift(ref, cur.assign(income=np.nan, plan=None))
    for name in ("income", "plan"):
        assert report[name].status == "all_null"
        assert report[name].missing_current == 1.0
        assert "current data" in report[name].message
    assert report.tested_columns == ["age", "children", "active"]


def test_column_constant_in_the_reference() -> None:
    ref = {"x": np.full(1_000, 3.0), "y": np.full(1_000, 3.0)}
    cur = {"x": np.full(1_000, 3.0), "y": np.r_[np.full(900, 3.0), np.full(100, 4.0)]}
    report = drift(ref, cur, tests={"x": "ks", "y": "ks"})
    assert report["x"].p_value == 1.0
    assert not report["x"].drifted
    assert report["x"].wasserstein == 0.0
    assert report["y"].drifted
    assert report["y"].statistic == pytest.approx(0.1)
    assert report["y"].wasserstein is None
    assert "constant in the reference" in report["y"].message
    assert report["y"].outside_range == pytest.approx(0.1)


def test_mixed_types_in_one_column_are_reported(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = frames
    mixed = cur.assign(age=pd.Series([1, "a", 2.5] * (ROWS // 3), dtype=object))
    report = drift(ref, mixed)
    assert report["age"].status == "invalid"
    assert "mixed types" in report["age"].message
    assert "astype" in report["age"].message
    assert report.drifted_columns == ["plan"]


def test_type_changed_and_unsupported_columns() -> None:
    ref = {"a": np.arange(100.0), "when": np.arange(100).astype("datetime64[s]")}
    cur = {"a": np.array([str(i) for i in range(100)]), "when": np.arange(100).astype("datetime64[s]")}
    report = drift(ref, cur)
    assert report["a"].status == "type_changed"
    assert "cast" in report["a"].message
    assert report["when"].status == "skipped"


def test_unseen_categories_and_values_outside_the_range() -> None:
    ref = {"plan": np.array(["a", "b"] * 500), "x": np.linspace(0, 1, 1_000)}
    cur = {"plan": np.array(["a", "b", "c", "d"] * 250), "x": np.linspace(0.5, 1.5, 1_000)}
    report = drift(ref, cur)
    assert report["plan"].unseen_categories == 2
    assert report["plan"].unseen_share == pytest.approx(0.5)
    assert report["x"].outside_range == pytest.approx(0.5, abs=0.002)


def test_identifier_columns_are_skipped_unless_asked_for() -> None:
    ref = {"id": np.array([f"u{i}" for i in range(5_000)])}
    cur = {"id": np.array([f"u{i}" for i in range(5_000, 10_000)])}
    skipped = drift(ref, cur)["id"]
    assert skipped.status == "skipped"
    assert "identifier" in skipped.message
    assert skipped.unseen_share == pytest.approx(1.0)
    assert drift(ref, cur, tests={"id": "chisquare"})["id"].status == "tested"


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"alpha": 0.0}, "alpha"), ({"correction": "fdr"}, "bonferroni"), ({"tests": {"age": "t-test"}}, "choose one"),
    ({"tests": {"plan": "ks"}}, "categorical"), ({"tests": {"nope": "ks"}}, "nope"),
    ({"tests": {"age": ("ks", 0.1)}}, "p-value"), ({"columns": ["nope"]}, "neither"), ({"drift_share": 2}, "(0, 1]"),
])
def test_bad_options_name_the_problem(kwargs: dict, words: str, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with pytest.raises(InvalidInput, match=words.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        drift(*frames, **kwargs)


def test_unreadable_inputs(tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    with pytest.raises(NotFound, match="no such file"):
        drift(tmp_path / "missing.parquet", frames[1])
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InvalidInput, match="expected a file ending in"):
        drift(tmp_path / "notes.txt", frames[1])
    with pytest.raises(InvalidInput, match="unsupported data"):
        drift(object(), frames[1])
    with pytest.raises(InvalidInput, match="no rows"):
        drift(frames[0].iloc[:0], frames[1])


# -- the report -------------------------------------------------------------------------------------------------


def test_report_to_pandas_dict_json(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    report = drift(*frames)
    table = report.to_pandas()
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == 5
    assert table.set_index("column").loc["age", "drifted"]
    body = json.loads(report.to_json(tmp_path / "r.json"))
    assert body == json.loads((tmp_path / "r.json").read_text())
    assert body["drifted_columns"] == ["age", "plan"]
    assert body["dataset_drift"] is True
    assert body["columns"][0]["distribution"]["edges"]  # the plot data travels too
    assert isinstance(report, DriftReport)


def test_html_report_is_self_contained(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    cur = frames[1].assign(plan=frames[1]["plan"].replace("team", "<b>x</b>"))
    page = drift(frames[0], cur).to_html(tmp_path / "drift.html")
    assert (tmp_path / "drift.html").read_text() == page
    assert "http://" not in page
    assert "https://" not in page
    assert "<script" not in page
    assert "src=" not in page
    assert page.count("<svg") == 5
    assert "Dataset drift detected" in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<b>x</b>" not in page


def test_reference_profile_reused_across_windows(frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    profile = reference_profile(frames[0])
    assert profile.rows == ROWS
    assert set(profile.columns) == set(frames[0].columns)
    first, second = drift(profile, frames[1]), drift(profile, frames[0].iloc[:1_000])
    assert first.drifted_columns == ["age", "plan"]
    assert second.drifted_columns == []


# -- the command -----------------------------------------------------------------------------------------------


def _files(tmp_path: Path, frames: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[str, str]:
    ref, cur = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
    pq.write_table(pa.Table.from_pandas(frames[0]), ref)
    pq.write_table(pa.Table.from_pandas(frames[1]), cur)
    return str(ref), str(cur)


def test_cli_table_exit_code_and_html(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    ref, cur = _files(tmp_path, frames)
    result = CliRunner().invoke(app, ["drift", ref, cur, "--html", str(tmp_path / "r.html")],
                                env={"COLUMNS": "160"})
    assert result.exit_code == 1, result.output
    assert "Dataset drift: age, plan" in result.stdout
    assert "chisquare" in result.stdout
    assert (tmp_path / "r.html").exists()
    same = CliRunner().invoke(app, ["drift", ref, ref, "-c", "age,plan"], env={"COLUMNS": "160"})
    assert same.exit_code == 0
    assert "No dataset drift" in same.stdout
    assert "income" not in same.stdout


def test_cli_json_and_options(frames: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path) -> None:
    ref, cur = _files(tmp_path, frames)
    result = CliRunner().invoke(app, ["drift", ref, cur, "--json", "--alpha", "0.01", "--test", "plan=psi:0.9",
                                      "--columns", "plan", "--columns", "age"])
    body = json.loads(result.stdout)
    assert result.exit_code == 1
    assert body["alpha"] == 0.01
    assert body["drifted_columns"] == ["age"]
    assert [c["test"] for c in body["columns"]] == ["ks", "psi"]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["--alpha", "2"], 2, "alpha must be between"), (["--test", "plan"], 2, "COLUMN=TEST"),
    (["--test", "plan=psi:x"], 2, "not a number"),
])
def test_cli_errors_are_one_line(args: list[str], code: int, words: str, tmp_path: Path,
                                 frames: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    ref, cur = _files(tmp_path, frames)
    result = CliRunner().invoke(app, ["drift", ref, cur, *args])
    assert result.exit_code == code
    assert words in result.stderr
    assert "Traceback" not in result.output


def test_cli_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["drift", str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")])
    assert result.exit_code == 3
    assert "no such file" in result.stderr
