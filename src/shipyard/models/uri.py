"""Model URIs: ``runs:/<run_id>/<artifact path>``, ``models:/<name>/<version>``,
``models:/<name>@<alias>``, ``models:/<name>/latest``, or a local folder."""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import InvalidInput


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
