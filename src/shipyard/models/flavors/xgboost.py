"""XGBoost boosters and its scikit-learn estimators (XGBClassifier, XGBRegressor...).

Saved in XGBoost's own binary JSON format (UBJSON, ``model.ubj``) with ``save_model``: trees,
objective and, for the estimators, the attributes XGBoost keeps for them (number of classes,
feature names...). Not pickle: loading runs no code from the file. An estimator is rebuilt as
its class (recorded as ``module:Class``, which must derive from ``xgboost.XGBModel``) with its
hyper-parameters (the ones a manifest can hold; callables such as callbacks are left out and
listed under ``dropped_params``), then ``load_model``.
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

MODEL_FILE = "model.ubj"


class _BoosterPredictor:
    """``predict`` for a bare Booster: the input becomes a DMatrix (named columns are checked
    against the booster's feature names by XGBoost)."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, data: Any) -> Any:
        import numpy as np
        import xgboost

        names = self.booster.feature_names
        if hasattr(data, "columns") and names is not None:
            matrix = xgboost.DMatrix(data, enable_categorical=True)
        else:
            values = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
            matrix = xgboost.DMatrix(values, feature_names=names)
        return self.booster.predict(matrix)


class XGBoostFlavor:
    name = "xgboost"

    def accepts(self, model: Any) -> bool:
        if not comes_from(model, "xgboost"):
            return False
        import xgboost

        return isinstance(model, xgboost.Booster | xgboost.XGBModel)

    def save(self, model: Any, folder: Path, **options: Any) -> tuple[dict[str, Any], bool, list[str]]:
        import xgboost

        check_options(self.name, options)
        saved: dict[str, Any] = {"format": "ubj", "file": MODEL_FILE}
        modules = {"xgboost"}
        if isinstance(model, xgboost.XGBModel):
            if not model.__sklearn_is_fitted__():
                raise InvalidInput(f"cannot log an unfitted {type(model).__qualname__}: fit it first")
            if callable(model.get_params().get("objective")):
                raise InvalidInput("cannot save an XGBoost estimator with a custom objective function without "
                                   "pickle: log model.get_booster() instead, or wrap it in a PythonModel")
            params, dropped = portable_params(model.get_params(deep=False))
            saved |= {"estimator": class_path(type(model)), "params": params, "dropped_params": dropped}
            modules |= {"sklearn", type(model).__module__.partition(".")[0]}
        model.save_model(folder / MODEL_FILE)
        return saved, False, distributions_of(modules)

    def load(self, folder: Path, options: dict[str, Any]) -> Any:
        import xgboost

        path = folder / options["file"]
        if "estimator" not in options:
            booster = xgboost.Booster()
            booster.load_model(path)
            return booster
        cls = import_class(options["estimator"], xgboost.XGBModel, "XGBoost estimator")
        estimator = cls(**options.get("params", {}))
        estimator.load_model(path)
        return estimator

    def predictor(self, model: Any) -> Any:
        import xgboost

        return _BoosterPredictor(model) if isinstance(model, xgboost.Booster) else model

