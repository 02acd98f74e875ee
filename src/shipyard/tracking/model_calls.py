"""The SDK's model and registry calls, named as MLflow's ``MlflowClient`` names them.

Each is one call on the client's :class:`~shipyard.models.registry.RegistryService` (or on the
domain functions that take one: evaluation, model cards, promotion through quality gates), so the
``Client`` facade holds no registry rule; :class:`shipyard.Client` inherits them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.entities import ModelVersion, RegisteredModel, RegistryEvent, VersionStatus
from shipyard.tracking.paged import PagedList

if TYPE_CHECKING:
    from shipyard.models.evaluate import Evaluation
    from shipyard.models.gates import PromotionResult
    from shipyard.models.registry import RegistryService

__all__ = ["ModelCalls"]


class ModelCalls:
    """Loading, registering and promoting models through ``self.registry`` (see :class:`shipyard.Client`)."""

    @property
    def registry(self) -> RegistryService:
        raise NotImplementedError  # the Client builds it for its principal

    def flush(self) -> None:
        raise NotImplementedError  # the Client writes its queued metrics

    def load_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Any:
        """Load ``runs:/<run_id>/<path>``, ``models:/<name>/<version>``, ``models:/<name>@<alias>``,
        ``models:/<name>/latest`` or a local package folder; every file's digest is checked, and
        ``predict`` enforces the model's signature."""
        return self.registry.load_model(model_uri, dst_path)

    def model_source(self, model_uri: str) -> tuple[str, str]:
        """(run id, artifact path) of the package a ``runs:/`` or ``models:/`` URI names (a
        version copied from another version of this registry names that one's package)."""
        return self.registry.model_source(model_uri)

    def download_model(self, model_uri: str, dst_path: str | os.PathLike[str] | None = None) -> Path:
        """Download the package folder a ``runs:/`` or ``models:/`` URI names."""
        return self.registry.download_model(model_uri, dst_path)

    def get_model_manifest(self, model_uri: str) -> Any:
        """The :class:`~shipyard.models.manifest.ModelManifest` of a logged or registered model
        (flavor, signature, requirements, pickle-based), without downloading its files."""
        return self.registry.get_model_manifest(model_uri)

    # -- model registry: the same calls on this client's RegistryService -----------------
    def create_registered_model(self, name: str, *, description: str = "",
                                tags: Mapping[str, Any] | None = None) -> RegisteredModel:
        """Raises ``AlreadyExists`` when the name is taken."""
        return self.registry.create_registered_model(name, description=description, tags=tags)

    def get_registered_model(self, name: str) -> RegisteredModel:
        return self.registry.get_registered_model(name)

    def register_model(self, model_uri: str, name: str, *, description: str = "",
                       tags: Mapping[str, Any] | None = None, run_id: str | None = None) -> ModelVersion:
        """Make the model at ``model_uri`` the next version of ``name`` (the registered model is
        created when new). ``runs:/<run_id>/<path>`` of a package in this store is the usual
        source; a remote or registry URI (``s3://…``, ``models:/…``) is recorded as external
        (:func:`shipyard.models.sources.plan_version_source` says what is accepted). ``run_id``
        names the run that made an external model; the version is linked to it when it is a run
        of this store."""
        return self.registry.register_model(model_uri, name, description=description, tags=tags, run_id=run_id)

    def get_model_version(self, name: str, version: int) -> ModelVersion:
        return self.registry.get_model_version(name, version)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names: by number, by alias, or the latest."""
        return self.registry.resolve_model_version(model_uri)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` (``staging``, ``production``...) at a version; the move is recorded."""
        return self.registry.set_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        self.registry.delete_alias(name, alias)

    def model_history(self, name: str) -> list[RegistryEvent]:
        """Every recorded change of a registered model, oldest first."""
        return self.registry.model_history(name)

    def search_registered_models(self, filter_string: str | None = None, *, max_results: int = 100,
                                 page_token: str | None = None) -> PagedList[RegisteredModel]:
        """Models matching e.g. ``name LIKE 'churn%' and tags.team = 'growth'``, by name."""
        return self.registry.search_registered_models(filter_string, max_results=max_results, page_token=page_token)

    def search_model_versions(self, filter_string: str | None = None, *, max_results: int = 100,
                              page_token: str | None = None) -> PagedList[ModelVersion]:
        """Versions matching e.g. ``name = 'churn' and version >= 3``, newest first."""
        return self.registry.search_model_versions(filter_string, max_results=max_results, page_token=page_token)

    def update_registered_model(self, name: str, *, description: str) -> RegisteredModel:
        return self.registry.update_registered_model(name, description=description)

    def rename_registered_model(self, name: str, new_name: str) -> RegisteredModel:
        return self.registry.rename_registered_model(name, new_name)

    def delete_registered_model(self, name: str, *, force: bool = False) -> None:
        """Refused while an alias points at one of its versions, unless ``force``."""
        self.registry.delete_registered_model(name, force=force)

    def set_registered_model_tag(self, name: str, key: str, value: Any) -> None:
        self.registry.set_registered_model_tag(name, key, value)

    def delete_registered_model_tag(self, name: str, key: str) -> None:
        """Raises ``NotFound`` when the model has no tag ``key``."""
        self.registry.delete_registered_model_tag(name, key)

    def update_model_version(self, name: str, version: int, *, description: str | None = None,
                             status: VersionStatus | str | None = None) -> ModelVersion:
        return self.registry.update_model_version(name, version, description=description, status=status)

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> None:
        """Refused while an alias points at it, unless ``force`` (which removes those aliases)."""
        self.registry.delete_model_version(name, version, force=force)

    def set_model_version_tag(self, name: str, version: int, key: str, value: Any) -> None:
        self.registry.set_model_version_tag(name, version, key, value)

    def delete_model_version_tag(self, name: str, version: int, key: str) -> None:
        """Raises ``NotFound`` when the version has no tag ``key``."""
        self.registry.delete_model_version_tag(name, version, key)

    def approve_model_version(self, name: str, version: int, *, comment: str = "") -> ModelVersion:
        """Approve a version for protected aliases (``production`` by default)."""
        return self.registry.approve_model_version(name, version, comment=comment)

    def protect_alias(self, name: str, alias: str, protected: bool = True) -> RegisteredModel:
        """Require (or stop requiring) an approval before a version takes ``alias``."""
        return self.registry.protect_alias(name, alias, protected)

    def evaluate_model(self, model_uri: str, data: Any, *, target: str, model_type: str | None = None,
                       experiment_id: str | None = None, dataset_name: str | None = None) -> Evaluation:
        """Compute the standard metrics of a model on labelled ``data`` (a DataFrame or a
        .parquet/.csv path) and log them as an evaluation run linked to the model version, where
        quality gates find them. See :func:`shipyard.models.evaluate.evaluate`."""
        from shipyard.models.evaluate import evaluate

        return evaluate(self, model_uri, data, target=target, model_type=model_type, experiment_id=experiment_id,
                        dataset_name=dataset_name)

    def model_card(self, name: str, version: int, *, regenerate: bool = False) -> str:
        """The version's Markdown model card; generated from its run, package and evaluation
        (and stored) when it has none yet or with ``regenerate``."""
        from shipyard.models.card import card

        return card(self, name, int(version), regenerate=regenerate)

    def set_model_card(self, name: str, version: int, text: str) -> ModelVersion:
        """Store an edited model card (an empty text lets the next ``model_card`` regenerate it)."""
        from shipyard.models.card import set_card

        return set_card(self, name, int(version), text)

    def promote_model(self, name: str, version: int, to: str, *, require: Sequence[str] = (),
                      compare_to: str | None = None, compare_metrics: Sequence[str] = (),
                      max_regression: float = 0.01, dry_run: bool = False) -> PromotionResult:
        """Point alias ``to`` at the version only if every quality gate passes: each ``require``
        expression (``metrics.f1 >= 0.85``), no regression beyond ``max_regression`` against the
        version holding ``compare_to``, and an approval when ``to`` is protected. The result says
        which gates passed and why; nothing moves when one fails (or with ``dry_run``). See
        :func:`shipyard.models.gates.promote`."""
        from shipyard.models.gates import promote

        return promote(self, name, int(version), to, require=require, compare_to=compare_to,
                       compare_metrics=compare_metrics, max_regression=max_regression, dry_run=dry_run)
