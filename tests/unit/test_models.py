"""Model packages end to end: log, load, predict with signature checks, tamper refusal."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import ArtifactCorrupted, InvalidInput
from shipyard.models.manifest import ModelManifest
from shipyard.models.package import load_model_folder, save_model


@pytest.fixture
def data() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"age": rng.integers(18, 90, 200), "income": rng.normal(50, 10, 200),
                          "visits": rng.integers(0, 20, 200)})
    target = (frame["income"] + frame["visits"] > 58).astype(int).to_numpy()
    return frame, target


@pytest.fixture
def pipeline(data):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame, target = data
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, target)


def test_sklearn_round_trip_through_a_run(fluent: str, data, pipeline) -> None:
    frame, _ = data
    with shipyard.start_run() as run:
        manifest = shipyard.log_model(pipeline, "model", input_example=frame.head(5))
    assert manifest.flavor == "sklearn"
    assert manifest.flavor_options["format"] == "skops"
    assert manifest.pickle_based is False
    assert any(r.startswith("scikit-learn==") for r in manifest.requirements)
    assert manifest.signature["inputs"]
    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    assert loaded.flavor == "sklearn"
    np.testing.assert_array_equal(loaded.predict(frame), pipeline.predict(frame))
    listed = {a.path for a in shipyard.list_artifacts(run.run_id, "model")}
    assert {"model/MLmodel", "model/model.skops", "model/input_example.json"} <= listed


def test_signature_is_enforced_at_predict(fluent: str, data, pipeline) -> None:
    frame, _ = data
    with shipyard.start_run() as run:
        shipyard.log_model(pipeline, "model", input_example=frame.head(5))
    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    reordered = frame[["visits", "income", "age"]]
    np.testing.assert_array_equal(loaded.predict(reordered), pipeline.predict(frame))
    with pytest.raises(InvalidInput, match="income"):
        loaded.predict(frame.drop(columns=["income"]))
    with pytest.raises(InvalidInput, match="age"):
        loaded.predict(frame.assign(age=frame["age"].astype(str)))


def test_a_changed_file_is_refused_with_its_name(tmp_path: Path, pipeline) -> None:
    save_model(pipeline, tmp_path / "m")
    with (tmp_path / "m" / "model.skops").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactCorrupted, match=r"model\.skops"):
        load_model_folder(tmp_path / "m")


def test_an_added_file_is_refused(tmp_path: Path, pipeline) -> None:
    save_model(pipeline, tmp_path / "m")
    (tmp_path / "m" / "evil.py").write_text("print('hi')")
    with pytest.raises(ArtifactCorrupted, match=r"evil\.py"):
        load_model_folder(tmp_path / "m")


class Majority:
    """A custom estimator outside scikit-learn's trusted types: skops refuses it by default."""


def _majority_class():
    from sklearn.base import BaseEstimator, ClassifierMixin

    class _Majority(ClassifierMixin, BaseEstimator):
        def fit(self, X, y):
            self.label_ = int(np.bincount(y).argmax())
            return self

        def predict(self, X):
            return np.full(len(X), self.label_)

    _Majority.__module__, _Majority.__qualname__ = __name__, "Majority"
    return _Majority


def test_custom_estimator_falls_back_to_joblib_and_is_flagged(tmp_path: Path, data) -> None:
    global Majority
    Majority = _majority_class()  # module level, so pickle can find it
    frame, target = data
    manifest = save_model(Majority().fit(frame, target), tmp_path / "m")
    assert manifest.flavor_options["format"] == "joblib"
    assert manifest.pickle_based is True
    assert ModelManifest.read(tmp_path / "m").pickle_based is True
    assert (load_model_folder(tmp_path / "m").predict(frame) == np.bincount(target).argmax()).all()


def test_pyfunc_with_code_paths_and_artifacts(fluent: str, tmp_path: Path) -> None:
    code = tmp_path / "src" / "doubler.py"
    code.parent.mkdir()
    code.write_text(textwrap.dedent("""
        import json
        from shipyard.models import PythonModel

        class Doubler(PythonModel):
            def load_context(self, context):
                self.factor = json.loads(context.artifacts["config"].read_text())["factor"]

            def predict(self, context, model_input):
                return [x * self.factor for x in model_input["x"]]
    """))
    config = tmp_path / "config.json"
    config.write_text('{"factor": 2}')
    import sys

    sys.path.insert(0, str(code.parent))
    try:
        import doubler

        model = doubler.Doubler()
    finally:
        sys.path.remove(str(code.parent))
    with shipyard.start_run() as run:
        manifest = shipyard.log_model(model, "m", code_paths=[str(code)], artifacts={"config": str(config)})
    sys.modules.pop("doubler", None)
    assert manifest.flavor == "pyfunc"
    assert manifest.pickle_based is True
    loaded = shipyard.load_model(f"runs:/{run.run_id}/m")
    assert loaded.predict({"x": [1, 2, 3]}) == [2, 4, 6]


@pytest.mark.parametrize("bad", [object(), "a string", 42], ids=["object", "str", "int"])
def test_unsupported_object_lists_the_flavors(tmp_path: Path, bad) -> None:
    with pytest.raises(InvalidInput, match="supported flavors: pyfunc, sklearn"):
        save_model(bad, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_bad_model_uris(fluent: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="runs:/<run_id>/<artifact path>"):
        shipyard.load_model("runs:/only-an-id")
    with pytest.raises(InvalidInput, match="expected runs:/"):
        shipyard.load_model("ftp://x/y")
    with pytest.raises(InvalidInput, match="not a Shipyard model"):
        shipyard.load_model(str(tmp_path))
    with pytest.raises(InvalidInput, match="unknown model flavor 'tensorflow'"):
        save_model(object(), tmp_path / "m", flavor="tensorflow")


def test_a_finished_run_takes_a_new_model_but_never_replaces_one(fluent: str, pipeline) -> None:
    from shipyard.errors import Conflict, RunNotActive

    with shipyard.start_run() as run:
        shipyard.log_model(pipeline, "model")
    client = shipyard.Client(tracking_uri=fluent)
    try:
        client.log_model(run.run_id, pipeline, "challenger")  # new files: allowed after the end
        with pytest.raises(Conflict, match="immutable"):
            client.log_model(run.run_id, pipeline, "model")
        client.delete_run(run.run_id)
        with pytest.raises(RunNotActive, match="deleted"):
            client.log_model(run.run_id, pipeline, "third")
    finally:
        client.close()


_TRUSTED = ("import json, sys; from skops.io import _trusted_types as t; print(json.dumps("
            "[sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES), 'torch' in sys.modules, 'pytest' in sys.modules]))")


def test_skops_is_imported_without_torch_or_pytest_and_trusts_the_same_types() -> None:
    """Listing scikit-learn's estimators (skops's import) imports torch and pytest when installed; the
    flavor hides those it does not need, and skops trusts exactly the types it trusts otherwise."""
    import json
    import subprocess
    import sys

    def trusted(code: str) -> list:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    hidden = trusted("from shipyard.models.flavors.sklearn import _skops_io; _skops_io(); " + _TRUSTED)
    plain = trusted("import skops.io; " + _TRUSTED)
    assert hidden[0] == plain[0]
    assert len(hidden[0]) > 100
    assert hidden[1:] == [False, False]
    # Already loaded, they stay usable: nothing is hidden from a process that imported them first.
    assert trusted("import pytest; from shipyard.models.flavors.sklearn import _skops_io; _skops_io(); "
                   + _TRUSTED)[2] is True
