"""The installed distributions (shipyard/installed.py): the same answer as a scan of the metadata,
read from the user's cache by the next process, and scanned again when a distribution changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shipyard import installed as module
from tests.ci import require


def _fake_distribution(folder: Path, version: str) -> None:
    for old in folder.glob("shipyard_fake_dist-*.dist-info"):
        for file in old.iterdir():
            file.unlink()
        old.rmdir()
    meta = folder / f"shipyard_fake_dist-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: shipyard-fake-dist\nVersion: {version}\n")
    (meta / "top_level.txt").write_text("shipyard_fake_module\n")


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty cache folder, a sys.path folder holding one fake distribution, no process cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    module.installed.cache_clear()
    yield site
    module.installed.cache_clear()


def test_the_answer_is_the_scan_and_the_cache_holds_it(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = module.installed()
    assert found == module._scan()
    assert b"shipyard-fake-dist==1.0\n" in found.requirements
    assert found.providers["shipyard_fake_module"] == ("shipyard-fake-dist==1.0",)
    assert any(line.startswith(b"pytest==") for line in found.requirements.splitlines())
    assert len(list((fresh.parent / "cache" / "shipyard").glob("installed-*.json"))) == 1

    def no_scan() -> None:
        raise AssertionError("scanned although the cache holds the answer")

    module.installed.cache_clear()
    monkeypatch.setattr(module, "_scan", no_scan)
    assert module.installed() == found


def test_a_changed_distribution_is_scanned_again(fresh: Path) -> None:
    assert b"shipyard-fake-dist==1.0\n" in module.installed().requirements
    _fake_distribution(fresh, "2.0")  # an upgrade: its metadata folder is replaced
    module.installed.cache_clear()
    found = module.installed()
    assert b"shipyard-fake-dist==2.0\n" in found.requirements
    assert b"shipyard-fake-dist==1.0" not in found.requirements
    assert found.providers["shipyard_fake_module"] == ("shipyard-fake-dist==2.0",)


def test_files_beside_the_distributions_do_not_change_the_answer_s_key(fresh: Path) -> None:
    before = module._environment()
    (fresh / "results.csv").write_text("a script's own folder changes all the time\n")
    assert module._environment() == before


def test_an_unusable_cache_folder_is_only_a_slower_answer(fresh: Path, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    assert module.installed() == module._scan()


def test_saving_a_scikit_learn_model_does_not_import_torch(tmp_path: Path) -> None:
    require("torch")
    require("skops")
    code = (
        "import sys\nimport numpy as np\nfrom sklearn.linear_model import LogisticRegression\n"
        "from shipyard.models.package import save_model, load_model_folder\n"
        "X = np.arange(40.0).reshape(20, 2); y = (X[:, 0] > 19).astype(int)\n"
        "model = LogisticRegression().fit(X, y)\n"
        f"save_model(model, {str(tmp_path / 'm')!r}, input_example=X[:3])\n"
        "print('torch' in sys.modules)\n"
        f"loaded = load_model_folder({str(tmp_path / 'm')!r})\n"
        "assert (loaded.predict(X) == model.predict(X)).all()\n"
        "import torch\nprint(torch.tensor([1.0]).sum().item())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "1.0"]
    assert (tmp_path / "m" / "model.skops").exists()


def test_importable_finds_modules_without_importing_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from shipyard.installed import importable

    assert importable("json")
    assert not importable("shipyard_no_such_module")
    monkeypatch.setitem(sys.modules, "shipyard_blocked", None)  # an import that was blocked
    assert not importable("shipyard_blocked")
