"""MLflow's run-search filter and order-by grammar, parsed once into typed records.

The grammar (keywords are case-insensitive)::

    filter     := comparison ( AND comparison )*
    comparison := identifier operator value
    identifier := [ prefix "." ] key            -- the bare form is for attributes only
    prefix     := metrics | metric | params | param | parameters | parameter
                | tags | tag | attributes | attribute | attr | run
    key        := part ( "." part )*            -- part: word | `backticked` | "double-quoted"
    operator   := = | != | < | <= | > | >= | LIKE | ILIKE | IN | NOT IN | IS [ NOT ] NULL
    value      := number | string | "(" string ( "," string )* ")"   -- none after IS [NOT] NULL
    order_by   := identifier [ ASC | DESC ]

Metrics and numeric attributes compare with ``= != < <= > >=`` against a number; params, tags
and string attributes compare with ``= != LIKE ILIKE`` against a quoted string, or with
``IN`` / ``NOT IN`` against a parenthesised list of quoted strings; any of them can be tested
with ``IS NULL`` / ``IS NOT NULL`` (has no value / has one). Inside a string the quote
character is escaped by doubling it or with a backslash (``'it''s'``, ``'it\\'s'``), and
``\\\\`` is one backslash; any other backslash is kept as is (so LIKE escapes pass through).

Every malformed input raises :class:`~shipyard.errors.InvalidInput` whose message gives the
1-based column of the offending token and a caret excerpt pointing at it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from shipyard.entities.search import (
    RUN_GRAMMAR,
    Comparison,
    EntityKind,
    Grammar,
    Op,
    OrderBy,
    RunFilter,
)
from shipyard.errors import InvalidInput

__all__ = ["check_comparison", "parse_filter", "parse_order_by"]

_PREFIXES: dict[str, EntityKind] = {
    "metrics": "metric", "metric": "metric",
    "params": "param", "param": "param", "parameters": "param", "parameter": "param",
    "tags": "tag", "tag": "tag",
    "attributes": "attribute", "attribute": "attribute", "attr": "attribute", "run": "attribute",
}  # fmt: skip
_PREFIX_NAMES = {"metric": "metrics.", "param": "params.", "tag": "tags.", "attribute": "attributes."}
_NUMERIC_OPS = (Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE)
_STRING_OPS = (Op.EQ, Op.NE, Op.LIKE, Op.ILIKE, Op.IN, Op.NOT_IN)
_SYMBOL_OPS = {op.value: op for op in _NUMERIC_OPS}
_KEYWORD_OPS = {"like": Op.LIKE, "ilike": Op.ILIKE, "in": Op.IN}
_KEYWORDS = frozenset({"and", "or", "not", "like", "ilike", "in", "is", "null", "asc", "desc"})
_NULL_OPS = (Op.IS_NULL, Op.IS_NOT_NULL)

_DQ = r'"(?:[^"\\]|\\[\s\S]|"")*"'
_SQ = r"'(?:[^'\\]|\\[\s\S]|'')*'"
_PART = rf"\w+|`[^`]*`|{_DQ}"
_PART_RE = re.compile(_PART)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_TOKEN_RE = re.compile(
    rf"""
      (?P<ws>\s+)
    | (?P<ident>(?:[^\W\d]\w*|`[^`]*`)(?:\.(?:{_PART}))*\.?)
    | (?P<string>{_SQ}|{_DQ})
    | (?P<number>{_NUMBER})
    | (?P<op><=|>=|!=|[=<>])
    | (?P<punct>[(),])
    """,
    re.VERBOSE,
)
_UNESCAPE_RE = {q: re.compile(rf"\\([\\{q}])|{q}{q}") for q in "'\""}
_CONTROL_RE = re.compile(r"[\t\n\r\f\v]")
_WINDOW = 80  # widest excerpt shown under an error message


class _Token(NamedTuple):
    kind: str  # ident | string | number | op | punct | end
    text: str
    pos: int  # 0-based offset into the parsed text


def _unquote(raw: str) -> str:
    """The content of a quoted string or key part, unescaped; bare words are returned as is."""
    quote = raw[:1]
    if quote == "`":
        return raw[1:-1]
    if quote in _UNESCAPE_RE:
        return _UNESCAPE_RE[quote].sub(lambda m: m.group(1) or quote, raw[1:-1])
    return raw


def _found(tok: _Token) -> str:
    if tok.kind == "end":
        return "end of input"
    return tok.text if tok.kind in ("string", "number") else f"'{tok.text}'"


def _excerpt(text: str, pos: int) -> str:
    """Two lines: the text (windowed if long) and a caret under offset ``pos``."""
    flat = _CONTROL_RE.sub(" ", text)
    start = max(0, min(pos - _WINDOW // 2, len(flat) - _WINDOW))
    lead = "..." if start else ""
    trail = "..." if start + _WINDOW < len(flat) else ""
    caret = " " * (len(lead) + pos - start)
    return f"  {lead}{flat[start : start + _WINDOW]}{trail}\n  {caret}^"


def _describe(kind: EntityKind, key: str) -> str:
    return f"{kind} '{key}'"


class _Parser:
    """Recursive descent over the tokens of one filter string or one order_by clause."""

    def __init__(self, text: str, label: str, grammar: Grammar) -> None:
        self.text = text
        self.label = label
        self.grammar = grammar
        self.tokens = self._tokenize()
        self.index = 0

    # -- plumbing ---------------------------------------------------------------------------

    def error(self, pos: int, what: str, found: str | None = None, hint: str | None = None) -> InvalidInput:
        message = f"{self.label}: {what} at column {pos + 1}"
        if found is not None:
            message += f", found {found}"
        if hint is not None:
            message += f"; {hint}"
        return InvalidInput(f"{message}\n{_excerpt(self.text, pos)}", column=pos + 1)

    def _tokenize(self) -> list[_Token]:
        tokens: list[_Token] = []
        pos = 0
        while pos < len(self.text):
            match = _TOKEN_RE.match(self.text, pos)
            if match is None:
                char = self.text[pos]
                if char in "'\"`":
                    what = "unterminated quoted key" if char == "`" else "unterminated string"
                    raise self.error(pos, what, hint=f"close it with a matching {char}")
                hint = None
                if tokens and tokens[-1].kind == "ident" and tokens[-1].pos + len(tokens[-1].text) == pos:
                    hint = "quote keys with special characters, e.g. params.`model-type`"
                raise self.error(pos, "unexpected character", found=repr(char), hint=hint)
            kind = match.lastgroup or ""
            if kind != "ws":
                tokens.append(_Token(kind, match.group(), pos))
            pos = match.end()
        tokens.append(_Token("end", "", len(self.text)))
        return tokens

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        tok = self.tokens[self.index]
        if tok.kind != "end":
            self.index += 1
        return tok

    @staticmethod
    def is_word(tok: _Token, *words: str) -> bool:
        return tok.kind == "ident" and tok.text.lower() in words

    # -- grammar rules ----------------------------------------------------------------------

    def filter(self) -> RunFilter:
        comparisons = [self.comparison()]
        while (tok := self.advance()).kind != "end":
            if self.is_word(tok, "and"):
                comparisons.append(self.comparison())
            elif self.is_word(tok, "or"):
                hint = "only 'and' is supported to join comparisons"
                raise self.error(tok.pos, "'or' is not supported", hint=hint)
            else:
                raise self.error(tok.pos, "expected 'and' or the end of the filter", found=_found(tok))
        return RunFilter(tuple(comparisons))

    def order_by(self) -> OrderBy:
        kind, key = self.identifier()
        tok = self.advance()
        ascending = True
        if self.is_word(tok, "asc", "desc"):
            ascending = tok.text.lower() == "asc"
            tok = self.advance()
        if tok.kind != "end":
            hint = "give each clause as a separate list item" if tok.text == "," else None
            raise self.error(
                tok.pos, "expected ASC, DESC or the end of the clause", found=_found(tok), hint=hint
            )
        return OrderBy(kind, key, ascending)

    def comparison(self) -> Comparison:
        ident = self.peek()
        kind, key = self.identifier()
        op_tok = self.peek()
        op = self.operator()
        if op in _NULL_OPS:
            return Comparison(kind, key, op, None)
        numeric = self.grammar.is_numeric(kind, key)
        allowed = _NUMERIC_OPS if numeric else _STRING_OPS
        if op not in allowed:
            raise self.error(
                op_tok.pos,
                f"operator {op.value} is not allowed for {_describe(kind, key)}",
                hint="use one of " + ", ".join(o.value for o in allowed),
            )
        example = f"{ident.text} {op.value} "
        value: float | str | tuple[str, ...]
        if numeric:
            value = self.number(kind, key, example)
        elif op in (Op.IN, Op.NOT_IN):
            value = self.string_list(kind, key)
        else:
            value = self.string(kind, key, example)
        return Comparison(kind, key, op, value)

    def identifier(self) -> tuple[EntityKind, str]:
        tok = self.advance()
        if tok.kind != "ident" or tok.text.lower() in _KEYWORDS:
            raise self.error(
                tok.pos, "expected an identifier such as metrics.loss or params.lr", found=_found(tok)
            )
        end = tok.pos + len(tok.text)
        if tok.text.endswith("."):
            raise self.error(end, f"expected a key after '{tok.text}'", found=_found(self.peek()))
        head, *rest = (_unquote(m.group()) for m in _PART_RE.finditer(tok.text))
        if not rest:
            if head.lower() in _PREFIXES:
                raise self.error(end, f"expected '.' and a key after '{head}'", found=_found(self.peek()))
            return "attribute", self.attribute(head, tok, bare=True)
        kind = _PREFIXES.get(head.lower())
        if kind is None or kind not in self.grammar.kinds:
            what = f"unknown prefix '{head}'" if kind is None else \
                f"a {self.grammar.subject} search cannot filter on {_PREFIX_NAMES[kind]}"
            raise self.error(tok.pos, what, hint=f"use {_prefix_hint(self.grammar)}")
        key = ".".join(rest)
        if kind == "attribute":
            return kind, self.attribute(key, tok)
        if not key:
            raise self.error(tok.pos, f"empty key in '{tok.text}'")
        return kind, key

    def attribute(self, key: str, tok: _Token, *, bare: bool = False) -> str:
        name = dict(self.grammar.aliases).get(key.lower(), key.lower())
        if name in self.grammar.attributes:
            return name
        valid = ", ".join(sorted(self.grammar.attributes))
        if bare:
            raise self.error(
                tok.pos,
                f"unknown identifier '{key}'",
                hint=f"prefix it with {_prefix_hint(self.grammar)} (bare names are only allowed for attributes: "
                     f"{valid})",
            )
        raise self.error(tok.pos, f"unknown attribute '{key}'", hint=f"valid attributes are {valid}")

    def operator(self) -> Op:
        tok = self.advance()
        if tok.kind == "op":
            return _SYMBOL_OPS[tok.text]
        if tok.kind == "ident" and tok.text.lower() in _KEYWORD_OPS:
            return _KEYWORD_OPS[tok.text.lower()]
        if self.is_word(tok, "not"):
            nxt = self.advance()
            if self.is_word(nxt, "in"):
                return Op.NOT_IN
            raise self.error(nxt.pos, "expected IN after NOT", found=_found(nxt))
        if self.is_word(tok, "is"):
            nxt = self.advance()
            negated = self.is_word(nxt, "not")
            if negated:
                nxt = self.advance()
            if self.is_word(nxt, "null"):
                return Op.IS_NOT_NULL if negated else Op.IS_NULL
            raise self.error(nxt.pos, "expected NULL or NOT NULL after IS", found=_found(nxt))
        raise self.error(tok.pos, "expected a comparison operator", found=_found(tok))

    def number(self, kind: EntityKind, key: str, example: str) -> float:
        tok = self.advance()
        if tok.kind == "number":
            return float(tok.text)
        if tok.kind != "string":
            raise self.error(tok.pos, f"expected a number for {_describe(kind, key)}", found=_found(tok))
        content = _unquote(tok.text).strip()
        hint = (
            f"drop the quotes: {example}{content}"
            if _NUMBER_RE.fullmatch(content)
            else "numbers are written without quotes"
        )
        raise self.error(
            tok.pos, f"{_describe(kind, key)} takes a number, not a string", found=tok.text, hint=hint
        )

    def string(self, kind: EntityKind, key: str, example: str) -> str:
        tok = self.advance()
        if tok.kind == "string":
            return _unquote(tok.text)
        if tok.kind == "number":
            raise self.error(
                tok.pos,
                f"{_describe(kind, key)} takes a quoted string, not a number",
                found=tok.text,
                hint=f"quote it: {example}'{tok.text}'",
            )
        raise self.error(tok.pos, f"expected a quoted string for {_describe(kind, key)}", found=_found(tok))

    def string_list(self, kind: EntityKind, key: str) -> tuple[str, ...]:
        tok = self.advance()
        if tok.kind != "punct" or tok.text != "(":
            raise self.error(
                tok.pos, "expected '(' to open the IN list", found=_found(tok), hint="e.g. IN ('a', 'b')"
            )
        if (close := self.peek()).text == ")" and close.kind == "punct":
            raise self.error(close.pos, "empty IN list", hint="give at least one quoted string, e.g. ('a')")
        values = [self.string(kind, key, "")]
        while (tok := self.advance()).text != ")" or tok.kind != "punct":
            if tok.kind != "punct" or tok.text != ",":
                raise self.error(tok.pos, "expected ',' or ')' in the IN list", found=_found(tok))
            values.append(self.string(kind, key, ""))
        return tuple(values)


def _prefix_hint(grammar: Grammar) -> str:
    names = [name for kind, name in _PREFIX_NAMES.items() if kind in grammar.kinds]
    return ", ".join(names[:-1]) + " or " + names[-1]


def parse_filter(text: str | None, grammar: Grammar = RUN_GRAMMAR) -> RunFilter:
    """Parse an MLflow search filter such as ``metrics.loss < 0.3 and params.depth = '6'``.

    ``None``, an empty or an all-whitespace string give ``RunFilter()``, which matches every
    run. Raises :class:`InvalidInput` naming the column of the offending token.
    """
    if text is None:
        return RunFilter()
    if not isinstance(text, str):
        raise InvalidInput(f"invalid filter: expected a string, got {type(text).__name__}")
    if not text.strip():
        return RunFilter()
    return _Parser(text, "invalid filter", grammar).filter()


def parse_order_by(clauses: Sequence[str] | None, grammar: Grammar = RUN_GRAMMAR) -> tuple[OrderBy, ...]:
    """Parse order_by clauses such as ``["metrics.loss DESC", "start_time"]`` (default ASC).

    ``None`` gives ``()``; a single string is taken as one clause. Raises
    :class:`InvalidInput` naming the offending clause and column.
    """
    if clauses is None:
        return ()
    if isinstance(clauses, str):
        clauses = [clauses]
    result: list[OrderBy] = []
    for clause in clauses:
        if not isinstance(clause, str):
            raise InvalidInput(f"invalid order_by clause {clause!r}: expected a string")
        result.append(_Parser(clause, f"invalid order_by clause {clause!r}", grammar).order_by())
    return tuple(result)


def check_comparison(kind: str, key: str, op: str, value: object, grammar: Grammar = RUN_GRAMMAR) -> Comparison:
    """Build a :class:`Comparison` from structured parts (the REST API's JSON filter) under
    the same rules as the text grammar: known kind, operator allowed for it, value of the
    right type. Raises ``InvalidInput`` naming the comparison."""
    where = f"{kind}.{key} {op}"
    if kind not in grammar.kinds:
        raise InvalidInput(f"invalid filter {where}: a {grammar.subject} search takes kind "
                           + " or ".join(k for k in ("metric", "param", "tag", "attribute") if k in grammar.kinds))
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"invalid filter {where}: the key must be a non-empty string")
    if kind == "attribute":
        key = dict(grammar.aliases).get(key.lower(), key.lower())
        if key not in grammar.attributes:
            raise InvalidInput(f"invalid filter {where}: unknown attribute; valid attributes are "
                               + ", ".join(sorted(grammar.attributes)))
    try:
        operator = Op(op.upper() if isinstance(op, str) else op)
    except ValueError:
        raise InvalidInput(f"invalid filter {where}: unknown operator") from None
    if operator in _NULL_OPS:
        if value is not None:
            raise InvalidInput(f"invalid filter {where}: IS [NOT] NULL takes no value (send null)")
        return Comparison(kind, key, operator, None)  # type: ignore[arg-type]
    numeric = grammar.is_numeric(kind, key)
    allowed = _NUMERIC_OPS if numeric else _STRING_OPS
    if operator not in allowed:
        raise InvalidInput(f"invalid filter {where}: operator not allowed for {_describe(kind, key)}; "  # type: ignore[arg-type]
                           "use one of " + ", ".join(o.value for o in allowed))
    if numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"invalid filter {where}: the value must be a number, got {value!r}")
        return Comparison(kind, key, operator, float(value))  # type: ignore[arg-type]
    if operator in (Op.IN, Op.NOT_IN):
        if not isinstance(value, list | tuple) or not value or not all(isinstance(v, str) for v in value):
            raise InvalidInput(f"invalid filter {where}: the value must be a non-empty list of strings")
        return Comparison(kind, key, operator, tuple(value))  # type: ignore[arg-type]
    if not isinstance(value, str):
        raise InvalidInput(f"invalid filter {where}: the value must be a string, got {value!r}")
    return Comparison(kind, key, operator, value)  # type: ignore[arg-type]
