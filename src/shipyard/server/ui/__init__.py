"""The web UI: server-rendered pages (Jinja2) with small vendored JavaScript (htmx, uPlot).

Pages call the same domain entry point as the API (``client(request)``, acting as the request's
principal) and every route declares its permission in
:data:`shipyard.server.permissions.ROUTE_PERMISSIONS` like the API's. The JavaScript libraries
are vendored into ``static/vendor`` by ``scripts/vendor_js.py``, so no Node is needed to install or
run Shipyard and the UI works offline.
"""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["routers"]


def routers() -> list[APIRouter]:
    """The UI's routers, for :func:`shipyard.server.app.create_app`."""
    from shipyard.server.ui import (
        auth_pages,
        monitor_pages,
        oidc_pages,
        ops_pages,
        pipeline_pages,
        registry_pages,
        tracking_pages,
    )

    return [auth_pages.router, oidc_pages.router, tracking_pages.router, registry_pages.router, ops_pages.router,
            monitor_pages.router, pipeline_pages.router, tracking_pages.root_router]
