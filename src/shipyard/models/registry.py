"""The model registry's rules: versions, aliases, approvals, protected aliases, history, search.

:class:`RegistryService` is built from a Store, an ArtifactStore and the acting principal, who is
recorded on every change (the SDK's ``Client`` builds one for its user; the server for each
request, so the native API and the MLflow-compatible API record the same principal). It checks
names and aliases, resolves what a version's source may be
(:func:`shipyard.models.sources.plan_version_source`) and leaves integrity to the store.
Evaluation, model cards and promotion through quality gates build on it
(:mod:`shipyard.models.evaluate`, :mod:`shipyard.models.card`, :mod:`shipyard.models.gates`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shipyard.artifacts.protocol import ArtifactStore
from shipyard.auth import Principal
from shipyard.entities import (
    MODEL_GRAMMAR,
    VERSION_GRAMMAR,
    ModelVersion,
    RegisteredModel,
    RegistryEvent,
    RegistryQuery,
    VersionStatus,
)
from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.filters import parse_filter
from shipyard.models.sources import plan_version_source
from shipyard.models.uri import resolve_model_version
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.paged import PagedList

__all__ = ["RegistryService"]


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    return {rules.check_key("tag", k): rules.tag_value(k, v) for k, v in (tags or {}).items()}


def _run_exists(store: Store, run_id: str) -> bool:
    try:
        store.runs.get(run_id)
    except (NotFound, InvalidInput):
        return False
    return True


class RegistryService:
    """Registered models and their versions in ``store``, changed as ``principal``."""

    def __init__(self, store: Store, artifacts: ArtifactStore, principal: Principal) -> None:
        self.store = store
        self.artifacts = artifacts
        self.principal = principal

    def create_registered_model(self, name: str, *, description: str = "", tags: Mapping[str, Any] | None = None,
                                project: str = DEFAULT_PROJECT) -> RegisteredModel:
        """A new model in ``project``. Raises ``AlreadyExists`` when the name is taken."""
        return self.store.models.create_model(rules.check_model_name(name), description=description,
                                              tags=_tags(tags), user=self.principal.name,
                                              project=rules.check_project(project))

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.store.models.get_model(name)

    def register_model(self, model_uri: str, name: str, *, description: str = "",
                       tags: Mapping[str, Any] | None = None, run_id: str | None = None) -> ModelVersion:
        """Make the model at ``model_uri`` the next version of ``name`` (the registered model is
        created when new). ``runs:/<run_id>/<path>`` of a package in this store is the usual
        source; a remote or registry URI (``s3://…``, ``models:/…``) is recorded as external
        (:func:`shipyard.models.sources.plan_version_source` says what is accepted). ``run_id``
        names the run that made an external model; the version is linked to it when it is a run
        of this store."""
        rules.check_model_name(name)
        planned = plan_version_source(self.store, self.artifacts, model_uri)
        user = self.principal.name
        try:
            self.store.models.create_model(name, user=user)
        except AlreadyExists:
            pass  # registering a new version of an existing model: the usual case
        made_by = planned.run_id or (run_id if run_id and _run_exists(self.store, run_id) else None)
        return self.store.models.create_version(name, source=planned.source, run_id=made_by,
                                                description=description, tags={**_tags(tags), **planned.tags},
                                                user=user)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.store.models.get_version(name, int(version))

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names: by number, by alias, or the latest."""
        return resolve_model_version(self.store.models, model_uri)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (``staging``, ``production``...) at a version; the move is recorded."""
        return self.store.models.set_alias(name, rules.check_alias(alias), int(version), user=self.principal.name)

    def delete_alias(self, name: str, alias: str) -> None:
        self.store.models.delete_alias(name, alias, user=self.principal.name)

    def model_history(self, name: str) -> list[RegistryEvent]:
        """Every recorded change of a registered model, oldest first."""
        return self.store.models.history(name)

    def search_registered_models(self, filter_string: str | None = None, *, max_results: int = 100,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        """Models matching e.g. ``name LIKE 'churn%' and tags.team = 'growth'``, by name."""
        query = RegistryQuery(parse_filter(filter_string, MODEL_GRAMMAR), rules.check_max_results(max_results),
                              page_token)
        page = self.store.models.search_models(query)
        return PagedList(page.items, page.next_page_token)

    def search_model_versions(self, filter_string: str | None = None, *, max_results: int = 100,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        """Versions matching e.g. ``name = 'churn' and version >= 3``, newest first."""
        query = RegistryQuery(parse_filter(filter_string, VERSION_GRAMMAR), rules.check_max_results(max_results),
                              page_token)
        page = self.store.models.search_versions(query)
        return PagedList(page.items, page.next_page_token)

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        return self.store.models.update_model(name, description=description, user=self.principal.name)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.store.models.rename_model(name, rules.check_model_name(new_name), user=self.principal.name)

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Refused while an alias points at one of its versions, unless ``force``."""
        self.store.models.delete_model(name, force=force, user=self.principal.name)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.store.models.set_model_tags(name, _tags({key: value}), user=self.principal.name)

    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             status: VersionStatus | str | None = None) -> ModelVersion:
        return self.store.models.update_version(
            name, int(version), description=description,
            status=None if status is None else rules.check_choice("status", status, VersionStatus),
            user=self.principal.name)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Refused while an alias points at it, unless ``force`` (which removes those aliases)."""
        self.store.models.delete_version(name, int(version), force=force, user=self.principal.name)

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        self.store.models.set_version_tags(name, int(version), _tags({key: value}), user=self.principal.name)

    def approve_model_version(self, name: str, version: int, *, comment: str = "") -> ModelVersion:
        """Approve a version for protected aliases (``production`` by default)."""
        return self.store.models.approve_version(name, int(version), user=self.principal.name, comment=comment)

    def protect_alias(self, name: str, alias: str, protected: bool = True) -> RegisteredModel:
        """Require (or stop requiring) an approval before a version takes ``alias``."""
        return self.store.models.protect_alias(name, rules.check_alias(alias), protected, user=self.principal.name)
