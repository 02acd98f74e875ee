"""What is installed: ``name==version`` of every distribution (a run's environment) and the
distributions that provide each top-level module (a model's requirements).

Reading every distribution's metadata takes 0.3-1 s with a few hundred packages, and every process
paid it for its first run and its first model. The answer is kept in the user's cache folder
(beside the digest cache), under a key made of the interpreter and the metadata folders of every
``sys.path`` entry with their modification times: installing, upgrading or removing a
distribution adds, renames or rewrites its metadata folder, which changes the key, so a stale
answer is not read.
A cache that cannot be read or written is ignored (the scan is only repeated).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Installed", "importable", "installed"]

_FORMAT = 1  # bump when what is stored changes


@dataclass(frozen=True)
class Installed:
    requirements: bytes  # "name==version\n" lines, sorted by normalised name, one per name
    providers: dict[str, tuple[str, ...]]  # top-level module -> "name==version" of what provides it


def importable(module: str) -> bool:
    """Whether ``module`` can be imported here, found without importing it (``False`` too when its
    import was blocked, ``sys.modules[module] is None``, or its spec is broken)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@functools.cache
def installed() -> Installed:
    """This environment's distributions, scanned once per environment change (see the module)."""
    path = _cache_file()
    if path is not None:
        try:
            stored = json.loads(path.read_text("utf-8"))
            return Installed(stored["requirements"].encode("utf-8"),
                             {module: tuple(pins) for module, pins in stored["providers"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    found = _scan()
    if path is not None:
        _store(path, found)
    return found


def _cache_file() -> Path | None:
    from shipyard.config import user_cache_folder

    key = hashlib.sha256(json.dumps(_environment()).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    try:
        return user_cache_folder() / f"installed-{key}.json"
    except RuntimeError:  # no home folder to find the cache in
        return None


def _environment() -> list[Any]:
    """What the scan depends on: the interpreter and, for each ``sys.path`` entry, its
    distributions' metadata folders with their times and their metadata file's (a folder that is
    not a directory, such as a zip, by its own time). Folders without distributions (a script's
    own, whose files change all the time) count only by their name."""
    state: list[Any] = [_FORMAT, sys.executable]
    for entry in sys.path:
        found: list[Any] = []
        try:
            with os.scandir(entry or ".") as items:
                for item in items:
                    if item.name.endswith(".dist-info"):
                        found.append([item.name, _mtime(item.path), _mtime(os.path.join(item.path, "METADATA"))])
                    elif item.name.endswith(".egg-info"):
                        found.append([item.name, _mtime(item.path), _mtime(os.path.join(item.path, "PKG-INFO"))])
        except NotADirectoryError:
            found.append(_mtime(entry))
        except OSError:
            pass
        state.append([entry, sorted(found)])
    return state


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _store(path: Path, found: Installed) -> None:
    text = json.dumps({"requirements": found.requirements.decode("utf-8"),
                       "providers": {module: list(pins) for module, pins in found.providers.items()}})
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, "utf-8")
        os.replace(temporary, path)  # readers see the whole file or none
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


def _scan() -> Installed:
    import importlib.metadata

    pins: dict[str, str] = {}
    providers: dict[str, list[str]] = {}
    try:
        distributions = list(importlib.metadata.distributions())
    except Exception:
        return Installed(b"", {})
    for dist in distributions:
        try:
            name = dist.metadata["Name"]
            version = dist.version
        except Exception:  # broken metadata
            continue
        if not name or not version:
            continue
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in pins:  # installed twice on sys.path: the first one is the one imported
            continue
        pins[key] = pin = f"{name}=={version}"
        for module in _top_level_modules(dist):
            providers.setdefault(module, []).append(pin)
    requirements = "".join(f"{pins[key]}\n" for key in sorted(pins)).encode("utf-8")
    return Installed(requirements, {module: tuple(found) for module, found in providers.items()})


def _top_level_modules(dist: Any) -> Iterable[str]:
    """The importable top-level names a distribution declares (``top_level.txt``), else the ones
    its installed ``.py`` files make."""
    try:
        declared = (dist.read_text("top_level.txt") or "").split()
        if declared:
            return declared
        return {f.parts[0] if len(f.parts) > 1 else f.with_suffix("").name
                for f in dist.files or () if f.suffix == ".py"}
    except Exception:  # unreadable RECORD: the distribution provides nothing we can name
        return ()
