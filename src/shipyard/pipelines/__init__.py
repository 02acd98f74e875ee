"""Pipelines: steps with typed, cached, tracked outputs; gates; retries; resume.

``from shipyard import step, pipeline`` is the usual way in; see docs/pipelines.md.
"""

from shipyard.pipelines.dsl import Output, Pipeline, Step, pipeline, step
from shipyard.pipelines.runner import PipelineRun, StepOutcome
from shipyard.pipelines.serializers import Serializer, register_serializer

__all__ = ["Output", "Pipeline", "PipelineRun", "Serializer", "Step", "StepOutcome", "pipeline",
           "register_serializer", "step"]
