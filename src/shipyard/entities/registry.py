"""The model registry: registered models, their numbered versions, aliases and history."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.search import OrderBy, RunFilter


class VersionStatus(enum.StrEnum):
    PENDING_REGISTRATION = "PENDING_REGISTRATION"
    READY = "READY"
    FAILED = "FAILED"


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model; ``aliases`` maps each alias (``staging``, ``production``...) to a version.
    Its versions belong to its ``project``."""

    name: str
    description: str = ""
    creation_time: int = 0
    last_update_time: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    protected_aliases: tuple[str, ...] = ()
    project: str = DEFAULT_PROJECT


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """Version ``version`` (1, 2, ... never reused) of model ``name``, made from ``source``
    (``runs:/<run_id>/<path>``)."""

    name: str
    version: int
    source: str
    run_id: str | None
    status: VersionStatus = VersionStatus.READY
    description: str = ""
    creation_time: int = 0
    last_update_time: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    approval: Approval | None = None
    card: str = ""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True, slots=True)
class Approval:
    """Who approved a model version for protected aliases, when, and why."""

    user: str
    timestamp: int
    comment: str = ""


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """One change to a registered model, kept forever (deleting the model keeps its events).
    ``kind`` is one of :data:`EVENT_KINDS`; ``previous_version`` says where a moved alias was,
    ``detail`` holds the rest (a tag key, an old name, an approval comment)."""

    name: str
    kind: str
    timestamp: int
    user: str = ""
    version: int | None = None
    alias: str | None = None
    previous_version: int | None = None
    detail: str = ""


EVENT_KINDS = (
    "model_created", "model_updated", "model_renamed", "model_deleted", "model_tag_set", "model_tag_deleted",
    "version_created", "version_updated", "version_deleted", "version_tag_set", "version_tag_deleted",
    "version_approved", "alias_set", "alias_deleted", "alias_protected", "alias_unprotected",
)  # fmt: skip
# Aliases a new registered model protects until told otherwise.
DEFAULT_PROTECTED_ALIASES = ("production",)


@dataclass(frozen=True, slots=True)
class RegistryQuery:
    """A search of models or versions. ``filter`` is parsed with
    :data:`~shipyard.entities.search.MODEL_GRAMMAR` or ``VERSION_GRAMMAR``; ``order_by`` takes
    their attributes; without it models come by name, versions newest first (versions that tie
    on every order come by model name, then newest version first, as in MLflow). ``projects``
    keeps the models in those projects (and their versions): ``None`` every project, an empty
    tuple none."""

    filter: RunFilter = field(default_factory=RunFilter)
    max_results: int = 100
    page_token: str | None = None
    order_by: tuple[OrderBy, ...] = ()
    projects: tuple[str, ...] | None = None
