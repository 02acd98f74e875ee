"""The SDK's spelling of a reproduction: ``shipyard.reproduce.reproduce(run_id)`` uses the fluent
SDK's client (the configured store) unless one is given; ``shipyard reproduce`` passes the CLI's.

An edge, like :mod:`shipyard.lineage.sdk`: it builds from the ``Client`` what the domain function
:func:`~shipyard.reproduce.runner.reproduce_run` takes: the registry service
and the store's URIs (from its settings).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shipyard.reproduce.plan import StoreUris
from shipyard.reproduce.runner import reproduce_run

if TYPE_CHECKING:
    from shipyard.reproduce.compare import ReproductionResult
    from shipyard.reproduce.progress import Progress
    from shipyard.tracking.client import Client

__all__ = ["reproduce"]


def reproduce(run_id: str, *, tolerance: float = 0.02, env: str = "current", dry_run: bool = False,
              client: Client | None = None, repo: str | os.PathLike[str] | None = None, checkout: bool = True,
              progress: Progress | None = None) -> ReproductionResult:
    """Re-run run ``run_id`` from its recorded code, data, command line and seed, and compare metrics.

    ``tolerance``: the largest relative difference per metric that passes. ``env``: ``current``
    (this interpreter) or ``venv`` (a new virtualenv with the run's recorded package versions,
    installed with pip). ``dry_run``: only plan (every check that needs no side effect still
    runs). ``client``: the store to read the run from and track the re-run to (default: the
    fluent SDK's). ``repo``: the git repository holding the run's commit (default: the current
    folder's). ``checkout=False`` runs the entry point in the current tree instead of the recorded
    commit. ``progress``: where steps and the re-run's output go (default: plain lines on stderr).

    Raises ``NotFound`` (unknown run, commit not in the repository), ``InvalidInput`` (no commit
    or entry point recorded, bad arguments) and ``Conflict`` (the diff no longer applies, an
    input dataset changed and has no snapshot) before anything runs. A re-run that fails or
    does not match is a result with ``status == "fail"``, not an exception.
    """
    from shipyard.tracking.client import default_artifact_uri

    if client is None:
        from shipyard.tracking.fluent import default_client

        client = default_client()
    uris = StoreUris(client.settings.tracking_uri, default_artifact_uri(client.settings))
    return reproduce_run(client, run_id, uris=uris, tolerance=tolerance, env=env, dry_run=dry_run, repo=repo,
                         checkout=checkout, progress=progress)
