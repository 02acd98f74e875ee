"""Online serving: a lean ASGI app answering predictions for loaded models (``shipyard serve``).

    from shipyard.serving import create_serving_app, load_served

    app = create_serving_app([load_served(client, "models:/churn@production")])

Imports nothing heavy until used: the app module (Starlette, prometheus-client) loads on first
access to :func:`create_serving_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.serving.app import create_serving_app
    from shipyard.serving.models import ModelSet, ServedModel, load_served

__all__ = ["ModelSet", "ServedModel", "create_serving_app", "load_served"]

_EXPORTS = {"create_serving_app": "shipyard.serving.app", "ModelSet": "shipyard.serving.models",
            "ServedModel": "shipyard.serving.models", "load_served": "shipyard.serving.models"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.serving' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
