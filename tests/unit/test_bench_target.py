"""``make bench`` runs every benchmark, and docs/performance.md says which it runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench_recipe() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("bench:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line)
    return re.findall(r"benchmarks/([a-z_]+\.py)", "\n".join(recipe))


def test_make_bench_runs_every_benchmark() -> None:
    benchmarks = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if not p.name.startswith("_"))
    assert sorted(_bench_recipe()) == benchmarks


def test_performance_docs_name_what_make_bench_runs() -> None:
    text = (ROOT / "docs" / "performance.md").read_text()
    paragraph = text[text.index("`make bench` runs"):].split("\n\n", 1)[0]
    assert sorted(re.findall(r"`benchmarks/([a-z_]+\.py)`", paragraph)) == sorted(_bench_recipe())
