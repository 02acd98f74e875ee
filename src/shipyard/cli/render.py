"""Everything the commands print: consoles, JSON, tables, and the small formats people read.

Commands build their output from these pieces and never write to the streams themselves, so
the look (box style, colours, number and time formats) is decided here once. ``--json``
output is plain, uncoloured JSON on stdout; tables and messages go through rich.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from shipyard.entities import ArtifactEntry, RunStatus

__all__ = [
    "artifacts_table",
    "error",
    "format_duration",
    "format_number",
    "format_size",
    "format_time",
    "info",
    "make_table",
    "print_json",
    "progress",
    "short_digest",
    "show",
    "sparkline",
    "stack",
    "status_text",
    "stdout_console",
    "to_jsonable",
    "with_notes",
]

SPARK_BLOCKS = "▁▂▃▄▅▆▇█"
DIGEST_CHARS = 12
MISSING = "—"

_STATUS_STYLES = {
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SCHEDULED: "dim",
    RunStatus.FINISHED: "green",
    RunStatus.FAILED: "bold red",
    RunStatus.KILLED: "yellow",
}


# -- streams -----------------------------------------------------------------------------
def stdout_console() -> Console:
    # Built per call so tests (and COLUMNS) see the streams and width of the moment. No markup:
    # names, params and tags are printed as given ("[x]" stays "[x]"); styles come from Text.
    return Console(file=sys.stdout, highlight=False, markup=False)


def show(*renderables: RenderableType) -> None:
    """Print tables, panels or text to stdout."""
    console = stdout_console()
    for renderable in renderables:
        console.print(renderable)


@contextlib.contextmanager
def spinner(message: str) -> Iterator[None]:
    """A spinner on stderr while long work runs (nothing when stderr is not a terminal)."""
    console = Console(file=sys.stderr, highlight=False, markup=False)
    if not console.is_terminal:
        yield
        return
    with console.status(message):
        yield


@contextlib.contextmanager
def progress(min_total: int = 20) -> Iterator[Callable[[str, int, int], None]]:
    """A callback ``(step, done, total)`` driving one rich progress bar per step on stderr: on a
    terminal only, and only for ``min_total`` items or more (fewer finish before a bar would help)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(file=sys.stderr, highlight=False, markup=False)
    bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=console, transient=True, disable=not console.is_terminal)
    tasks: dict[str, Any] = {}

    def update(step: str, done: int, total: int) -> None:
        if total < min_total:
            return
        if step not in tasks:
            tasks[step] = bars.add_task(step, total=total)
            bars.start()
        bars.update(tasks[step], completed=done, total=total)

    try:
        yield update
    finally:
        bars.stop()


def info(message: str | Text) -> None:
    """A one-line message for a person (``Created experiment ...``), on stdout."""
    stdout_console().print(message, soft_wrap=True)


def error(message: str) -> None:
    """``Error: <message>`` in red on stderr; the message is printed as is, never as markup."""
    Console(file=sys.stderr, highlight=False).print(
        Text(f"Error: {message}", style="red"), soft_wrap=True)


