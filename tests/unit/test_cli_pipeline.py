"""``shipyard pipeline``: run, list, show, graph, invalidate, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from shipyard.cli import app

FLOW = '''
import os
from shipyard.pipelines import step, pipeline


@step
def numbers(n: int) -> list:
    return list(range(n))


@step
def total(values: list, scale: float = 1.0) -> dict:
    return {"total": sum(values) * scale}


@step(gate="metrics.total >= 10")
def check(result: dict) -> dict:
    if os.environ.get("FLOW_BREAK"):
        raise RuntimeError("broken on purpose")
    return {"total": result["total"]}


@pipeline
def flow(n: int = 5, scale: float = 1.0):
    check(total(numbers(n), scale=scale))
'''


@pytest.fixture
def cli(tmp_path: Path, fluent: str, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "flowmod.py").write_text(FLOW)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, ["--tracking-uri", fluent, *args], env={"COLUMNS": "160"})

    return invoke


def test_run_then_cached_then_show_and_list(cli) -> None:
    first = cli("pipeline", "run", "flowmod.py:flow", "--param", "n=6", "--param", "scale=2")
    assert first.exit_code == 0, first.output
    assert "✓ numbers" in first.output
    assert "gate metrics.total >= 10: pass" in first.output
    again = cli("pipeline", "run", "flowmod.py:flow", "-p", "n=6", "-p", "scale=2", "--json")
    assert again.exit_code == 0, again.output
    body = json.loads(again.stdout)
    assert [s["status"] for s in body["steps"]] == ["cached", "cached", "cached"]
    assert body["steps"][2]["metrics"] == {"total": 30.0}
    listed = json.loads(cli("pipeline", "list", "--json").stdout)
    assert [r["run_id"] for r in listed] == [body["run_id"], listed[1]["run_id"]]
    assert listed[0]["params"] == {"n": 6, "scale": 2.0}
    shown = cli("pipeline", "show", body["run_id"])
    assert shown.exit_code == 0, shown.output
    assert "numbers" in shown.output
    assert "cached" in shown.output
    assert "total=30" in shown.output
    assert cli("pipeline", "invalidate", "flowmod.py:flow", "--step", "total").exit_code == 0
    third = json.loads(cli("pipeline", "run", "flowmod.py:flow", "-p", "n=6", "-p", "scale=2", "--json").stdout)
    assert [s["status"] for s in third["steps"]] == ["cached", "executed", "cached"]


def test_graph_formats(cli) -> None:
    text = cli("pipeline", "graph", "flowmod:flow")
    assert text.exit_code == 0, text.output
    assert "total(scale=1.0)  <- numbers (values)" in text.stdout
    mermaid = cli("pipeline", "graph", "flowmod:flow", "--format", "mermaid").stdout
    assert "s_numbers -->|values| s_total" in mermaid
    assert cli("pipeline", "graph", "flowmod:flow", "-f", "dot").stdout.startswith('digraph "flow"')


@pytest.mark.parametrize(("args", "message"), [
    (("run", "flowmod.py:flow", "-p", "n=many"), "--param n=many: expected int for parameter 'n' of pipeline 'flow'"),
    (("run", "flowmod.py:flow", "-p", "depth=3"), "pipeline 'flow' has no parameter 'depth'"),
    (("run", "flowmod.py:nothing"), "'flowmod.py:nothing' is nothing, not a pipeline"),
    (("run", "no_such_module:flow"), "cannot import 'no_such_module'"),
    (("graph", "flowmod"), "expected MODULE:NAME"),
    (("run", "flowmod.py:flow", "-p", "n=2"), "step 'check' did not pass its gate: metrics.total >= 10: 1"),
], ids=["bad-type", "unknown-param", "not-a-pipeline", "no-module", "no-colon", "gate"])
def test_bad_input_is_one_line_and_a_non_zero_exit(cli, args: tuple[str, ...], message: str) -> None:
    result = cli("pipeline", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_failing_step_exits_8_and_names_how_to_resume(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOW_BREAK", "1")
    result = cli("pipeline", "run", "flowmod.py:flow")
    assert result.exit_code == 8
    assert "step 'check' of pipeline 'flow' failed: RuntimeError: broken on purpose" in result.output
    # the step's own traceback is shown (it starts in the user's file), none of Shipyard's machinery
    assert 'flowmod.py", line' in result.output
    assert 'raise RuntimeError("broken on purpose")' in result.output
    assert "src/shipyard" not in result.output
    assert "site-packages" not in result.output
    failed = json.loads(cli("pipeline", "list", "--json").stdout)[0]
    assert failed["status"] == "FAILED"
    monkeypatch.delenv("FLOW_BREAK")
    resumed = cli("pipeline", "run", "flowmod.py:flow", "--resume", failed["run_id"], "--json")
    assert resumed.exit_code == 0, resumed.output
    assert [s["status"] for s in json.loads(resumed.stdout)["steps"]] == ["resumed", "resumed", "executed"]
