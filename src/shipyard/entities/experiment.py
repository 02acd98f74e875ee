from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.entities.run import LifecycleStage

# Every store has this experiment from its creation; runs started without one go there.
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"


@dataclass(frozen=True, slots=True)
class Experiment:
    """A named group of runs. ``experiment_id`` is a string of digits (``"0"`` is Default).
    Its runs and logged models belong to its ``project``."""

    experiment_id: str
    name: str
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    creation_time: int = 0
    last_update_time: int = 0
    tags: Mapping[str, str] = field(default_factory=dict)
    project: str = DEFAULT_PROJECT
