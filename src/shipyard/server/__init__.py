"""The Shipyard server (needs the ``server`` extra: FastAPI, uvicorn)."""

from shipyard.server.app import create_app

__all__ = ["create_app"]
