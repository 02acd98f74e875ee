"""Unit tests for shipyard.filters: the MLflow run-search filter and order_by grammar."""

from __future__ import annotations

import pytest

from shipyard.entities.search import Comparison, Op, OrderBy, RunFilter
from shipyard.errors import InvalidInput
from shipyard.filters import parse_filter, parse_order_by


def one(text: str) -> Comparison:
    (comparison,) = parse_filter(text).comparisons
    return comparison


def error_of(text: str) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_filter(text)
    return str(info.value)


def caret_column(message: str) -> int:
    """The 1-based column the caret line of an error message points at."""
    *_, excerpt, caret = message.split("\n")
    assert excerpt.startswith("  ")
    assert caret.startswith("  ")
    return caret.index("^") - 1


# -- valid filters ---------------------------------------------------------------------------


def test_readme_example() -> None:
    assert parse_filter("metrics.loss < 0.3 and params.depth = '6'") == RunFilter(
        (Comparison("metric", "loss", Op.LT, 0.3), Comparison("param", "depth", Op.EQ, "6"))
    )


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t "], ids=["none", "empty", "spaces", "whitespace"])
def test_empty_filter_matches_everything(text: str | None) -> None:
    assert parse_filter(text) == RunFilter()


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("metrics.x = 1", "metric", "x"),
        ("metric.x = 1", "metric", "x"),
        ("params.x = '1'", "param", "x"),
        ("param.x = '1'", "param", "x"),
        ("parameters.x = '1'", "param", "x"),
        ("parameter.x = '1'", "param", "x"),
        ("tags.x = '1'", "tag", "x"),
        ("tag.x = '1'", "tag", "x"),
        ("attributes.status = '1'", "attribute", "status"),
        ("attribute.status = '1'", "attribute", "status"),
        ("attr.status = '1'", "attribute", "status"),
        ("run.status = '1'", "attribute", "status"),
        ("METRICS.x = 1", "metric", "x"),
    ],
    ids=[
        "metrics",
        "metric",
        "params",
        "param",
        "parameters",
        "parameter",
        "tags",
        "tag",
        "attributes",
        "attribute",
        "attr",
        "run",
        "upper-case-prefix",
    ],
)
def test_prefix_aliases(text: str, kind: str, key: str) -> None:
    comparison = one(text)
    assert (comparison.kind, comparison.key) == (kind, key)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("attributes.run_id = 'a'", "run_id"),
        ("attributes.id = 'a'", "run_id"),
        ("attributes.run_name = 'a'", "run_name"),
        ("attributes.`Run name` = 'a'", "run_name"),
        ("attributes.user_id = 'a'", "user_id"),
        ("attributes.user = 'a'", "user_id"),
        ("attributes.created > 5", "start_time"),
        ("attributes.Created > 5", "start_time"),
        ("attributes.experiment_id = '0'", "experiment_id"),
        ("attributes.parent_run_id = 'a'", "parent_run_id"),
        ("attributes.source = 'a'", "source"),
        ("attributes.end_time <= 5", "end_time"),
    ],
    ids=[
        "run_id",
        "id",
        "run_name",
        "run-name-spaced",
        "user_id",
        "user",
        "created",
        "Created",
        "experiment_id",
        "parent_run_id",
        "source",
        "end_time",
    ],
)
def test_attribute_aliases(text: str, key: str) -> None:
    assert one(text).key == key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status = 'RUNNING'", Comparison("attribute", "status", Op.EQ, "RUNNING")),
        ("run_name LIKE 'exp-%'", Comparison("attribute", "run_name", Op.LIKE, "exp-%")),
        ("start_time >= 1700000000000", Comparison("attribute", "start_time", Op.GE, 1.7e12)),
        ("created < 10", Comparison("attribute", "start_time", Op.LT, 10.0)),
        ("`Run Name` = 'x'", Comparison("attribute", "run_name", Op.EQ, "x")),
    ],
    ids=["status", "run_name", "start_time", "created", "backticked-alias"],
)
def test_bare_attributes(text: str, expected: Comparison) -> None:
    assert one(text) == expected


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("tags.mlflow.runName = 'a'", "tag", "mlflow.runName"),
        ("tags.\"mlflow.runName\" = 'a'", "tag", "mlflow.runName"),
        ("tags.`mlflow.runName` = 'a'", "tag", "mlflow.runName"),
        ("metrics.`my metric` > 1", "metric", "my metric"),
        ("params.\"a b\" = '1'", "param", "a b"),
        ("params.`model-type` = 'x'", "param", "model-type"),
        ('params."say ""hi""" = \'x\'', "param", 'say "hi"'),
        ("metrics.1st = 1", "metric", "1st"),
        ("metrics.val.`top 5`.acc = 1", "metric", "val.top 5.acc"),
        ("`metrics`.loss = 1", "metric", "loss"),
    ],
    ids=[
        "dotted",
        "dq-dotted",
        "bt-dotted",
        "bt-space",
        "dq-space",
        "bt-hyphen",
        "dq-escaped",
        "leading-digit",
        "mixed-parts",
        "bt-prefix",
    ],
)
def test_dotted_and_quoted_keys(text: str, kind: str, key: str) -> None:
    comparison = one(text)
    assert (comparison.kind, comparison.key) == (kind, key)


