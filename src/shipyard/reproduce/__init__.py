"""Re-run a recorded run from its code commit, data versions, command line, seed and environment,
and check that its metrics come out the same.

``reproduce(run_id)`` reads the run's record, checks out its commit into a temporary git worktree
and applies the recorded uncommitted diff, resolves every input dataset by digest (copying,
restoring its snapshot, or verifying it in place), optionally builds a virtualenv with the recorded
package versions, re-runs the entry point as a new run linked ``reproduces -> original``, and
compares every metric against a tolerance. ``shipyard reproduce RUN_ID`` is the same from the CLI.

Modules: :mod:`.plan` (read the record, check what can be checked, make the plan),
:mod:`.inputs` (datasets), :mod:`.environment` (current or venv), :mod:`.workspace` (worktree,
diff, data placement), :mod:`.runner` (execute, find the new run), :mod:`.compare` (deltas, result),
all domain code on the registry service; :mod:`.sdk` (``reproduce``, the edge that builds it from a
``Client``).
"""

from shipyard.reproduce.compare import MetricComparison, ParamDifference, ReproductionResult
from shipyard.reproduce.environment import EnvironmentPlan
from shipyard.reproduce.inputs import DataStep
from shipyard.reproduce.plan import Plan
from shipyard.reproduce.progress import PlainProgress, Progress, QuietProgress
from shipyard.reproduce.sdk import reproduce

__all__ = [
    "DataStep",
    "EnvironmentPlan",
    "MetricComparison",
    "ParamDifference",
    "PlainProgress",
    "Plan",
    "Progress",
    "QuietProgress",
    "ReproductionResult",
    "reproduce",
]
