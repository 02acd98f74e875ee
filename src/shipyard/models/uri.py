"""Model URIs: ``runs:/<run_id>/<artifact path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``models:/<name>/latest``, or a local folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from shipyard.entities import ModelVersion
    from shipyard.store.protocol import ModelStore


def is_local(uri: str) -> bool:
    return ("://" not in uri and ":/" not in uri) or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()


def parse_models_uri(uri: str) -> tuple[str, int | None, str | None]:
    """(name, version, alias) of a ``models:/`` URI; ``latest`` gives (name, None, None)."""
    rest = uri[len("models:/"):].lstrip("/")
    if "@" in rest:
        name, _, alias = rest.rpartition("@")
        if name and alias and "/" not in alias:
            return name, None, alias
    else:
        name, _, version = rest.rpartition("/")
        if name and version == "latest":
            return name, None, None
        if name and version.isdigit() and int(version) > 0:
            return name, int(version), None
    raise InvalidInput(f"model URI {uri!r} is not valid: expected models:/<name>/<version>, "
                       "models:/<name>@<alias> or models:/<name>/latest")


SUPPORTED = "runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>@<alias> or a local folder"


def resolve_model_version(models: ModelStore, uri: str) -> ModelVersion:
    """The version a ``models:/`` URI names now: by number, by alias, or the latest."""
    name, version, alias = parse_models_uri(uri)
    if alias is not None:
        return models.get_version_by_alias(name, alias)
    if version is None:
        latest = models.get_model(name).latest_version
        if latest is None:
            raise NotFound(f"model {name!r} has no versions yet")
        version = latest
    return models.get_version(name, version)


MAX_COPY_DEPTH = 10  # a chain of copies longer than this is not followed further


def copied_version(models: ModelStore, version: ModelVersion) -> ModelVersion:
    """The version whose package ``version`` stands for: ``version`` itself, or, when it was
    registered from ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` of this registry
    (a copy, as MLflow's ``copy_model_version`` makes one), the version that URI names,
    followed to the end of the chain. A logged model (``models:/m-…``) or a URI naming nothing
    here ends the chain."""
    for _ in range(MAX_COPY_DEPTH):
        if not version.source.startswith("models:/") or version.source.startswith("models:/m-"):
            break
        try:
            version = resolve_model_version(models, version.source)
        except (InvalidInput, NotFound):
            break
    return version