@pytest.mark.parametrize(
    ("text", "op", "value"),
    [
        ("metrics.x = 1", Op.EQ, 1.0),
        ("metrics.x != 1", Op.NE, 1.0),
        ("metrics.x < 1", Op.LT, 1.0),
        ("metrics.x <= 1", Op.LE, 1.0),
        ("metrics.x > 1", Op.GT, 1.0),
        ("metrics.x >= 1", Op.GE, 1.0),
        ("metrics.x>=1", Op.GE, 1.0),
        ("params.x = 'a'", Op.EQ, "a"),
        ("params.x != 'a'", Op.NE, "a"),
        ("params.x LIKE 'a%'", Op.LIKE, "a%"),
        ("params.x ILIKE 'A%'", Op.ILIKE, "A%"),
        ("params.x IN ('a', 'b')", Op.IN, ("a", "b")),
        ("params.x NOT IN ('a')", Op.NOT_IN, ("a",)),
    ],
    ids=[
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "no-spaces",
        "str-eq",
        "str-ne",
        "like",
        "ilike",
        "in",
        "not-in",
    ],
)
def test_every_operator(text: str, op: Op, value: object) -> None:
    comparison = one(text)
    assert (comparison.op, comparison.value) == (op, value)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("metrics.x = 3", 3.0),
        ("metrics.x = -3", -3.0),
        ("metrics.x = +3", 3.0),
        ("metrics.x = 0.25", 0.25),
        ("metrics.x = .5", 0.5),
        ("metrics.x = 2.", 2.0),
        ("metrics.x = 1e-3", 0.001),
        ("metrics.x = -2.5E+2", -250.0),
    ],
    ids=["int", "negative", "plus", "float", "leading-dot", "trailing-dot", "sci", "sci-upper"],
)
def test_numbers(text: str, value: float) -> None:
    result = one(text).value
    assert isinstance(result, float)
    assert result == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("params.x = 'plain'", "plain"),
        ('params.x = "double"', "double"),
        ("params.x = ''", ""),
        ("params.x = 'it''s'", "it's"),
        ("params.x = 'it\\'s'", "it's"),
        ('params.x = "say ""hi"""', 'say "hi"'),
        ('params.x = "say \\"hi\\""', 'say "hi"'),
        ("params.x = 'a\\\\b'", "a\\b"),
        ("params.x LIKE 'a\\_b'", "a\\_b"),
        ("params.x = 'and or = ( )'", "and or = ( )"),
        ("params.x = 'é ü'", "é ü"),
    ],
    ids=[
        "single",
        "double",
        "empty",
        "doubled-quote",
        "backslash-quote",
        "dq-doubled",
        "dq-backslash",
        "backslash-backslash",
        "other-backslash-kept",
        "keywords-inside",
        "unicode",
    ],
)
def test_strings(text: str, value: str) -> None:
    assert one(text).value == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("tags.t IN ('a')", ("a",)),
        ("tags.t IN ('a','b' , \"c\")", ("a", "b", "c")),
        ("attributes.run_id IN ('r1', 'r2')", ("r1", "r2")),
        ("status NOT IN ('FAILED', 'KILLED')", ("FAILED", "KILLED")),
        ("params.p in ('x, y', ')')", ("x, y", ")")),
    ],
    ids=["single", "mixed-quotes", "run-id", "not-in-bare-attr", "punctuation-inside"],
)
def test_in_lists(text: str, value: tuple[str, ...]) -> None:
    assert one(text).value == value


