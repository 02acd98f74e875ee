"""What the data benchmark measures on: generated folders of files and a generated DataFrame.

The folders are written once into ``.bench/data/`` and reused by later runs (a ``spec.json`` in
each records what was generated; a different size regenerates it). Every byte is seeded, so two
machines generate the same files and the same frame.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SEED = 20_261_124
MIB = 1 << 20


@dataclass(frozen=True)
class Sizes:
    big_files: int = 200  # the throughput folder: 200 x 5 MiB = 1 GiB
    big_size: int = 5 * MIB
    small_files: int = 5_000  # the "thousands of files" cache figure: 5,000 x 1 KiB in 50 folders
    many_files: int = 10_000  # and a reference figure: 10,000 in 100 folders
    small_size: int = 1024
    rows: int = 5_000_000  # the DataFrame
    repeats: int = 3  # hashing runs, digest+profile runs, `dvc add` runs: median
    cached_repeats: int = 7  # cached re-hashes: median

    @classmethod
    def quick(cls) -> Sizes:
        return cls(big_files=40, small_files=1_000, many_files=2_000, rows=500_000, repeats=1, cached_repeats=3)


def _generate(folder: Path, spec: dict[str, Any], files: list[tuple[str, int]], seed: int) -> None:
    import numpy as np

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for rel, size in files:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.bytes(size))
    (folder.parent / f"{folder.name}.spec.json").write_text(json.dumps(spec))


def ensure_folder(folder: Path, count: int, size: int, per_subfolder: int | None = None) -> tuple[list[Path], bool]:
    """The files of a generated folder (sorted) and whether they were generated just now."""
    spec = {"count": count, "size": size, "per_subfolder": per_subfolder, "seed": SEED}
    marker = folder.parent / f"{folder.name}.spec.json"
    fresh = not (marker.exists() and json.loads(marker.read_text()) == spec)
    if fresh:
        names = [f"d{i // per_subfolder:03d}/f{i:05d}.bin" if per_subfolder else f"part-{i:04d}.bin"
                 for i in range(count)]
        _generate(folder, spec, [(name, size) for name in names], SEED + count)
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if len(files) != count:
        raise RuntimeError(f"{folder} holds {len(files)} files, expected {count}; delete it to regenerate")
    return files, fresh


def make_frame(rows: int) -> Any:
    """The 10-column frame: 5 floats (one with missing values), an int, a bool, a timestamp, a
    string column (200 values) and a categorical (50 values)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(SEED)
    frame = pd.DataFrame({f"x{i}": rng.standard_normal(rows) for i in range(5)})
    frame.loc[::7, "x1"] = np.nan
    frame["count"] = rng.integers(0, 1000, rows)
    frame["flag"] = rng.random(rows) < 0.3
    frame["when"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**8, rows), unit="s")
    cities = np.array([f"city_{k:03d}" for k in range(200)])
    frame["city"] = pd.array(cities[rng.integers(0, 200, rows)], dtype="str")
    frame["segment"] = pd.Categorical.from_codes(rng.integers(0, 50, rows), [f"seg_{k:02d}" for k in range(50)])
    return frame


def to_json(sizes: Sizes) -> dict[str, Any]:
    return asdict(sizes)
