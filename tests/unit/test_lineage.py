"""The lineage graph: upstream/downstream walks, explain, formats, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import shipyard
from shipyard import lineage
from shipyard.cli import app
from shipyard.entities import Edge, Node, NodeKind, Relation
from shipyard.errors import InvalidInput, NotFound
from shipyard.models import PythonModel


class _Model(PythonModel):
    def predict(self, context, data):
        return data


@pytest.fixture
def chain(fluent: str, tmp_path: Path) -> dict[str, str]:
    """train.csv -> parent run -> child run; parent run -> churn/1."""
    path = tmp_path / "train.csv"
    pd.DataFrame({"x": np.arange(20.0)}).to_csv(path, index=False)
    with shipyard.start_run() as parent:
        shipyard.set_tag("shipyard.git.commit", "a" * 40)
        shipyard.log_params({"lr": "0.1", "depth": "3"})
        shipyard.seed_everything(7)
        data = shipyard.log_dataset(path, context="training")
        shipyard.log_model(_Model(), "model", registered_model_name="churn")
        with shipyard.start_run(nested=True) as child:
            pass
    return {"parent": parent.info.run_id, "child": child.info.run_id, "data": data.ref, "digest": data.digest}


def test_upstream_downstream(chain: dict[str, str]) -> None:
    up = lineage.upstream("models:/churn/1")
    assert up.depth == {Node(NodeKind.MODEL, "churn/1"): 0, Node(NodeKind.RUN, chain["parent"]): 1,
                        Node(NodeKind.DATASET, chain["data"]): 2}
    down = lineage.downstream(f"dataset:{chain['data']}")
    assert {str(n) for n in down.nodes} == {f"dataset:{chain['data']}", f"run:{chain['parent']}",
                                            f"run:{chain['child']}", "model:churn/1"}
    assert len(lineage.downstream(f"dataset:{chain['data']}", depth=1).nodes) == 2
    assert lineage.upstream(chain["child"]).depth[Node(NodeKind.RUN, chain["parent"])] == 1


def test_explain_a_registered_model(chain: dict[str, str]) -> None:
    shipyard.set_alias("churn", "staging", 1)
    why = lineage.explain("models:/churn@staging")
    assert why.data_digests == {chain["data"]: chain["digest"]}
    [run] = why.runs
    assert (run.run_id, run.commit, run.seed) == (chain["parent"], "a" * 40, "7")
    assert run.params == {"lr": "0.1", "depth": "3"}
    assert run.inputs == [(chain["data"], "training")]
    assert [m.version for m in why.models] == [1]


def test_walk_and_explain_are_domain_code_on_a_registry_service(chain: dict[str, str], tracking_uri: str) -> None:
    """Built from a Store and an ArtifactStore (as the server does per request), with no Client
    and no fluent SDK state: the same walk and explanation as the SDK's spelling."""
    from shipyard.auth import Principal
    from shipyard.lineage.explain import describe, explain_ref
    from shipyard.lineage.graph import walk
    from shipyard.models.registry import RegistryService
    from shipyard.tracking import fluent as fluent_module

    client = shipyard.Client(tracking_uri=tracking_uri)
    try:
        registry = RegistryService(client.store, client.artifacts, Principal("bob"))
        fluent_module._reset_for_tests()  # the fluent SDK's client is gone: nothing may reach for it
        assert walk(registry, "models:/churn/1", upstream=True).depth == \
            lineage.upstream("models:/churn/1", client=registry).depth
        why = explain_ref(registry, "models:/churn/1")
        assert why.data_digests == {chain["data"]: chain["digest"]}
        assert [r.run_id for r in why.runs] == [chain["parent"]]
        down = describe(walk(registry, f"dataset:{chain['data']}", upstream=False), registry, with_files=False)
        assert {r.run_id for r in down.runs} == {chain["parent"], chain["child"]}
        assert lineage.parse_ref(client, "models:/churn/1") == Node(NodeKind.MODEL, "churn/1")  # a Client too
        assert fluent_module._state.client is None
    finally:
        client.close()


