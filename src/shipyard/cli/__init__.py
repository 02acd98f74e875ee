"""The ``shipyard`` command line: thin commands over :class:`shipyard.Client`.

One module per command group (``experiments``, ``runs``, ``artifacts``, ``db``, ``config``,
``info``); :mod:`~shipyard.cli.render` decides how everything looks and
:mod:`~shipyard.cli.context` holds the settings and the lazily opened Client. Errors become
exit codes in one place, :class:`~shipyard.cli.app.ShipyardGroup`.
"""

from shipyard.cli.app import app, main

__all__ = ["app", "main"]
