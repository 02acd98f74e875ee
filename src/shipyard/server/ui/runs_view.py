"""The runs table of an experiment: the view a URL describes, and the columns of one page.

The view (filter, sort, columns, page size, page token, lifecycle) lives entirely in the query
string, so a link shares exactly what its author saw. Page tokens only lead forward, so the view
also carries the tokens of the pages before this one (``back``, the latest :data:`MAX_BACK`):
"Previous" pops one, "Next" pushes the current one. The filter and the sort are parsed with the
SDK's own grammar (:mod:`shipyard.filters`); a parse error is kept on the view so the page can show
the parser's message under the filter box instead of a table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from shipyard.entities import OrderBy, Run, RunFilter, RunQuery, ViewType
from shipyard.errors import InvalidInput
from shipyard.filters import parse_filter, parse_order_by

PAGE_SIZES = (25, 50, 100, 250, 500)
DEFAULT_PAGE_SIZE = 50
DEFAULT_ORDER = "attributes.start_time DESC"
# System tags (git, environment, source) are shown on the run page, not offered as columns.
HIDDEN_TAG_PREFIXES = ("shipyard.", "mlflow.")
DEFAULT_MAX_COLUMNS = 8  # per kind (params, metrics), when the URL chose none
MAX_BACK = 50  # pages a "Previous" link can step back through (the URL holds their tokens)
FIRST_PAGE = "-"  # the first page, in the back stack (it has no token)
_WORD = re.compile(r"\w+")
KIND_PREFIX = {"param": "params", "metric": "metrics", "tag": "tags"}


@dataclass(frozen=True)
class Column:
    kind: str  # param | metric | tag
    key: str

    @property
    def name(self) -> str:
        """The column as the filter grammar spells it (``metrics.acc``; a key with a dot or space quoted)."""
        plain = all(_WORD.fullmatch(part) for part in self.key.split("."))
        return f"{KIND_PREFIX[self.kind]}.{self.key if plain else '`' + self.key + '`'}"

    @classmethod
    def parse(cls, text: str) -> Column:
        prefix, _, key = text.partition(".")
        kinds = {v: k for k, v in KIND_PREFIX.items()}
        if prefix not in kinds or not key:
            raise InvalidInput(f"column {text[:100]!r} is not params.<key>, metrics.<key> or tags.<key>")
        return cls(kinds[prefix], key.strip("`"))


@dataclass(frozen=True)
class RunsView:
    """One view of an experiment's runs, read from (and written back to) the query string."""

    filter_text: str = ""
    order_text: str = DEFAULT_ORDER
    columns: tuple[Column, ...] | None = None  # None: the default choice from the page's runs
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str | None = None
    lifecycle: ViewType = ViewType.ACTIVE_ONLY
    filter_error: str | None = None
    order_error: str | None = None
    run_filter: RunFilter = field(default_factory=RunFilter)
    order_by: tuple[OrderBy, ...] = ()
    back: tuple[str, ...] = ()  # the tokens of the pages before this one, oldest first

    @classmethod
    def from_query(cls, params: dict[str, list[str]]) -> RunsView:
        def first(name: str, default: str = "") -> str:
            values = params.get(name) or [default]
            return values[0]

        filter_text = first("filter").strip()
        order_text = first("order", DEFAULT_ORDER).strip() or DEFAULT_ORDER
        size_text = first("size", str(DEFAULT_PAGE_SIZE))
        if not size_text.isdigit() or int(size_text) not in PAGE_SIZES:
            raise InvalidInput(f"page size {size_text[:20]!r} is not one of {', '.join(map(str, PAGE_SIZES))}")
        try:
            lifecycle = ViewType(first("lifecycle", ViewType.ACTIVE_ONLY.value))
        except ValueError:
            raise InvalidInput("lifecycle must be one of " + ", ".join(v.value for v in ViewType)) from None
        columns = None
        if first("cols_set") or params.get("cols"):
            columns = tuple(dict.fromkeys(Column.parse(c) for c in params.get("cols", []) if c))
        back = tuple(t for t in params.get("back", []) if t)[-MAX_BACK:]
        view = cls(filter_text, order_text, columns, int(size_text), first("page_token") or None, lifecycle,
                   back=back if first("page_token") else ())
        try:
            view = replace(view, run_filter=parse_filter(filter_text))
        except InvalidInput as err:
            view = replace(view, filter_error=err.message)
        try:
            view = replace(view, order_by=tuple(parse_order_by([order_text])))
        except InvalidInput as err:
            view = replace(view, order_error=err.message)
        return view

    @property
    def error(self) -> str | None:
        return self.filter_error or self.order_error

    def query(self, experiment_id: str) -> RunQuery:
        return RunQuery((experiment_id,), self.run_filter, self.lifecycle, self.order_by, self.page_size,
                        self.page_token)

    def url(self, experiment_id: str, **changes: object) -> str:
        """This view's URL with ``changes`` (``page_token=None`` drops the token)."""
        view = replace(self, **changes)  # type: ignore[arg-type]
        pairs: list[tuple[str, str]] = []
        if view.filter_text:
            pairs.append(("filter", view.filter_text))
        if view.order_text != DEFAULT_ORDER:
            pairs.append(("order", view.order_text))
        if view.columns is not None:
            pairs.append(("cols_set", "1"))
            pairs.extend(("cols", c.name) for c in view.columns)
        if view.page_size != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(view.page_size)))
        if view.lifecycle is not ViewType.ACTIVE_ONLY:
            pairs.append(("lifecycle", view.lifecycle.value))
        if view.page_token:
            pairs.extend(("back", token) for token in view.back)
            pairs.append(("page_token", view.page_token))
        query = urlencode(pairs)
        return f"/ui/experiments/{experiment_id}" + (f"?{query}" if query else "")

    def next_url(self, experiment_id: str, next_token: str) -> str:
        """The next page, remembering this one for its "Previous" link."""
        back = (*self.back, self.page_token or FIRST_PAGE)[-MAX_BACK:]
        return self.url(experiment_id, page_token=next_token, back=back)

    def previous_url(self, experiment_id: str) -> str | None:
        """The page before this one (``None`` on the first page); the first page when the
        stack of earlier pages is empty (a link from deeper than :data:`MAX_BACK` pages)."""
        if not self.page_token:
            return None
        if not self.back or self.back[-1] == FIRST_PAGE:
            return self.url(experiment_id, page_token=None, back=())
        return self.url(experiment_id, page_token=self.back[-1], back=self.back[:-1])

    def sort_state(self, kind: str, key: str) -> str | None:
        """``"asc"``/``"desc"`` when the table is sorted by this column first, else ``None``."""
        if self.order_by and (self.order_by[0].kind, self.order_by[0].key) == (kind, key):
            return "asc" if self.order_by[0].ascending else "desc"
        return None

    def sort_url(self, experiment_id: str, kind: str, key: str, name: str) -> str:
        """Sort by the column (descending first; again: ascending); back to the first page."""
        order = f"{name} ASC" if self.sort_state(kind, key) == "desc" else f"{name} DESC"
        return self.url(experiment_id, order_text=order, page_token=None, back=())


