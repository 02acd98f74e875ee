"""A monitor's HTML report: its state, every evaluated window, each column's drift over time, and
the latest window with data drawn in full (reference vs current distributions).

One self-contained page like :meth:`DriftReport.to_html` (inline CSS and SVG, nothing fetched):
the drift report of the latest window, with, above its distributions, a table of the windows and
one small chart per column of its drift over time (``-log10`` of the p-value, with the line the
column is flagged above, or the effect size for effect-size tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import UTC, datetime
from html import escape
from typing import Any

from shipyard.entities.monitor import Monitor, MonitorEvaluation
from shipyard.monitoring.report import ColumnDrift, Distribution, DriftReport

__all__ = ["render_monitor", "report_from_dict"]

_W, _H, _PAD = 560, 120, 24
_LINE = "#4c78a8"
_LIMIT = "#b42318"
_FLOOR = 1e-300


def report_from_dict(body: Mapping[str, Any]) -> DriftReport:
    """The :class:`DriftReport` a ``to_dict()`` was made from (plot data included)."""
    names = {f.name for f in fields(ColumnDrift)}
    columns = []
    for c in body.get("columns", ()):
        values = {k: v for k, v in c.items() if k in names}
        if values.get("distribution") is not None:
            values["distribution"] = Distribution(**values["distribution"])
        columns.append(ColumnDrift(**values))
    return DriftReport(
        columns=tuple(columns), dataset_drift=body["dataset_drift"], rule=body["rule"], alpha=body["alpha"],
        correction=body["correction"], rows_reference=body["rows_reference"], rows_current=body["rows_current"],
        status=body.get("status", "ok"), missing_columns=tuple(body.get("missing_columns", ())),
        extra_columns=tuple(body.get("extra_columns", ())))


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _windows_table(history: Sequence[MonitorEvaluation]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("window (UTC)", "status", "state", "rows", "labelled", "drifted",
                                               "metrics", "reasons"))
    rows = []
    for e in reversed(history):
        status = f"<b class='drift'>{e.status}</b>" if e.status in ("breach", "error") else escape(e.status)
        metrics = ", ".join(f"{k} {v:.3g}" for k, v in e.metrics.items())
        why = "; ".join(e.breaches) or e.message
        rows.append(f"<tr><td>{_time(e.window_start)}</td><td>{status}</td><td>{e.state.value}</td>"
                    f"<td class='num'>{e.rows:,}</td><td class='num'>{e.labelled:,}</td>"
                    f"<td>{escape(', '.join(e.drifted_columns))}</td><td>{escape(metrics)}</td>"
                    f"<td class='msg'>{escape(why)}</td></tr>")
    return (f"<div style='overflow-x:auto'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _series(history: Sequence[MonitorEvaluation], column: str) -> tuple[list[tuple[int, float]], float | None, str]:
    points: list[tuple[int, float]] = []
    limit, unit = None, "-log10 p"
    for e in history:
        score = e.scores.get(column)
        if not score or score.get("status") != "tested":
            continue
        if score.get("p_value") is not None:
            points.append((e.window_start, -math.log10(max(score["p_value"], _FLOOR))))
            if score.get("threshold"):
                limit = -math.log10(score["threshold"])
        elif score.get("statistic") is not None:
            unit = f"{score.get('test')} effect"
            points.append((e.window_start, float(score["statistic"])))
            limit = score.get("threshold")
    return points, limit, unit


def _chart(points: list[tuple[int, float]], limit: float | None) -> str:
    if not points:
        return "<p class='muted'>never compared</p>"
    xs = [p[0] for p in points]
    top = max([p[1] for p in points] + [limit or 0.0, 1e-9]) * 1.1
    span = max(xs[-1] - xs[0], 1)

    def at(x: int, y: float) -> tuple[float, float]:
        return (_PAD + (x - xs[0]) / span * (_W - 2 * _PAD), _H - _PAD - y / top * (_H - 2 * _PAD))

    coords = [at(x, y) for x, y in points]
    shapes = [f"<polyline fill='none' stroke='{_LINE}' stroke-width='2' points='"
              + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + "'/>"]
    shapes += [f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2.5' fill='{_LINE}'><title>{_time(t)}: {v:.3g}</title></circle>"
               for (x, y), (t, v) in zip(coords, points, strict=True)]
    if limit is not None:
        y = at(xs[0], limit)[1]
        shapes.append(f"<line x1='{_PAD}' y1='{y:.1f}' x2='{_W - _PAD}' y2='{y:.1f}' stroke='{_LIMIT}' "
                      "stroke-dasharray='4 3'><title>flagged above this line</title></line>")
    shapes.append(f"<text x='{_PAD}' y='{_H - 6}' font-size='10'>{_time(xs[0])}</text>")
    shapes.append(f"<text x='{_W - _PAD}' y='{_H - 6}' font-size='10' text-anchor='end'>{_time(xs[-1])}</text>")
    return f"<svg width='{_W}' height='{_H}' viewBox='0 0 {_W} {_H}' role='img'>{''.join(shapes)}</svg>"


def _over_time(history: Sequence[MonitorEvaluation]) -> str:
    columns = list(dict.fromkeys(c for e in history for c in e.scores))
    parts = ["<h2>Drift over time</h2><p class='muted'>Per column and window: -log10 of the p-value (higher = "
             "stronger evidence of change), with the level the column is flagged above (dashed); for "
             "effect-size tests the effect itself.</p>"]
    for column in columns:
        points, limit, unit = _series(history, column)
        parts.append(f"<section><h3>{escape(column)} <span class='muted'>({escape(unit)})</span></h3>"
                     f"{_chart(points, limit)}</section>")
    return "".join(parts)


def render_monitor(monitor: Monitor, history: Sequence[MonitorEvaluation]) -> str:
    """The page for ``monitor`` given its evaluations (oldest first, with their reports)."""
    from shipyard.monitoring.html import render

    latest = next((e for e in reversed(history) if e.report.get("inputs")), None)
    state = (f"<p>State: <b>{monitor.state.value}</b> since {_time(monitor.state_since)}. Watching "
             f"{escape(monitor.target)} in windows of {monitor.window_seconds}s against "
             f"{escape(monitor.reference_dataset or monitor.reference)}. {len(history)} windows evaluated.</p>")
    extra = state + "<h2>Windows</h2>" + _windows_table(history) + _over_time(history)
    title = f"Monitor {monitor.name}"
    if latest is None:
        empty = DriftReport(columns=(), dataset_drift=False, rule="no window with data was evaluated yet",
                            alpha=monitor.alpha, correction="bonferroni", rows_reference=0, rows_current=0,
                            status="no_data")
        return render(empty, title=title, extra=extra)
    report = report_from_dict(latest.report["inputs"])
    outputs = latest.report.get("outputs")
    if outputs:
        out = report_from_dict(outputs)
        report = DriftReport(columns=report.columns + out.columns, dataset_drift=report.dataset_drift or
                             out.dataset_drift, rule=f"inputs: {report.rule}; outputs: {out.rule}",
                             alpha=monitor.alpha, correction=report.correction, rows_reference=report.rows_reference,
                             rows_current=report.rows_current, status=report.status,
                             missing_columns=report.missing_columns + out.missing_columns,
                             extra_columns=report.extra_columns + out.extra_columns)
    return render(report, title=f"{title}: window {_time(latest.window_start)} UTC", extra=extra)
