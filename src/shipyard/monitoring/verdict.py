"""One window's verdict: input drift, prediction drift, live performance, and the rules broken.

Inputs are compared with the monitor's reference profile and outputs with the profile of the
first window that had data (the model's answers when it started being watched). The two
comparisons share the family-wise false-alarm rate ``alpha``: the inputs get ``alpha`` times their
share of the compared columns, the outputs the rest, so with Bonferroni inside each the chance of
any false alarm in a window stays at most ``alpha`` (a union bound). A metric bound is checked
once at least :data:`MIN_LABELLED` predictions of the window have feedback: fewer labels say
too little about F1 or RMSE to page someone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.monitoring.performance import live_performance

if TYPE_CHECKING:
    from shipyard.entities.monitor import Monitor
    from shipyard.monitoring.reference import ReferenceProfile
    from shipyard.monitoring.report import ColumnDrift, DriftReport

__all__ = ["MIN_LABELLED", "Verdict", "judge", "parse_tests"]

MIN_LABELLED = 20


@dataclass
class Verdict:
    """What a window showed: ``breaches`` (a sentence per broken rule) decide the alert."""

    rows: int
    labelled: int = 0
    dataset_drift: bool = False
    drifted_columns: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    breaches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)


def parse_tests(tests: Mapping[str, str]) -> dict[str, str | tuple[str, float]]:
    """The stored ``{"plan": "psi:0.25"}`` as :func:`~shipyard.monitoring.drift` takes it."""
    out: dict[str, str | tuple[str, float]] = {}
    for column, spec in tests.items():
        name, sep, threshold = spec.partition(":")
        out[column] = (name, float(threshold)) if sep else name
    return out


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _score(c: ColumnDrift) -> dict[str, Any]:
    effect = c.wasserstein if c.kind == "numerical" else c.jensen_shannon
    return {"test": c.test, "statistic": _finite(c.statistic), "p_value": _finite(c.p_value),
            "threshold": _finite(c.threshold), "drifted": c.drifted, "effect": _finite(effect), "status": c.status}


def _metric_metrics(monitor: Monitor) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*monitor.metrics, *monitor.minimums, *monitor.maximums]))


def judge(monitor: Monitor, reference: ReferenceProfile, current: Any, rows: int, *,
          outputs: Any = None, output_reference: ReferenceProfile | None = None, labels: Any = None,
          ) -> Verdict:
    """The verdict on ``current`` (the window's inputs, ``rows`` of them) against ``reference``;
    ``outputs`` against ``output_reference`` when both are given; ``labels`` (feedback, aligned
    with ``outputs``) for the live metrics."""
    from shipyard.monitoring.detect import drift

    verdict = Verdict(rows)
    n_out = len(output_reference.columns) if output_reference is not None and outputs is not None else 0
    n_in = max(len(monitor.columns) or len(reference.columns), 1)
    alpha_in = monitor.alpha * n_in / (n_in + n_out)
    tests = parse_tests(monitor.tests)
    report = drift(reference, current, columns=list(monitor.columns) or None,
                   tests={k: v for k, v in tests.items() if not k.startswith("output")} or None, alpha=alpha_in)
    verdict.report["inputs"] = report.to_dict()
    _read_report(verdict, report, "")
    if not report.tested_columns:
        verdict.breaches.append(_nothing_compared(report))
    elif report.dataset_drift:
        verdict.breaches.append(f"input drift in {', '.join(report.drifted_columns)}")
    if n_out and output_reference is not None:
        out_report = drift(
output_reference, outputs, columns=list(output_reference.columns),
                           alpha=monitor.alpha - alpha_in)
        verdict.report["outputs"] = out_report.to_dict()
        _read_report(verdict, out_report, "")
        if out_report.dataset_drift:
            verdict.breaches.append(f"prediction drift in {', '.join(out_report.drifted_columns)}")
    metrics = _metric_metrics(monitor)
    if metrics and outputs is not None and labels is not None:
        verdict.labelled = len(labels) - labels.null_count
        values, notes = live_performance(outputs, labels, metrics)
        verdict.metrics = {k: v for k, v in values.items() if math.isfinite(v)}
        verdict.notes += notes
        _check_bounds(monitor, verdict)
    verdict.dataset_drift = report.dataset_drift
    return verdict


def _read_report(verdict: Verdict, report: DriftReport, prefix: str) -> None:
    for c in report.columns:
        verdict.scores[prefix + c.column] = _score(c)
        if c.drifted:
            verdict.drifted_columns.append(prefix + c.column)
        elif c.status in ("all_null", "invalid", "type_changed"):
            verdict.notes.append(f"{c.column}: {c.message}")


def _nothing_compared(report: DriftReport) -> str:
    parts = []
    if report.missing_columns:
        parts.append(f"missing from the window: {', '.join(report.missing_columns)}")
    if report.extra_columns:
        parts.append(f"not in the reference: {', '.join(report.extra_columns)}")
    others = [f"{c.column} ({c.status})" for c in report.columns
              if c.status not in ("missing_in_current", "new_in_current", "tested")]
    if others:
        parts.append(f"not comparable: {', '.join(others)}")
    return "no input column could be compared with the reference (the schemas differ; " + "; ".join(parts) + ")"


def _check_bounds(monitor: Monitor, verdict: Verdict) -> None:
    bounded = {**monitor.minimums, **monitor.maximums}
    if not bounded:
        return
    if verdict.labelled < MIN_LABELLED:
        if verdict.labelled:
            verdict.notes.append(f"only {verdict.labelled} predictions have feedback; metric bounds are checked from "
                                 f"{MIN_LABELLED}")
        return
    for name, bound in monitor.minimums.items():
        value = verdict.metrics.get(name)
        if value is not None and value < bound:
            verdict.breaches.append(f"{name} {value:.4g} is below its minimum {bound:g} "
                                    f"({verdict.labelled} labelled predictions)")
    for name, bound in monitor.maximums.items():
        value = verdict.metrics.get(name)
        if value is not None and value > bound:
            verdict.breaches.append(f"{name} {value:.4g} is above its maximum {bound:g} "
                                    f"({verdict.labelled} labelled predictions)")
