"""Model URIs: ``runs:/<run_id>/<artifact path>`` or a local folder."""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import InvalidInput


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """(run_id, artifact path) of a ``runs:/`` URI."""
    rest = uri[len("runs:/"):].lstrip("/")
    run_id, _, path = rest.partition("/")
    if not run_id or not path:
        raise InvalidInput(f"model URI {uri!r} is not valid: expected runs:/<run_id>/<artifact path>, "
                           "e.g. runs:/3f2a.../model")
    return run_id, path


def is_local(uri: str) -> bool:
    return ("://" not in uri and ":/" not in uri) or uri.startswith("file://")


def local_path(uri: str) -> Path:
    return Path(uri[len("file://"):] if uri.startswith("file://") else uri).expanduser()


SUPPORTED = "runs:/<run_id>/<path> or a local folder"
