"""How runs look: the run table, one run's detail, and runs side by side.

Pure functions from entities to rich renderables (and to the JSON of a comparison); the
commands in :mod:`shipyard.cli.runs` fetch and call these.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich import box
from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shipyard.cli import render
from shipyard.entities import ArtifactEntry, Experiment, LifecycleStage, Metric, Run, RunStatus

SYSTEM_TAG_PREFIX = "shipyard."
MAX_METRIC_COLUMNS = 4
SPARKLINE_WIDTH = 20
_ID_WIDTH = 32
_NAME_WIDTH = 24
_EXPERIMENT_WIDTH = 16
_METRIC_WIDTH = 16
_GAP = 3  # a column's padding plus the blank rule between columns
_DIFFERS = "bold yellow"
_SAME = "dim"


# -- runs list -----------------------------------------------------------------------------------
def runs_table(runs: Sequence[Run], experiments: Sequence[Experiment], *, width: int,
               truncated: bool) -> RenderableType:
    """One row per run; the most common metrics as columns, as many as fit in ``width``
    (the run id is never cut: it is what the other commands take)."""
    if not runs:
        where = ", ".join(repr(e.name) for e in experiments)
        return Text(f"No runs found in {where}.", style="dim")
    names = {e.experiment_id: e.name for e in experiments}
    rows: list[list[RenderableType]] = []
    for run in runs:
        info = run.info
        rows.append([
            info.run_id,
            Text(info.run_name, style="strike dim" if _deleted(run) else "bold"),
            *([names.get(info.experiment_id, info.experiment_id)] if len(experiments) > 1 else []),
            render.status_text(info.status),
            render.format_time(info.start_time, compact=True),
            render.format_duration(info.start_time, info.end_time, running=info.status is RunStatus.RUNNING),
        ])
    headers = ["Run ID", "Name", *(["Experiment"] if len(experiments) > 1 else []),
               "Status", "Started", "Duration"]
    limits = {"Name": _NAME_WIDTH, "Experiment": _EXPERIMENT_WIDTH}
    used = sum(min(max([len(h)] + [len(str(r[i])) for r in rows]), limits.get(h, 999))
               for i, h in enumerate(headers)) + _GAP * (len(headers) - 1)
    keys = _metric_columns(runs, width - used)

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("Run ID", no_wrap=True, style="cyan", min_width=_ID_WIDTH)
    table.add_column("Name", max_width=_NAME_WIDTH, overflow="ellipsis", no_wrap=True)
    if len(experiments) > 1:
        table.add_column("Experiment", max_width=_EXPERIMENT_WIDTH, overflow="ellipsis", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Started", no_wrap=True)
    table.add_column("Duration", justify="right", no_wrap=True)
    for key in keys:
        table.add_column(key, justify="right", no_wrap=True, overflow="ellipsis", max_width=_METRIC_WIDTH)
    for run, row in zip(runs, rows, strict=True):
        table.add_row(*row, *(render.format_number(run.data.metrics.get(key)) for key in keys))
    notes = []
    hidden = sorted({k for r in runs for k in r.data.metrics} - set(keys))
    if hidden:
        shown = ", ".join(hidden[:5]) + (", ..." if len(hidden) > 5 else "")
        notes.append(f"{len(hidden)} metric(s) without a column: {shown} (see runs show or --json)")
    if truncated:
        notes.append(f"Showing the first {len(runs)} runs; raise --max-results to see more.")
    return render.with_notes(table, *notes)


def _metric_columns(runs: Sequence[Run], room: int) -> list[str]:
    """The metrics most runs have (ties by name), as many as fit in ``room`` characters."""
    counts = Counter(k for r in runs for k in r.data.metrics)
    chosen: list[str] = []
    for key, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        need = _GAP + min(max(len(key), 9), _METRIC_WIDTH)  # 9: a value like 0.0009249
        if len(chosen) >= MAX_METRIC_COLUMNS or need > room:
            break
        chosen.append(key)
        room -= need
    return chosen


def _deleted(run: Run) -> bool:
    return run.info.lifecycle_stage is LifecycleStage.DELETED


# -- runs show -------------------------------------------------------------------------------------
def run_detail(run: Run, experiment: Experiment, history: Mapping[str, Sequence[Metric]],
               artifacts: Sequence[ArtifactEntry], *, all_tags: bool) -> RenderableType:
    parts: list[RenderableType] = [_info_panel(run, experiment)]
    if run.data.params:
        params = render.make_table("Key", "Value", title="Params")
        for key, value in sorted(run.data.params.items()):
            params.add_row(key, value)
        parts.append(params)
    if run.data.latest_metrics:
        parts.append(_metrics_table(run, history))
    parts.append(_tags_table(run.data.tags, all_tags=all_tags))
    if artifacts:
        parts.append(render.artifacts_table(artifacts, title="Artifacts"))
    else:
        parts.append(Text("No artifacts.", style="dim"))
    return render.stack(*parts)


def _info_panel(run: Run, experiment: Experiment) -> Panel:
    info, tags = run.info, run.data.tags
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("Run ID", info.run_id)
    grid.add_row("Experiment", f"{experiment.name} (id {experiment.experiment_id})")
    status = render.status_text(info.status)
    if _deleted(run):
        status.append("  deleted", style="red")
    grid.add_row("Status", status)
    grid.add_row("Started", render.format_time(info.start_time, seconds=True))
    if info.end_time:
        grid.add_row("Ended", render.format_time(info.end_time, seconds=True))
    grid.add_row("Duration", render.format_duration(info.start_time, info.end_time,
                                                     running=info.status is RunStatus.RUNNING))
    for label, value in (("User", info.user_id), ("Parent run", info.parent_run_id)):
        if value:
            grid.add_row(label, value)
    commit = tags.get("shipyard.git.commit")
    if commit:
        git = Text(commit[:12])
        if tags.get("shipyard.git.branch"):
            git.append(f" on {tags['shipyard.git.branch']}")
        if tags.get("shipyard.git.dirty") == "true":
            git.append("  dirty (uncommitted changes)", style="yellow")
        grid.add_row("Git commit", git)
    entry_point = tags.get("shipyard.source.entry_point") or info.source
    if entry_point:
        argv = tags.get("shipyard.source.argv")
        grid.add_row("Entry point", f"{entry_point} {argv}" if argv else entry_point)
    return Panel(grid, title=Text(info.run_name, style="bold"), title_align="left", expand=False)


def _metrics_table(run: Run, history: Mapping[str, Sequence[Metric]]) -> Table:
    table = render.make_table("Key", "Latest", "Step", "History (min … max)", title="Metrics")
    table.columns[1].justify = "right"
    table.columns[2].justify = "right"
    for key, latest in sorted(run.data.latest_metrics.items()):
        values = [m.value for m in history.get(key, ())]
        cell = Text()
        if len(values) > 1:
            cell.append(render.sparkline(values, SPARKLINE_WIDTH), style="cyan")
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                low, high = (render.format_number(v, 3) for v in (min(finite), max(finite)))
                cell.append(f"  {low} … {high}", style="dim")
        table.add_row(key, render.format_number(latest.value, 6), str(latest.step), cell)
    return table


def _tags_table(tags: Mapping[str, str], *, all_tags: bool) -> RenderableType:
    shown = {k: v for k, v in tags.items() if all_tags or not k.startswith(SYSTEM_TAG_PREFIX)}
    hidden = len(tags) - len(shown)
    note = f"{hidden} system tag(s) (shipyard.*) hidden; --all-tags shows them." if hidden else None
    if not shown:
        return Text(f"No tags. {note or ''}".strip(), style="dim")
    table = render.make_table("Key", "Value", title="Tags")
    table.columns[1].overflow = "fold"
    for key, value in sorted(shown.items()):
        table.add_row(key, value)
    return render.with_notes(table, note)


# -- runs compare ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One key across the compared runs; ``values`` has one entry per run (``None``: absent)."""

    kind: str  # "param" | "metric"
    key: str
    values: tuple[str | float | None, ...]

    @property
    def differs(self) -> bool:
        return len({_same_key(v) for v in self.values}) > 1


