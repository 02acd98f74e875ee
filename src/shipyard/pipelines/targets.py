"""Finding user code by name: ``module:attribute`` or ``path/to/file.py:attribute``, as the CLI takes a pipeline
or a tuning objective, and as a worker process finds the function its parent named."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import PurePath
from typing import Any

from shipyard.errors import InvalidInput

__all__ = ["load_target", "reference_of"]


def load_target(target: str, what: str, example: str) -> Any:
    """The object named ``target`` (``module`` importable from the working directory, or a ``.py`` file;
    ``__main__`` also finds a spawned worker's ``__mp_main__``). ``what`` and ``example`` word the error.
    Raises ``InvalidInput`` saying what was not found."""
    module_name, sep, attribute = target.rpartition(":")
    if not sep or not module_name or not attribute:
        raise InvalidInput(f"{what} {target!r} is not valid: expected MODULE:NAME, e.g. {example}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if module_name.endswith(".py"):
            spec = importlib.util.spec_from_file_location(PurePath(module_name).stem, module_name)
            if spec is None or spec.loader is None or not os.path.isfile(module_name):
                raise ModuleNotFoundError(module_name)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        elif module_name == "__main__" and "__mp_main__" in sys.modules:
            module = sys.modules["__mp_main__"]
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInput(f"cannot import {module_name!r} for {what} {target!r}: {exc}") from None
    found: Any = module
    for part in attribute.split("."):
        found = getattr(found, part, None)
    return found


def reference_of(fn: Any) -> str:
    """How another process finds ``fn``: ``module:qualified name``."""
    return f"{fn.__module__}:{fn.__qualname__}"
