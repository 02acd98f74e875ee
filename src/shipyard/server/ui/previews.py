"""What the artifact browser shows of one file: text, JSON, YAML, an image, a table's first rows,
or an HTML page in a sandboxed frame.

A preview reads a bounded prefix of the file (a file that fits is read whole, so its digest is
checked on the way); larger files say how much is shown and link to the full download through
the API. Only raster images are shown inline: an SVG can carry script, so it is offered as a
download like any other file.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from shipyard.artifacts.protocol import ArtifactStore
from shipyard.entities import ArtifactEntry

TEXT_LIMIT = 256 * 1024
TABLE_ROWS = 50
CSV_LIMIT = 1024 * 1024
PARQUET_LIMIT = 64 * 1024 * 1024
IMAGE_LIMIT = 20 * 1024 * 1024
HTML_LIMIT = 2 * 1024 * 1024

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".bmp": "image/bmp"}
TEXT_SUFFIXES = frozenset({".txt", ".log", ".md", ".py", ".diff", ".patch", ".cfg", ".toml", ".ini", ".sh",
                           ".rst", ".xml", ".sql", ".r", ".ipynb", ".out", ".err"})
TEXT_NAMES = frozenset({"MLmodel", "requirements.txt", "conda.yaml", "python_env.yaml", "Dockerfile", "LICENSE",
                        "README"})


@dataclass(frozen=True)
class Preview:
    kind: str  # text | json | yaml | image | table | html | binary | too_large
    text: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False
    note: str = ""


def preview_kind(path: str) -> str:
    pure = PurePosixPath(path)
    suffix = pure.suffix.lower()
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix == ".json":
        return "json"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".html", ".htm"):
        return "html"
    if suffix in TEXT_SUFFIXES or pure.name in TEXT_NAMES:
        return "text"
    return "binary"


def _read(store: ArtifactStore, run_id: str, entry: ArtifactEntry, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of the file, and whether that is all of it (then its digest was checked)."""
    with store.open(run_id, entry.path) as stream:
        if entry.size is not None and entry.size <= limit:
            return stream.read(), False
        return stream.read(limit), True


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def build_preview(store: ArtifactStore, run_id: str, entry: ArtifactEntry) -> Preview:
    kind = preview_kind(entry.path)
    if kind == "image":
        if entry.size is not None and entry.size > IMAGE_LIMIT:
            return Preview("too_large", note=f"images over {IMAGE_LIMIT // 2**20} MB are not shown; download it")
        return Preview("image")
    if kind == "binary":
        return Preview("binary", note="no preview for this type of file; download it")
    if kind == "parquet":
        return _parquet(store, run_id, entry)
    if kind == "csv":
        data, truncated = _read(store, run_id, entry, CSV_LIMIT)
        return _csv(data, truncated, "\t" if entry.path.lower().endswith(".tsv") else ",")
    if kind == "html":
        data, truncated = _read(store, run_id, entry, HTML_LIMIT)
        if truncated:
            return Preview("too_large", note=f"HTML pages over {HTML_LIMIT // 2**20} MB are not shown; download it")
        return Preview("html", text=_text(data))
    data, truncated = _read(store, run_id, entry, TEXT_LIMIT)
    text = _text(data)
    if kind == "json" and not truncated:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError as err:
            return Preview("text", text=text, note=f"not valid JSON ({err}); shown as text")
    if kind == "yaml" and not truncated:
        import yaml

        try:
            yaml.safe_load(text)
        except yaml.YAMLError as err:
            return Preview("text", text=text, note=f"not valid YAML ({str(err).splitlines()[0]}); shown as text")
    note = f"the first {TEXT_LIMIT // 1024} KB of {entry.size} bytes" if truncated else ""
    return Preview(kind if kind in ("json", "yaml") else "text", text=text, truncated=truncated, note=note)


def _csv(data: bytes, truncated: bool, delimiter: str) -> Preview:
    lines = _text(data).splitlines()
    if truncated and lines:
        lines = lines[:-1]  # the last line may be cut in the middle
    rows = list(csv.reader(io.StringIO("\n".join(lines[:TABLE_ROWS + 1])), delimiter=delimiter))
    if not rows:
        return Preview("table", note="the file is empty")
    more = len(lines) > TABLE_ROWS + 1 or truncated
    note = f"the first {min(TABLE_ROWS, len(rows) - 1)} rows" if more else ""
    return Preview("table", header=rows[0], rows=rows[1:], truncated=more, note=note)


def _parquet(store: ArtifactStore, run_id: str, entry: ArtifactEntry) -> Preview:
    if entry.size is not None and entry.size > PARQUET_LIMIT:
        return Preview("too_large", note=f"Parquet files over {PARQUET_LIMIT // 2**20} MB are not previewed; "
                                         "download it")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return Preview("binary", note="previewing Parquet needs pyarrow (pip install pyarrow)")
    data, _ = _read(store, run_id, entry, PARQUET_LIMIT)
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        batch = next(parquet.iter_batches(batch_size=TABLE_ROWS), None)
    except Exception as err:
        return Preview("binary", note=f"not a readable Parquet file: {err}")
    header = list(parquet.schema_arrow.names)
    if batch is None:
        return Preview("table", header=header, note="no rows")
    columns = batch.to_pydict()
    rows = [["" if columns[name][i] is None else str(columns[name][i]) for name in header]
            for i in range(batch.num_rows)]
    total = parquet.metadata.num_rows
    note = f"the first {len(rows)} of {total} rows" if total > len(rows) else ""
    return Preview("table", header=header, rows=rows, truncated=total > len(rows), note=note)
