"""Seed every random number generator a training script is likely to use, in one call."""

from __future__ import annotations

import operator
import os
import random
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.installed import importable

__all__ = ["MAX_SEED", "seed_everything"]

MAX_SEED = 2**32 - 1  # the widest range every library accepts (numpy's legacy seed is 32-bit)


def seed_everything(seed: int) -> dict[str, bool]:
    """Seed ``random``, and numpy and torch when they are installed; set ``PYTHONHASHSEED``.

    numpy and torch are only imported when :func:`importlib.util.find_spec` finds them, so
    calling this never installs anything and costs nothing for a library that is absent.
    ``PYTHONHASHSEED`` only affects child processes started afterwards (e.g. data-loader
    workers); the hash seed of the running interpreter is fixed at its start.

    Returns which libraries were seeded, e.g. ``{"random": True, "numpy": True, "torch": False}``.
    Raises :class:`~shipyard.errors.InvalidInput` unless ``seed`` is a whole number (not a bool)
    from 0 to 2**32-1.
    """
    seed = _validate(seed)
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return {
        "random": True,
        "numpy": _seed_numpy(seed),
        "torch": _seed_torch(seed),
    }


def _validate(seed: Any) -> int:
    rule = f"seed must be a whole number from 0 to {MAX_SEED} (2**32-1)"
    if isinstance(seed, bool) or type(seed).__name__ in {"bool", "bool_"}:
        raise InvalidInput(f"{rule}, got the bool {seed!r}")
    try:
        value = operator.index(seed)  # int, or an integer type such as numpy.int64
    except TypeError:
        raise InvalidInput(f"{rule}, got {type(seed).__name__} {seed!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise InvalidInput(f"{rule}, got {value}")
    return value


def _seed_numpy(seed: int) -> bool:
    if not importable("numpy"):
        return False
    try:
        import numpy as np
    except Exception:  # installed but broken: seeding is best effort
        return False
    np.random.seed(seed)
    return True


def _seed_torch(seed: int) -> bool:
    if not importable("torch"):
        return False
    try:
        import torch
    except Exception:  # installed but broken (e.g. missing CUDA libraries)
        return False
    torch.manual_seed(seed)
    try:
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
    except Exception:  # a CUDA driver problem must not stop a CPU run
        pass
    return True
