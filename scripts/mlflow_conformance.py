"""MLflow's own server tests, run unmodified against ``shipyard server`` (issue #21).

    .venv/bin/python scripts/mlflow_conformance.py [--mlflow-source DIR | --mlflow-ref REF]
        [-k EXPR] [--server shipyard|mlflow] [--json PATH] [--min-passed N]

MLflow's test code is not in this repository and is not copied into it: the harness reads it
from an MLflow source tree at run time.

- ``--mlflow-source DIR`` (or ``$MLFLOW_CONFORMANCE_SOURCE``): a checkout or unpacked archive
  of the MLflow repository, e.g. ``git clone --depth 1 --branch v3.18.0
  https://github.com/mlflow/mlflow``; use the tag of the installed client
  (``.venv/bin/pip show mlflow-skinny``).
- otherwise the harness makes that checkout itself, sparse (``tests/`` only), in
  ``.bench/mlflow-src/<ref>``, with ``--mlflow-ref`` defaulting to ``v<installed mlflow version>``
  (this needs git and access to GitHub).

It runs ``tests/tracking/test_rest_tracking.py`` and ``tests/tracking/test_model_registry.py``
with pytest in this venv (``--noconftest``: MLflow's conftest is not loaded) and the plugin
``scripts/mlflow_conformance_plugin.py``, which replaces the fixture that yields their tracking
server's client with one that starts a fresh ``shipyard server`` (its own SQLite file and
artifact folder) for each test. Tests of what Shipyard does not serve (tracing, GraphQL, the AI
gateway, GenAI datasets, scorers, the prompt-lab UI route) and tests of MLflow's server process
itself are left out; the plugin lists them. ``--server mlflow`` runs the same selection against
``mlflow server`` (``$CONFORMANCE_PYTHON`` may name an interpreter with full MLflow), to tell a
difference of Shipyard's from one of the harness.

Prints passed and failed per family (the families of issue #21), each failure with its first
line, and ``N passed, M failed``; ``--json`` writes every test's outcome. Exit status: 0, or 1
when fewer than ``--min-passed`` pass.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
TEST_FILES = ("tests/tracking/test_rest_tracking.py", "tests/tracking/test_model_registry.py")
REPOSITORY = "https://github.com/mlflow/mlflow.git"

# Each test's family, first match wins: the seven families of issue #21, then the rest by area.
FAMILIES: list[tuple[str, str]] = [
    ("1 model version sources", r"test_model_registry\.py|model_version_with|model_version_model_id"),
    ("2 absent parents and source runs", r"create_run_all_args|test_create_logged_model\b"),
    ("3 experiment artifact_location", r"create_get_search_experiment|test_artifacts\b"),
    ("4 logged models", r"logged_model|log_metric_model|log_outputs"),
    ("5 dataset inputs", r"log_input|search_dataset"),
    ("6 validation and messages", r"validation|path_validation|rejects_invalid|test_delete_tag\b"),
    ("7 finished runs", r"set_terminated|update_run_name"),
    ("other tracking", r"."),
]
PASSING = {"passed", "xfailed", "xpassed"}


def family_of(nodeid: str) -> str:
    return next(name for name, pattern in FAMILIES if re.search(pattern, nodeid))


def installed_mlflow_version() -> str:
    for distribution in ("mlflow", "mlflow-skinny"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    sys.exit("mlflow is not installed in this interpreter (pip install -e '.[dev]')")


def checkout(ref: str) -> Path:
    """A sparse checkout of MLflow's ``tests/`` at ``ref`` in ``.bench/mlflow-src/<ref>``."""
    target = ROOT / ".bench" / "mlflow-src" / ref
    if (target / TEST_FILES[0]).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        ["git", "clone", "--quiet", "--depth", "1", "--branch", ref, "--filter=blob:none", "--sparse",
         REPOSITORY, str(target)],
        ["git", "-C", str(target), "sparse-checkout", "set", "tests/tracking", "tests/integration"],
    ]
    for step in steps:
        if subprocess.run(step).returncode != 0:
            sys.exit(f"could not check out MLflow {ref}; pass --mlflow-source DIR with a copy of its repository")
    return target


def run(source: Path, server: str, keyword: str | None, results: Path) -> dict[str, dict[str, str]]:
    missing = [name for name in TEST_FILES if not (source / name).exists()]
    if missing:
        sys.exit(f"{source} has no {', '.join(missing)}: is it MLflow's repository?")
    with tempfile.TemporaryDirectory(prefix="mlflow-conformance-") as work:
        # An ini of our own, so that neither MLflow's nor Shipyard's pytest settings apply.
        ini = Path(work) / "pytest.ini"
        ini.write_text("[pytest]\naddopts =\nfilterwarnings = ignore\n")
        argv = [sys.executable, "-m", "pytest", "-c", str(ini), "--rootdir", str(source), "--noconftest",
                "-p", "mlflow_conformance_plugin", "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
                "--tb=line", "--show-capture=no", *(str(source / name) for name in TEST_FILES)]
        if keyword:
            argv += ["-k", keyword]
        env = {**os.environ, "CONFORMANCE_SERVER": server, "CONFORMANCE_RESULTS": str(results),
               "PYTHONPATH": os.pathsep.join([str(SCRIPTS), str(source)])}
        subprocess.run(argv, cwd=work, env=env)
    if not results.exists():
        sys.exit("pytest wrote no results (see its output above)")
    outcomes: dict[str, dict[str, str]] = json.loads(results.read_text())
    return outcomes


def report(outcomes: dict[str, dict[str, str]], server: str) -> int:
    by_family: dict[str, list[tuple[str, dict[str, str]]]] = defaultdict(list)
    for nodeid, outcome in outcomes.items():
        by_family[family_of(nodeid)].append((nodeid, outcome))
    print(f"\nMLflow server tests against {server} server, by family:")
    for family, _ in FAMILIES:
        rows = by_family.get(family, [])
        if not rows:
            continue
        passed = sum(outcome["outcome"] in PASSING for _, outcome in rows)
        print(f"  {family:<36} {passed:>3} passed {len(rows) - passed:>3} failed")
        for nodeid, outcome in rows:
            if outcome["outcome"] not in PASSING:
                first_line = (outcome["message"] or outcome["outcome"]).strip().splitlines()[0][:150]
                print(f"      {nodeid.split('::', 1)[1]}: {first_line}")
    passed = sum(outcome["outcome"] in PASSING for outcome in outcomes.values())
    print(f"\n{passed} passed, {len(outcomes) - passed} failed")
    return passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlflow-source", type=Path, default=os.environ.get("MLFLOW_CONFORMANCE_SOURCE"),
                        help="a copy of MLflow's repository (default: a sparse checkout of --mlflow-ref)")
    parser.add_argument("--mlflow-ref", help="the tag or branch to check out (default: v<installed mlflow>)")
    parser.add_argument("--server", choices=("shipyard", "mlflow"), default="shipyard")
    parser.add_argument("-k", dest="keyword", help="run only the tests pytest's -k expression selects")
    parser.add_argument("--json", type=Path, help="write every test's outcome to this file")
    parser.add_argument("--min-passed", type=int, default=0, help="exit 1 when fewer tests pass")
    args = parser.parse_args()
    source = args.mlflow_source or checkout(args.mlflow_ref or f"v{installed_mlflow_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        results = args.json or Path(scratch) / "results.json"
        passed = report(run(Path(source).resolve(), args.server, args.keyword, results), args.server)
    sys.exit(1 if passed < args.min_passed else 0)


if __name__ == "__main__":
    main()
