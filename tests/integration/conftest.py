"""Fixtures of the integration tests: the Shipyard server in-process, and the SDK pointed at it.

A module that needs a server set up otherwise (another store, a real process) defines its own
``server`` fixture, which takes precedence over this one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard
from tests.support import InProcessServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[InProcessServer]:
    """A fresh server on SQLite and a local artifact folder below the test's ``tmp_path``."""
    with InProcessServer(tmp_path) as srv:
        yield srv


@pytest.fixture
def remote(server: InProcessServer) -> Iterator[shipyard.Client]:
    """The SDK pointed at ``server`` (its artifacts go through the server's proxy)."""
    c = server.client()
    yield c
    c.close()