def test_cycles_terminate_and_bad_refs(chain: dict[str, str]) -> None:
    from shipyard.tracking.fluent import default_client

    a, b = Node(NodeKind.STEP, "p/a"), Node(NodeKind.STEP, "p/b")
    default_client().store.lineage.add_edges([Edge(a, b, Relation.STEP), Edge(b, a, Relation.STEP)])
    graph = lineage.downstream("step:p/a")
    assert set(graph.depth) == {a, b}
    assert len(graph.edges) == 2
    with pytest.raises(NotFound, match="step:p/zzz"):
        lineage.upstream("step:p/zzz")
    with pytest.raises(NotFound):
        lineage.upstream("run:" + "f" * 32)
    with pytest.raises(InvalidInput, match="kind"):
        lineage.upstream("nonsense")
    with pytest.raises(InvalidInput, match="depth"):
        lineage.upstream("models:/churn/1", depth=0)


def test_cli(chain: dict[str, str], fluent: str) -> None:
    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["--tracking-uri", fluent, *args], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    tree = run("lineage", "show", "models:/churn/1")
    assert "← model" in tree
    assert f"dataset:{chain['data']}" in tree
    graph = json.loads(run("lineage", "show", "models:/churn/1", "--format", "json"))
    assert {n["id"] for n in graph["nodes"]} == {"model:churn/1", f"run:{chain['parent']}",
                                                 f"dataset:{chain['data']}"}
    assert run("lineage", "show", "models:/churn/1", "-f", "dot").startswith("digraph lineage {")
    assert "-->|model|" in run("lineage", "show", "models:/churn/1", "-f", "mermaid")
    explained = run("lineage", "explain", "models:/churn/1")
    assert chain["digest"] in explained
    assert "a" * 40 in explained
    assert "lr=0.1" in explained
    assert "train" in run("datasets", "list")
    assert chain["digest"][:12] in run("datasets", "show", chain["data"]) or chain["digest"] in run(
        "datasets", "show", chain["data"])
    bad = CliRunner().invoke(app, ["--tracking-uri", fluent, "lineage", "show", "nonsense"])
    assert bad.exit_code == 2
    assert "Traceback" not in bad.output


def test_show_carries_the_details_in_every_format(chain: dict[str, str], fluent: str) -> None:
    """``lineage show`` answers "what made this model" on its own: the data digests, the run's code
    commit and dirty flag, params and environment, whatever the format."""
    from shipyard.tracking.fluent import default_client

    default_client().set_tags(chain["parent"], {"shipyard.git.dirty": "true", "shipyard.env.python": "3.11.7",
                                         "shipyard.env.platform": "Linux-6.1-x86_64"})

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["--tracking-uri", fluent, "lineage", "show", "models:/churn/1", *args],
                                    env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.stdout

    graph = json.loads(run("--format", "json"))
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[f"dataset:{chain['data']}"]["details"]["digest"] == chain["digest"]
    details = nodes[f"run:{chain['parent']}"]["details"]
    assert (details["commit"], details["dirty"]) == ("a" * 40, True)
    assert details["params"] == {"lr": "0.1", "depth": "3"}
    assert details["environment"]["python"] == "3.11.7"
    assert details["environment"]["platform"] == "Linux-6.1-x86_64"
    assert nodes["model:churn/1"]["details"]["run_id"] == chain["parent"]
    assert {e["relation"] for e in graph["edges"]} == {"model", "input"}
    for fmt in ("tree", "dot", "mermaid"):
        text = run("--format", fmt)
        for fact in (chain["digest"], "a" * 40, "uncommitted changes", "lr=0.1", "depth=3", "Python 3.11.7",
                     "Linux-6.1-x86_64"):
            assert fact in text, (fmt, fact, text)
    # Downstream too: what was made from the data, with the same records.
    down = json.loads(CliRunner().invoke(app, ["--tracking-uri", fluent, "lineage", "show",
                                               f"dataset:{chain['data']}", "--downstream", "-f", "json"]).stdout)
    down_nodes = {n["id"]: n["details"] for n in down["nodes"]}
    assert down_nodes[f"dataset:{chain['data']}"]["digest"] == chain["digest"]
    assert down_nodes[f"run:{chain['parent']}"]["commit"] == "a" * 40
    assert down_nodes["model:churn/1"]["run_id"] == chain["parent"]
    assert down["missing"] == []