@pytest.mark.parametrize(
    "text",
    [
        "metrics.a > 1 AND params.b like 'x' And tags.c iLiKe 'y' and params.d In ('z') "
        "aNd params.e nOt iN ('w')",
        "metrics.a > 1 and params.b LIKE 'x' and tags.c ILIKE 'y' and params.d IN ('z') "
        "and params.e NOT IN ('w')",
    ],
    ids=["mixed-case", "lower-and-upper"],
)
def test_keywords_are_case_insensitive(text: str) -> None:
    assert [c.op for c in parse_filter(text)] == [Op.GT, Op.LIKE, Op.ILIKE, Op.IN, Op.NOT_IN]


def test_whitespace_and_newlines_are_ignored() -> None:
    parsed = parse_filter("\n  metrics.loss\t<\n0.3\n  and\tparams.depth='6'  ")
    assert parsed == parse_filter("metrics.loss < 0.3 and params.depth = '6'")


# -- errors ----------------------------------------------------------------------------------


def test_error_format_matches_documented_example() -> None:
    assert error_of("metrics.loss foo 3") == (
        "invalid filter: expected a comparison operator at column 14, found 'foo'\n"
        "  metrics.loss foo 3\n"
        "               ^"
    )


def test_error_carries_column_detail() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.loss foo 3")
    assert info.value.details == {"column": 14}
    assert info.value.code == "INVALID_INPUT"


