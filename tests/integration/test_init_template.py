"""``shipyard init``: the generated project passes its own tests right away, and its CI workflow's commands
(run the pipeline through its gates, promote the registered model) work as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from shipyard.cli import app

BIN = Path(sys.executable).parent


def _init(tmp_path: Path, name: str = "churn-model") -> Path:
    done = CliRunner().invoke(app, ["init", name, "--dir", str(tmp_path)])
    assert done.exit_code == 0, done.output
    return tmp_path / name


@pytest.mark.slow  # a pytest of its own in a subprocess, which trains a model
def test_the_generated_project_passes_its_own_tests(tmp_path: Path) -> None:
    root = _init(tmp_path)
    assert (root / "src" / "churn_model" / "pipeline.py").is_file()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SHIPYARD_TRACKING_URI", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


@pytest.mark.slow  # runs the pipeline and the promotion as CI would, each a CLI process
def test_the_ci_workflow_runs_the_gates_and_promotes(tmp_path: Path) -> None:
    root = _init(tmp_path)
    workflow = yaml.safe_load((root / ".github" / "workflows" / "ci.yml").read_text())
    commands = [s["run"] for s in workflow["jobs"]["train"]["steps"] if s.get("run", "").startswith("shipyard ")]
    assert len(commands) == 2
    assert "pipeline run" in commands[0]
    assert "models promote" in commands[1]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "SHIPYARD_CAPTURE_PACKAGES": "false",
           "SHIPYARD_TRACKING_URI": f"sqlite:///{tmp_path / 'ci.db'}", "PYTHONPATH": str(root / "src")}
    env.pop("SHIPYARD_ARTIFACT_URI", None)
    for command in commands:
        done = subprocess.run(["bash", "-c", command], cwd=root, env=env, capture_output=True, text=True,
                              timeout=240)
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    assert "staging" in done.stdout


def test_init_refuses_a_bad_name_and_a_folder_in_use(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["init", "3d-model", "--dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "project name '3d-model' is not valid: start with a letter" in bad.output
    shadow = runner.invoke(app, ["init", "json", "--dir", str(tmp_path)])
    assert shadow.exit_code == 2
    assert "shadows a Python module" in shadow.output
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    taken = runner.invoke(app, ["init", "taken", "--dir", str(tmp_path)])
    assert taken.exit_code == 4
    assert "already exists and is not empty" in taken.output
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["notes.txt"]
    assert "Traceback" not in bad.output + shadow.output + taken.output
