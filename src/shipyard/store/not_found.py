"""The ``NotFound`` of each kind of stored object, written once (and two refusals said by more
than the store: a model that deployments use, whose words the access-scoped store rewrites, and a
changed run param, which the SDK says of a run it has not written yet).

The SQL store raises these for an object that is absent, and the access-scoped store
(:mod:`shipyard.auth.scoped`) raises the same ones for an object in a project the principal has
no role in: both answers must read alike, or a refusal would tell that the object exists.
"""

from __future__ import annotations

from collections.abc import Iterable

from shipyard.errors import Conflict, NotFound, RunNotActive

__all__ = ["dataset_not_found", "deployed_model_conflict", "deployment_history_not_found", "deployment_not_found",
           "experiment_deleted", "experiment_not_found", "logged_model_not_found", "model_not_found",
           "monitor_not_found", "param_change_conflict", "project_not_found", "run_not_found", "runs_not_found",
           "token_not_found", "user_not_found"]


def experiment_not_found(experiment_id: str) -> NotFound:
    return NotFound(f"experiment '{experiment_id}' does not exist")


def experiment_deleted(experiment_id: str) -> RunNotActive:
    """A run to create in a deleted experiment (the store, and the SDK for a run it defers)."""
    return RunNotActive(f"experiment '{experiment_id}' is deleted; restore it to add runs")


def run_not_found(run_id: str) -> NotFound:
    return NotFound(f"run '{run_id}' does not exist")


def runs_not_found(run_ids: Iterable[str]) -> NotFound:
    """For a batch that names several runs, when the store cannot tell which one is missing."""
    return NotFound("run '" + "', '".join(sorted(set(run_ids))) + "' does not exist")


def model_not_found(name: str) -> NotFound:
    """A registered model; also the answer for any version, alias or history of it."""
    return NotFound(f"registered model {name!r} does not exist")


def dataset_not_found(name: str) -> NotFound:
    """A dataset; also the answer for any version of it."""
    return NotFound(f"dataset {name!r} does not exist")


def deployment_not_found(name: str) -> NotFound:
    return NotFound(f"deployment {name!r} does not exist")


def deployment_history_not_found(name: str) -> NotFound:
    return NotFound(f"deployment {name!r} does not exist and never did: it has no history")


def monitor_not_found(name: str) -> NotFound:
    return NotFound(f"monitor {name!r} does not exist; see: shipyard monitor list", monitor=name)


def logged_model_not_found(model_id: str) -> NotFound:
    return NotFound(f"logged model '{model_id}' does not exist")


def user_not_found(name: str) -> NotFound:
    return NotFound(f"user {name!r} does not exist; see: shipyard users list", user=name)


def project_not_found(name: str) -> NotFound:
    return NotFound(f"project {name!r} does not exist; see: shipyard projects list", project=name)


def token_not_found(token_id: str) -> NotFound:
    return NotFound(f"token {token_id!r} does not exist; see: shipyard tokens list", token=token_id)


def deployed_model_conflict(refused: str, deployed: Iterable[str], named: Iterable[str]) -> Conflict:
    """``refused`` (e.g. "delete model 'churn'") is not possible while deployments use it:
    ``deployed`` as said (each may carry its state), ``named`` the deployments' names."""
    return Conflict(f"cannot {refused}: it is deployed by {', '.join(deployed)}; move their routes and shadows to "
                    "other versions (shipyard deploy canary, promote) or delete them (shipyard deploy delete) first",
                    deployed_by=list(named), refused=refused)


def param_change_conflict(run_id: str, key: str, old: str, new: str) -> Conflict:
    return Conflict(f"param {key!r} of run '{run_id}' is already {old!r}; it cannot change to {new!r} (params are "
                    "immutable: use a new key, or a new run)", key=key, old_value=old, new_value=new)
