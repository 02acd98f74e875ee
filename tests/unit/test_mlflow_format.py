"""MLflow-format model folders, written by the real mlflow client, load and register like Shipyard packages."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import InvalidInput
from shipyard.models.manifest import ModelManifest
from shipyard.models.mlflow_format import is_mlflow_manifest, manifest_fields, signature_from_mlflow
from shipyard.models.package import load_model_folder
from tests.ci import require

mlflow = require("mlflow")  # not a Shipyard dependency: these tests need the real client
with warnings.catch_warnings():
    # mlflow.pyfunc warns about its own type hints while it is imported (pytest makes warnings errors).
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred as AnyType", category=UserWarning)
    import mlflow.pyfunc
    import mlflow.sklearn

# Passing requirements skips mlflow's requirement inference (a subprocess, seconds per model).
REQUIREMENTS = ["scikit-learn", "skops", "cloudpickle"]


class Doubler(mlflow.pyfunc.PythonModel):
    """A custom MLflow pyfunc: cloudpickled by mlflow, so only mlflow can load it back."""

    # Type hints, or mlflow prints a warning (past pytest's filters) asking for them.
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        return model_input["a"] * 2


@contextmanager
def _mlflow_saving() -> Iterator[None]:
    """Silence the pandas deprecation mlflow's input-example code hits (pytest makes warnings
    errors), by its message and module, so that any other warning still fails."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Operation with range is deprecated", module="mlflow")
        yield


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})


@pytest.fixture(scope="module")
def model(frame: pd.DataFrame):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame, (frame["a"] + frame["b"] > 0).astype(int))


