"""The evaluation and quality-gate results of a model version, for its registry page.

Nothing here is a rule of its own. The evaluation is what ``shipyard models evaluate`` recorded:
a run whose id the version carries in the tag :data:`~shipyard.models.evaluate.EVALUATION_RUN_TAG`,
with its metrics, params (dataset, digest, rows, target, model type) and plot. The version's
metrics are :func:`~shipyard.models.gates.version_metrics` (the source run's, overridden by the
evaluation's). The gates are :func:`~shipyard.models.gates.evaluate_gates`, the same check as
``shipyard models promote --dry-run``: requirements, no regression against the version holding
the alias, and an approval when the alias is protected. A GET page changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from shipyard.entities import ModelVersion, RegisteredModel, Run
from shipyard.errors import InvalidInput, NotFound
from shipyard.models.evaluate import EVALUATION_RUN_TAG
from shipyard.models.gates import PromotionResult, evaluate_gates, version_metrics
from shipyard.tracking.client import Client

__all__ = ["EVALUATION_PARAMS", "Checks", "GateQuery", "default_alias", "version_checks"]

EVALUATION_PARAMS = ("dataset", "dataset_digest", "rows", "target", "model_type")


@dataclass(frozen=True)
class GateQuery:
    """The gate check the page was asked for (its query string), or the default one."""

    alias: str = ""
    require: str = ""
    compare: bool = True
    max_regression: float = 1.0  # percent

    @classmethod
    def parse(cls, params: dict[str, str], asked: bool) -> GateQuery:
        try:
            regression = float(params.get("max_regression") or 1.0)
        except ValueError:
            raise InvalidInput("the allowed regression is a percentage, e.g. 1 for 1%") from None
        return cls(params.get("gate_alias", "").strip()[:255], params.get("require", "").strip()[:2000],
                   params.get("compare") == "1" if asked else True, regression)


@dataclass(frozen=True)
class Checks:
    evaluation_run_id: str | None
    evaluation: Run | None
    evaluation_params: list[tuple[str, str]]
    metrics: list[tuple[str, float, str]]  # (metric, value, "evaluation" | "source run")
    query: GateQuery
    alias: str
    gates: PromotionResult | None = None
    gate_error: str = ""
    compared_metrics: list[str] = field(default_factory=list)


def _run(shipyard: Client, run_id: str | None) -> Run | None:
    if not run_id:
        return None
    try:
        return shipyard.get_run(run_id)
    except NotFound:
        return None


def default_alias(model: RegisteredModel) -> str:
    """The alias a check is about by default: the first protected one, else ``production``."""
    return sorted(model.protected_aliases)[0] if model.protected_aliases else "production"


def version_checks(shipyard: Client, model: RegisteredModel, version: ModelVersion, query: GateQuery) -> Checks:
    registry = shipyard.registry
    evaluation_id = version.tags.get(EVALUATION_RUN_TAG)
    evaluation = _run(shipyard, evaluation_id)
    source = _run(shipyard, version.run_id)
    evaluated = dict(evaluation.data.metrics) if evaluation else {}
    metrics = [(k, v, "evaluation" if k in evaluated else "source run")
               for k, v in sorted(version_metrics(registry, version).items())]
    params = [(k, evaluation.data.params[k]) for k in EVALUATION_PARAMS if evaluation and k in evaluation.data.params]
    alias = query.alias or default_alias(model)
    compared = sorted(evaluated or (source.data.metrics if source else {})) if query.compare else []
    checks = Checks(evaluation_id, evaluation, params, metrics, query, alias, compared_metrics=compared)
    try:
        result = evaluate_gates(registry, model.name, version.version, alias,
                                require=[query.require] if query.require else [],
                                compare_to=alias if query.compare and (compared or query.require) else None,
                                compare_metrics=compared, max_regression=query.max_regression / 100)
    except InvalidInput as err:
        return replace(checks, gate_error=err.message)
    return replace(checks, gates=result)
