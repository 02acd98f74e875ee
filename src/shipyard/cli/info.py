"""``shipyard version``: what is installed. Imports nothing heavy (no SQLAlchemy)."""

from __future__ import annotations

import platform
import sys

from shipyard import __version__
from shipyard.cli import render
from shipyard.cli.context import JsonOption


def version(as_json: JsonOption = False) -> None:
    """Print the Shipyard and Python versions."""
    python = f"{platform.python_version()} ({platform.python_implementation()})"
    if as_json:
        render.print_json({"shipyard": __version__, "python": python, "platform": sys.platform})
        return
    render.info(f"shipyard {__version__}\nPython {python} on {sys.platform}")
