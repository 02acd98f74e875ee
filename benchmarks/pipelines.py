"""Pipelines benchmark: a 6-step pipeline run cold and fully cached, against the plain script and the import floor.

    .venv/bin/python benchmarks/pipelines.py [--quick] [--json PATH]

The pipeline (``_pipeline_flow.py``): a seeded 50,000 x 20 DataFrame, two independent feature steps, a join, a
scikit-learn fit and an evaluation with a gate. Every measurement is the wall time of a whole fresh process
(median of 3, or 1 with ``--quick``):

- plain: the same functions as an ordinary script (the floor for a cold run);
- import: a process that only imports the pipeline's module (the floor for a cached run);
- cold: ``flow.run()`` on an empty store (SQLite + local artifacts in a temporary folder);
- cached: ``flow.run()`` again on that store, every step a cache hit.

Targets (issue #17): cached re-run at most 30 ms per step over the import floor; cold within 1.5x of the plain
script. Peers (ZenML, Metaflow, Prefect, Kedro) are not run by this version of the benchmark. Exits 0 when both
targets are met, 1 when one is not, 2 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = 6
PLAIN = "import _pipeline_flow as f; f.plain()"
IMPORT = "import _pipeline_flow"
RUN = "import _pipeline_flow as f; r = f.flow.run(); assert r.status == 'FINISHED'; print(len(r.cached))"


def _timed(code: str, store: Path | None = None) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    if store is not None:
        env["SHIPYARD_TRACKING_URI"] = f"sqlite:///{store / 'shipyard.db'}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(2)
    return seconds, done.stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round instead of three")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    times: dict[str, list[float]] = {"plain": [], "import": [], "cold": [], "cached": []}
    _timed(IMPORT)  # warm the bytecode and page caches once, untimed, for every kind alike
    for _ in range(rounds):  # kinds alternate within a round, so load on the machine hits them alike
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-pipe-") as tmp:
            times["plain"].append(_timed(PLAIN)[0])
            times["import"].append(_timed(IMPORT)[0])
            seconds, cached = _timed(RUN, Path(tmp))
            if cached != "0":
                raise SystemExit(f"the cold run reused {cached} steps")
            times["cold"].append(seconds)
            seconds, cached = _timed(RUN, Path(tmp))
            if cached != str(STEPS):
                raise SystemExit(f"the cached run reused {cached} of {STEPS} steps")
            times["cached"].append(seconds)
    median = {kind: statistics.median(values) for kind, values in times.items()}
    per_step_ms = (median["cached"] - median["import"]) / STEPS * 1000
    cold_ratio = median["cold"] / median["plain"]
    print(f"pipelines benchmark: {STEPS} steps, median of {rounds} fresh processes each")
    for kind in ("plain", "import", "cold", "cached"):
        print(f"  {kind:<7} {median[kind]:7.2f} s   ({', '.join(f'{v:.2f}' for v in times[kind])})")
    ok_cached = per_step_ms <= 30
    ok_cold = cold_ratio <= 1.5
    print(f"  cached re-run over import: {per_step_ms:.1f} ms/step (target <= 30)  {'OK' if ok_cached else 'MISSED'}")
    print(f"  cold / plain script:       {cold_ratio:.2f}x (target <= 1.5x)     {'OK' if ok_cold else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({"times": times, "median": median, "cached_ms_per_step": per_step_ms,
                                         "cold_over_plain": cold_ratio}, indent=2))
    return 0 if ok_cached and ok_cold else 1


if __name__ == "__main__":
    raise SystemExit(main())
