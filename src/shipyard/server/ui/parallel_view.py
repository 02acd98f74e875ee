"""A parallel-coordinates plot of compared runs: one vertical axis per param, the chosen metric
last, one line per run coloured by that metric. Laid out on the server as plain SVG (no script).

A param whose values all read as numbers gets a linear axis from its lowest to its highest
value; any other param gets its distinct values spaced evenly, in order. The params whose values
differ between the runs come first (an axis where every run agrees says nothing) and at most
:data:`MAX_AXES` are drawn. A run without a value on an axis has its line broken there.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shipyard.entities import Run
from shipyard.text import shorten

__all__ = ["MAX_AXES", "SCALE", "Axis", "Line", "ParallelPlot", "parallel_plot"]

MAX_AXES = 12  # params; the metric's axis comes on top of these
MAX_TICKS = 12  # labels on a category axis
TICK_CHARS = 16  # longest category label, ellipsis included
AXIS_GAP = 150  # at least; fewer axes spread over MIN_WIDTH
MIN_WIDTH = 980
LEFT, RIGHT, TOP, BOTTOM = 70, 90, 46, 28
HEIGHT = 360
MISSING_COLOR = "#8a94a3"
# low → high metric, a colour-blind-safe sequential scale (viridis stops, darkened for contrast on white)
SCALE = ((0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (78, 160, 60)),
         (1.0, (200, 140, 0)))


@dataclass(frozen=True)
class Axis:
    label: str
    x: float
    ticks: tuple[tuple[float, str], ...]  # (y, text)
    kind: str  # "param" | "metric"
    numeric: bool


@dataclass(frozen=True)
class Line:
    run_id: str
    run_name: str
    path: str  # the SVG path, broken ("M" again) where the run has no value
    color: str
    title: str


@dataclass(frozen=True)
class ParallelPlot:
    metric: str
    width: int
    height: int
    axes: tuple[Axis, ...]
    lines: tuple[Line, ...]
    low: float | None  # the metric's range, for the colour legend
    high: float | None
    hidden_params: int  # differing params left out past MAX_AXES


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _format(value: float) -> str:
    return f"{value:.4g}"


def _color(fraction: float | None) -> str:
    if fraction is None:
        return MISSING_COLOR
    for (a, ca), (b, cb) in itertools.pairwise(SCALE):
        if fraction <= b:
            t = 0.0 if b == a else (fraction - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb, strict=True))
            return f"#{r:02x}{g:02x}{bl:02x}"
    r, g, bl = SCALE[-1][1]
    return f"#{r:02x}{g:02x}{bl:02x}"


class _Scale:
    """Where a value sits on an axis: ``position(value)`` in [0, 1] (0 at the bottom) or ``None``."""

    def __init__(self, values: Sequence[str | float | None]) -> None:
        present = [v for v in values if v is not None]
        numbers = [v if isinstance(v, float) else _number(v) for v in present]
        self.numeric = bool(present) and all(n is not None for n in numbers)
        if self.numeric:
            found = [n for n in numbers if n is not None]
            self.low, self.high = min(found), max(found)
            self.categories: list[str] = []
        else:
            self.low = self.high = 0.0
            self.categories = sorted({str(v) for v in present})

    def position(self, value: str | float | None) -> float | None:
        if value is None:
            return None
        if self.numeric:
            number = value if isinstance(value, float) else _number(value)
            if number is None:
                return None
            return 0.5 if self.high == self.low else (number - self.low) / (self.high - self.low)
        if len(self.categories) == 1:
            return 0.5
        return self.categories.index(str(value)) / (len(self.categories) - 1)

    def ticks(self) -> list[tuple[float, str]]:
        if self.numeric:
            if self.high == self.low:
                return [(0.5, _format(self.low))]
            return [(i / 4, _format(self.low + (self.high - self.low) * i / 4)) for i in range(5)]
        step = max(1, math.ceil(len(self.categories) / MAX_TICKS))
        return [(self.position(c) or 0.0, shorten(c, TICK_CHARS)) for c in self.categories[::step]]


def _params(runs: Sequence[Run]) -> tuple[list[str], int]:
    keys = sorted({k for r in runs for k in r.data.params})
    differing = [k for k in keys if len({r.data.params.get(k) for r in runs}) > 1]
    chosen = differing or keys
    return chosen[:MAX_AXES], max(0, len(differing) - MAX_AXES)


def parallel_plot(runs: Sequence[Run], metric: str) -> ParallelPlot:
    """The plot of ``runs``' params against ``metric`` (its latest value in each run)."""
    params, hidden = _params(runs)
    columns: list[tuple[str, str, list[str | float | None]]] = [
        (key, "param", [r.data.params.get(key) for r in runs]) for key in params]
    metric_values: list[str | float | None] = []
    for run in runs:
        found = run.data.latest_metrics.get(metric)
        metric_values.append(found.value if found is not None and math.isfinite(found.value) else None)
    columns.append((metric, "metric", metric_values))
    scales = [_Scale(values) for _, _, values in columns]
    gap = max(AXIS_GAP, (MIN_WIDTH - LEFT - RIGHT) // max(1, len(columns) - 1))
    width = LEFT + RIGHT + gap * (len(columns) - 1)
    span = HEIGHT - TOP - BOTTOM

    def y_of(position: float) -> float:
        return TOP + (1 - position) * span

    axes = tuple(Axis(label, LEFT + i * gap, tuple((round(y_of(p), 1), text) for p, text in scale.ticks()),
                      kind, scale.numeric)
                 for i, ((label, kind, _), scale) in enumerate(zip(columns, scales, strict=True)))
    metric_scale = scales[-1]
    lines = []
    for j, run in enumerate(runs):
        parts: list[str] = []
        pen_down = False
        for i, ((_, _, values), scale) in enumerate(zip(columns, scales, strict=True)):
            position = scale.position(values[j])
            if position is None:
                pen_down = False
                continue
            parts.append(f"{'L' if pen_down else 'M'}{LEFT + i * gap:.1f},{y_of(position):.1f}")
            pen_down = True
        value = metric_values[j]
        shade = metric_scale.position(value) if metric_scale.numeric else None
        described = ", ".join(f"{label} = {values[j] if values[j] is not None else '—'}"
                              for label, _, values in columns[:-1])
        title = f"{run.info.run_name}: {metric} = {_format(value) if isinstance(value, float) else '—'}"
        lines.append(Line(run.info.run_id, run.info.run_name, " ".join(parts), _color(shade),
                          title + (f" ({described})" if described else "")))
    low = metric_scale.low if metric_scale.numeric else None
    high = metric_scale.high if metric_scale.numeric else None
    lines.sort(key=lambda line: line.color != MISSING_COLOR)  # runs without the metric drawn first, beneath
    return ParallelPlot(metric, width, HEIGHT, axes, tuple(lines), low, high, hidden)
