"""Model cards: sections with the recorded values, storage, regeneration, edits, table escaping."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from markdown_it import MarkdownIt
from sklearn.linear_model import LogisticRegression

import shipyard
from shipyard.entities import Metric
from shipyard.errors import InvalidInput, NotFound
from shipyard.models.card import card, escape_cell, render_card, set_card
from shipyard.models.evaluate import evaluate
from shipyard.models.manifest import ModelManifest

PIPE_VALUE = r"s3://bucket/train|2024\|q1.parquet"


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    x = pd.DataFrame({"age": rng.integers(18, 90, size=200), "income": rng.normal(50, 10, size=200)})
    return x.assign(churned=((x["age"] > 50) ^ (rng.random(200) < 0.15)).astype(int))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[shipyard.Client]:
    c = shipyard.Client(tracking_uri=f"sqlite:///{tmp_path_factory.mktemp('store') / 'shipyard.db'}")
    yield c
    c.close()


@pytest.fixture(scope="module")
def training_run(client: shipyard.Client, frame: pd.DataFrame) -> str:
    """One logged model, made once (logging is the slow part); each test registers its own version of it."""
    features = frame.drop(columns=["churned"])
    experiment_id = client.create_experiment("churn-training")
    run_id = client.create_run(experiment_id, "baseline", tags={
        "shipyard.git.commit": "0123456789abcdef0123456789abcdef01234567", "shipyard.git.branch": "main",
        "shipyard.git.dirty": "true", "shipyard.source.entry_point": "train.py", "shipyard.note": "first try"}
    ).info.run_id
    client.log_text(run_id, "diff --git a/train.py b/train.py\n", "_shipyard/git.diff")
    client.log_params(run_id, {"C": 0.5, "train_data": PIPE_VALUE, "penalty": "l2"})
    client.log_metrics(run_id, {"train_accuracy": 0.8125, "train_loss": 0.4321}, step=3)
    client.log_model(run_id, LogisticRegression(C=0.5).fit(features, frame["churned"]), "model", flavor="sklearn",
                     input_example=features.head(3))
    client.set_terminated(run_id)
    return run_id


@pytest.fixture
def version(request: pytest.FixtureRequest, client: shipyard.Client, training_run: str) -> tuple[str, int]:
    name = request.node.name.replace("[", "-").replace("]", "")
    registered = client.register_model(f"runs:/{training_run}/model", name, description="Predicts churn.")
    return name, registered.version


def _manifest(client: shipyard.Client, run_id: str, tmp_path) -> ModelManifest:
    client.download_artifacts(run_id, "model/MLmodel", tmp_path)
    return ModelManifest.read(tmp_path)


def _tables(markdown: str) -> dict[str, list[list[str]]]:
    """Every table of the rendered card by the heading above it: rows of cell texts (header first),
    as a GitHub-Markdown parser reads them."""
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables: dict[str, list[list[str]]] = {}
    heading, rows = "", None
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            heading = tokens[i + 1].content
        elif token.type == "table_open":
            rows = tables.setdefault(heading, [])
        elif token.type == "tr_open" and rows is not None:
            rows.append([])
        elif token.type == "inline" and rows is not None and tokens[i - 1].type in ("th_open", "td_open"):
            rows[-1].append("".join(child.content for child in token.children or []))
        elif token.type == "table_close":
            rows = None
    return tables


def test_card_has_the_recorded_values(client: shipyard.Client, training_run: str, version: tuple[str, int],
                                      tmp_path) -> None:
    name, number = version
    client.set_alias(name, "staging", number)
    text = card(client, name, number)

    assert text.startswith(f"# {name} — version {number}\n\nPredicts churn.")
    tables = _tables(text)
    overview = dict(tables["Overview"][1:])
    assert overview["Aliases"] == "staging"
    assert overview["Status"] == "READY"
    assert overview["Approval"] == "not approved"
    assert overview["Source"] == f"runs:/{training_run}/model"
    training = dict(tables["Training run"][1:])
    assert training["Run ID"] == training_run
    assert training["Run name"] == "baseline"
    assert training["Experiment"].startswith("churn-training (id ")
    assert training["Note"] == "first try"
    code = dict(tables["Code version"][1:])
    assert code["Commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert code["Branch"] == "main"
    assert code["Uncommitted changes"] == "yes (the diff is stored in the run as _shipyard/git.diff)"
    assert tables["Parameters"] == [["Name", "Value"], ["C", "0.5"], ["penalty", "l2"], ["train_data", PIPE_VALUE]]
    assert tables["Metrics"][0] == ["Name", "Value", "Step"]
    assert ["train_accuracy", "0.8125", "3"] in tables["Metrics"]
    assert ["train_loss", "0.4321", "3"] in tables["Metrics"]
    assert tables["Inputs"] == [["Name", "Type", "Optional"], ["age", "int64", "no"], ["income", "float64", "no"]]
    assert tables["Outputs"] == [["Tensor", "Type", "Shape"], ["(unnamed)", "int64", "(-1,)"]]

    manifest = _manifest(client, training_run, tmp_path)
    requirements = dict(tables["Requirements"][1:])
    assert requirements["Flavor"] == "sklearn"
    assert requirements["Pickle-based"] == ("yes" if manifest.pickle_based else "no")
    assert requirements["Python"] == manifest.python_version
    import sklearn

    assert f"- scikit-learn=={sklearn.__version__}\n" in text
    assert all(f"- {r}\n" in text for r in manifest.requirements)
    assert tables["Lineage"] == [["Name", "Value"], ["train_data", PIPE_VALUE]]  # the dataset param
    assert f"- training run {training_run} (baseline) logged runs:/{training_run}/model" in text
    assert f"models:/{name}/{number}" in text
    assert "## Evaluation" not in text  # none yet

    assert client.get_model_version(name, number).card == text  # stored on first use
    assert card(client, name, number) == text


def test_regenerate_after_a_metric_changes_and_an_evaluation(client: shipyard.Client, frame: pd.DataFrame,
                                                             training_run: str, version: tuple[str, int]) -> None:
    name, number = version
    first = card(client, name, number)
    client.update_run(training_run, status="RUNNING")  # resumed to log one more metric
    client.log_batch(training_run, metrics=[Metric("val_auc", 0.75, 0, 1), Metric("val_auc", 0.875, 1, 2)])
    client.set_terminated(training_run)
    assert card(client, name, number) == first  # the stored card until asked to regenerate

    result = evaluate(client, f"models:/{name}/{number}", frame, target="churned", dataset_name="holdout")
    fresh = card(client, name, number, regenerate=True)

    assert fresh != first
    tables = _tables(fresh)
    assert ["val_auc", "0.875", "1"] in tables["Metrics"]
    assert f"Run {result.run_id} (evaluate models:/{name}/{number}, " in fresh
    assert "on dataset holdout (200 rows)" in fresh
    assert tables["Evaluation"][0] == ["Metric", "Value"]
    assert dict(tables["Evaluation"][1:]) == {k: format(v, ".6g") for k, v in result.metrics.items()}
    assert f"- evaluated by run {result.run_id} on dataset holdout" in fresh
    assert client.get_model_version(name, number).card == fresh
    assert render_card(client, name, number) == fresh  # rendering alone stores nothing new


def test_set_card_round_trips(client: shipyard.Client, version: tuple[str, int]) -> None:
    name, number = version
    edited = "# Churn model\n\nHand-written notes | with a pipe.\n"
    assert set_card(client, name, number, edited).card == edited
    assert card(client, name, number) == edited
    assert client.get_model_version(name, number).card == edited
    assert card(client, name, number, regenerate=True).startswith(f"# {name} — version")  # replaced

    set_card(client, name, number, "")  # cleared: the next card() renders one
    assert card(client, name, number).startswith(f"# {name} — version")
    with pytest.raises(InvalidInput, match="Markdown text"):
        set_card(client, name, number, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        set_card(client, name, 99, "x")
    with pytest.raises(NotFound):
        card(client, "no-such-model", 1)


def test_values_cannot_break_a_table(client: shipyard.Client, version: tuple[str, int]) -> None:
    name, number = version
    client.store.models.approve_version(name, number, user="ana", comment="ok | *ship it*\nafter review")
    tables = _tables(render_card(client, name, number))
    for heading, rows in tables.items():
        assert len({len(row) for row in rows}) == 1, f"table {heading!r} has rows of different widths"
    approval = dict(tables["Overview"][1:])["Approval"]
    assert approval.startswith("approved by ana on ")
    assert approval.endswith(": ok | *ship it* after review")  # shown as written, no emphasis, one line
    assert ["train_data", PIPE_VALUE] in tables["Parameters"]


@pytest.mark.parametrize(("value", "escaped"), [
    ("learning_rate", "learning_rate"), ("_private_", r"\_private\_"), ("a|b", r"a\|b"), ("a\\|b", r"a\\\|b"),
    ("<b>*x*</b>", r"\<b\>\*x\*\</b\>"), ("two\nlines", "two lines"), ("[link](x)", r"\[link\](x)"),
])
def test_escape_cell(value: str, escaped: str) -> None:
    assert escape_cell(value) == escaped
