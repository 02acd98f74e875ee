"""scikit-learn estimators and pipelines.

Saved with skops (a format that cannot run code on load) when the model round-trips through
it with only trusted types; otherwise with joblib, which is pickle: such packages are marked
``pickle_based`` in the manifest and loading one runs code from the file. Loading also reads
the files of MLflow's sklearn flavor (skops, cloudpickle, pickle; see ``models/mlflow_format.py``).
"""

from __future__ import annotations

import logging
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
            import skops.io as sio
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
            import skops.io as sio

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
        return model
