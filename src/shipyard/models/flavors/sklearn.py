"""scikit-learn estimators and pipelines.

Saved with skops (a format that cannot run code on load) when the model round-trips through
it with only trusted types; otherwise with joblib, which is pickle: such packages are marked
``pickle_based`` in the manifest and loading one runs code from the file. Loading also reads
the files of MLflow's sklearn flavor (skops, cloudpickle, pickle; see ``models/mlflow_format.py``).
"""

from __future__ import annotations

import importlib.abc
import logging
import sys
from pathlib import Path
from typing import Any

from shipyard.models.flavors import distributions_of

log = logging.getLogger("shipyard.models")
SKOPS_FILE = "model.skops"
JOBLIB_FILE = "model.joblib"


def _modules_of(model: Any) -> set[str]:
    """Top-level modules of the model's classes, including every step of a pipeline."""
    modules = {c.__module__ for c in type(model).__mro__ if c.__module__ != "builtins"}
    if hasattr(model, "get_params"):
        for value in model.get_params(deep=True).values():
            if hasattr(value, "fit"):
                modules |= {c.__module__ for c in type(value).__mro__ if c.__module__ != "builtins"}
    return {m.split(".")[0] for m in modules} | {"sklearn", "numpy", "scipy"}


class _Hidden(importlib.abc.MetaPathFinder):
    """Imports of ``names`` (and their submodules) fail, as if they were not installed."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


# What importing skops.io drags in for nothing a model needs, when installed: scikit-learn's array-API
# shim imports torch (1.3 s), and its testing helpers, imported to list the estimators, import pytest
# (~0.2 s) when they can (both imports are optional there).
_SKOPS_NEEDLESS = frozenset({"torch", "pytest"})


def _skops_io() -> Any:
    """``skops.io``. Importing it lists every scikit-learn estimator by walking scikit-learn's
    packages, which imports torch and pytest when they are installed (see ``_SKOPS_NEEDLESS``).
    Those not loaded already are hidden for that one import (the list of trusted types is the same;
    a thread importing one of them during those ~0.5 s would be refused, which is why it is only
    here)."""
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    hide = _Hidden(frozenset(name for name in _SKOPS_NEEDLESS if name not in sys.modules))
    sys.meta_path.insert(0, hide)
    try:
        import skops.io
    finally:
        sys.meta_path.remove(hide)
    return skops.io


class SklearnFlavor:
    name = "sklearn"

    def accepts(self, model: Any) -> bool:
        return any(c.__module__.startswith("sklearn.") for c in type(model).__mro__)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        requirements = distributions_of(_modules_of(model))
        if self._save_skops(model, folder, options.get("input_example")):
            return {"format": "skops", "file": SKOPS_FILE}, False, [*requirements, *distributions_of({"skops"})]
        import joblib

        joblib.dump(model, folder / JOBLIB_FILE)
        return {"format": "joblib", "file": JOBLIB_FILE}, True, [*requirements, *distributions_of({"joblib"})]

    @staticmethod
    def _save_skops(model: Any, folder: Path, input_example: Any) -> bool:
        try:
            sio = _skops_io()
        except ImportError:
            return False
        path = folder / SKOPS_FILE
        try:
            sio.dump(model, path)
            if sio.get_untrusted_types(file=path):
                raise ValueError("the model holds types skops does not trust by default")
            restored = sio.load(path, trusted=[])
            if input_example is not None and hasattr(model, "predict"):
                import numpy as np

                if not np.array_equal(np.asarray(restored.predict(input_example)),
                                      np.asarray(model.predict(input_example))):
                    raise ValueError("predictions differ after a round trip")
            return True
        except Exception as exc:  # any failure means: fall back to joblib, and say why
            log.info("saving with joblib (pickle-based) instead of skops: %s", exc)
            path.unlink(missing_ok=True)
            return False

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        path = folder / options["file"]
        if options["format"] == "skops":
            sio = _skops_io()

            # Shipyard's own packages trust no extra types (save refuses them); an MLflow-format
            # package may declare some (its ``skops_trusted_types``), and is then marked pickle-based.
            return sio.load(path, trusted=list(options.get("trusted") or []))
        if options["format"] in ("pickle", "cloudpickle"):  # MLflow's formats: cloudpickle's output is a pickle
            import pickle

            with path.open("rb") as handle:
                return pickle.load(handle)
        import joblib

        return joblib.load(path)

    def predictor(self, model: Any) -> Any:
        from shipyard.models.flavors.sklearn_arrays import ArrayRoutePredictor

        return ArrayRoutePredictor(model)
