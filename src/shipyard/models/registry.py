"""The model registry's rules: versions, aliases, approvals, protected aliases, history, search.

:class:`RegistryService` is built from a Store, an ArtifactStore and the acting principal, who is
recorded on every change (the SDK's ``Client`` builds one for its user; the server for each
request, so the native API and the MLflow-compatible API record the same principal). It checks
names and aliases, resolves what a version's source may be
(:func:`shipyard.models.sources.plan_version_source`), reads the packages versions and runs
hold (:meth:`RegistryService.load_model`) and leaves integrity to the store. Evaluation, model
cards and promotion through quality gates are domain code on it (:mod:`shipyard.models.evaluate`,
:mod:`shipyard.models.card`, :mod:`shipyard.models.gates`): they take a ``RegistryService``, or a
``Client`` as the SDK's spelling (:func:`as_registry`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from shipyard.artifacts.paths import download_destination
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
from shipyard.errors import AlreadyExists, ApprovalRequired, InvalidInput, NotFound
from shipyard.filters import parse_filter
from shipyard.models.sources import (
    EXTERNAL_TAG,
    check_version_source,
    plan_version_source,
    resolve_version_source,
    stored_manifest,
)
from shipyard.models.uri import SUPPORTED, copied_version, is_local, local_path, resolve_model_version
from shipyard.store.protocol import Store
from shipyard.tracking import validation as rules
from shipyard.tracking.paged import PagedList

__all__ = ["HasRegistry", "RegistryService", "as_registry"]


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

    def create_model_version(self, name: str, source: str, *, run_id: str | None = None, description: str = "",
                             tags: Mapping[str, Any] | None = None,
                             status: VersionStatus | str = VersionStatus.READY) -> ModelVersion:
        """The next version of the existing model ``name`` from ``source`` (what
        :func:`~shipyard.models.sources.plan_version_source` accepts). ``run_id`` may name the
        run that made an external source; for a source in a run of this store it must be that
        run. Raises ``NotFound`` for an unknown model (before ``source`` is judged) or run."""
        self.store.models.get_model(name)
        planned = plan_version_source(self.store, self.artifacts, source)
        if run_id is not None and planned.run_id is not None and run_id != planned.run_id:
            raise InvalidInput(f"run_id {run_id!r} is not the run of source {planned.source}; "
                               "leave run_id out (the source names the run)")
        # Unlike register_model, a run_id the store does not hold is refused, not dropped.
        return self.store.models.create_version(
            name, source=planned.source, run_id=planned.run_id or run_id, description=description,
            tags={**_tags(tags), **planned.tags}, status=rules.check_choice("status", status, VersionStatus),
            user=self.principal.name)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.store.models.get_version(name, int(version))

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names: by number, by alias, or the latest."""
        return resolve_model_version(self.store.models, model_uri)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (``staging``, ``production``...) at a version; the move is recorded.
        Raises ``NotFound`` for an unknown model or version, and ``ApprovalRequired`` when the
        alias is protected and the version not approved."""
        alias, version = rules.check_alias(alias), int(version)
        # An approved version may take any alias: only an unapproved one costs the model's read.
        if self.store.models.get_version(name, version).approval is None and \
                alias in self.store.models.get_model(name).protected_aliases:
            raise ApprovalRequired(
                f"alias {alias!r} of model {name!r} is protected: version {version} must be approved first "
                f"(shipyard models approve {name} {version})")
        # Checked, then moved (not one transaction): an alias protected in between ends as if
        # protected just after the move, since protecting never judges where an alias points.
        return self.store.models.set_alias(name, alias, version, user=self.principal.name)

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
        self.set_registered_model_tags(name, {key: value})

    def set_registered_model_tags(self, name: str, tags: Mapping[str, Any]) -> None:
        """Insert or overwrite ``tags``, recorded as one change."""
        self.store.models.set_model_tags(name, _tags(tags), user=self.principal.name)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Raises ``NotFound`` when the model has no tag ``key``."""
        self.store.models.delete_model_tag(name, rules.check_key("tag", key), user=self.principal.name)

    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             status: VersionStatus | str | None = None, card: str | None = None) -> ModelVersion:
        """Change what is given (``card``: the version's Markdown model card)."""
        return self.store.models.update_version(
            name, int(version), description=description,
            status=None if status is None else rules.check_choice("status", status, VersionStatus),
            card=card, user=self.principal.name)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Refused while an alias points at it, unless ``force`` (which removes those aliases)."""
        self.store.models.delete_version(name, int(version), force=force, user=self.principal.name)

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        self.set_model_version_tags(name, version, {key: value})

    def set_model_version_tags(self, name: str, version: int, tags: Mapping[str, Any]) -> None:
        """Insert or overwrite ``tags``, recorded as one change."""
        self.store.models.set_version_tags(name, int(version), _tags(tags), user=self.principal.name)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Raises ``NotFound`` when the version has no tag ``key``."""
        self.store.models.delete_version_tag(name, int(version), rules.check_key("tag", key),
                                             user=self.principal.name)

    def approve_model_version(self, name: str, version: int, *, comment: str = "") -> ModelVersion:
        """Approve a version for protected aliases (``production`` by default)."""
        return self.store.models.approve_version(name, int(version), user=self.principal.name, comment=comment)

    def protect_alias(self, name: str, alias: str, protected: bool = True) -> RegisteredModel:
        """Require (or stop requiring) an approval before a version takes ``alias``."""
        return self.store.models.protect_alias(name, rules.check_alias(alias), protected, user=self.principal.name)

    # -- model packages: what a run or a version holds ---------------------------------------------
    def model_source(self, model_uri: str) -> tuple[str, str]:
        """(run id, artifact path) of the package a ``runs:/`` or ``models:/`` URI names (a
        version copied from another version of this registry names that one's package)."""
        if model_uri.startswith("models:/"):
            version = copied_version(self.store.models, self.resolve_model_version(model_uri))
            model_uri = version.source
            if not model_uri.startswith("runs:/") or self._external(version):
                raise InvalidInput(
                    f"model version {version.name}/{version.version} has the external source {model_uri!r}, which "
                    "this store does not hold: Shipyard reads models only from its own artifact store. Download "
                    "the package from where it lives and log it to a run (shipyard.log_model or log_artifacts), "
                    "then register runs:/<run_id>/<path>", source=model_uri)
        return check_version_source(model_uri)

    def _external(self, version: ModelVersion) -> bool:
        if version.tags.get(EXTERNAL_TAG) != "true":
            return False
        # The run may have logged the package since: resolve it through the store now.
        try:
            resolve_version_source(self.store, self.artifacts, version.source)
        except (InvalidInput, NotFound):
            return True
        return False

    def download_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Path:
        """Download the package folder a ``runs:/`` or ``models:/`` URI names."""
        run_id, path = self.model_source(model_uri)
        # No run lookup first: a missing package is NotFound from the artifact store anyway.
        return self.artifacts.download(run_id, path, download_destination(dst_path))

    def load_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Any:
        """Load ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<name>/latest`` or a local package folder; every file's digest is checked, and
        ``predict`` enforces the model's signature."""
        from shipyard.models.package import load_model_folder  # the flavors: only when a model is loaded

        if model_uri.startswith(("models:/", "runs:/")):
            return load_model_folder(self.download_model(model_uri, dst_path))
        if is_local(model_uri):
            return load_model_folder(local_path(model_uri))
        raise InvalidInput(f"cannot load model {model_uri!r}: expected {SUPPORTED}")

    def get_model_manifest(self, model_uri: str) -> Any:
        """The :class:`~shipyard.models.manifest.ModelManifest` of a logged or registered model
        (flavor, signature, requirements, pickle-based), without downloading its files."""
        run_id, path = self.model_source(model_uri)
        self.store.runs.get(run_id)
        return stored_manifest(self.artifacts, run_id, path)


class HasRegistry(Protocol):
    """What hands out a :class:`RegistryService`: the SDK's ``Client``, whose metric writer may
    still hold values logged a moment ago."""

    @property
    def registry(self) -> RegistryService: ...

    def flush(self) -> None: ...


def as_registry(source: RegistryService | HasRegistry) -> RegistryService:
    """``source`` itself, or the registry service of a ``Client`` (the SDK's spelling of the
    evaluation, card and gate functions) after its queued metrics are written, so what the
    registry reads includes them."""
    if isinstance(source, RegistryService):
        return source
    source.flush()
    return source.registry
