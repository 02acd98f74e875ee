"""Datasets and the lineage graph: versioned data, and the edges recorded between things."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.entities.auth import DEFAULT_PROJECT
from shipyard.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """Version ``version`` (1, 2, ...) of dataset ``name``: the data whose content digest is
    ``digest``, read from ``source``. Logging the same name with the same digest again gives
    this version back; new content gives the next version. A dataset's ``project`` is the one
    its first version was logged in; every later version has it too."""

    name: str
    version: int
    digest: str
    source: str
    kind: str  # file | folder | glob | table
    num_rows: int | None = None
    size_bytes: int | None = None
    schema: Sequence[Mapping[str, Any]] = ()
    profile: Mapping[str, Any] = field(default_factory=dict)
    snapshot_uri: str | None = None  # runs:/<run_id>/<path> of the stored copy, if one was taken
    creation_time: int = 0
    user: str = ""
    project: str = DEFAULT_PROJECT

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class NodeKind(enum.StrEnum):
    DATASET = "dataset"  # id: <name>@<version>
    RUN = "run"  # id: <run_id>
    MODEL = "model"  # id: <name>/<version>
    DEPLOYMENT = "deployment"  # id: <name>
    PREDICTION = "prediction"  # id: <prediction_id>
    STEP = "step"  # id: <pipeline>/<step>
    ALERT = "alert"  # id: <monitor>/<alert_id>


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """One thing in the lineage graph, written ``kind:id`` (``run:3f2a...``, ``dataset:train@3``,
    ``model:churn/7``)."""

    kind: NodeKind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Node:
        kind, sep, ident = str(text).partition(":")
        try:
            parsed = NodeKind(kind)
        except ValueError:
            parsed = None
        if not sep or parsed is None or not ident:
            raise InvalidInput(f"lineage reference {text!r} is not valid: expected <kind>:<id> with kind one of "
                               + ", ".join(k.value for k in NodeKind) + " (e.g. run:3f2a..., dataset:train@3, "
                               "model:churn/7)")
        return cls(parsed, ident)


class Relation(enum.StrEnum):
    """What an edge ``source -> target`` means: the target was made from, or by, the source."""

    INPUT = "input"  # dataset -> run that read it
    OUTPUT = "output"  # run -> dataset it wrote
    MODEL = "model"  # run -> model version registered from it
    CHILD = "child"  # run -> nested run
    DEPLOYED = "deployed"  # model version -> deployment serving it
    PREDICTED = "predicted"  # deployment -> prediction
    REPRODUCED = "reproduced"  # original run -> run that reproduces it
    STEP = "step"  # pipeline step -> the step that consumes its output
    TRIGGERED = "triggered"  # monitor alert -> the retraining run it started


@dataclass(frozen=True, slots=True)
class Edge:
    """``source -> target``, written when the event happened; ``context`` qualifies it
    (``training``, ``evaluation``...)."""

    source: Node
    target: Node
    relation: Relation
    context: str = ""
    timestamp: int = 0
