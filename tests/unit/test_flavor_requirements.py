"""A flavor whose framework or helper library is missing says what to install, at log and at load time.

The missing module is simulated the way Python itself reports one that cannot be imported:
``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError``.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import shipyard
from shipyard.errors import MissingDependency, error_class_for_code
from shipyard.models.package import load_model_folder, save_model
from tests.ci import require

FRAME = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in modules:
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def test_missing_safetensors_at_log_time_names_the_torch_extra(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    torch = require("torch")
    module = torch.nn.Linear(2, 1)  # a class torch defines: importable wherever torch is
    _hide(monkeypatch, "safetensors")
    with pytest.raises(MissingDependency) as info:
        save_model(module, tmp_path / "m", flavor_options={"init_kwargs": {"in_features": 2, "out_features": 1}})
    assert "pip install 'shipyard-mlops[torch]'" in info.value.message
    assert "safetensors" in info.value.message
    assert info.value.details["package"] == "safetensors"
    assert info.value.details["extra"] == "torch"


def test_missing_safetensors_at_load_time_names_the_torch_extra(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    torch = require("torch")
    save_model(torch.nn.Linear(2, 1), tmp_path / "m", input_example=np.zeros((2, 2), dtype=np.float32),
               flavor_options={"init_kwargs": {"in_features": 2, "out_features": 1}})
    _hide(monkeypatch, "safetensors")
    with pytest.raises(MissingDependency, match=r"loading a torch model needs safetensors.*shipyard-mlops\[torch\]"):
        load_model_folder(tmp_path / "m")


def test_missing_framework_at_load_time_names_its_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    save_model(LinearRegression().fit(FRAME, [0, 1, 2, 3]), tmp_path / "m", input_example=FRAME)
    _hide(monkeypatch, "skops", "sklearn")
    with pytest.raises(MissingDependency, match=r"shipyard-mlops\[sklearn\]") as info:
        load_model_folder(tmp_path / "m")
    assert info.value.details["extra"] == "sklearn"


def test_the_cli_prints_one_line_and_exits_with_the_error_code(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression
    from typer.testing import CliRunner

    from shipyard.cli import app as cli_app

    save_model(LinearRegression().fit(FRAME, [0, 1, 2, 3]), tmp_path / "m", input_example=FRAME)
    _hide(monkeypatch, "skops", "sklearn")
    monkeypatch.setenv("SHIPYARD_TRACKING_URI", f"sqlite:///{tmp_path / 'db.sqlite'}")
    result = CliRunner().invoke(cli_app, ["serve", str(tmp_path / "m")])
    assert result.exit_code == MissingDependency.exit_code
    assert "pip install 'shipyard-mlops[sklearn]'" in result.output
    assert "Traceback" not in result.output


def test_the_error_travels_by_its_code() -> None:
    assert error_class_for_code("MISSING_DEPENDENCY") is MissingDependency
    assert MissingDependency("x").to_dict()["error_code"] == "MISSING_DEPENDENCY"


def test_other_import_errors_are_not_disguised(tmp_path: Path) -> None:
    """A module that is not a flavor's dependency (the user's own code) keeps its own error."""
    from shipyard.models.flavors import flavor_imports

    with pytest.raises(ModuleNotFoundError, match="my_features"), flavor_imports("pyfunc", "loading"):
        import my_features  # noqa: F401


def test_the_extras_bring_what_the_flavors_import() -> None:
    """safetensors comes with the torch extra and with "all"; torch takes a range of versions, so
    the CPU build the Makefile installs first satisfies it."""
    pyproject = tomllib.loads((Path(shipyard.__file__).parents[2] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    assert any(r.startswith("safetensors>=") for r in extras["torch"])
    assert any(r.startswith("safetensors>=") for r in extras["all"])
    torch_req = next(r for r in extras["torch"] if r.startswith("torch"))
    assert torch_req.startswith("torch>=")
    assert "==" not in torch_req


def test_an_installed_library_that_fails_to_import_is_not_called_missing() -> None:
    """A version mismatch (``cannot import name`` from an installed scikit-learn, as a model saved by a
    newer release meets an older one) keeps its own error: "not installed here" would send the user
    to reinstall what is already there."""
    from shipyard.models.flavors import flavor_imports

    with pytest.raises(ImportError, match="cannot import name") as info, flavor_imports("sklearn", "loading"):
        from sklearn.base import _no_such_name_in_any_release  # type: ignore[attr-defined] # noqa: F401
    assert not isinstance(info.value, MissingDependency)
    with pytest.raises(ModuleNotFoundError, match=r"sklearn\.no_such_module"), flavor_imports("sklearn", "loading"):
        import sklearn.no_such_module  # type: ignore[import-not-found] # noqa: F401
