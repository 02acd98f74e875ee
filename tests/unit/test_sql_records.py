"""The page-of-runs constructors build the same frozen records as the dataclasses' own."""

from __future__ import annotations

import dataclasses

import pytest

from shipyard.entities import LifecycleStage, Metric, RunInfo, RunStatus
from shipyard.store.sql.records import maker


def test_maker_builds_what_init_builds() -> None:
    made = maker(Metric)("acc", 0.5, 3, 1700)
    assert made == Metric("acc", 0.5, 3, 1700)
    assert hash(made) == hash(Metric("acc", 0.5, 3, 1700))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.key = "loss"  # type: ignore[misc]
    fields = ("r1", "7", "name", RunStatus.FINISHED, 1, 2, LifecycleStage.ACTIVE, None, "u", "s")
    assert maker(RunInfo)(*fields) == RunInfo(*fields)
    with pytest.raises(TypeError):
        maker(Metric)("acc", 0.5)  # every field, positionally: no defaults


def test_maker_refuses_classes_it_would_build_wrongly() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        x: int

        def __post_init__(self) -> None:
            raise ValueError

    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        x: int

    for cls in (Checked, Unslotted):
        with pytest.raises(TypeError, match="slotted dataclass"):
            maker(cls)
