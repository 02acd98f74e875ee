"""A scikit-learn model predicting a numeric DataFrame as its array, where that is the same input.

An estimator fitted on a DataFrame checks the frame's feature names and each column's dtype on
every ``predict`` call (through narwhals and pandas), whatever the number of rows: ~0.6-0.9 ms,
against ~0.15 ms for the whole prediction of a few rows as an array. For scikit-learn's own
estimators, a DataFrame whose columns all share one numeric NumPy dtype is turned into exactly
that array (``np.asarray``) before any arithmetic, so predicting the array gives the same answer
bit for bit. It is not the same input to an estimator that selects columns by name
(``ColumnTransformer``), runs user code on ``X`` (``FunctionTransformer``), is configured to pass
DataFrames between its steps (``set_output``), or comes from another package: a model holding any
of those anywhere (pipeline steps, fitted sub-estimators, search results) keeps the DataFrame.

The route is only taken for input the serving app checked against the signature already
(:meth:`ArrayRoutePredictor.predict_conformed`), with the columns in the order the model was
fitted with; anything else (other columns or order, mixed or non-numeric dtypes) is predicted as
the DataFrame it is, so scikit-learn's own checks and errors still apply. Predicting an array
makes scikit-learn warn that it has no feature names, on every call: that one warning is ignored
in a process that takes the route (a serving process).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["ArrayRoutePredictor", "array_safe"]

# scikit-learn's estimators that treat a DataFrame otherwise than its values.
_NAME_AWARE = frozenset({"ColumnTransformer", "FunctionTransformer"})
_NUMERIC_KINDS = frozenset("biuf")
_ARRAY_WARNING = "X does not have valid feature names"


def array_safe(estimator: Any) -> bool:
    """Whether ``estimator`` and every estimator it holds (fitted or not) is scikit-learn's own,
    none of them name-aware and none configured to output DataFrames."""
    for held in _estimators(estimator):
        cls = type(held)
        if not cls.__module__.startswith("sklearn.") or cls.__name__ in _NAME_AWARE:
            return False
        output = getattr(held, "_sklearn_output_config", None) or {}
        if any(container not in (None, "default") for container in output.values()):
            return False
    return True


def _estimators(root: Any) -> Iterator[Any]:
    """``root`` and every estimator reachable through its attributes, lists, tuples and dicts, each
    once (an estimator may refer back to another one)."""
    stack, seen = [root], set()
    while stack:
        value = stack.pop()
        if id(value) in seen:
            continue
        seen.add(id(value))
        if hasattr(value, "get_params"):
            yield value
            stack.extend(vars(value).values())
        elif isinstance(value, list | tuple):
            stack.extend(value)
        elif isinstance(value, dict):
            stack.extend(value.values())


class ArrayRoutePredictor:
    """``predict`` is the estimator's; ``predict_conformed`` takes the array route when safe."""

    __slots__ = ("_columns_seen", "_fitted_names", "_safe", "model")

    def __init__(self, model: Any) -> None:
        self.model = model
        self._safe: bool | None = None  # decided on first use: loading stays as fast as it was
        names = getattr(model, "feature_names_in_", None)
        self._fitted_names = None if names is None else [str(name) for name in names]
        self._columns_seen: Any = None  # the last columns object found in fitted order

    def predict(self, data: Any) -> Any:
        return self.model.predict(data)

    def predict_conformed(self, data: Any) -> Any:
        """The prediction for input already checked against the model's signature."""
        if self._takes_array(data):
            _ignore_array_warning()
            return self.model.predict(data.to_numpy())
        return self.model.predict(data)

    def _takes_array(self, data: Any) -> bool:
        columns = getattr(data, "columns", None)
        if columns is None or not hasattr(data, "to_numpy"):
            return False
        if self._safe is None:
            self._safe = array_safe(self.model)
        if not self._safe:
            return False
        if columns is not self._columns_seen:
            if self._fitted_names is not None and [str(c) for c in columns] != self._fitted_names:
                return False
            self._columns_seen = columns  # the serving app passes its signature's one Index each batch
        import numpy as np

        dtypes = set(data.dtypes)
        if len(dtypes) != 1:
            return False
        dtype = dtypes.pop()  # a pandas extension dtype (nullable, categorical, string) is not an np.dtype
        return isinstance(dtype, np.dtype) and dtype.kind in _NUMERIC_KINDS


def _ignore_array_warning() -> None:
    # Checked each time: code that resets the filters (``catch_warnings``, test runners) may have
    # dropped it; looking costs a scan of a short list, adding it again clears warning caches.
    if not any(f[0] == "ignore" and f[1] is not None and f[1].pattern == _ARRAY_WARNING for f in warnings.filters):
        warnings.filterwarnings("ignore", message=_ARRAY_WARNING, category=UserWarning)
