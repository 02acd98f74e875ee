"""Pipelines on Ray: two independent N-second steps against a running local Ray cluster, beside the same
pipeline run one step after the other by the local executor.

    .venv/bin/python benchmarks/pipelines_ray.py [--seconds 10] [--quick] [--json PATH]

A holder process starts a local Ray cluster with 2 CPUs (``ray.init(num_cpus=2)``) and keeps it up; each
measurement is the wall time of a whole fresh ``shipyard pipeline run`` process (import, store, connection to
the cluster, the steps, recording): ``--executor local`` (sequential) and ``--executor ray --ray-address
ADDRESS``, every step executed (``--no-cache``), median of 3 (1 with ``--quick``, which also makes the steps
3 s). The steps sleep rather than compute, so other load on a shared machine does not decide the result.
Beside them, the Ray floor: a fresh process that only imports Ray, connects to the same cluster, runs two
sleeping tasks at once and exits (what any Ray driver pays, with no store, no tracking and no Shipyard in the
workers).

Target (issue #17): the Ray run takes at most 0.65x the sequential wall time. Exits 0 when met, 1 when
not, 2 when a run fails.
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

FLOW = '''
import time

from shipyard import pipeline, step


@step
def start(n: int) -> int:
    return n


@step
def left(n: int, seconds: float) -> int:
    time.sleep(seconds)
    return n + 1


@step
def right(n: int, seconds: float) -> int:
    time.sleep(seconds)
    return n + 2


@step
def join(a: int, b: int) -> dict:
    return {"sum": a + b}


@pipeline
def branches(seconds: float = 10.0):
    n = start(1)
    join(left(n, seconds), right(n, seconds))
'''

HOLDER = ("import sys, ray\n"
          "ray.init(num_cpus=2, include_dashboard=False, logging_level='warning')\n"
          "print(ray.get_runtime_context().gcs_address, flush=True)\n"
          "sys.stdin.read()\n")  # keeps the cluster up until the benchmark closes stdin


FLOOR = ("import sys, time, ray\n"
         "ray.init(address=sys.argv[1], include_dashboard=False, logging_level='warning')\n"
         "nap = ray.remote(lambda s: time.sleep(s))\n"
         "ray.get([nap.remote(float(sys.argv[2])), nap.remote(float(sys.argv[2]))])\n")


def _floor(folder: Path, address: str, seconds: float) -> float:
    # The cluster the holder started asks for Ray's token; a driver that only connects sends it when told to
    # (Shipyard's executor does this itself).
    token = Path.home() / ".ray" / "auth_token"
    env = {**os.environ, **({"RAY_AUTH_MODE": "token"} if token.exists() and "RAY_AUTH_MODE" not in os.environ else {})}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", FLOOR, address, str(seconds)], cwd=folder, env=env,
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(2)
    return elapsed


def _run(folder: Path, seconds: float, *extra: str) -> float:
    env = {**os.environ, "SHIPYARD_CAPTURE_PACKAGES": "false"}
    command = [sys.executable, "-c", "from shipyard.cli import main; main()", "--tracking-uri",
               f"sqlite:///{folder / 'shipyard.db'}", "pipeline", "run", "flow.py:branches", "-p",
               f"seconds={seconds}", "--no-cache", "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(2)
    steps = {s["step"]: s["status"] for s in json.loads(done.stdout)["steps"]}
    if set(steps.values()) != {"executed"}:
        raise SystemExit(f"not every step executed: {steps}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=None, help="how long each branch sleeps (default 10)")
    parser.add_argument("--quick", action="store_true", help="one round, 3-second steps")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 10.0)
    rounds = 1 if args.quick else 3
    times: dict[str, list[float]] = {"sequential": [], "ray": [], "ray floor": []}
    with tempfile.TemporaryDirectory(prefix="shipyard-bench-ray-") as tmp:
        folder = Path(tmp)
        (folder / "flow.py").write_text(FLOW)
        started = time.perf_counter()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=folder, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None
            address = holder.stdout.readline().strip()
            if not address:
                raise SystemExit("the Ray cluster did not start")
            startup = time.perf_counter() - started
            for _ in range(rounds):
                times["sequential"].append(_run(folder, seconds))
                times["ray"].append(_run(folder, seconds, "--executor", "ray", "--ray-address", address))
                times["ray floor"].append(_floor(folder, address, seconds))
        finally:
            assert holder.stdin is not None
            holder.stdin.close()  # the holder ends; the cluster it started ends with it
            holder.wait(timeout=120)
    median = {kind: statistics.median(values) for kind, values in times.items()}
    ratio = median["ray"] / median["sequential"]
    print(f"pipelines on Ray: two independent {seconds:g}-second steps, median of {rounds} fresh processes")
    print(f"  local Ray cluster start (2 CPUs): {startup:.1f} s (not counted)")
    for kind in ("sequential", "ray", "ray floor"):
        print(f"  {kind:<10} {median[kind]:7.2f} s   ({', '.join(f'{v:.2f}' for v in times[kind])})")
    ok = ratio <= 0.65
    print(f"  ray / sequential: {ratio:.2f}x (target <= 0.65x)  {'OK' if ok else 'MISSED'}")
    print(f"  ray floor / sequential: {median['ray floor'] / median['sequential']:.2f}x; Shipyard over the floor: "
          f"{median['ray'] - median['ray floor']:.2f} s; load average {os.getloadavg()[0]:.1f} (1-min)")
    if args.json:
        args.json.write_text(json.dumps({"seconds": seconds, "times": times, "median": median, "ratio": ratio,
                                         "cluster_start": startup, "load_average": os.getloadavg()}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
