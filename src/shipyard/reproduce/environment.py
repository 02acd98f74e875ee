"""The Python environment of the re-run: this one (``current``) or a new virtualenv with the run's
recorded package versions (``venv``, built with pip from ``_shipyard/requirements.txt``).

Paths inside the reproduction's temporary folder are written ``<workspace>/...`` in the plan and
filled in when it runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shipyard.errors import InvalidInput, ShipyardError
from shipyard.reproduce.progress import Progress

__all__ = ["ENVIRONMENTS", "EnvironmentPlan", "build_environment", "plan_environment"]

ENVIRONMENTS = ("current", "venv")
WORKSPACE = "<workspace>"
DISTRIBUTION = "shipyard-mlops"
# Never pinned into the new environment: the venv brings its own installer.
_SKIP = frozenset({"pip"})


@dataclass(frozen=True)
class EnvironmentPlan:
    kind: str  # current | venv
    python: str  # the interpreter of the re-run
    requirements: list[str] = field(default_factory=list)  # lines of the venv's requirements file
    commands: list[list[str]] = field(default_factory=list)  # what builds it, in order
    warnings: list[str] = field(default_factory=list)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plan_environment(kind: str, packages: Sequence[str] | None, recorded_python: str | None) -> EnvironmentPlan:
    """What ``--env kind`` will do. ``InvalidInput`` for an unknown kind, or ``venv`` for a run
    that recorded no package list."""
    import platform

    if kind not in ENVIRONMENTS:
        raise InvalidInput(f"env must be one of {', '.join(ENVIRONMENTS)}, got {kind!r}")
    warnings = []
    if recorded_python and recorded_python != platform.python_version():
        warnings.append(f"the run used Python {recorded_python}; the re-run uses Python {platform.python_version()} "
                        f"({sys.executable})")
    if kind == "current":
        warnings += _package_drift(packages)
        return EnvironmentPlan("current", sys.executable, warnings=warnings)
    if not packages:
        raise InvalidInput("--env venv needs the run's package list (artifact _shipyard/requirements.txt), but the run "
                           "recorded none (capture_packages was off); reproduce with --env current instead")
    requirements = [line for line in packages if _key(line.partition("==")[0]) not in _SKIP | {DISTRIBUTION}]
    requirements.append(_shipyard_requirement())
    python = f"{WORKSPACE}/venv/{'Scripts/python.exe' if os.name == 'nt' else 'bin/python'}"
    commands = [[sys.executable, "-m", "venv", f"{WORKSPACE}/venv"],
                [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                 "-r", f"{WORKSPACE}/requirements.txt"]]
    return EnvironmentPlan("venv", python, requirements, commands, warnings)


def _shipyard_requirement() -> str:
    """This Shipyard, not the recorded one: the re-run must link itself to the original, which an
    older version cannot do. A local (editable) install is installed from its folder."""
    import importlib.metadata

    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        from shipyard._version import __version__

        return f"{DISTRIBUTION}=={__version__}"
    try:
        origin = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        origin = {}
    url = str(origin.get("url", ""))
    if url.startswith("file://") and "dir_info" in origin:
        return url[len("file://"):]
    return f"{DISTRIBUTION}=={dist.version}"


def _package_drift(packages: Sequence[str] | None) -> list[str]:
    """A warning when installed versions differ from the recorded ones (the metrics may too)."""
    from shipyard.tracking.capture import installed_packages

    if not packages:
        return []
    recorded = {_key(line.partition("==")[0]): line.partition("==")[2] for line in packages}
    installed = {}
    for line in installed_packages().decode("utf-8").splitlines():
        name, _, version = line.partition("==")
        installed[_key(name)] = version
    changed = [f"{name} {recorded[name]} -> {installed.get(name) or 'not installed'}" for name in sorted(recorded)
               if name not in _SKIP | {DISTRIBUTION} and installed.get(name) != recorded[name]]
    if not changed:
        return []
    shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return [f"{len(changed)} package version(s) differ from the run's: {shown}; --env venv installs the recorded "
            "ones"]


def build_environment(plan: EnvironmentPlan, workspace: Path, progress: Progress) -> str:
    """Run the plan's commands (streaming pip's output) and return the re-run's interpreter."""
    if plan.kind == "current":
        return plan.python
    (workspace / "requirements.txt").write_text("".join(f"{line}\n" for line in plan.requirements), "utf-8")
    for command in plan.commands:
        filled = [part.replace(WORKSPACE, str(workspace)) for part in command]
        with progress.step(" ".join(Path(filled[0]).name if i == 0 else p for i, p in enumerate(filled))):
            _run(filled, workspace, progress)
    return plan.python.replace(WORKSPACE, str(workspace))


def _run(command: list[str], cwd: Path, progress: Progress) -> None:
    tail: list[str] = []
    try:
        with subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace") as process:
            assert process.stdout is not None
            for line in process.stdout:
                progress.output(line.rstrip("\n"))
                tail = [*tail[-19:], line.rstrip("\n")]
            code = process.wait()
    except OSError as exc:
        raise ShipyardError(f"could not run {command[0]}: {exc}") from None
    if code != 0:
        raise ShipyardError(f"building the environment failed ({' '.join(command[:4])}... exited with {code}); "
                            "the last lines:\n" + "\n".join(tail) + "\nreproduce with --env current to use this "
                            "environment instead")
