"""The XGBoost, LightGBM and ONNX flavors end to end: log in a run, load back, same predictions,
signature enforced, no pickle, a changed file refused. (torch: test_flavors_torch.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import ArtifactCorrupted, InvalidInput
from shipyard.models.package import load_model_folder, save_model

ROWS = 60


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=ROWS), "b": rng.normal(size=ROWS), "c": rng.integers(0, 5, ROWS)})
    target = (frame["a"] + frame["b"] + 0.2 * frame["c"] > 0.4).astype(int).to_numpy()
    return frame, target


# -- the models: (model, how to predict with the original, model file, flavor) ----------------------

def _xgb_classifier(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=4, max_depth=2, n_jobs=1).fit(frame, target)
    return model, model.predict


def _xgb_regressor(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import xgboost

    model = xgboost.XGBRegressor(n_estimators=4, max_depth=2, n_jobs=1).fit(frame, frame["a"] * 2 + target)
    return model, model.predict


def _xgb_booster(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import xgboost

    booster = xgboost.train({"max_depth": 2, "nthread": 1}, xgboost.DMatrix(frame, label=target), 4)
    return booster, lambda x: booster.predict(xgboost.DMatrix(x))


_LGBM = {"n_estimators": 4, "num_leaves": 4, "min_child_samples": 5, "n_jobs": 1, "verbose": -1}


def _lgbm_classifier(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import lightgbm

    model = lightgbm.LGBMClassifier(**_LGBM).fit(frame, np.where(target == 1, "yes", "no"))
    return model, model.predict


def _lgbm_regressor(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import lightgbm

    model = lightgbm.LGBMRegressor(**_LGBM).fit(frame, frame["a"] * 2 + target)
    return model, model.predict


def _lgbm_booster(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    import lightgbm

    params = {"num_leaves": 4, "min_data_in_leaf": 5, "num_threads": 1, "verbose": -1}
    booster = lightgbm.train(params, lightgbm.Dataset(frame, label=target), 4)
    return booster, booster.predict


def _linear_onnx(n_inputs: int = 3) -> Any:
    """y = x @ W + B as an ONNX graph built by hand (MatMul + Add)."""
    from onnx import TensorProto, helper

    weights = helper.make_tensor("W", TensorProto.FLOAT, [n_inputs, 1], [0.5, -1.0, 2.0][:n_inputs])
    bias = helper.make_tensor("B", TensorProto.FLOAT, [1], [0.25])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, n_inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [weights, bias])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _onnx_run(model: Any, feed: dict[str, Any]) -> Any:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def _onnx_linear(frame: pd.DataFrame, target: np.ndarray) -> tuple[Any, Callable[[Any], Any]]:
    model = _linear_onnx()
    return model, lambda x: _onnx_run(model, {"x": x.to_numpy(np.float32)})[0]


CASES = {
    "xgboost-classifier": (_xgb_classifier, "model.ubj", "xgboost"),
    "xgboost-regressor": (_xgb_regressor, "model.ubj", "xgboost"),
    "xgboost-booster": (_xgb_booster, "model.ubj", "xgboost"),
    "lightgbm-classifier": (_lgbm_classifier, "model.txt", "lightgbm"),
    "lightgbm-regressor": (_lgbm_regressor, "model.txt", "lightgbm"),
    "lightgbm-booster": (_lgbm_booster, "model.txt", "lightgbm"),
    "onnx-linear": (_onnx_linear, "model.onnx", "onnx"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_round_trip_through_a_run(fluent: str, data, case: str) -> None:
    build, model_file, flavor = CASES[case]
    frame, target = data
    model, original_predict = build(frame, target)
    with shipyard.start_run() as run:
        manifest = shipyard.log_model(model, "model", input_example=frame.head(5))
    assert manifest.flavor == flavor
    assert manifest.pickle_based is False
    assert manifest.flavor_options["file"] == model_file
    assert any(r.partition("==")[0] in (flavor, "xgboost-cpu") for r in manifest.requirements), manifest.requirements

    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    assert (loaded.flavor, loaded.pickle_based) == (flavor, False)
    assert type(loaded.unwrap()) is type(model)
    np.testing.assert_array_equal(loaded.predict(frame), original_predict(frame))
    np.testing.assert_array_equal(loaded.predict(frame[["c", "b", "a"]]), original_predict(frame))  # reordered

    with pytest.raises(InvalidInput, match="missing column 'b'"):
        loaded.predict(frame.drop(columns=["b"]))
    with pytest.raises(InvalidInput, match="column 'a': expected float64, got string"):
        loaded.predict(frame.assign(a=frame["a"].astype(str)))


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_changed_model_file_is_refused(tmp_path: Path, data, case: str) -> None:
    build, model_file, _ = CASES[case]
    model, _ = build(*data)
    save_model(model, tmp_path / "m")
    with (tmp_path / "m" / model_file).open("ab") as handle:
        handle.write(b"\x00tampered")
    with pytest.raises(ArtifactCorrupted, match=model_file.replace(".", r"\.")):
        load_model_folder(tmp_path / "m")


def test_unsupported_object_lists_all_six_flavors(tmp_path: Path) -> None:
    from shipyard.models.flavors import flavor_for

    expected = "supported flavors: pyfunc, sklearn, xgboost, lightgbm, torch, onnx"
    with pytest.raises(InvalidInput, match=expected):
        flavor_for(object())
    with pytest.raises(InvalidInput, match=expected):
        save_model({"not": "a model"}, tmp_path / "m")


# -- XGBoost -------------------------------------------------------------------------------------

def test_xgboost_classifier_keeps_classes_probabilities_and_params(tmp_path: Path, data) -> None:
    frame, target = data
    model, _ = _xgb_classifier(frame, target)
    manifest = save_model(model, tmp_path / "m")
    assert manifest.flavor_options["estimator"] == "xgboost.sklearn:XGBClassifier"
    assert manifest.flavor_options["params"]["n_estimators"] == 4
    restored = load_model_folder(tmp_path / "m").unwrap()
    np.testing.assert_array_equal(restored.classes_, model.classes_)
    np.testing.assert_array_equal(restored.predict_proba(frame), model.predict_proba(frame))
    assert restored.get_params()["max_depth"] == 2


def test_xgboost_booster_takes_a_numpy_array(tmp_path: Path, data) -> None:
    import xgboost

    frame, target = data
    booster = xgboost.train({"max_depth": 2, "nthread": 1}, xgboost.DMatrix(frame.to_numpy(), label=target), 3)
    save_model(booster, tmp_path / "m", input_example=frame.to_numpy()[:5])
    loaded = load_model_folder(tmp_path / "m")
    expected = booster.predict(xgboost.DMatrix(frame.to_numpy()))
    np.testing.assert_array_equal(loaded.predict(frame.to_numpy()), expected)
    with pytest.raises(InvalidInput, match=r"input shape \(60, 2\) does not match expected \(-1, 3\)"):
        loaded.predict(frame.to_numpy()[:, :2])


def test_unfitted_estimators_are_refused(tmp_path: Path) -> None:
    import lightgbm
    import xgboost

    with pytest.raises(InvalidInput, match="unfitted XGBRegressor"):
        save_model(xgboost.XGBRegressor(), tmp_path / "x")
    with pytest.raises(InvalidInput, match="unfitted LGBMClassifier"):
        save_model(lightgbm.LGBMClassifier(), tmp_path / "l")


# -- LightGBM ------------------------------------------------------------------------------------

def test_lightgbm_classifier_is_rebuilt_faithfully(tmp_path: Path, data) -> None:
    frame, target = data
    model, _ = _lgbm_classifier(frame, target)
    manifest = save_model(model, tmp_path / "m", input_example=frame.head(5))
    assert manifest.flavor_options["classes"]["values"] == ["no", "yes"]
    restored = load_model_folder(tmp_path / "m").unwrap()
    np.testing.assert_array_equal(restored.classes_, model.classes_)
    assert restored.classes_.dtype == model.classes_.dtype
    np.testing.assert_array_equal(restored.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(restored.predict_proba(frame), model.predict_proba(frame))
    assert list(restored.feature_names_in_) == ["a", "b", "c"]
    assert (restored.n_features_in_, restored.n_classes_, restored.objective_) == (3, 2, "binary")
    assert restored.get_params() == model.get_params()


def test_lightgbm_multiclass_with_integer_labels(tmp_path: Path, data) -> None:
    import lightgbm

    frame, _ = data
    labels = np.array([3, 7, 9])[(frame["c"].to_numpy() % 3)]
    model = lightgbm.LGBMClassifier(**_LGBM).fit(frame, labels)
    save_model(model, tmp_path / "m", input_example=frame.head(5))
    restored = load_model_folder(tmp_path / "m").unwrap()
    np.testing.assert_array_equal(restored.predict(frame), model.predict(frame))
    np.testing.assert_array_equal(restored.predict_proba(frame), model.predict_proba(frame))
    assert restored.classes_.dtype == model.classes_.dtype


def test_lightgbm_params_a_manifest_cannot_hold_are_listed(tmp_path: Path, data) -> None:
    import lightgbm

    frame, target = data
    model = lightgbm.LGBMRegressor(**_LGBM, random_state=np.random.RandomState(0)).fit(frame, target)
    manifest = save_model(model, tmp_path / "m")
    assert manifest.flavor_options["dropped_params"] == ["random_state"]
    np.testing.assert_array_equal(load_model_folder(tmp_path / "m").predict(frame), model.predict(frame))


def test_lightgbm_custom_objective_is_refused(tmp_path: Path, data) -> None:
    import lightgbm

    def squared(y_true, y_pred):
        return y_pred - y_true, np.ones_like(y_pred)

    frame, target = data
    model = lightgbm.LGBMRegressor(**_LGBM, objective=squared).fit(frame, target.astype(float))
    with pytest.raises(InvalidInput, match=r"custom objective function .* log model\.booster_ instead"):
        save_model(model, tmp_path / "m")
    manifest = save_model(model.booster_, tmp_path / "b")
    assert manifest.flavor == "lightgbm"


# -- ONNX ----------------------------------------------------------------------------------------

def _two_input_onnx() -> Any:
    """y = 2 * age + income, with age and income as separate (n, 1) inputs."""
    from onnx import TensorProto, helper

    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["age", "two"], ["age2"]), helper.make_node("Add", ["age2", "income"], ["y"])],
        "two_inputs",
        [helper.make_tensor_value_info("age", TensorProto.FLOAT, [None, 1]),
         helper.make_tensor_value_info("income", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], [two])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_onnx_model_with_one_input_per_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"age": [30, 40, 50], "income": [1.5, 2.5, 3.5]})
    save_model(_two_input_onnx(), tmp_path / "m", input_example=frame)
    loaded = load_model_folder(tmp_path / "m")
    np.testing.assert_array_equal(loaded.predict(frame), np.array([[61.5], [82.5], [103.5]], dtype=np.float32))
    with pytest.raises(InvalidInput, match="missing column 'income'"):
        loaded.predict(frame[["age"]])
    save_model(_two_input_onnx(), tmp_path / "unsigned")
    with pytest.raises(InvalidInput, match="missing input 'income'"):
        load_model_folder(tmp_path / "unsigned").predict({"age": np.array([1.0])})


def test_onnx_takes_a_float64_array_and_refuses_an_invalid_graph(tmp_path: Path) -> None:
    from onnx import helper

    model = _linear_onnx()
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    save_model(model, tmp_path / "m", input_example=x)
    expected = _onnx_run(model, {"x": x.astype(np.float32)})[0]
    np.testing.assert_array_equal(load_model_folder(tmp_path / "m").predict(x), expected)

    broken = helper.make_model(helper.make_graph([helper.make_node("MatMul", ["x", "missing"], ["y"])], "broken",
                                                 [], []), opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidInput, match="not a valid ONNX model"):
        save_model(broken, tmp_path / "broken")


def test_unknown_flavor_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown option for the onnx flavor: init_kwargs"):
        save_model(_linear_onnx(), tmp_path / "m", flavor_options={"init_kwargs": {}})
