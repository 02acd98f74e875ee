"""Pipelines: steps with typed, cached, tracked outputs; gates; retries; resume.

``from shipyard import step, pipeline`` is the usual way in; see docs/pipelines.md. Names are imported on
first use, so a module that defines a pipeline imports only the DSL (the runner, the store and the
serializers come with the first run).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.pipelines.dsl import Output, Pipeline, Step, pipeline, step
    from shipyard.pipelines.runner import PipelineRun, StepOutcome
    from shipyard.pipelines.serializers import Serializer, register_serializer

__all__ = ["Output", "Pipeline", "PipelineRun", "Serializer", "Step", "StepOutcome", "pipeline",
           "register_serializer", "step"]

_HOMES = {"Output": "dsl", "Pipeline": "dsl", "Step": "dsl", "pipeline": "dsl", "step": "dsl",
          "PipelineRun": "runner", "StepOutcome": "runner", "Serializer": "serializers",
          "register_serializer": "serializers"}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shipyard.pipelines' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"shipyard.pipelines.{home}"), name)
    globals()[name] = value
    return value
