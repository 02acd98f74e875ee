"""``shipyard drift REFERENCE CURRENT``: which columns of two data files changed distribution.

No store is involved: it reads the two files, compares them with
:func:`shipyard.monitoring.drift` and prints a table (or JSON), optionally writing the HTML report.
The exit code says the verdict, as ``diff`` does: 0 no dataset drift, 1 dataset drift; errors
(unreadable file, bad option) exit 2 or more with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from shipyard.cli import render
from shipyard.cli.context import JsonOption
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    from shipyard.monitoring.report import ColumnDrift, DriftReport

__all__ = ["DRIFT_EXIT_CODE", "drift"]

DRIFT_EXIT_CODE = 1

def drift(
    reference: Annotated[Path, typer.Argument(metavar="REFERENCE", show_default=False,
                                              help="The reference data (e.g. the training set): .parquet, .csv, "
                                                   ".feather or .arrow.")],
    current: Annotated[Path, typer.Argument(metavar="CURRENT", show_default=False,
                                            help="The data to check against it, in any of those formats.")],
    columns: Annotated[list[str] | None, typer.Option(
        "--columns", "-c", metavar="NAMES", show_default=False,
        help="Compare only these columns (comma-separated, or repeat the option).")] = None,
    alpha: Annotated[float, typer.Option(
        "--alpha", metavar="P",
        help="Family-wise false-alarm rate over all tested columns.")] = 0.05,
    correction: Annotated[str, typer.Option(
        "--correction", metavar="NAME", help="bonferroni, holm, or none (each column at --alpha).")] = "bonferroni",
    test: Annotated[list[str] | None, typer.Option(
        "--test", "-t", metavar="COLUMN=TEST[:THRESHOLD]", show_default=False,
        help="Override the test of a column: ks, chisquare, psi, jensenshannon or wasserstein, e.g. "
             "--test plan=psi:0.25 (repeatable).")] = None,
    drift_share: Annotated[float | None, typer.Option(
        "--drift-share", metavar="SHARE", show_default=False,
        help="Dataset drift when at least this share of tested columns drift \\[default: any one column].")] = None,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="PATH", show_default=False,
        help="Also write the self-contained HTML report (summary and per-column plots) to PATH.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Compare CURRENT with REFERENCE column by column and say which columns drifted.

    Numbers get the Kolmogorov-Smirnov test; categories, and numbers with at
    most 10 distinct values, the chi-square test. A column drifts when its
    p-value is below --alpha divided by the number of tested columns
    (Bonferroni), so the chance of any false alarm is at most --alpha.
    Effect sizes are shown beside: the Wasserstein distance in reference
    standard deviations, PSI and the Jensen-Shannon distance.

    Exit code: 0 no dataset drift, 1 dataset drift (like diff), 2 or more
    on errors.

    Examples:
      shipyard drift train.parquet today.parquet
      shipyard drift train.parquet today.parquet --html drift.html -c age,plan
      shipyard drift train.csv today.csv --json > drift.json
    """
    from shipyard.monitoring import drift as compare

    names = [n.strip() for item in columns or [] for n in item.split(",") if n.strip()] or None
    with render.spinner(f"Comparing {current.name} with {reference.name}"):
        report = compare(reference, current, columns=names, tests=_tests(test or []), alpha=alpha,
                         correction=correction, drift_share=drift_share)
    if html is not None:
        report.to_html(html, title=f"Drift: {current.name} vs {reference.name}")
    if as_json:
        render.print_json(report.to_dict())
    else:
        _print(report, html)
    if report.dataset_drift:
        raise typer.Exit(DRIFT_EXIT_CODE)


_STATUS = {"missing_in_current": "missing", "new_in_current": "new", "type_changed": "type changed",
           "all_null": "all null", "no_data": "no data"}


def _tests(specs: list[str]) -> dict[str, str | tuple[str, float]]:
    out: dict[str, str | tuple[str, float]] = {}
    for spec in specs:
        column, sep, rest = spec.partition("=")
        if not sep or not column or not rest:
            raise InvalidInput(f"--test {spec!r}: expected COLUMN=TEST or COLUMN=TEST:THRESHOLD, e.g. plan=psi:0.25")
        name, sep, threshold = rest.partition(":")
        if not sep:
            out[column] = name
            continue
        try:
            out[column] = (name, float(threshold))
        except ValueError:
            raise InvalidInput(f"--test {spec!r}: the threshold {threshold!r} is not a number") from None
    return out


def _print(report: DriftReport, html: Path | None) -> None:
    table = render.make_table("Column", "Test", "Statistic", "p-value", "Threshold", "Drifted", "Effect",
                              "Missing", "Note",
                              title=f"Drift: {report.rows_current:,} current rows vs {report.rows_reference:,} "
                                    "reference rows")
    for column in table.columns[:-1]:
        column.no_wrap = True
    table.columns[-1].min_width = 24
    for c in report.columns:
        table.add_row(c.column, c.test or render.MISSING, render.format_number(c.statistic, 3),
                      render.format_number(c.p_value, 3), render.format_number(c.threshold, 3), _flag(c),
                      _effect(c), _missing(c), _note(c))
    if report.status == "no_data":
        verdict = Text("No data: the current data has no rows.", style="yellow")
    elif report.dataset_drift:
        verdict = Text(f"Dataset drift: {', '.join(report.drifted_columns)}", style="bold red")
    else:
        verdict = Text("No dataset drift.", style="green")
    notes = [f"Rule: {report.rule}.",
             "Effect: W = Wasserstein distance in reference standard deviations (numbers), JS = Jensen-Shannon "
             "distance (categories). Missing: share of rows missing, reference → current.",
             f"HTML report: {html}" if html else None]
    render.show(render.with_notes(table, *notes), verdict)


def _flag(c: ColumnDrift) -> Text:
    if c.drifted:
        return Text("yes", style="bold red")
    return Text("no") if c.status == "tested" else Text(_STATUS.get(c.status, c.status), style="yellow")


def _effect(c: ColumnDrift) -> str:
    if c.kind == "numerical" and c.wasserstein is not None:
        return f"W {render.format_number(c.wasserstein, 3)}"
    if c.jensen_shannon is not None:
        return f"JS {render.format_number(c.jensen_shannon, 3)}"
    return render.MISSING


def _missing(c: ColumnDrift) -> str:
    if not c.missing_reference and not c.missing_current:
        return ""
    return f"{c.missing_reference or 0:.1%} → {c.missing_current or 0:.1%}"


def _note(c: ColumnDrift) -> str:
    obvious = c.status in ("missing_in_current", "new_in_current", "no_data")
    parts = [c.message] if c.message and not obvious else []
    if c.outside_range:
        parts.append(f"{c.outside_range:.1%} outside reference range")
    if c.unseen_categories:
        parts.append(f"{c.unseen_categories} unseen categories ({c.unseen_share or 0:.1%})")
    return "; ".join(parts)