@pytest.fixture(scope="module")
def array_model(frame: pd.DataFrame):
    """Fitted on a plain array, so its signature is a tensor (not named columns)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit(frame.to_numpy(), (frame["a"] > 0).astype(int).to_numpy())


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory, model, array_model, frame: pd.DataFrame) -> dict[str, Path]:
    """One folder per way of saving: skops (mlflow's default) with a signature from an input
    example, cloudpickle without one, a tensor signature, and a custom pyfunc."""
    root = tmp_path_factory.mktemp("mlflow-models")
    example = frame.head(3)
    with _mlflow_saving():
        mlflow.sklearn.save_model(model, root / "skops", input_example=example, pip_requirements=REQUIREMENTS)
        mlflow.sklearn.save_model(model, root / "cloudpickle", serialization_format="cloudpickle",
                                  pip_requirements=REQUIREMENTS)
        mlflow.sklearn.save_model(array_model, root / "tensor", input_example=example.to_numpy(),
                                  pip_requirements=REQUIREMENTS)
        mlflow.pyfunc.save_model(root / "pyfunc", python_model=Doubler(), input_example=example,
                                 pip_requirements=REQUIREMENTS)
    return {p.name: p for p in root.iterdir()}


# -- loading a folder ---------------------------------------------------------------------------------
def test_skops_sklearn_loads_natively_with_its_signature(folders, model, frame: pd.DataFrame) -> None:
    loaded = load_model_folder(folders["skops"])
    assert (loaded.flavor, loaded.pickle_based) == ("sklearn", False)
    assert loaded.manifest.flavor_options["format"] == "skops"
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert type(loaded.unwrap()) is type(model)
    with pytest.raises(InvalidInput, match="missing column 'b'"):
        loaded.predict(frame[["a"]])


def test_the_manifest_is_built_from_the_folder(folders) -> None:
    manifest = ModelManifest.read(folders["skops"])
    assert manifest.requirements == [f"mlflow=={mlflow.__version__}", *REQUIREMENTS]  # mlflow adds itself
    assert manifest.python_version == f"{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    assert {"model.skops", "requirements.txt", "input_example.json"} <= set(manifest.files)
    assert "MLmodel" not in manifest.files
    assert all(d.startswith("sha256:") for d in manifest.files.values())
    assert manifest.extra["mlflow_flavors"] == ["python_function", "sklearn"]
    assert manifest.created > 0


def test_cloudpickle_sklearn_loads_and_is_pickle_based(folders, model, frame: pd.DataFrame) -> None:
    loaded = load_model_folder(folders["cloudpickle"])
    assert (loaded.flavor, loaded.pickle_based) == ("sklearn", True)
    assert loaded.manifest.signature is None  # saved without an input example
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


def test_a_tensor_signature_is_enforced(folders, array_model, frame: pd.DataFrame) -> None:
    loaded = load_model_folder(folders["tensor"])
    assert loaded.manifest.signature["inputs"] == {
        "kind": "tensor", "columns": [{"name": None, "dtype": "float64", "shape": [-1, 2]}]}
    values = frame.to_numpy()
    np.testing.assert_array_equal(loaded.predict(values), array_model.predict(values))
    with pytest.raises(InvalidInput, match="does not match expected"):
        loaded.predict(values[:, :1])


def test_custom_pyfunc_is_loaded_by_mlflow(folders, frame: pd.DataFrame) -> None:
    loaded = load_model_folder(folders["pyfunc"])
    assert (loaded.flavor, loaded.pickle_based) == ("pyfunc", True)
    assert isinstance(loaded.unwrap(), Doubler)
    np.testing.assert_allclose(np.asarray(loaded.predict(frame)), frame["a"].to_numpy() * 2)
    with pytest.raises(InvalidInput, match="missing column 'b'"):
        loaded.predict(frame[["a"]])


def test_a_pyfunc_without_mlflow_installed_says_what_to_install(folders, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("mlflow", "mlflow.pyfunc", "mlflow.exceptions"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import mlflow...` raise ImportError
    with pytest.raises(InvalidInput, match="pip install mlflow-skinny"):
        load_model_folder(folders["pyfunc"])


def test_a_sklearn_model_loads_without_importing_mlflow(folders, frame: pd.DataFrame,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("mlflow", "mlflow.pyfunc", "mlflow.sklearn"):
        monkeypatch.setitem(sys.modules, name, None)
    assert len(load_model_folder(folders["cloudpickle"]).predict(frame)) == len(frame)


def test_a_folder_without_a_loadable_flavor_names_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  keras:\n    data: model.keras\n  h2o:\n    data: model.h2o\n")
    with pytest.raises(InvalidInput, match=r"no flavor Shipyard can load \(found: h2o, keras\)"):
        load_model_folder(tmp_path)


# -- registering a logged folder ------------------------------------------------------------------------
@pytest.mark.parametrize(("folder", "pickle_based"), [("skops", "false"), ("cloudpickle", "true"),
                                                      ("pyfunc", "true")], ids=["skops", "cloudpickle", "pyfunc"])
def test_register_and_load_a_logged_mlflow_folder(fluent: str, folders, model, frame: pd.DataFrame, folder: str,
                                                  pickle_based: str) -> None:
    with shipyard.start_run() as run:
        shipyard.log_artifacts(folders[folder], "model")
    version = shipyard.register_model(f"runs:/{run.run_id}/model", "m")
    flavor = "pyfunc" if folder == "pyfunc" else "sklearn"
    assert version.tags["shipyard.flavor"] == flavor
    assert version.tags["shipyard.pickle_based"] == pickle_based
    loaded = shipyard.load_model("models:/m/1")
    expected = frame["a"].to_numpy() * 2 if folder == "pyfunc" else model.predict(frame)
    np.testing.assert_allclose(np.asarray(loaded.predict(frame)), expected)


def test_the_stored_manifest_matches_the_downloaded_one(fluent: str, folders) -> None:
    with shipyard.start_run() as run:
        shipyard.log_artifacts(folders["skops"], "model")
    client = shipyard.Client(tracking_uri=fluent)
    try:
        stored = client.get_model_manifest(f"runs:/{run.run_id}/model")
    finally:
        client.close()
    assert stored == ModelManifest.read(folders["skops"])


def test_registering_a_folder_without_a_loadable_flavor_is_refused(fluent: str, tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors:\n  keras:\n    data: model.keras\n")
    with shipyard.start_run() as run:
        shipyard.log_artifacts(tmp_path, "model")
    with pytest.raises(InvalidInput, match="found: keras"):
        shipyard.register_model(f"runs:/{run.run_id}/model", "m")


# -- the signature ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("inputs", "expected"), [
    ('[{"type": "long", "name": "n"}, {"type": "string", "name": "s", "required": false}]',
     {"kind": "columns", "columns": [{"name": "n", "dtype": "int64"},
                                     {"name": "s", "dtype": "string", "optional": True}]}),
    ('[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 28, 28]}}]',
     {"kind": "tensor", "columns": [{"name": None, "dtype": "float32", "shape": [-1, 28, 28]}]}),
    ('[{"type": "array", "items": {"type": "double"}, "name": "v"}]', None),
    ('[{"type": "double"}]', None),
    ('[{"type": "tensor", "name": "x", "tensor-spec": {"dtype": "float64", "shape": [-1]}}]', None),
    ('[{"type": "tensor", "tensor-spec": {"dtype": "uint64", "shape": [-1]}}]', None),
    ("not json", None),
], ids=["columns", "tensor", "array-column", "unnamed-column", "named-tensor", "unmapped-dtype", "garbage"])
def test_signature_conversion_maps_what_is_clear(inputs: str, expected: dict | None) -> None:
    converted = signature_from_mlflow({"inputs": inputs, "outputs": None, "params": None})
    assert (converted["inputs"] if converted else None) == expected


def test_is_mlflow_manifest() -> None:
    assert is_mlflow_manifest({"flavors": {}})
    assert not is_mlflow_manifest({"flavor": "sklearn"})
    assert not is_mlflow_manifest(["flavors"])


# -- what runs code on load ---------------------------------------------------------------------------
SKLEARN = {"pickled_model": "model.skops", "serialization_format": "skops"}


@pytest.mark.parametrize(("flavors", "expected"), [
    ({"sklearn": SKLEARN}, ("sklearn", False)),
    ({"sklearn": {**SKLEARN, "skops_trusted_types": ["mypackage.Thing"]}}, ("sklearn", True)),
    ({"sklearn": {"pickled_model": "model.pkl", "serialization_format": "pickle"}}, ("sklearn", True)),
    ({"python_function": {"loader_module": "mlflow.pyfunc.model", "python_model": "python_model.pkl"}},
     ("pyfunc", True)),
    ({"python_function": {"loader_module": "mlflow.onnx", "data": "model.onnx"}}, ("pyfunc", False)),
    ({"python_function": {"loader_module": "mlflow.lightgbm", "data": "model.pkl"}}, ("pyfunc", True)),
    ({"python_function": {"loader_module": "my_package.loader", "data": "weights.bin"}}, ("pyfunc", True)),
], ids=["skops", "skops-trusting-types", "pickle", "python-model", "onnx", "lightgbm-pickle", "own-loader"])
def test_pickle_based_says_whether_loading_runs_code(flavors: dict, expected: tuple[str, bool]) -> None:
    manifest = ModelManifest(**manifest_fields({"flavors": flavors}, "MLmodel"))
    assert (manifest.flavor, manifest.pickle_based) == expected


def test_an_unknown_sklearn_serialization_format_is_refused() -> None:
    with pytest.raises(InvalidInput, match="serialization_format 'joblib'"):
        manifest_fields({"flavors": {"sklearn": {"pickled_model": "m", "serialization_format": "joblib"}}}, "MLmodel")
