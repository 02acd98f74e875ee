"""Quality gates and promotion: requirements, champion comparison, approvals, dry runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import shipyard
from shipyard.errors import InvalidInput
from shipyard.models import PythonModel
from shipyard.models.evaluate import EVALUATION_RUN_TAG
from shipyard.models.gates import compare_with_champion, parse_requirements


class _Model(PythonModel):
    def predict(self, context, data):
        return data


def _version(f1: float, rmse: float | None = None, name: str = "churn") -> int:
    with shipyard.start_run() as run:
        shipyard.log_metric("f1", f1)
        if rmse is not None:
            shipyard.log_metric("rmse", rmse)
        shipyard.log_model(_Model(), "model")
    return shipyard.register_model(f"runs:/{run.run_id}/model", name).version


@pytest.fixture
def client(fluent: str) -> Iterator[shipyard.Client]:
    c = shipyard.Client(tracking_uri=fluent)
    yield c
    c.close()


def test_requirements_gate_the_alias(fluent: str, client: shipyard.Client) -> None:
    good, bad = _version(0.9), _version(0.7)
    failed = shipyard.promote_model("churn", bad, to="staging", require=["metrics.f1 >= 0.85"])
    assert not failed.passed
    assert not failed.promoted
    assert [(g.metric, g.candidate, g.reference, g.passed) for g in failed.gates] == [("f1", 0.7, 0.85, False)]
    assert client.get_registered_model("churn").aliases == {}
    ok = shipyard.promote_model("churn", good, to="staging", require=["metrics.f1 >= 0.85"])
    assert ok.promoted
    assert client.get_registered_model("churn").aliases == {"staging": good}


def test_compare_to_champion(fluent: str, client: shipyard.Client) -> None:
    champion = _version(0.90, rmse=1.0)
    client.approve_model_version("churn", champion, comment="first model")
    assert shipyard.promote_model("churn", champion, to="production", compare_to="production",
                                  require=["metrics.f1 > 0.5"]).promoted  # no champion yet: nothing to compare
    slightly_worse = _version(0.895, rmse=1.005)  # within 1% on both
    much_worse = _version(0.80, rmse=0.9)
    for v in (slightly_worse, much_worse):
        client.approve_model_version("churn", v)
    result = shipyard.promote_model("churn", much_worse, to="production", compare_to="production",
                                    compare_metrics=["f1", "rmse"], dry_run=True)
    assert result.champion == champion
    by_metric = {g.metric: g for g in result.gates if g.metric}
    assert not by_metric["f1"].passed
    assert "worse by 11.11%" in by_metric["f1"].reason
    assert by_metric["rmse"].passed  # lower is better, and it is lower
    assert not result.promoted
    dry = shipyard.promote_model("churn", slightly_worse, to="production", compare_to="production",
                                 compare_metrics=["f1", "rmse"], dry_run=True)
    assert dry.passed
    assert not dry.promoted
    assert client.get_registered_model("churn").aliases == {"production": champion}
    assert shipyard.promote_model("churn", slightly_worse, to="production", compare_to="production",
                                  compare_metrics=["f1", "rmse"]).promoted
    assert client.get_registered_model("churn").aliases == {"production": slightly_worse}


def test_protected_alias_needs_approval_gate(fluent: str, client: shipyard.Client) -> None:
    v = _version(0.95)
    result = shipyard.promote_model("churn", v, to="production", require=["metrics.f1 >= 0.9"])
    assert not result.promoted
    [approval] = result.failures
    assert f"shipyard models approve churn {v}" in approval.reason
    approved = client.approve_model_version("churn", v, comment="reviewed")
    assert approved.approval.comment == "reviewed"
    assert shipyard.promote_model("churn", v, to="production", require=["metrics.f1 >= 0.9"]).promoted
    kinds = [e.kind for e in client.model_history("churn")]
    assert kinds[-2:] == ["version_approved", "alias_set"]


def test_evaluation_metrics_override_the_run(fluent: str, client: shipyard.Client) -> None:
    v = _version(0.5)
    with shipyard.start_run() as evaluation:
        shipyard.log_metric("f1", 0.93)
    client.set_model_version_tag("churn", v, EVALUATION_RUN_TAG, evaluation.run_id)
    assert shipyard.promote_model("churn", v, to="staging", require=["metrics.f1 >= 0.9"]).promoted


def test_missing_metric_fails_the_gate(fluent: str) -> None:
    v = _version(0.9)
    result = shipyard.promote_model("churn", v, to="staging", require=["metrics.auc >= 0.8"])
    assert not result.passed
    assert "no metric 'auc'" in result.failures[0].reason


def test_bad_gates(fluent: str) -> None:
    v = _version(0.9)
    for bad in ("params.depth = '3'", "metrics.f1 >=", "f1 > 0.3"):
        with pytest.raises(InvalidInput):
            shipyard.promote_model("churn", v, to="staging", require=[bad])
    with pytest.raises(InvalidInput, match="max_regression"):
        shipyard.promote_model("churn", v, to="staging", require=["metrics.f1 > 0"], max_regression=5)
    with pytest.raises(InvalidInput, match="metrics to compare"):
        shipyard.promote_model("churn", v, to="staging", compare_to="production")
    with pytest.raises(InvalidInput, match="latest"):
        shipyard.promote_model("churn", v, to="latest")


def test_gate_arithmetic() -> None:
    [cmp] = parse_requirements(["metrics.loss < 0.3"])
    assert (cmp.key, cmp.value) == ("loss", 0.3)
    gate = compare_with_champion("rmse", {"rmse": 1.02}, {"rmse": 1.0}, higher_is_better=False,
                                 max_regression=0.01, champion_label="production")
    assert not gate.passed
    assert gate.reason == "worse by 2.00%"
    gate = compare_with_champion("acc", {"acc": 0.991}, {"acc": 1.0}, higher_is_better=True,
                                 max_regression=0.01, champion_label="production")
    assert gate.passed
    assert "within tolerance" in gate.reason


def test_gates_cards_and_evaluation_are_domain_code_recording_the_registry_principal(
        fluent: str, client: shipyard.Client) -> None:
    """They take the RegistryService an edge built for its principal (the server: the request's),
    and record that principal, not the process's login."""
    import pandas as pd

    from shipyard.auth import Principal
    from shipyard.models.card import card, set_card
    from shipyard.models.evaluate import evaluate
    from shipyard.models.gates import promote
    from shipyard.models.registry import RegistryService

    version = _version(0.9)
    bob = RegistryService(client.store, client.artifacts, Principal("bob"))
    result = evaluate(bob, f"models:/churn/{version}", pd.DataFrame({"x": [0, 1, 0, 1], "y": [0, 1, 0, 1]}),
                      target="y")
    assert result.metrics["accuracy"] == 1.0
    assert client.get_run(result.run_id).info.user_id == "bob"
    assert promote(bob, "churn", version, "staging", require=["metrics.accuracy >= 1"]).promoted
    assert "accuracy" in card(bob, "churn", version)
    set_card(bob, "churn", version, "# Edited by bob\n")
    changes = [e for e in client.model_history("churn") if e.kind not in ("model_created", "version_created")]
    assert [e.kind for e in changes] == ["version_tag_set", "alias_set", "version_updated", "version_updated"]
    assert {e.user for e in changes} == {"bob"}
