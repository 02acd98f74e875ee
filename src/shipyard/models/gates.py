"""Quality gates: may this model version take that alias?

A gate is either a requirement (``metrics.f1 >= 0.85``, in the search filter grammar) checked
against the version's metrics, or a comparison with the *champion* (the version that holds the
alias now): the candidate may be worse than the champion by at most ``max_regression``
(relative, 0.01 = 1%) on each compared metric. A version's metrics are its source run's latest
values, overridden by those of its latest evaluation run (``shipyard models evaluate``).
Whether higher or lower is better comes from the requirement's operator (``>=`` means higher),
else from the metric's name (losses and errors are better lower).

Domain code: every function takes the :class:`~shipyard.models.registry.RegistryService` of the
acting principal (who is recorded when :func:`promote` moves the alias), or a ``Client``, the
SDK's spelling, whose registry is used (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shipyard.entities import RUN_GRAMMAR, Comparison, ModelVersion, Op
from shipyard.errors import InvalidInput, NotFound
from shipyard.filters import parse_filter
from shipyard.models.evaluate import EVALUATION_RUN_TAG
from shipyard.models.registry import HasRegistry, RegistryService, as_registry
from shipyard.tracking import validation as rules

__all__ = ["GateResult", "PromotionResult", "check_requirement", "compare_with_champion", "evaluate_gates",
           "lower_is_better", "parse_requirements", "promote", "version_metrics"]

_LOWER_IS_BETTER = re.compile(r"(loss|error|mae|mse|rmse|mape|latency|_time$)", re.IGNORECASE)
_CHECK = {Op.EQ: float.__eq__, Op.NE: float.__ne__, Op.LT: float.__lt__, Op.LE: float.__le__,
          Op.GT: float.__gt__, Op.GE: float.__ge__}


@dataclass(frozen=True, slots=True)
class GateResult:
    """One line of the promotion table."""

    gate: str
    metric: str | None
    candidate: float | None
    reference: float | None
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True)
class PromotionResult:
    """What ``promote`` decided; ``promoted`` is True only when every gate passed and the alias
    was moved (never in a dry run)."""

    name: str
    version: int
    alias: str
    champion: int | None
    gates: tuple[GateResult, ...] = field(default_factory=tuple)
    promoted: bool = False

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    @property
    def failures(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]


def parse_requirements(expressions: Sequence[str]) -> list[Comparison]:
    """``["metrics.f1 >= 0.85", ...]`` (an expression may also join several with ``and``)."""
    out: list[Comparison] = []
    for text in expressions:
        for cmp in parse_filter(text, RUN_GRAMMAR):
            if cmp.kind != "metric" or cmp.op not in _CHECK:
                raise InvalidInput(f"requirement {text!r}: gates compare metrics with a number, e.g. "
                                   "'metrics.f1 >= 0.85'")
            out.append(cmp)
    return out


def version_metrics(registry: RegistryService | HasRegistry, version: ModelVersion) -> dict[str, float]:
    """The version's source-run metrics, overridden by its latest evaluation run's."""
    store = as_registry(registry).store
    metrics: dict[str, float] = {}
    for run_id in (version.run_id, version.tags.get(EVALUATION_RUN_TAG)):
        if run_id:
            try:
                metrics.update(store.runs.get(run_id).data.metrics)
            except NotFound:
                continue  # a deleted evaluation run no longer counts
    return metrics


def lower_is_better(metric: str) -> bool:
    return bool(_LOWER_IS_BETTER.search(metric))


def check_requirement(cmp: Comparison, metrics: dict[str, float]) -> GateResult:
    gate = f"metrics.{cmp.key} {cmp.op.value} {cmp.value:g}"
    assert isinstance(cmp.value, int | float)  # the format above already refused anything else
    value = metrics.get(cmp.key)
    if value is None or math.isnan(value):
        return GateResult(gate, cmp.key, None, float(cmp.value), False,
                          f"the version has no metric {cmp.key!r} (log it in the run, or run "
                          "shipyard models evaluate)")
    passed = _CHECK[cmp.op](float(value), float(cmp.value))
    return GateResult(gate, cmp.key, value, float(cmp.value), passed, "ok" if passed else "below the requirement")


def compare_with_champion(metric: str, candidate: dict[str, float], champion: dict[str, float], *,
                          higher_is_better: bool, max_regression: float, champion_label: str) -> GateResult:
    gate = f"{metric} vs {champion_label} (≤{max_regression:.1%} worse)"
    mine, theirs = candidate.get(metric), champion.get(metric)
    if mine is None or theirs is None:
        missing = "the candidate" if mine is None else champion_label
        return GateResult(gate, metric, mine, theirs, False, f"{missing} has no metric {metric!r}")
    # How much worse the candidate is, relative to the champion's magnitude (0 when better).
    worse = (theirs - mine) if higher_is_better else (mine - theirs)
    allowed = max_regression * abs(theirs)
    passed = worse <= allowed + 1e-12
    if worse <= 0:
        reason = "better or equal"
    elif passed:
        reason = f"worse by {worse / abs(theirs):.2%}, within tolerance" if theirs else "within tolerance"
    else:
        reason = f"worse by {worse / abs(theirs):.2%}" if theirs else f"worse by {worse:g}"
    return GateResult(gate, metric, mine, theirs, passed, reason)


def promote(registry: RegistryService | HasRegistry, name: str, version: int, to: str, *,
            require: Sequence[str] = (), compare_to: str | None = None, compare_metrics: Sequence[str] = (),
            max_regression: float = 0.01, dry_run: bool = False) -> PromotionResult:
    """Point alias ``to`` at the version only if every gate of :func:`evaluate_gates` passes; the
    move is recorded as the registry's principal. Nothing moves when a gate fails (or with
    ``dry_run``); the result says which gates passed and why."""
    service = as_registry(registry)
    result = evaluate_gates(service, name, int(version), rules.check_alias(to), require=require,
                            compare_to=compare_to, compare_metrics=compare_metrics, max_regression=max_regression)
    if not result.passed or dry_run:
        return result
    service.set_alias(name, to, int(version))
    return replace(result, promoted=True)


def evaluate_gates(registry: RegistryService | HasRegistry, name: str, version: int, alias: str, *,
                   require: Sequence[str] = (), compare_to: str | None = None, compare_metrics: Sequence[str] = (),
                   max_regression: float = 0.01) -> PromotionResult:
    """Check every gate without changing anything."""
    service = as_registry(registry)
    if not 0 <= max_regression < 1:
        raise InvalidInput(f"max_regression must be a fraction in [0, 1), e.g. 0.01 for 1%; got {max_regression}")
    requirements = parse_requirements(require)
    candidate = service.get_model_version(name, version)
    metrics = version_metrics(service, candidate)
    gates = [check_requirement(cmp, metrics) for cmp in requirements]
    champion_version: int | None = None
    if compare_to is not None:
        directions = {c.key: c.op in (Op.GT, Op.GE) for c in requirements if c.op in (Op.GT, Op.GE, Op.LT, Op.LE)}
        for metric in compare_metrics:
            directions.setdefault(metric, not lower_is_better(metric))
        if not directions:
            raise InvalidInput("--compare-to needs metrics to compare: give --require expressions or "
                               "--compare-metric names")
        try:
            champion = service.store.models.get_version_by_alias(name, compare_to)
        except NotFound:
            champion = None
        if champion is None:
            gates.append(GateResult(f"vs {compare_to}", None, None, None, True,
                                    f"no version holds {compare_to!r} yet: nothing to compare with"))
        else:
            champion_version = champion.version
            theirs = version_metrics(service, champion)
            label = f"{compare_to} (v{champion.version})"
            gates += [compare_with_champion(m, metrics, theirs, higher_is_better=higher,
                                            max_regression=max_regression, champion_label=label)
                      for m, higher in directions.items()]
    model = service.store.models.get_model(name)
    if alias in model.protected_aliases:
        approved = candidate.approval is not None
        gates.append(GateResult(f"approval ({alias} is protected)", None, None, None, approved,
                                f"approved by {candidate.approval.user}" if candidate.approval else
                                f"not approved: shipyard models approve {name} {version}"))
    return PromotionResult(name, version, alias, champion_version, tuple(gates))