def _same_key(value: str | float | None) -> object:
    # NaN is not equal to itself; two runs that both logged NaN do not differ.
    return "NaN" if isinstance(value, float) and math.isnan(value) else value


def compare_rows(runs: Sequence[Run]) -> list[Row]:
    """Params then metrics, each the union of keys over ``runs``, sorted by key."""
    rows = []
    for kind, attr in (("param", "params"), ("metric", "metrics")):
        keys = sorted({k for r in runs for k in getattr(r.data, attr)})
        rows += [Row(kind, k, tuple(getattr(r.data, attr).get(k) for r in runs)) for k in keys]
    return rows


def compare_json(runs: Sequence[Run], rows: Sequence[Row]) -> dict[str, object]:
    return {
        "runs": [{"run_id": r.info.run_id, "run_name": r.info.run_name} for r in runs],
        "params": [{"key": r.key, "values": list(r.values), "differs": r.differs}
                   for r in rows if r.kind == "param"],
        "metrics": [{"key": r.key, "values": list(r.values), "differs": r.differs}
                    for r in rows if r.kind == "metric"],
    }


def compare_table(runs: Sequence[Run], rows: Sequence[Row], *, diff_only: bool) -> RenderableType:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    for run in runs:
        header = Text(run.info.run_name, style="bold")
        header.append(f"\n{run.info.run_id[:8]}", style="dim")
        table.add_column(header, justify="left", overflow="fold")
    shown = [r for r in rows if r.differs or not diff_only]
    for kind, title in (("param", "Params"), ("metric", "Metrics")):
        section = [r for r in shown if r.kind == kind]
        if not section:
            continue
        table.add_row(Text(title, style="bold underline"), *([""] * len(runs)))
        for row in section:
            style = _DIFFERS if row.differs else _SAME
            cells = [Text(_cell(v), style=style if v is not None else "dim") for v in row.values]
            table.add_row(Text(row.key, style="bold" if row.differs else ""), *cells)
        if kind == "param" and any(r.kind == "metric" for r in shown):
            table.add_section()
    differing = sum(r.differs for r in rows)
    note = (f"{differing} of {len(rows)} keys differ (highlighted)." if rows
            else "These runs have no params or metrics.")
    if diff_only and len(shown) < len(rows):
        note += f" {len(rows) - len(shown)} equal key(s) hidden."
    return render.with_notes(table, note)


def _cell(value: str | float | None) -> str:
    if value is None:
        return render.MISSING
    if isinstance(value, float):
        return render.format_number(value, 6)
    return value
