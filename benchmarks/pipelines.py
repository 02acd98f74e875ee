"""Pipelines benchmark: a 6-step pipeline run cold and re-run, by Shipyard and by the peers that install here,
side by side in one run, against the plain script and the import floor.

    .venv/bin/python benchmarks/pipelines.py [--quick] [--peers zenml,metaflow,prefect,kedro | --no-peers]
                                             [--json PATH]

The pipeline does the work of ``_pipeline_work.py``: a seeded 50,000 x 20 DataFrame, two independent feature
steps, a join, a scikit-learn fit and an evaluation. Every measurement is the wall time of a whole fresh process
(median of 3 rounds, or 1 with ``--quick``; within a round the tools take turns, so load on the machine hits them
alike), each tool's store in a new temporary folder per round, created by its cold run:

- plain: the same functions as an ordinary script (the floor for a cold run);
- import: a process that only imports Shipyard's pipeline module (``_pipeline_flow.py``: the floor for a cached
  re-run);
- Shipyard: ``flow.run()`` on an empty store (SQLite + local artifacts), then again with every step a cache hit;
- ZenML (cold, then fully cached), Metaflow (``run``, then ``resume end``: the last step re-runs, the others are
  cloned), Prefect 3 (cold, then every task cached), Kedro (cold; it has no cache), each from its own virtualenv
  under ``.bench/``, installed from PyPI on first use (``_pipeline_peers.py``), with its analytics off.

Targets (issue #17): Shipyard's cached re-run costs at most 30 ms per step over the import floor, and is at least
3x faster than ZenML's cached re-run and 2x faster than Metaflow's resume; its cold run is within 1.5x of the plain
script. A peer that fails to install or run is shown with the reason, and its targets as not measured. Exits 0 when
every measured target is met, 1 when one is not, 2 when Shipyard's own runs fail.
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

import _pipeline_peers as peers
import tracking as t

HERE = Path(__file__).resolve().parent
STEPS = 6
PLAIN = "import _pipeline_work as w; w.plain()"
IMPORT = "import _pipeline_flow"
RUN = "import _pipeline_flow as f; r = f.flow.run(); assert r.status == 'FINISHED'; print(len(r.cached))"
SECOND = {"cached": "cached re-run", "resume": "resume of the last step"}


def _shipyard(code: str, store: Path | None = None) -> tuple[float, str]:
    env = t.clean_env(PYTHONPATH=str(HERE))  # bytecode cached, as an installed package's is
    if store is not None:
        env["SHIPYARD_TRACKING_URI"] = f"sqlite:///{store / 'shipyard.db'}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=HERE)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(2)
    return seconds, done.stdout.strip()


def _shipyard_round(times: dict[str, list[float]], tmp: Path) -> None:
    times["plain"].append(_shipyard(PLAIN)[0])
    times["import"].append(_shipyard(IMPORT)[0])
    for kind, expected in (("cold", "0"), ("cached", str(STEPS))):
        seconds, cached = _shipyard(RUN, tmp)
        if cached != expected:
            raise SystemExit(f"the Shipyard {kind} run reused {cached} of {STEPS} steps, expected {expected}")
        times[kind].append(seconds)


def _peer_round(peer: peers.Peer, times: dict[str, list[float]], home: Path) -> None:
    """One cold run and the peer's second run, each timed; raises ``PeerError`` with the reason on a failure."""
    cwd = peers.peer_cwd(peer, home)
    env = peer.env(home)
    peers.setup(peer, cwd)
    for kind, arguments in peer.runs:
        started = time.perf_counter()
        done = subprocess.run(peers.command(peer, arguments), cwd=cwd, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        output = done.stdout + done.stderr
        if done.returncode:
            lines = [line for line in output.strip().splitlines() if line.strip()]
            raise peers.PeerError(f"the {kind} run failed (exit {done.returncode}): "
                                  f"{lines[-1].strip()[:300] if lines else 'no output'}")
        peers.check(peer, kind, output)
        times.setdefault(kind, []).append(seconds)


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({', '.join(f'{v:.2f}' for v in values)})" if values else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round instead of three")
    parser.add_argument("--peers", default="zenml,metaflow,prefect,kedro", help="which peers to run (comma-separated)")
    parser.add_argument("--no-peers", action="store_true", help="Shipyard and its floors only")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    wanted = set() if args.no_peers else {p.strip().lower() for p in args.peers.split(",") if p.strip()}
    chosen = [p for p in peers.PEERS if p.package in wanted]
    versions: dict[str, str] = {}
    failed: dict[str, str] = {}
    for peer in chosen:
        try:
            versions[peer.name] = peers.ensure_venv(peer, lambda text: print(text, flush=True))
        except peers.PeerError as exc:
            failed[peer.name] = f"install: {exc}"
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"plain": [], "import": [], "cold": [], "cached": []}
    peer_times: dict[str, dict[str, list[float]]] = {p.name: {} for p in chosen}
    _shipyard(IMPORT)  # warm the bytecode and page caches once, untimed, for every kind alike
    for number in range(rounds):  # tools take turns within a round; the order rotates between rounds
        with tempfile.TemporaryDirectory(prefix="shipyard-bench-pipe-") as tmp:
            turns: list[peers.Peer | None] = [None, *chosen]
            turns = turns[number % len(turns):] + turns[:number % len(turns)]
            for turn in turns:
                if turn is None:
                    shipyard_home = Path(tmp) / "shipyard"
                    shipyard_home.mkdir()
                    _shipyard_round(times, shipyard_home)
                elif turn.name not in failed:
                    try:
                        _peer_round(turn, peer_times[turn.name], Path(tmp) / turn.package)
                    except peers.PeerError as exc:
                        failed[turn.name] = f"round {number + 1}: {exc}"
            print(f"round {number + 1} of {rounds} done (load average {os.getloadavg()[0]:.1f})", flush=True)
    load_after = os.getloadavg()
    median = {kind: statistics.median(values) for kind, values in times.items()}
    per_step_ms = (median["cached"] - median["import"]) / STEPS * 1000
    cold_ratio = median["cold"] / median["plain"]
    print(f"\npipelines benchmark: {STEPS} steps, median of {rounds} fresh processes each; load average "
          f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (1-min), {load_after[2]:.1f} (15-min)")
    print(f"  {'plain script':<32} {_fmt(times['plain'])}")
    print(f"  {'import the pipeline module':<32} {_fmt(times['import'])}")
    print(f"  {'Shipyard cold':<32} {_fmt(times['cold'])}")
    print(f"  {'Shipyard fully cached re-run':<32} {_fmt(times['cached'])}")
    peer_median: dict[str, dict[str, float]] = {}
    for peer in chosen:
        label = f"{peer.name} {versions.get(peer.name, '')}".strip()
        measured = peer_times[peer.name]
        peer_median[peer.name] = {k: statistics.median(v) for k, v in measured.items() if v}
        for kind, _ in peer.runs:
            name = f"{label} {'cold' if kind == 'cold' else SECOND[kind]}"
            print(f"  {name:<32} {_fmt(measured.get(kind, []))}")
        if peer.name in failed:
            print(f"  {label:<32} FAILED: {failed[peer.name]}")
    results: list[tuple[str, bool | None]] = []
    results.append((f"cached re-run over import: {per_step_ms:.1f} ms/step (target <= 30)", per_step_ms <= 30))
    results.append((f"cold / plain script: {cold_ratio:.2f}x (target <= 1.5x)", cold_ratio <= 1.5))
    for name, kind, target in (("ZenML", "cached", 3.0), ("Metaflow", "resume", 2.0)):
        theirs = peer_median.get(name, {}).get(kind) if name not in failed else None
        if theirs is None:
            results.append((f"{name} {SECOND[kind]} / Shipyard cached: not measured (target >= {target:g}x)", None))
        else:
            ratio = theirs / median["cached"]
            results.append((f"{name} {SECOND[kind]} / Shipyard cached: {ratio:.2f}x (target >= {target:g}x)",
                            ratio >= target))
    for text, ok in results:
        print(f"  {text:<72} {'n/a' if ok is None else 'OK' if ok else 'MISSED'}")
    if args.json:
        args.json.write_text(json.dumps({
            "rounds": rounds, "load_average": {"before": load_before, "after": load_after}, "times": times,
            "median": median, "cached_ms_per_step": per_step_ms, "cold_over_plain": cold_ratio,
            "peers": {p.name: {"version": versions.get(p.name), "times": peer_times[p.name],
                               "median": peer_median[p.name], "failed": failed.get(p.name)} for p in chosen},
        }, indent=2))
    return 0 if all(ok is not False for _, ok in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
