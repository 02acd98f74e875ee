"""Whether the tests run under CI, and what a missing requirement does there.

Locally, a test whose tool is missing (the PostgreSQL server, the ``mlflow`` client,
``schemathesis``, torch) skips, so a laptop without them still runs the rest. Under CI the same
absence fails the run: a green CI run must mean those tests ran, not that they vanished into the
skip count. Every test module asks here instead of calling ``pytest.importorskip`` or reading
``CI`` itself (``tests/unit/test_ci_guards.py`` checks that none does).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from types import ModuleType
from typing import NoReturn

import pytest

__all__ = ["TRUTHY", "in_ci", "require", "unavailable"]

# What CI services set: GitHub Actions, GitLab and most others export CI=true; some use 1 or yes.
TRUTHY = frozenset({"1", "true", "yes", "on"})


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``CI`` holds a truthy value (``true``, ``1``, ``yes``, ``on``; any case)."""
    value = (os.environ if environ is None else environ).get("CI", "")
    return value.strip().lower() in TRUTHY


def unavailable(reason: str) -> NoReturn:
    """Skip the test (or the whole module, when called at import) for ``reason``; under CI, fail instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this test must run: install or start what it needs)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(module: str) -> ModuleType:
    """``import module``: the drop-in for ``pytest.importorskip`` that fails under CI instead of skipping."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        unavailable(f"could not import {module!r}: {exc}")