@pytest.mark.parametrize(
    ("text", "column", "fragments"),
    [
        ("params.x = 'abc", 12, ["unterminated string"]),
        ('params.x = "abc', 12, ["unterminated string"]),
        ("metrics.`my metric > 1", 9, ["unterminated quoted key"]),
        ("metricz.loss > 1", 1, ["unknown prefix 'metricz'", "metrics., params., tags. or attributes."]),
        ("loss > 1", 1, ["unknown identifier 'loss'", "metrics., params., tags. or attributes."]),
        ("attributes.colour = 'red'", 1, ["unknown attribute 'colour'", "start_time", "status"]),
        ("metrics = 1", 8, ["expected '.' and a key after 'metrics'"]),
        ("metrics. = 1", 9, ["expected a key after 'metrics.'"]),
        ("metrics.loss foo 3", 14, ["expected a comparison operator", "found 'foo'"]),
        ("metrics.loss", 13, ["expected a comparison operator", "found end of input"]),
        ("params.x NOT 'a'", 14, ["expected IN after NOT", "found 'a'"]),
        ("metrics.loss <", 15, ["expected a number for metric 'loss'", "found end of input"]),
        ("params.x =", 11, ["expected a quoted string for param 'x'", "found end of input"]),
        ("params.x = and", 12, ["expected a quoted string", "found 'and'"]),
        (
            "metrics.loss < 0.3 params.x = '1'",
            20,
            ["expected 'and' or the end of the filter", "found 'params.x'"],
        ),
        ("metrics.loss < 0.3 )", 20, ["expected 'and'", "found ')'"]),
        ("metrics.loss < 0.3 and", 23, ["expected an identifier", "found end of input"]),
        ("and metrics.loss < 0.3", 1, ["expected an identifier", "found 'and'"]),
        ("metrics.a < 1 or metrics.b > 2", 15, ["'or' is not supported", "only 'and' is supported"]),
        ("metrics.a < 1 OR metrics.b > 2", 15, ["'or' is not supported"]),
        ("params.x IN ()", 14, ["empty IN list"]),
        ("params.x NOT IN ( )", 19, ["empty IN list"]),
        ("params.x IN 'a'", 13, ["expected '(' to open the IN list", "found 'a'"]),
        ("params.x IN ('a',)", 18, ["expected a quoted string", "found ')'"]),
        ("params.x IN ('a' 'b')", 18, ["expected ',' or ')' in the IN list", "found 'b'"]),
        ("params.x IN ('a'", 17, ["expected ',' or ')'", "found end of input"]),
        ("params.x IN (1, 2)", 14, ["takes a quoted string, not a number", "found 1", "quote it: '1'"]),
        (
            "params.depth = 6",
            16,
            ["param 'depth' takes a quoted string, not a number", "found 6", "quote it: params.depth = '6'"],
        ),
        ("tags.n != -1.5", 11, ["tag 'n' takes a quoted string", "quote it: tags.n != '-1.5'"]),
        ("status = 3", 10, ["attribute 'status' takes a quoted string", "quote it: status = '3'"]),
        (
            "metrics.loss < '0.3'",
            16,
            [
                "metric 'loss' takes a number, not a string",
                "found '0.3'",
                "drop the quotes: metrics.loss < 0.3",
            ],
        ),
        (
            "start_time > 'yesterday'",
            14,
            ["attribute 'start_time' takes a number", "numbers are written without quotes"],
        ),
        ("metrics.loss < inf", 16, ["expected a number for metric 'loss'", "found 'inf'"]),
        (
            "metrics.x LIKE '1'",
            11,
            ["operator LIKE is not allowed for metric 'x'", "use one of =, !=, <, <=, >, >="],
        ),
        ("metrics.x IN ('1')", 11, ["operator IN is not allowed for metric 'x'"]),
        ("end_time ILIKE '1'", 10, ["operator ILIKE is not allowed for attribute 'end_time'"]),
        (
            "params.x > 'a'",
            10,
            ["operator > is not allowed for param 'x'", "use one of =, !=, LIKE, ILIKE, IN, NOT IN"],
        ),
        ("tags.t <= 'a'", 8, ["operator <= is not allowed for tag 't'"]),
        ("params.model-type = 'x'", 13, ["unexpected character", "found '-'", "params.`model-type`"]),
        ("metrics.x > 1 # comment", 15, ["unexpected character", "found '#'"]),
    ],
    ids=[
        "unterminated-single",
        "unterminated-double",
        "unterminated-backtick",
        "unknown-prefix",
        "bare-non-attribute",
        "unknown-attribute",
        "prefix-without-key",
        "prefix-dot-without-key",
        "missing-operator",
        "missing-operator-at-end",
        "not-without-in",
        "missing-number",
        "missing-string",
        "keyword-as-value",
        "trailing-comparison",
        "trailing-paren",
        "dangling-and",
        "leading-and",
        "or",
        "OR",
        "empty-in",
        "empty-not-in",
        "in-without-parens",
        "in-trailing-comma",
        "in-missing-comma",
        "in-unclosed",
        "in-numbers",
        "param-number",
        "tag-number",
        "string-attr-number",
        "metric-string",
        "numeric-attr-string",
        "inf-not-a-number",
        "like-on-metric",
        "in-on-metric",
        "ilike-on-numeric-attr",
        "gt-on-param",
        "le-on-tag",
        "unquoted-hyphen",
        "unexpected-character",
    ],
)
def test_errors_point_at_the_offending_token(text: str, column: int, fragments: list[str]) -> None:
    message = error_of(text)
    assert message.startswith("invalid filter: ")
    assert f"at column {column}" in message
    assert caret_column(message) == column
    assert message.split("\n")[1] == f"  {text}"
    for fragment in fragments:
        assert fragment in message


def test_error_excerpt_of_multiline_filter_stays_aligned() -> None:
    message = error_of("metrics.a < 1\nand\tmetrics.b ~ 2")
    assert "at column 29" in message
    assert message.split("\n")[1] == "  metrics.a < 1 and metrics.b ~ 2"
    assert caret_column(message) == 29


def test_error_excerpt_of_long_filter_is_windowed() -> None:
    text = " and ".join(f"metrics.m{i} > {i}" for i in range(20)) + " bogus"
    message = error_of(text)
    excerpt_line = message.split("\n")[1]
    assert excerpt_line.startswith("  ...")
    assert len(excerpt_line) < 100
    assert excerpt_line[caret_column(message) + 1 :].startswith("bogus")


def test_non_string_filter_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="expected a string"):
        parse_filter(42)  # type: ignore[arg-type]


