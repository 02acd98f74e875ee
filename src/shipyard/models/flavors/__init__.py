"""Flavors: how one kind of model object is saved to and loaded from a package folder.

Built-ins are ``(name, "module:attribute")`` entries imported only when used, so a flavor's
framework (scikit-learn, torch...) is imported only for models of that flavor.

Every flavor except ``pyfunc`` (and ``sklearn``'s joblib fallback) saves a format that cannot run
code on load: skops, XGBoost's UBJSON, LightGBM's text model, safetensors, TorchScript, ONNX.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from shipyard.errors import InvalidInput, MissingDependency
from shipyard.installed import importable

BUILTIN_FLAVORS: tuple[tuple[str, str], ...] = (
    ("pyfunc", "shipyard.models.flavors.pyfunc:PyfuncFlavor"),
    ("sklearn", "shipyard.models.flavors.sklearn:SklearnFlavor"),
    ("xgboost", "shipyard.models.flavors.xgboost:XGBoostFlavor"),
    ("lightgbm", "shipyard.models.flavors.lightgbm:LightGBMFlavor"),
    ("torch", "shipyard.models.flavors.torch:TorchFlavor"),
    ("onnx", "shipyard.models.flavors.onnx:OnnxFlavor"),
)
# sklearn accepts anything built on scikit-learn's base classes, XGBoost's and LightGBM's
# estimators included, so detection tries it after every other flavor.
_TRIED_LAST = ("sklearn",)


# What flavors import beyond Shipyard itself: top-level module -> (distribution, the extra bringing it).
PROVIDERS: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "sklearn"), "skops": ("skops", "sklearn"), "joblib": ("joblib", "sklearn"),
    "scipy": ("scipy", "sklearn"), "xgboost": ("xgboost-cpu", "xgboost"), "lightgbm": ("lightgbm", "lightgbm"),
    "torch": ("torch", "torch"), "safetensors": ("safetensors", "torch"), "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
}


@contextlib.contextmanager
def flavor_imports(flavor: str, doing: str) -> Iterator[None]:
    """Turn a missing framework or helper library, met while ``doing`` (saving, loading) a model of
    ``flavor``, into :class:`~shipyard.errors.MissingDependency` naming the package and the extra
    that brings it; other import errors pass unchanged."""
    try:
        yield
    except ImportError as exc:
        module = (exc.name or "").partition(".")[0]
        # Only a library that is absent: an installed one failing to import (a version mismatch,
        # a missing submodule) keeps its own, more precise error.
        if module not in PROVIDERS or importable(module):
            raise
        package, extra = PROVIDERS[module]
        raise MissingDependency(f"{doing} a {flavor} model needs {package}, which is not installed here: "
                                f"pip install 'shipyard-mlops[{extra}]'", package=package, extra=extra,
                                flavor=flavor) from None


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
    flavor: Flavor = getattr(importlib.import_module(module), attribute)()
    return flavor


def flavor_for(model: Any) -> Flavor:
    """The flavor that can save ``model``, or InvalidInput listing the supported flavors."""
    for name in sorted(flavor_names(), key=lambda n: n in _TRIED_LAST):
        flavor = get_flavor(name)
        if flavor.accepts(model):
            return flavor
    raise InvalidInput(f"cannot log a {type(model).__module__}.{type(model).__qualname__} as a model: no flavor "
                       f"supports it; supported flavors: {', '.join(flavor_names())} (wrap other models in a "
                       "shipyard.models.PythonModel subclass)")


def distributions_of(modules: set[str]) -> list[str]:
    """``name==version`` of the installed distributions that provide these top-level modules
    (see :mod:`shipyard.installed`)."""
    from shipyard.installed import installed

    provided = installed().providers
    return sorted({dist for module in modules for dist in provided.get(module.split(".")[0], ())}, key=str.lower)


def comes_from(model: Any, package: str) -> bool:
    """Whether ``model``'s class, or one of its bases, is defined in ``package`` (checked
    without importing it)."""
    return any(c.__module__.partition(".")[0] == package for c in type(model).__mro__)


def class_path(cls: type) -> str:
    """``module:QualifiedName`` of a class, as manifests record it."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(target: str, base: type, what: str) -> type:
    """The class named ``module:QualifiedName`` by a manifest, refused unless it derives from
    ``base``, so an edited manifest cannot make loading call any other importable function."""
    module, _, qualname = target.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import the model's class {target!r}: {exc}; install or put on sys.path "
                           "the code that defines it") from None
    if not (isinstance(found, type) and issubclass(found, base)):
        raise InvalidInput(f"{target!r} is not a {what} class; refusing to load the model")
    return found


_ALWAYS_PASSED = frozenset({"input_example", "code_paths", "artifacts"})


def check_options(flavor: str, options: dict[str, Any], accepted: frozenset[str] = frozenset()) -> None:
    """Refuse flavor options that ``flavor`` does not know (a misspelt ``init_kwargs``...)."""
    unknown = sorted(set(options) - _ALWAYS_PASSED - accepted)
    if unknown:
        known = f"it accepts {', '.join(sorted(accepted))}" if accepted else "it accepts none"
        raise InvalidInput(f"unknown option{'s' if len(unknown) > 1 else ''} for the {flavor} flavor: "
                           f"{', '.join(unknown)} ({known})")


def portable_params(params: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The hyper-parameters that a manifest can hold (None, bools, numbers, strings, and lists and
    string-keyed dicts of those, numpy scalars converted), and the names of the others (callables,
    random generators...), which are left out."""
    kept, dropped = {}, []
    for name, value in params.items():
        try:
            kept[name] = _portable(value)
        except TypeError:
            dropped.append(name)
    return kept, sorted(dropped)


def _portable(value: Any) -> Any:
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, str):  # str enums
        return str.__str__(value)
    if isinstance(value, int | float):  # int enums, numpy's float64
        return float(value) if isinstance(value, float) else int(value)
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(value, "ndim", None) == 0 and dtype.kind in "biuf":  # numpy scalars
        return value.item()
    if isinstance(value, list | tuple):
        return [_portable(v) for v in value]
    if isinstance(value, dict) and all(type(k) is str for k in value):
        return {k: _portable(v) for k, v in value.items()}
    raise TypeError(type(value).__qualname__)
