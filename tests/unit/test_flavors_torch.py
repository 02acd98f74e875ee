"""The torch flavor: nn.Module as safetensors weights + class + init_kwargs, and TorchScript.

torch is installed by the Makefile (a CPU build pinned there); without it these tests skip,
except under CI (see tests/ci.py), where they must run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import ArtifactCorrupted, InvalidInput
from shipyard.models.package import load_model_folder, save_model
from tests.ci import require

torch = require("torch")  # under CI the torch tests must run: a missing torch is an error, not a skip



def _jit_deprecated(test):
    """torch 2.13 deprecates TorchScript (torch.jit.script, save, load) in favour of torch.export:
    ignore exactly those three warnings in the tests that use it."""
    for name in ("script", "save", "load"):
        test = pytest.mark.filterwarnings(f"ignore:`torch.jit.{name}` is deprecated:DeprecationWarning")(test)
    return test


class TinyNet(torch.nn.Module):
    """Linear -> BatchNorm (buffers: running statistics) -> ReLU -> Linear."""

    def __init__(self, n_in: int = 3, hidden: int = 4) -> None:
        super().__init__()
        self.hidden = torch.nn.Linear(n_in, hidden)
        self.norm = torch.nn.BatchNorm1d(hidden)
        self.out = torch.nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.norm(self.hidden(x))))


class BagOfEmbeddings(torch.nn.Module):
    """Takes integer token ids, not floats."""

    def __init__(self, vocabulary: int, dim: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocabulary, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embedding(ids).sum(dim=1)


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=40), "b": rng.normal(size=40), "c": rng.integers(0, 5, 40)})


def _trained(module: torch.nn.Module, frame: pd.DataFrame) -> torch.nn.Module:
    """The module after a forward pass in train mode (so BatchNorm's running statistics moved), in eval mode."""
    torch.manual_seed(0)
    module.train()
    with torch.no_grad():
        module(torch.as_tensor(frame.to_numpy(np.float32)))
    return module.eval()


def _expected(module: torch.nn.Module, frame: pd.DataFrame) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(frame.to_numpy(np.float32))).numpy()


def test_module_round_trip_through_a_run(fluent: str, frame: pd.DataFrame) -> None:
    torch.manual_seed(0)
    model = _trained(TinyNet(), frame)
    with shipyard.start_run() as run:
        manifest = shipyard.log_model(model, "model", input_example=frame.head(5))
    assert (manifest.flavor, manifest.pickle_based) == ("torch", False)
    assert manifest.flavor_options["format"] == "safetensors"
    assert manifest.flavor_options["class"] == f"{__name__}:TinyNet"
    assert manifest.flavor_options["input_dtype"] == "float32"
    assert any(r.startswith("safetensors==") for r in manifest.requirements)

    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    assert (loaded.flavor, loaded.pickle_based) == ("torch", False)
    assert isinstance(loaded.unwrap(), TinyNet)
    assert not loaded.unwrap().training
    np.testing.assert_array_equal(loaded.predict(frame), _expected(model, frame))
    torch.testing.assert_close(loaded.unwrap().norm.running_mean, model.norm.running_mean, rtol=0, atol=0)
    with pytest.raises(InvalidInput, match="missing column 'c'"):
        loaded.predict(frame.drop(columns=["c"]))
    with pytest.raises(InvalidInput, match="column 'b': expected float64, got string"):
        loaded.predict(frame.assign(b=frame["b"].astype(str)))


def test_init_kwargs_rebuild_the_module(tmp_path: Path, frame: pd.DataFrame) -> None:
    model = _trained(TinyNet(n_in=3, hidden=7), frame)
    manifest = save_model(model, tmp_path / "m", input_example=frame.head(5),
                          flavor_options={"init_kwargs": {"n_in": 3, "hidden": 7}})
    assert manifest.flavor_options["init_kwargs"] == {"n_in": 3, "hidden": 7}
    loaded = load_model_folder(tmp_path / "m")
    assert loaded.unwrap().hidden.out_features == 7
    np.testing.assert_array_equal(loaded.predict(frame), _expected(model, frame))