# -- order_by --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clause", "expected"),
    [
        ("metrics.loss DESC", OrderBy("metric", "loss", ascending=False)),
        ("metrics.loss desc", OrderBy("metric", "loss", ascending=False)),
        ("params.lr", OrderBy("param", "lr")),
        ("tags.team ASC", OrderBy("tag", "team")),
        ("tags.team aSc", OrderBy("tag", "team")),
        ("attributes.start_time", OrderBy("attribute", "start_time")),
        ("start_time DESC", OrderBy("attribute", "start_time", ascending=False)),
        ("created", OrderBy("attribute", "start_time")),
        ("run_name", OrderBy("attribute", "run_name")),
        ("metrics.`my metric` DESC", OrderBy("metric", "my metric", ascending=False)),
        ('tags."mlflow.runName"', OrderBy("tag", "mlflow.runName")),
        ("tags.mlflow.runName", OrderBy("tag", "mlflow.runName")),
        ("  metrics.loss   ", OrderBy("metric", "loss")),
    ],
    ids=[
        "desc",
        "desc-lower",
        "default-asc",
        "asc",
        "asc-mixed",
        "attribute",
        "bare-attribute",
        "alias",
        "run_name",
        "quoted-key",
        "dq-dotted-key",
        "dotted-key",
        "padded",
    ],
)
def test_order_by_clause(clause: str, expected: OrderBy) -> None:
    assert parse_order_by([clause]) == (expected,)


def test_order_by_several_clauses_keep_order() -> None:
    assert parse_order_by(["metrics.loss DESC", "start_time"]) == (
        OrderBy("metric", "loss", ascending=False),
        OrderBy("attribute", "start_time"),
    )


@pytest.mark.parametrize("clauses", [None, [], ()], ids=["none", "list", "tuple"])
def test_order_by_empty(clauses: list[str] | None) -> None:
    assert parse_order_by(clauses) == ()


def test_order_by_single_string_is_one_clause() -> None:
    assert parse_order_by("metrics.loss DESC") == (OrderBy("metric", "loss", ascending=False),)


@pytest.mark.parametrize(
    ("clause", "column", "fragment"),
    [
        ("metrics.loss sideways", 14, "expected ASC, DESC or the end of the clause"),
        ("metrics.loss DESC ASC", 19, "expected ASC, DESC or the end of the clause"),
        ("metrics.loss, params.lr", 13, "give each clause as a separate list item"),
        ("", 1, "expected an identifier"),
        ("DESC", 1, "expected an identifier"),
        ("loss DESC", 1, "unknown identifier 'loss'"),
        ("metricz.loss", 1, "unknown prefix 'metricz'"),
        ("attributes.colour", 1, "unknown attribute 'colour'"),
        ("metrics.`loss", 9, "unterminated quoted key"),
        ("metrics.loss = 1", 14, "expected ASC, DESC or the end of the clause"),
    ],
    ids=[
        "bad-direction",
        "two-directions",
        "comma-joined",
        "empty",
        "direction-only",
        "bare-unknown",
        "unknown-prefix",
        "unknown-attribute",
        "unterminated",
        "filter-not-clause",
    ],
)
def test_order_by_errors_name_the_clause(clause: str, column: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(["metrics.ok", clause])
    message = str(info.value)
    assert message.startswith(f"invalid order_by clause {clause!r}: ")
    assert f"at column {column}" in message
    assert caret_column(message) == column
    assert fragment in message


def test_order_by_non_string_clause() -> None:
    with pytest.raises(InvalidInput, match="expected a string"):
        parse_order_by([3])  # type: ignore[list-item]


@pytest.mark.parametrize(("text", "op"), [("tags.team IS NULL", Op.IS_NULL), ("params.lr is not null", Op.IS_NOT_NULL),
                                           ("attributes.end_time IS NULL", Op.IS_NULL)])
def test_is_null_parses_without_a_value(text: str, op: Op) -> None:
    (cmp,) = parse_filter(text)
    assert cmp.op is op
    assert cmp.value is None


def test_is_without_null_names_the_problem() -> None:
    with pytest.raises(InvalidInput, match="expected NULL or NOT NULL after IS"):
        parse_filter("tags.team IS 'x'")