def available_columns(runs: Sequence[Run], chosen: Sequence[Column] = ()) -> list[Column]:
    """Every param, metric and (non-system) tag key of ``runs``, plus the chosen columns,
    metrics first, each kind sorted by key."""
    found: set[Column] = set(chosen)
    for run in runs:
        found.update(Column("metric", k) for k in run.data.latest_metrics)
        found.update(Column("param", k) for k in run.data.params)
        found.update(Column("tag", k) for k in run.data.tags if not k.startswith(HIDDEN_TAG_PREFIXES))
    order = {"metric": 0, "param": 1, "tag": 2}
    return sorted(found, key=lambda c: (order[c.kind], c.key))


def shown_columns(view: RunsView, available: Sequence[Column]) -> list[Column]:
    """The chosen columns, or by default the first metrics and params of the page."""
    if view.columns is not None:
        return list(view.columns)
    metrics = [c for c in available if c.kind == "metric"][:DEFAULT_MAX_COLUMNS]
    params = [c for c in available if c.kind == "param"][:DEFAULT_MAX_COLUMNS]
    return metrics + params


def cell(run: Run, column: Column) -> str | float | None:
    if column.kind == "metric":
        metric = run.data.latest_metrics.get(column.key)
        return None if metric is None else metric.value
    if column.kind == "param":
        return run.data.params.get(column.key)
    return run.data.tags.get(column.key)
