"""LightGBM boosters and its scikit-learn estimators (LGBMClassifier, LGBMRegressor...).

Saved as LightGBM's text model (``model.txt``, from ``Booster.save_model``): trees, objective,
feature names and pandas categories, at full float precision. Not pickle: loading runs no code
from the file.

LightGBM has no public way to rebuild an estimator around a booster, so for an estimator the
manifest also records what its ``fit`` set that the booster does not hold: the class
(``module:Class``, which must derive from ``lightgbm.LGBMModel``), the hyper-parameters a
manifest can hold (callables are left out and listed under ``dropped_params``), the resolved
objective, the classes of a classifier (values and dtype) and whether the training data had
column names. Loading sets those on a new instance, as ``fit`` would (they are private
attributes of LightGBM >= 4). Saving checks the result: the rebuilt estimator must have the same
classes and, given an input example, make the same predictions, or the save is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.models.flavors import (
    check_options,
    class_path,
    comes_from,
    distributions_of,
    import_class,
    portable_params,
)

MODEL_FILE = "model.txt"


class LightGBMFlavor:
    name = "lightgbm"

    def accepts(self, model: Any) -> bool:
        if not comes_from(model, "lightgbm"):
            return False
        import lightgbm

        return isinstance(model, lightgbm.Booster | lightgbm.LGBMModel)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        import lightgbm

        check_options(self.name, options)
        saved: dict[str, Any] = {"format": "text", "file": MODEL_FILE}
        if not isinstance(model, lightgbm.LGBMModel):
            model.save_model(folder / MODEL_FILE)
            return saved, False, distributions_of({"lightgbm", "numpy"})
        if not model.__sklearn_is_fitted__():
            raise InvalidInput(f"cannot log an unfitted {type(model).__qualname__}: fit it first")
        if callable(model.objective_):
            raise InvalidInput("cannot save a LightGBM estimator with a custom objective function without pickle: "
                               "log model.booster_ instead, or wrap it in a PythonModel")
        params, dropped = portable_params(model.get_params(deep=False))
        saved |= {"estimator": class_path(type(model)), "params": params, "dropped_params": dropped,
                  "objective": model.objective_, "n_features_in": int(model.n_features_in_),
                  "fitted_with_feature_names": bool(model._fitted_with_feature_names)}
        if isinstance(model, lightgbm.LGBMClassifier):
            classes = model.classes_
            saved["classes"] = {"values": classes.tolist(), "dtype": classes.dtype.str if classes.dtype.kind != "O"
                                else "object"}
        model.booster_.save_model(folder / MODEL_FILE)
        _check_round_trip(model, self.load(folder, saved), options.get("input_example"))
        modules = {"lightgbm", "numpy", "sklearn", type(model).__module__.partition(".")[0]}
        return saved, False, distributions_of(modules)

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        import lightgbm

        booster = lightgbm.Booster(model_file=folder / options["file"])
        if "estimator" not in options:
            return booster
        cls = import_class(options["estimator"], lightgbm.LGBMModel, "LightGBM estimator")
        return _rebuild(cls(**options.get("params", {})), booster, options)

    def predictor(self, model: Any) -> Any:
        return model  # a Booster and an estimator both predict on DataFrames and arrays


def _rebuild(estimator: Any, booster: Any, options: dict[str, Any]) -> Any:
    """``estimator`` in the state its ``fit`` leaves it in (LightGBM 4's attributes)."""
    import numpy as np

    estimator._Booster = booster
    estimator._objective = options["objective"]
    estimator._n_features = booster.num_feature()
    estimator._n_features_in = options["n_features_in"]
    estimator._fitted_with_feature_names = options["fitted_with_feature_names"]
    estimator._best_iteration = booster.best_iteration
    estimator._best_score = booster.best_score
    estimator._evals_result = {}
    if "classes" in options:
        from sklearn.preprocessing import LabelEncoder

        dtype = options["classes"]["dtype"]
        encoder = LabelEncoder().fit(np.array(options["classes"]["values"], dtype=dtype))
        estimator._le = encoder
        estimator._classes = encoder.classes_
        estimator._n_classes = len(encoder.classes_)
        estimator._class_map = dict(zip(encoder.classes_, encoder.transform(encoder.classes_), strict=True))
    estimator.fitted_ = True
    return estimator


def _check_round_trip(original: Any, restored: Any, input_example: Any) -> None:
    import numpy as np

    problem = None
    if hasattr(original, "classes_") and not (
            np.array_equal(original.classes_, restored.classes_)
            and original.classes_.dtype == restored.classes_.dtype):
        problem = f"classes {original.classes_!r} came back as {restored.classes_!r}"
    elif input_example is not None and not np.array_equal(np.asarray(original.predict(input_example)),
                                                          np.asarray(restored.predict(input_example))):
        problem = "its predictions on the input example differ after a round trip"
    if problem:
        raise InvalidInput(f"cannot save this {type(original).__qualname__} faithfully without pickle: {problem}; "
                           "log model.booster_ instead")