# -- JSON ----------------------------------------------------------------------------------
def to_jsonable(value: Any) -> Any:
    """Entities to plain JSON values: dataclasses to dicts, enums to their values, mappings to
    dicts, sequences to lists, and NaN/±inf to ``"NaN"``/``"Infinity"``/``"-Infinity"``."""
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if value is None or isinstance(value, str | int | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        # Derived values (RunData.metrics, Run.run_id) are part of what a script expects to read.
        for name, attribute in vars(type(value)).items():
            if isinstance(attribute, property) and not name.startswith("_"):
                out[name] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return [to_jsonable(v) for v in value]
    return str(value)


def print_json(value: Any) -> None:
    """Machine-readable JSON on stdout (always valid JSON: no NaN literals)."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, allow_nan=False, ensure_ascii=False) + "\n")


# -- small formats ---------------------------------------------------------------------------
def format_time(ms: int | None, *, seconds: bool = False, compact: bool = False) -> str:
    """Milliseconds since the epoch as local time: ``2024-05-09 14:03``; with ``seconds``
    ``2024-05-09 14:03:27 CEST``; ``compact`` drops the year of this year (``May 09 14:03``)."""
    if not ms:
        return MISSING
    moment = datetime.fromtimestamp(ms / 1000).astimezone()
    if seconds:
        return moment.strftime("%Y-%m-%d %H:%M:%S %Z")
    if compact and moment.year == datetime.now().year:
        return moment.strftime("%b %d %H:%M")
    return moment.strftime("%Y-%m-%d %H:%M")


def format_duration(start: int | None, end: int | None, *, running: bool = False) -> str:
    """``850ms``, ``12.3s``, ``4m 05s``, ``2h 03m``, ``3d 04h``; a running run counts to now."""
    if not start:
        return MISSING
    if end is None:
        if not running:
            return MISSING
        end = int(datetime.now().timestamp() * 1000)
    ms = max(end - start, 0)
    if ms < 1000:
        return f"{ms}ms"
    secs = ms / 1000
    if secs < 60:
        return f"{secs:.1f}s"
    minutes, sec = divmod(int(secs), 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_size(size: int | None) -> str:
    """Bytes for a person: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    if size is None:
        return MISSING
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_number(value: float | None, digits: int = 4) -> str:
    """A metric value with ``digits`` significant digits; NaN and ±inf spelled out."""
    if value is None:
        return MISSING
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def status_text(status: RunStatus | str) -> Text:
    status = RunStatus(status)
    return Text(status.value, style=_STATUS_STYLES.get(status, ""))


def sparkline(values: Sequence[float], width: int = 24) -> str:
    """A unicode sparkline (``▁▃▅▇``) of ``values``, squeezed to ``width`` characters by
    averaging neighbours; NaN and ±inf leave a gap. Empty when no value is finite."""
    points = list(values)
    if len(points) > width:
        buckets = []
        for i in range(width):
            chunk = points[i * len(points) // width:(i + 1) * len(points) // width]
            finite = [v for v in chunk if math.isfinite(v)]
            buckets.append(sum(finite) / len(finite) if finite else math.nan)
        points = buckets
    finite = [v for v in points if math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    top = len(SPARK_BLOCKS) - 1
    chars = []
    for v in points:
        if not math.isfinite(v):
            chars.append(" ")
        elif high == low:
            chars.append(SPARK_BLOCKS[top // 2])
        else:
            chars.append(SPARK_BLOCKS[round((v - low) / (high - low) * top)])
    return "".join(chars)


# -- tables --------------------------------------------------------------------------------------
def make_table(*headers: str, title: str | None = None) -> Table:
    """A table in the house style: a header rule, no vertical borders, left-aligned title."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left",
                  title_style="bold", header_style="bold")
    for header in headers:
        table.add_column(header)
    return table


def with_notes(renderable: RenderableType, *notes: str | None) -> RenderableType:
    """``renderable`` followed by dim notes (not a table caption, which wraps at the table's width)."""
    lines = [n for n in notes if n]
    if not lines:
        return renderable
    return Group(renderable, Text("\n".join(lines), style="dim"))


def stack(*parts: RenderableType) -> Group:
    """Sections one under the other with a blank line between them."""
    spaced: list[RenderableType] = []
    for part in parts:
        if spaced:
            spaced.append(Text(""))
        spaced.append(part)
    return Group(*spaced)


def artifacts_table(entries: Sequence[ArtifactEntry], *, title: str | None = None) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left",
                  title_style="bold", header_style="bold")
    table.add_column("Path", overflow="fold")
    table.add_column("Size", justify="right", no_wrap=True)
    table.add_column("Digest", style="dim", no_wrap=True)
    for entry in entries:
        if entry.is_dir:
            table.add_row(Text(entry.path.rstrip("/") + "/", style="bold blue"), MISSING, "")
        else:
            table.add_row(entry.path, format_size(entry.size), short_digest(entry.digest))
    return table


def short_digest(digest: str | None) -> str:
    """``sha256:1a2b3c...`` as its first hex characters, enough to tell files apart."""
    if not digest:
        return ""
    return digest.rpartition(":")[2][:DIGEST_CHARS]
