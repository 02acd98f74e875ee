"""Typed search requests: what the filter grammar is parsed into, and what stores compile."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from shipyard.entities.run import ViewType
from shipyard.errors import InvalidInput

T = TypeVar("T")

EntityKind = Literal["metric", "param", "tag", "attribute"]


class Op(enum.StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    LIKE = "LIKE"
    ILIKE = "ILIKE"
    IN = "IN"
    NOT_IN = "NOT IN"
    IS_NULL = "IS NULL"
    IS_NOT_NULL = "IS NOT NULL"


# Run attributes that can be filtered and ordered on, with the type of their values.
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
STRING_ATTRIBUTES = frozenset({"run_id", "run_name", "status", "user_id", "source", "experiment_id",
                               "parent_run_id"})


@dataclass(frozen=True, slots=True)
class Grammar:
    """What one kind of search may filter on: its entity kinds and attributes. Runs take all
    four kinds; registered models and model versions only tags and attributes."""

    subject: str
    kinds: frozenset[str]
    numeric_attributes: frozenset[str]
    string_attributes: frozenset[str]
    aliases: tuple[tuple[str, str], ...] = ()

    @property
    def attributes(self) -> frozenset[str]:
        return self.numeric_attributes | self.string_attributes

    def is_numeric(self, kind: str, key: str) -> bool:
        return kind == "metric" or (kind == "attribute" and key in self.numeric_attributes)


RUN_GRAMMAR = Grammar("run", frozenset({"metric", "param", "tag", "attribute"}), NUMERIC_ATTRIBUTES,
                      STRING_ATTRIBUTES,
                      (("id", "run_id"), ("user", "user_id"), ("created", "start_time"), ("run name", "run_name")))
EXPERIMENT_GRAMMAR = Grammar("experiment", frozenset({"tag", "attribute"}),
                             frozenset({"creation_time", "last_update_time"}), frozenset({"name", "experiment_id"}),
                             (("id", "experiment_id"),))
# MLflow spells the registry's times creation_timestamp / last_updated_timestamp.
_REGISTRY_ALIASES = (("creation_timestamp", "creation_time"), ("last_updated_timestamp", "last_update_time"))
MODEL_GRAMMAR = Grammar("registered model", frozenset({"tag", "attribute"}),
                        frozenset({"creation_time", "last_update_time"}), frozenset({"name", "description"}),
                        _REGISTRY_ALIASES)
VERSION_GRAMMAR = Grammar("model version", frozenset({"tag", "attribute"}),
                          frozenset({"version", "creation_time", "last_update_time"}),
                          frozenset({"name", "run_id", "status", "source"}),
                          (*_REGISTRY_ALIASES, ("version_number", "version"), ("source_path", "source")))
# MLflow spells the times creation_timestamp_ms / last_updated_timestamp_ms; both spellings work.
LOGGED_MODEL_GRAMMAR = Grammar("logged model", frozenset({"tag", "param", "attribute"}),
                               frozenset({"creation_time", "last_update_time"}),
                               frozenset({"name", "model_id", "status", "source_run_id", "model_type",
                                          "experiment_id"}),
                               (("creation_timestamp_ms", "creation_time"),
                                ("last_updated_timestamp_ms", "last_update_time"),
                                ("creation_timestamp", "creation_time")))


@dataclass(frozen=True, slots=True)
class Comparison:
    """``<kind>.<key> <op> <value>``; ``value`` is a float for metrics and numeric attributes,
    a string otherwise, a tuple of strings for IN / NOT IN, and ``None`` for IS [NOT] NULL
    (whether the key or attribute has a value at all)."""

    kind: EntityKind
    key: str
    op: Op
    value: float | str | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class RunFilter:
    """A conjunction (``and``) of comparisons; empty matches every run."""

    comparisons: tuple[Comparison, ...] = ()

    def __iter__(self) -> Iterator[Comparison]:
        return iter(self.comparisons)


@dataclass(frozen=True, slots=True)
class OrderBy:
    kind: EntityKind
    key: str
    ascending: bool = True


# The most runs one page of a search holds (MLflow's bound too): a page is built in memory whole.
MAX_RUN_RESULTS = 50_000


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Everything a run search needs, already validated. Raises ``InvalidInput`` for a
    ``max_results`` outside 1 to :data:`MAX_RUN_RESULTS`, whichever edge built the query."""

    experiment_ids: tuple[str, ...]
    filter: RunFilter = field(default_factory=RunFilter)
    view: ViewType = ViewType.ACTIVE_ONLY
    order_by: tuple[OrderBy, ...] = ()
    max_results: int = 1000
    page_token: str | None = None

    def __post_init__(self) -> None:
        size = self.max_results
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_RUN_RESULTS:
            raise InvalidInput(f"max_results must be a whole number from 1 to {MAX_RUN_RESULTS}, got {size!r}")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the token for the next (``None`` on the last page)."""

    items: Sequence[T]
    next_page_token: str | None = None
