"""Flavors: how one kind of model object is saved to and loaded from a package folder.

Built-ins are ``(name, "module:attribute")`` entries imported only when used, so a flavor's
framework (scikit-learn, torch...) is imported only for models of that flavor.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import InvalidInput

BUILTIN_FLAVORS: tuple[tuple[str, str], ...] = (
    ("pyfunc", "shipyard.models.flavors.pyfunc:PyfuncFlavor"),
    ("sklearn", "shipyard.models.flavors.sklearn:SklearnFlavor"),
)


class Predictor(Protocol):
    def predict(self, data: Any) -> Any: ...


class Flavor(Protocol):
    name: str

    def accepts(self, model: Any) -> bool:
        """Whether this flavor can save ``model`` (checked without importing the framework
        unless the object comes from it)."""
        ...

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        """Write the model's files into ``folder``; return (loader options for the manifest,
        whether loading unpickles code, the distributions the model needs)."""
        ...

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        """The framework object saved in ``folder``."""
        ...

    def predictor(self, model: Any) -> Predictor:
        """Something with ``predict(data)`` around the loaded framework object."""
        ...


def flavor_names() -> list[str]:
    return [name for name, _ in BUILTIN_FLAVORS]


def get_flavor(name: str) -> Flavor:
    target = dict(BUILTIN_FLAVORS).get(name)
    if target is None:
        raise InvalidInput(f"unknown model flavor {name!r}; supported flavors: {', '.join(flavor_names())}")
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)()


def flavor_for(model: Any) -> Flavor:
    """The flavor that can save ``model``, or InvalidInput listing the supported flavors."""
    for name in flavor_names():
        flavor = get_flavor(name)
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(f"cannot log a {type(model).__module__}.{type(model).__qualname__} as a model: no flavor "
                       f"supports it; supported flavors: {', '.join(flavor_names())} (wrap other models in a "
                       "shipyard.models.PythonModel subclass)")


def distributions_of(modules: set[str]) -> list[str]:
    """``name==version`` of the installed distributions that provide these top-level modules."""
    from importlib.metadata import packages_distributions, version

    provided = packages_distributions()
    found = set()
    for module in modules:
        for dist in provided.get(module.split(".")[0], []):
            try:
                found.add(f"{dist}=={version(dist)}")
            except Exception:  # a distribution without metadata: skip rather than fail the save
                continue
    return sorted(found, key=str.lower)
