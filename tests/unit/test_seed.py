from __future__ import annotations

import os
import random

import pytest

from shipyard.errors import InvalidInput
from shipyard.tracking.seed import MAX_SEED, seed_everything
from tests.ci import require

np = require("numpy")


@pytest.fixture(autouse=True)
def _restore_hashseed(monkeypatch: pytest.MonkeyPatch) -> None:
    # seed_everything sets PYTHONHASHSEED; let monkeypatch put the old value back afterwards.
    monkeypatch.setenv("PYTHONHASHSEED", os.environ.get("PYTHONHASHSEED", "0"))


def draw() -> tuple[list[float], list[float]]:
    return [random.random() for _ in range(5)], np.random.rand(5).tolist()


def test_same_seed_gives_same_sequences() -> None:
    seed_everything(1234)
    first = draw()
    seed_everything(1234)
    second = draw()
    assert first == second


def test_different_seeds_give_different_sequences() -> None:
    seed_everything(1)
    first = draw()
    seed_everything(2)
    assert draw() != first


def test_reports_what_was_seeded_and_sets_hashseed() -> None:
    seeded = seed_everything(7)

    assert seeded["random"] is True
    assert seeded["numpy"] is True
    assert isinstance(seeded["torch"], bool)
    assert os.environ["PYTHONHASHSEED"] == "7"


def test_missing_library_is_reported_not_seeded(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name in {"numpy", "torch"} else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert seed_everything(3) == {"random": True, "numpy": False, "torch": False}


@pytest.mark.parametrize("seed", [0, 1, MAX_SEED, 2**32 - 1, np.int64(42)])
def test_valid_seeds(seed: int) -> None:
    assert seed_everything(seed)["random"] is True


@pytest.mark.parametrize("seed", [-1, 2**32, True, False, 1.0, 1.5, "1", None, np.bool_(True)])
def test_invalid_seeds_raise(seed: object) -> None:
    with pytest.raises(InvalidInput, match=r"0 to 4294967295"):
        seed_everything(seed)  # type: ignore[arg-type]


def test_seeding_does_not_repeat_default_run_names() -> None:
    # seed_everything seeds the global `random`; run names must not follow it, or every run of a
    # seeded script would be called the same.
    from shipyard.tracking.names import generate_run_name

    names = set()
    for _ in range(5):
        seed_everything(7)
        names.add(generate_run_name())
    assert len(names) > 1
