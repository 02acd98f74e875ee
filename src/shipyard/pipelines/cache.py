"""Cache keys: what must be equal for a step's earlier outputs to be reused.

A key is the SHA-256 of the step's code (its source and the source of the project functions and
classes it reaches through its globals, recursively), the versions of the libraries those globals and
its imports come from, the values given to it directly, the digests of its input artifacts and of the
files its path arguments name. Library code is identified by version, not source: reading the source
of pandas on every run would cost more than the step.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import sys
import sysconfig
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from shipyard.pipelines.steps import Step

__all__ = ["CACHE_FORMAT", "code_fingerprint", "step_key"]

CACHE_FORMAT = "1"  # bump when what a key covers changes, so old entries stop matching


@functools.cache
def _library_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {p for p in sys.path if p.endswith(("site-packages", "dist-packages"))}
    return tuple(sorted(str(Path(r).resolve()) for r in roots))


def _module_file(module_name: str) -> str | None:
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if file else None


def _is_project(module_name: str) -> bool:
    """Code of the user's project (hashed by source), as opposed to a library (identified by version)."""
    top = module_name.partition(".")[0]
    if top in ("shipyard", "builtins", "__main__") or top in sys.stdlib_module_names:
        return top == "__main__"
    file = _module_file(module_name)
    if file is None:
        return False
    return not file.startswith(_library_roots())


def _version_of(top: str) -> str:
    module = sys.modules.get(top)
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version(top)
    except PackageNotFoundError:
        return "unknown"


def _code_objects(code: types.CodeType) -> list[types.CodeType]:
    found = [code]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_code_objects(const))
    return found


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):  # defined in a REPL or built at run time: the bytecode stands in
        code = getattr(obj, "__code__", None)
        return code.co_code.hex() if code is not None else repr(obj)


@functools.cache
def code_fingerprint(fn: Callable[..., Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """(digest of the source of ``fn`` and of the project code it reaches, (library, version) pairs).
    Computed once per process: code does not change under a running process."""
    sources: dict[str, str] = {}
    libraries: set[str] = set()
    pending: list[Any] = [fn]
    while pending:
        obj = pending.pop()
        qualified = f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"
        if qualified in sources:
            continue
        target = inspect.unwrap(getattr(obj, "fn", obj)) if not isinstance(obj, type) else obj
        sources[qualified] = _source(target)
        code = getattr(target, "__code__", None)
        if code is None:  # a class: its methods are in its source already
            continue
        names = {n for c in _code_objects(code) for n in c.co_names}
        glob = getattr(target, "__globals__", {})
        for name in names:
            if name in glob:
                _follow(glob[name], names, pending, libraries)
            elif name.partition(".")[0] in sys.modules and "." in name:  # `import a.b` inside the function
                libraries.add(name.partition(".")[0])
            elif name in sys.modules and not _is_project(name):
                libraries.add(name)
    digest = hashlib.sha256()
    for qualified in sorted(sources):
        digest.update(f"{qualified}\0{sources[qualified]}\0".encode())
    versions = tuple(sorted((lib, _version_of(lib)) for lib in libraries
                            if lib not in sys.stdlib_module_names and lib not in ("builtins", "shipyard")))
    return digest.hexdigest(), versions


def _follow(value: Any, names: set[str], pending: list[Any], libraries: set[str]) -> None:
    if isinstance(value, types.ModuleType):
        if _is_project(value.__name__):  # helpers.clean(...): follow what the function names in it
            pending.extend(getattr(value, n) for n in names if inspect.isfunction(getattr(value, n, None)))
        else:
            libraries.add(value.__name__.partition(".")[0])
        return
    module = getattr(value, "__module__", None)
    if not isinstance(module, str):
        return
    if isinstance(value, Step) or ((inspect.isfunction(value) or inspect.isclass(value)) and _is_project(module)):
        pending.append(value)
    elif inspect.isfunction(value) or inspect.isclass(value) or inspect.isbuiltin(value):
        libraries.add(module.partition(".")[0])


def step_key(fn: Callable[..., Any], *, literals: Mapping[str, Any], inputs: Mapping[str, str],
             files: Mapping[str, str], outputs: tuple[str, ...], pickle: bool) -> str:
    """The cache key of one call of a step (a hex SHA-256)."""
    code, versions = code_fingerprint(fn)
    payload = {
        "format": CACHE_FORMAT,
        "code": code,
        "libraries": versions,
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "literals": literals,
        "inputs": dict(sorted(inputs.items())),
        "files": dict(sorted(files.items())),
        "outputs": outputs,
        "pickle": pickle,
    }
    text = json.dumps(payload, sort_keys=True, allow_nan=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
