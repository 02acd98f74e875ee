"""Judging a retrained challenger against the champion, and promoting it only when it wins.

The **champion** is the version holding the monitor's retrain alias, or, when no version holds it
yet, the version the deployment serves. Both are evaluated with
:func:`shipyard.models.evaluate.evaluate` on the same held-back rows of the window (rows the
retrain command never saw); each evaluation is a run of its own, a child of the retraining run,
that read the held-back dataset version. The score is the monitor's first metric (``f1`` is
``f1_macro`` for more than two classes).

The challenger must be **better by the margin**: ``challenger >= champion + margin`` for a
score (``<= champion - margin`` for ``mae`` and ``rmse``), and strictly better when the margin
is 0. A winner is then promoted through the registry's gates
(:func:`shipyard.models.gates.promote`): the same score as a requirement, and
an approval when the alias is protected (``production`` is, by default), so a refusal there
says which approval is missing. When the alias moves and the deployment served the champion,
the deployment moves to the challenger too (a ``canary`` at 100% then ``promote``, two recorded
revisions), since a deployment never follows an alias on its own.

Domain code: both functions take the :class:`~shipyard.models.registry.RegistryService` of the
acting principal, who is recorded on the evaluation runs, the alias move and the deployment's
revisions, or a ``Client``, the SDK's spelling (:func:`~shipyard.models.registry.as_registry`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.clock import now_ms
from shipyard.deploy.rollout import DeploymentService
from shipyard.entities import Edge, Metric, Node, NodeKind, Relation
from shipyard.errors import NotFound, ShipyardError
from shipyard.models.registry import HasRegistry, RegistryService, as_registry
from shipyard.monitoring.performance import REGRESSION_METRICS
from shipyard.tracking import validation as rules

if TYPE_CHECKING:
    from shipyard.entities import Deployment, ModelVersion
    from shipyard.entities.monitor import Monitor
    from shipyard.monitoring.retrain import RetrainOutcome

__all__ = ["champion_of", "judge_challenger"]


def champion_of(registry: RegistryService | HasRegistry, deployment: Deployment, alias: str) -> ModelVersion:
    """The version holding ``alias`` of the model ``deployment`` serves, else the one it serves."""
    service = as_registry(registry)
    primary = deployment.primary
    try:
        holder = service.store.models.get_version_by_alias(primary.model, alias)
    except NotFound:
        holder = None
    return holder if holder is not None else service.get_model_version(primary.model, primary.version)


def _score(metrics: dict[str, float], metric: str, who: str) -> tuple[str, float]:
    for key in (metric, f"{metric}_macro", f"{metric}_ovr"):
        if key in metrics:
            return key, float(metrics[key])
    raise ShipyardError(f"the evaluation of the {who} gives no {metric} (it gave {', '.join(sorted(metrics))}); "
                        "monitor a metric both models can be scored on")


def judge_challenger(registry: RegistryService | HasRegistry, monitor: Monitor, deployment: Deployment,
                     champion: ModelVersion, challenger: ModelVersion, holdout: Path, holdout_ref: str, target: str,
                     run_id: str, outcome: RetrainOutcome) -> None:
    """Evaluate both on the held-back file (labels in column ``target``), decide, promote; the
    decision goes into ``outcome``."""
    from shipyard.models.evaluate import evaluate
    from shipyard.models.gates import promote

    service = as_registry(registry)
    metric, policy = monitor.metrics[0], monitor.retrain
    experiment = service.store.runs.get(run_id).info.experiment_id
    dataset = holdout_ref.rpartition("@")[0]
    scores: dict[str, tuple[str, float]] = {}
    runs: dict[str, str] = {}
    for who, version in (("challenger", challenger), ("champion", champion)):
        try:
            result = evaluate(service, version.uri, str(holdout), target=target, experiment_id=experiment,
                              dataset_name=dataset)
        except ShipyardError as exc:
            raise ShipyardError(f"evaluating the {who} {version.name} v{version.version} on the held-back rows "
                                f"failed: {exc.message}") from None
        runs[who] = result.run_id
        scores[who] = _score(result.metrics, metric, who)
    service.store.lineage.add_edges([Edge(Node(NodeKind.RUN, run_id), Node(NodeKind.RUN, r), Relation.CHILD,
                                         f"evaluation of the {who}") for who, r in runs.items()])
    key, mine = scores["challenger"]
    theirs = scores["champion"][1]
    logged_at = now_ms()
    service.store.metrics.log(run_id, [Metric(rules.check_metric_key(k), rules.metric_value(k, v), 0, logged_at)
                                       for k, v in ((f"challenger_{key}", mine), (f"champion_{key}", theirs))])
    lower = metric in REGRESSION_METRICS
    bar = theirs - policy.margin if lower else theirs + policy.margin
    strict = policy.margin == 0
    op = ("<" if strict else "<=") if lower else (">" if strict else ">=")
    wins = (mine < bar if strict else mine <= bar) if lower else (mine > bar if strict else mine >= bar)
    outcome.record.update({"metric": key, "challenger_score": mine, "champion_score": theirs,
                           "margin": policy.margin, "evaluation_runs": runs})
    versus = (f"{challenger.name} v{challenger.version} scored {key} {mine:.4g} against the champion "
              f"v{champion.version}'s {theirs:.4g} on {outcome.record.get('holdout_rows', 0)} held-back rows")
    if not wins:
        outcome.status = "not_promoted"
        outcome.detail = (f"not promoted: {versus}; the challenger must be {'lower' if lower else 'higher'} by at "
                          f"least the margin {policy.margin:g}, so {policy.alias} stays on v{champion.version}")
        return
    promotion = promote(service, challenger.name, challenger.version, policy.alias,
                        require=[f"metrics.{key} {op} {bar!r}"])
    outcome.record["gates"] = [{"gate": g.gate, "passed": g.passed, "reason": g.reason} for g in promotion.gates]
    if not promotion.promoted:
        failed = "; ".join(f"{g.gate}: {g.reason}" for g in promotion.failures)
        outcome.status = "not_promoted"
        outcome.detail = f"not promoted: {versus}, but the registry refused to move {policy.alias}: {failed}"
        return
    outcome.status = "promoted"
    outcome.detail = (f"promoted: {versus} (margin {policy.margin:g}); {policy.alias} moved from "
                      f"v{champion.version} to v{challenger.version}") + _follow(service, deployment, champion,
                                                                                  challenger)


def _follow(registry: RegistryService, deployment: Deployment, champion: ModelVersion, challenger: ModelVersion) -> str:
    """Move the deployment to the challenger when it served the champion; what happened, as a clause."""
    primary = deployment.primary
    if (primary.model, primary.version) != (champion.name, champion.version):
        return (f"; deployment {deployment.name} serves {primary.model} v{primary.version}, not the champion, "
                "and was left as it is")
    deployments = DeploymentService(registry.store, registry.principal)
    deployments.canary(deployment.name, challenger.uri, 100)
    deployments.promote(deployment.name)
    return f"; deployment {deployment.name} now serves v{challenger.version}"
