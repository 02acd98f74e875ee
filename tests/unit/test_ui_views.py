"""The web UI's view logic without a server: the runs view in the URL, previews, lineage layout, Markdown."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipyard.entities import Edge, Metric, Node, NodeKind, Relation, Run, RunData, RunInfo, RunStatus
from shipyard.errors import InvalidInput
from shipyard.lineage.graph import Graph
from shipyard.server.ui import previews
from shipyard.server.ui.lineage_view import layout, node_href
from shipyard.server.ui.markdown import render_markdown
from shipyard.server.ui.runs_view import DEFAULT_MAX_COLUMNS, Column, RunsView, available_columns, shown_columns
from shipyard.tracking.client import Client


def _run(i: int, metrics: int = 0, params: int = 0) -> Run:
    info = RunInfo(f"{i:032x}", "1", f"r{i}", RunStatus.FINISHED, 1)
    data = RunData(params={f"p{k:02d}": "v" for k in range(params)},
                   tags={"team": "a", "shipyard.git.commit": "abc"},
                   latest_metrics={f"m{k:02d}": Metric(f"m{k:02d}", 1.0) for k in range(metrics)})
    return Run(info, data)


def test_the_view_round_trips_through_its_url() -> None:
    view = RunsView.from_query({"filter": ["metrics.acc > 0.9"], "order": ["params.lr ASC"], "size": ["100"],
                                "cols_set": ["1"], "cols": ["metrics.acc", "params.`learning rate`"]})
    url = view.url("7")
    assert url.startswith("/ui/experiments/7?")
    again = RunsView.from_query(_query(url))
    assert (again.filter_text, again.order_text, again.page_size, again.columns) == \
        (view.filter_text, view.order_text, view.page_size, view.columns)
    assert view.columns == (Column("metric", "acc"), Column("param", "learning rate"))


def _query(url: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def test_sorting_a_column_toggles_descending_then_ascending() -> None:
    view = RunsView.from_query({})
    first = _query(view.sort_url("1", "metric", "loss", "metrics.loss"))
    assert first["order"] == ["metrics.loss DESC"]
    again = RunsView.from_query(first)
    assert again.sort_state("metric", "loss") == "desc"
    assert _query(again.sort_url("1", "metric", "loss", "metrics.loss"))["order"] == ["metrics.loss ASC"]


@pytest.mark.parametrize(("key", "name"), [("acc", "metrics.acc"), ("val.loss", "metrics.val.loss"),
                                           ("f1-score", "metrics.`f1-score`"), ("a b", "metrics.`a b`")])
def test_column_names_are_spelled_as_the_filter_grammar_reads_them(key: str, name: str) -> None:
    from shipyard.filters import parse_order_by

    assert Column("metric", key).name == name
    assert parse_order_by([name])[0].key == key


def test_a_bad_filter_is_kept_on_the_view_with_the_parsers_message() -> None:
    view = RunsView.from_query({"filter": ["metrics.acc >"]})
    assert view.filter_error is not None
    assert "column 14" in view.filter_error
    with pytest.raises(InvalidInput, match="page size"):
        RunsView.from_query({"size": ["1000000"]})


def test_default_columns_are_the_first_metrics_and_params_and_system_tags_are_hidden() -> None:
    runs = [_run(1, metrics=12, params=12)]
    available = available_columns(runs)
    assert Column("tag", "team") in available
    assert not any(c.key.startswith("shipyard.") for c in available)
    shown = shown_columns(RunsView.from_query({}), available)
    assert [c.kind for c in shown] == ["metric"] * DEFAULT_MAX_COLUMNS + ["param"] * DEFAULT_MAX_COLUMNS
    assert shown_columns(RunsView.from_query({"cols_set": ["1"]}), available) == []


def test_previews_bound_what_they_read(tmp_path: Path) -> None:
    client = Client(tracking_uri=f"sqlite:///{tmp_path / 'db.sqlite'}", artifact_uri=str(tmp_path / "art"))
    run_id = client.create_run(client.create_experiment("p")).info.run_id
    client.log_text(run_id, "x" * (previews.TEXT_LIMIT + 10), "big.log")
    client.log_text(run_id, "a,b\n" + "\n".join(f"{i},{i}" for i in range(200)), "t.csv")
    client.log_text(run_id, "{not json", "bad.json")
    by_path = {e.path: e for e in client.artifacts.walk(run_id)}
    big = previews.build_preview(client.artifacts, run_id, by_path["big.log"])
    assert big.truncated
    assert len(big.text) == previews.TEXT_LIMIT
    table = previews.build_preview(client.artifacts, run_id, by_path["t.csv"])
    assert (table.header, len(table.rows), table.truncated) == (["a", "b"], previews.TABLE_ROWS, True)
    bad = previews.build_preview(client.artifacts, run_id, by_path["bad.json"])
    assert (bad.kind, "not valid JSON" in bad.note) == ("text", True)
    client.close()


@pytest.mark.parametrize(("path", "kind"), [("a/b.PNG", "image"), ("x.svg", "binary"), ("MLmodel", "text"),
                                            ("r.htm", "html"), ("t.parquet", "parquet"), ("c.yml", "yaml")])
def test_preview_kinds(path: str, kind: str) -> None:
    assert previews.preview_kind(path) == kind


def test_lineage_layout_puts_data_left_and_links_every_known_node() -> None:
    dataset, run, model = Node(NodeKind.DATASET, "train@2"), Node(NodeKind.RUN, "a" * 32), Node(NodeKind.MODEL, "m/3")
    graph = Graph(model, True, (Edge(run, model, Relation.MODEL), Edge(dataset, run, Relation.INPUT, "training")),
                  {model: 0, run: 1, dataset: 2})
    drawing = layout(graph, {"a" * 32: "train-run"})
    x = {n.node: n.x for n in drawing.nodes}
    assert x[dataset] < x[run] < x[model]
    assert [n.title for n in drawing.nodes if n.node == run] == ["train-run"]
    assert {e.label for e in drawing.edges} == {"model", "input (training)"}
    assert node_href(dataset) == "/ui/datasets/train/versions/2"
    assert node_href(model) == "/ui/models/m/versions/3"
    assert node_href(Node(NodeKind.PREDICTION, "p1")) is None


def test_markdown_escapes_raw_html_and_drops_script_links() -> None:
    out = str(render_markdown("<img src=x onerror=alert(1)>\n\n[a](javascript:alert(1)) [b](https://x.org)\n\n"
                              "| x |\n|---|\n| 1 |"))
    assert "<img" not in out
    assert "&lt;img" in out
    assert 'href="javascript:' not in out
    assert '<a href="https://x.org">b</a>' in out
    assert "<table>" in out


def test_previous_and_next_pages_keep_a_stack_of_earlier_page_tokens() -> None:
    first = RunsView.from_query({"filter": ["metrics.acc > 0"]})
    assert first.previous_url("1") is None
    second = RunsView.from_query(_query(first.next_url("1", "T2")))
    assert (second.page_token, second.back) == ("T2", ("-",))
    third = RunsView.from_query(_query(second.next_url("1", "T3")))
    assert (third.page_token, third.back) == ("T3", ("-", "T2"))
    back_to_second = RunsView.from_query(_query(third.previous_url("1")))
    assert (back_to_second.page_token, back_to_second.back, back_to_second.filter_text) == \
        ("T2", ("-",), "metrics.acc > 0")
    back_to_first = _query(back_to_second.previous_url("1"))
    assert "page_token" not in back_to_first
    assert "back" not in back_to_first
    # re-sorting starts over at the first page, forgetting the stack
    assert "back" not in _query(third.sort_url("1", "metric", "acc", "metrics.acc"))
    # a shared link without the stack still has a way back: to the first page
    assert "page_token" not in _query(RunsView.from_query({"page_token": ["T9"]}).previous_url("1"))


def test_the_back_stack_is_bounded() -> None:
    from shipyard.server.ui.runs_view import MAX_BACK

    view = RunsView.from_query({"page_token": ["T"], "back": [f"B{i}" for i in range(MAX_BACK + 10)]})
    assert len(view.back) == MAX_BACK
    assert view.back[-1] == f"B{MAX_BACK + 9}"
    assert len(RunsView.from_query(_query(view.next_url("1", "U"))).back) == MAX_BACK


def test_parallel_coordinates_put_differing_params_on_axes_and_colour_runs_by_the_metric() -> None:
    from shipyard.server.ui.parallel_view import MISSING_COLOR, parallel_plot

    def run(i: int, lr: str, opt: str, loss: float | None) -> Run:
        metrics = {"loss": Metric("loss", loss)} if loss is not None else {}
        data = RunData(params={"lr": lr, "optimizer": opt, "seed": "1"}, latest_metrics=metrics)
        return Run(RunInfo(f"{i:032x}", "1", f"r{i}", RunStatus.FINISHED, 1), data)

    runs = [run(0, "0.1", "adam", 0.5), run(1, "0.01", "sgd", 0.2), run(2, "0.001", "adam", None)]
    plot = parallel_plot(runs, "loss")
    assert [a.label for a in plot.axes] == ["lr", "optimizer", "loss"]  # seed is the same everywhere
    lr, optimizer, loss = plot.axes
    assert lr.numeric
    assert not optimizer.numeric
    assert loss.numeric
    assert [t for _, t in optimizer.ticks] == ["adam", "sgd"]
    assert (plot.low, plot.high) == (0.2, 0.5)
    by_run = {line.run_name: line for line in plot.lines}
    assert by_run["r2"].color == MISSING_COLOR
    assert by_run["r2"].path.count("M") == 1
    assert by_run["r0"].color != by_run["r1"].color
    assert by_run["r1"].path.count("L") == 2
    assert "lr = 0.01" in by_run["r1"].title
    assert "loss = 0.2" in by_run["r1"].title
    assert plot.lines[0].run_name == "r2"  # the run without the metric is drawn first, beneath
