"""The serving route that predicts a numeric DataFrame as its array: same answers, taken only where
scikit-learn treats the DataFrame as its values."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from shipyard.models.flavors.sklearn_arrays import ArrayRoutePredictor, array_safe

COLUMNS = ["a", "b", "c", "d"]
RNG = np.random.default_rng(3)
X = pd.DataFrame(RNG.normal(size=(300, 4)), columns=COLUMNS)
Y = (X["a"] + X["b"] * X["c"] > 0).astype(int)
BATCH = pd.DataFrame(RNG.normal(size=(17, 4)), columns=COLUMNS)


def fitted(estimator: Any, frame: pd.DataFrame = X) -> Any:
    return estimator.fit(frame, Y)


def spy_on(model: Any) -> list[type]:
    """The types ``model.predict`` receives (an instance attribute: the class stays scikit-learn's)."""
    seen: list[type] = []
    method = type(model).predict

    def predict(data: Any) -> Any:
        seen.append(type(data))
        return method(model, data)

    model.predict = predict
    return seen


class Custom(ClassifierMixin, BaseEstimator):
    """A user's estimator: it may read columns by name, so it keeps its DataFrame."""

    def fit(self, frame: pd.DataFrame, y: Any) -> Custom:
        self.classes_ = np.unique(y)
        return self

    def predict(self, frame: pd.DataFrame) -> Any:
        return (frame["a"] > 0).astype(int).to_numpy()


SAFE = {
    "logistic regression": lambda: fitted(LogisticRegression()),
    "random forest": lambda: fitted(RandomForestClassifier(n_estimators=5, random_state=0)),
    "pipeline": lambda: fitted(make_pipeline(StandardScaler(), LogisticRegression())),
    "histogram boosting": lambda: fitted(HistGradientBoostingClassifier(max_iter=5)),
    "search": lambda: fitted(GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression()),
                                          {"logisticregression__C": [0.1, 1.0]}, cv=2)),
    "voting": lambda: fitted(VotingClassifier([("lr", LogisticRegression()),
                                               ("rf", RandomForestClassifier(n_estimators=3, random_state=0))])),
}
UNSAFE = {
    "column transformer": lambda: fitted(make_pipeline(ColumnTransformer([("s", StandardScaler(), ["a", "b"])]),
                                                       LogisticRegression())),
    "function transformer": lambda: fitted(make_pipeline(FunctionTransformer(lambda f: f[["a", "b"]]),
                                                         LogisticRegression())),
    "pandas output": lambda: fitted(make_pipeline(StandardScaler(), LogisticRegression()).set_output(
        transform="pandas")),
    "another package's estimator": lambda: fitted(Custom()),
    "inside a search": lambda: fitted(GridSearchCV(make_pipeline(ColumnTransformer(
        [("s", StandardScaler(), ["a", "b"])]), LogisticRegression()), {"logisticregression__C": [1.0]}, cv=2)),
}


@pytest.mark.parametrize("name", SAFE)
def test_safe_models_predict_the_array_with_the_same_answers(name: str) -> None:
    model = SAFE[name]()
    expected = model.predict(BATCH)
    predictor = ArrayRoutePredictor(model)
    seen = spy_on(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the feature-name warning of an array must not escape
        answer = predictor.predict_conformed(BATCH)
    assert seen == [np.ndarray]
    np.testing.assert_array_equal(answer, expected)


@pytest.mark.parametrize("name", UNSAFE)
def test_name_aware_models_keep_their_dataframe(name: str) -> None:
    model = UNSAFE[name]()
    assert not array_safe(model)
    expected = model.predict(BATCH)
    seen = spy_on(model)
    np.testing.assert_array_equal(ArrayRoutePredictor(model).predict_conformed(BATCH), expected)
    assert seen == [pd.DataFrame]


@pytest.mark.parametrize("frame", [
    BATCH[["b", "a", "c", "d"]],  # another order: scikit-learn's own error must still be raised
    BATCH.astype({"a": "int64"}),  # mixed dtypes
    BATCH.astype("Float64"),  # a pandas extension dtype
    BATCH.rename(columns={"a": "z"}),
], ids=["column order", "mixed dtypes", "nullable dtype", "other names"])
def test_other_frames_keep_the_dataframe(frame: pd.DataFrame) -> None:
    model = SAFE["logistic regression"]()
    seen = spy_on(model)
    predictor = ArrayRoutePredictor(model)
    try:
        expected: Any = type(model).predict(model, frame)
    except ValueError:
        with pytest.raises(ValueError, match="feature names"):  # scikit-learn's own error, unchanged
            predictor.predict_conformed(frame)
    else:
        np.testing.assert_array_equal(predictor.predict_conformed(frame), expected)
    assert seen == [pd.DataFrame]


def test_a_model_fitted_on_an_array_takes_the_array() -> None:
    model = LogisticRegression().fit(X.to_numpy(), Y)
    seen = spy_on(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # predicting a DataFrame here would warn: "X has feature names"
        answer = ArrayRoutePredictor(model).predict_conformed(BATCH)
    np.testing.assert_array_equal(answer, type(model).predict(model, BATCH.to_numpy()))
    assert seen == [np.ndarray]


def test_plain_predict_is_the_estimators_own() -> None:
    model = SAFE["pipeline"]()
    seen = spy_on(model)
    ArrayRoutePredictor(model).predict(BATCH)
    assert seen == [pd.DataFrame]


def test_an_estimator_that_refers_back_to_itself_is_walked_once() -> None:
    model = SAFE["pipeline"]()
    model.steps[0][1].owner = model  # a cycle: the scaler points back at its pipeline
    model.steps[0][1].history = [model, {"again": model}]
    assert array_safe(model)
