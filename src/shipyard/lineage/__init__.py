"""The provenance graph: walk the recorded edges, and explain where a thing came from.

``upstream(ref)`` and ``downstream(ref)`` walk the edges the stores recorded when things
happened; ``explain(ref)`` answers "where did this come from" for a model version, a run or a
dataset version: the data digests, code commit (and uncommitted diff), params, seed and package
versions of every run behind it.
"""

from shipyard.lineage.explain import Explanation, RunRecord
from shipyard.lineage.graph import Graph, parse_ref
from shipyard.lineage.sdk import downstream, explain, upstream

__all__ = ["Explanation", "Graph", "RunRecord", "downstream", "explain", "parse_ref", "upstream"]
