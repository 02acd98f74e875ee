"""A drift report as one self-contained HTML page: inline CSS and SVG, no script, no URL to fetch.

The page opens offline and can be mailed or attached to a ticket as one file: a summary (the
verdict and the rule behind it), a table of every column, and per compared column the reference
and current distributions drawn side by side (histogram bins for numbers, bars per category).
"""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from shipyard.text import shorten

if TYPE_CHECKING:
    from shipyard.monitoring.report import ColumnDrift, Distribution, DriftReport

__all__ = ["render"]

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
_WIDTH, _HEIGHT, _PAD = 560, 180, 28
_LABEL_CHARS = 10  # longest category label under a bar, ellipsis included

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1f2328; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .25rem; }
.verdict { font-size: 1.1rem; font-weight: 600; }
.drift { color: #b42318; } .ok { color: #1a7f37; } .muted { color: #656d76; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0 2rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #d0d7de; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.msg { white-space: normal; color: #656d76; }
section { border-top: 1px solid #d0d7de; padding: .75rem 0; }
.legend span { display: inline-block; width: .8rem; height: .8rem; margin: 0 .3rem 0 1rem; vertical-align: -1px; }
"""


def render(report: DriftReport, *, title: str = "Data drift report", extra: str = "") -> str:
    """The HTML page of ``report``; ``extra`` (HTML) goes between the summary table and the
    distributions (a monitor's report puts its windows and drift over time there)."""
    verdict = ("<p class='verdict drift'>Dataset drift detected</p>" if report.dataset_drift
               else "<p class='verdict ok'>No dataset drift</p>")
    if report.status == "no_data":
        verdict = "<p class='verdict muted'>No data: the current data has no rows</p>"
    drifted = report.drifted_columns
    facts = [
        f"Reference rows: {report.rows_reference:,}. Current rows: {report.rows_current:,}.",
        f"Drifted columns ({len(drifted)} of {len(report.tested_columns)} tested): "
        f"{escape(', '.join(drifted)) if drifted else 'none'}.",
        f"Rule: {escape(report.rule)}.",
    ]
    if report.missing_columns:
        facts.append(f"Missing in the current data: {escape(', '.join(report.missing_columns))}.")
    if report.extra_columns:
        facts.append(f"New in the current data: {escape(', '.join(report.extra_columns))}.")
    sections = [_section(c) for c in report.columns if c.distribution is not None]
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{verdict}" + "".join(f"<p>{f}</p>" for f in facts)
        + _summary_table(report) + extra
        + "<h2>Distributions</h2><p class='legend'>"
        f"<span style='background:{REFERENCE_COLOUR}'></span>reference"
        f"<span style='background:{CURRENT_COLOUR}'></span>current</p>"
        + "".join(sections) + "</body></html>\n")


def _number(value: float | int | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.{digits - 1}e}"
    return f"{value:.{digits}g}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _summary_table(report: DriftReport) -> str:
    head = ("column", "kind", "test", "statistic", "p-value", "threshold", "drifted", "Wasserstein (std)", "PSI",
            "Jensen-Shannon", "missing ref / cur", "outside range", "unseen", "note")
    rows = []
    for c in report.columns:
        flag = "<b class='drift'>yes</b>" if c.drifted else ("no" if c.status == "tested" else escape(c.status))
        unseen = "—" if c.unseen_categories is None else f"{c.unseen_categories} ({_percent(c.unseen_share)})"
        cells = [
            f"<td>{escape(c.column)}</td>", f"<td>{escape(c.kind)}</td>", f"<td>{escape(c.test or '—')}</td>",
            *(f"<td class='num'>{_number(v)}</td>" for v in (c.statistic, c.p_value, c.threshold)),
            f"<td>{flag}</td>",
            *(f"<td class='num'>{_number(v, 3)}</td>" for v in (c.wasserstein, c.psi, c.jensen_shannon)),
            f"<td class='num'>{_percent(c.missing_reference)} / {_percent(c.missing_current)}</td>",
            f"<td class='num'>{_percent(c.outside_range)}</td>", f"<td class='num'>{unseen}</td>",
            f"<td class='msg'>{escape(c.message)}</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return (f"<div style='overflow-x:auto'><table><thead><tr>{header}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _section(column: ColumnDrift) -> str:
    verdict = "<b class='drift'>drifted</b>" if column.drifted else "not drifted"
    detail = f"{escape(column.test or column.status)}"
    if column.p_value is not None:
        detail += f", p = {_number(column.p_value)}"
    elif column.statistic is not None:
        detail += f" = {_number(column.statistic)}"
    assert column.distribution is not None
    return (f"<section><h3>{escape(column.column)} <span class='muted'>({escape(column.kind)}; {detail}; "
            f"{verdict})</span></h3>{_bars(column.distribution, column.kind == 'numerical')}</section>")


def _bars(dist: Distribution, histogram: bool) -> str:
    """Two bars per bin or category, reference then current, heights as shares of each sample."""
    count = len(dist.labels)
    top = max([*dist.reference, *dist.current, 1e-12])
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD
    slot = inner_w / max(count, 1)
    bar = slot * (0.45 if not histogram else 0.5)
    shapes = []
    for i, (label, ref, cur) in enumerate(zip(dist.labels, dist.reference, dist.current, strict=True)):
        x = _PAD + i * slot
        for offset, share, colour in ((0.0, ref, REFERENCE_COLOUR), (bar, cur, CURRENT_COLOUR)):
            h = inner_h * share / top
            shapes.append(f"<rect x='{x + offset:.1f}' y='{_PAD + inner_h - h:.1f}' width='{bar:.1f}' "
                          f"height='{h:.1f}' fill='{colour}' fill-opacity='0.85'>"
                          f"<title>{escape(label)}: {share:.2%}</title></rect>")
        if not histogram:
            shapes.append(f"<text x='{x + slot / 2:.1f}' y='{_HEIGHT - 8}' font-size='10' text-anchor='middle'>"
                          f"{escape(shorten(label, _LABEL_CHARS))}</text>")
    if histogram and dist.edges:
        for x, value in ((_PAD, dist.edges[0]), (_WIDTH - _PAD, dist.edges[-1])):
            shapes.append(f"<text x='{x}' y='{_HEIGHT - 8}' font-size='10' text-anchor='middle'>"
                          f"{escape(_number(value))}</text>")
    shapes.append(f"<text x='4' y='{_PAD - 8}' font-size='10'>{top:.1%}</text>")
    shapes.append(f"<line x1='{_PAD}' y1='{_PAD + inner_h}' x2='{_WIDTH - _PAD}' y2='{_PAD + inner_h}' "
                  "stroke='#8c959f'/>")
    return (f"<svg width='{_WIDTH}' height='{_HEIGHT}' "
            f"viewBox='0 0 {_WIDTH} {_HEIGHT}' role='img'>{''.join(shapes)}</svg>")
