"""The SDK's spelling of the lineage walks: ``shipyard.lineage.upstream(ref)``, ``downstream`` and
``explain`` use the fluent SDK's client (the configured store) unless one is given.

An edge, like :mod:`shipyard.tracking.fluent`: the domain functions it calls
(:func:`~shipyard.lineage.graph.walk`, :func:`~shipyard.lineage.explain.explain_ref`) take the
registry service or client explicitly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shipyard.lineage.explain import Explanation, explain_ref
from shipyard.lineage.graph import MAX_DEPTH, Graph, walk
from shipyard.models.registry import HasRegistry, RegistryService

if TYPE_CHECKING:
    from shipyard.entities import Node

__all__ = ["downstream", "explain", "upstream"]


def _given_or_default(client: RegistryService | HasRegistry | None) -> RegistryService | HasRegistry:
    if client is not None:
        return client
    from shipyard.tracking.fluent import default_client

    return default_client()


def upstream(ref: str | Node, *, depth: int = MAX_DEPTH, client: RegistryService | HasRegistry | None = None) -> Graph:
    """Everything ``ref`` was made from: data, runs, parent runs... (``client``: the fluent
    SDK's, unless given; a ``RegistryService`` is taken too)."""
    return walk(_given_or_default(client), ref, upstream=True, depth=depth)


def downstream(ref: str | Node, *, depth: int = MAX_DEPTH,
               client: RegistryService | HasRegistry | None = None) -> Graph:
    """Everything made from ``ref``: runs that read a dataset, versions registered from a run..."""
    return walk(_given_or_default(client), ref, upstream=False, depth=depth)


def explain(ref: str | Node, *, depth: int = MAX_DEPTH, with_files: bool = True,
            client: RegistryService | HasRegistry | None = None) -> Explanation:
    """Walk upstream from ``ref`` (``models:/churn@production``, ``run:<id>``, ``dataset:train@3``...)
    and read every run, dataset version and model version met. ``with_files`` also reads each
    run's package list and uncommitted diff. ``client``: the fluent SDK's, unless given."""
    return explain_ref(_given_or_default(client), ref, depth=depth, with_files=with_files)