def test_a_module_that_cannot_be_rebuilt_is_refused_at_save(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"(?s)do not fit .*:TinyNet\(\*\*\{\}\): .*size mismatch.*; pass "):
        save_model(TinyNet(hidden=7), tmp_path / "m")
    with pytest.raises(InvalidInput, match=r"cannot build .*BagOfEmbeddings\(\*\*\{\}\): .*; pass .* init_kwargs"):
        save_model(BagOfEmbeddings(10, 2), tmp_path / "e")
    with pytest.raises(InvalidInput, match="unknown option for the torch flavor: init_kwarg "):
        save_model(TinyNet(), tmp_path / "typo", flavor_options={"init_kwarg": {}})


def test_local_classes_are_refused(tmp_path: Path) -> None:
    class Local(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    with pytest.raises(InvalidInput, match="define it in an importable module"):
        save_model(Local(), tmp_path / "m")


def test_integer_inputs_with_input_dtype(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BagOfEmbeddings(10, 2).eval()
    ids = np.array([[1, 2, 3], [4, 5, 6]])
    save_model(model, tmp_path / "m", input_example=ids,
               flavor_options={"init_kwargs": {"vocabulary": 10, "dim": 2}, "input_dtype": "int64"})
    with torch.no_grad():
        expected = model(torch.as_tensor(ids)).numpy()
    np.testing.assert_array_equal(load_model_folder(tmp_path / "m").predict(ids), expected)


def test_an_edited_class_in_the_manifest_is_refused(tmp_path: Path) -> None:
    import yaml

    save_model(TinyNet(), tmp_path / "m")
    raw = yaml.safe_load((tmp_path / "m" / "MLmodel").read_text())
    raw["flavor_options"] |= {"class": "subprocess:run", "init_kwargs": {"args": ["true"]}}
    (tmp_path / "m" / "MLmodel").write_text(yaml.safe_dump(raw))
    with pytest.raises(InvalidInput, match=r"'subprocess:run' is not a torch\.nn\.Module class"):
        load_model_folder(tmp_path / "m")


def test_a_changed_weights_file_is_refused(tmp_path: Path) -> None:
    save_model(TinyNet(), tmp_path / "m")
    with (tmp_path / "m" / "model.safetensors").open("ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(ArtifactCorrupted, match=r"model\.safetensors"):
        load_model_folder(tmp_path / "m")


@_jit_deprecated
def test_torchscript_round_trip_through_a_run(fluent: str, frame: pd.DataFrame) -> None:
    torch.manual_seed(0)
    scripted = torch.jit.script(_trained(TinyNet(), frame))
    with shipyard.start_run() as run:
        manifest = shipyard.log_model(scripted, "model", input_example=frame.head(5))
    assert (manifest.flavor, manifest.pickle_based) == ("torch", False)
    assert manifest.flavor_options["format"] == "torchscript"
    assert "class" not in manifest.flavor_options
    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(frame), _expected(scripted, frame))
    with pytest.raises(InvalidInput, match="missing column 'a'"):
        loaded.predict(frame[["b", "c"]])


@_jit_deprecated
def test_a_changed_torchscript_file_is_refused(tmp_path: Path) -> None:
    save_model(torch.jit.script(TinyNet()), tmp_path / "m")
    with (tmp_path / "m" / "model.pt").open("ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(ArtifactCorrupted, match=r"model\.pt"):
        load_model_folder(tmp_path / "m")


def test_log_model_passes_flavor_options(fluent: str, frame: pd.DataFrame) -> None:
    import shipyard

    model = _trained(TinyNet(n_in=3, hidden=5), frame)
    with shipyard.start_run() as run:
        shipyard.log_model(model, "model", input_example=frame.head(5),
                           flavor_options={"init_kwargs": {"n_in": 3, "hidden": 5}})
    loaded = shipyard.load_model(f"runs:/{run.run_id}/model")
    np.testing.assert_array_equal(loaded.predict(frame), _expected(model, frame))
