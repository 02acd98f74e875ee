"""Text as the pages show it: labels cut to fit a chart, a graph node or a table cell.

Shared by the web UI (``shipyard.server.ui``) and the self-contained drift report
(``shipyard.monitoring.html``), which must not import the server to render a label.
"""

from __future__ import annotations

__all__ = ["ELLIPSIS", "shorten"]

ELLIPSIS = "…"


def shorten(text: str, limit: int) -> str:
    """``text`` when it has at most ``limit`` characters, else its first ``limit - 1`` followed by
    ``…``, so the result never has more than ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS
